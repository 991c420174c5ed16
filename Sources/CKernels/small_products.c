#include "CKernels.h"

// Matrix products small enough that OpenBLAS's fixed costs dominate them: attention's per-head
// products (T × D by D × T at T = 24–256, D = 16–64) and the projections of a small model (K = 64–256).
// OpenBLAS packs both operands into its own layouts on every call and runs a separate pass to scale
// C whenever beta ≠ 1; at these sizes that was a quarter of a training step. Here only op(B) is
// packed (into column panels of 16, at most 64 Ki floats, a buffer per thread); A is read in place,
// one element broadcast at a time, and C is written once.
//
// Layouts (row-major): C is m × n with row stride ldc; op(A) is m × k (A itself k × m when
// transposed), op(B) is k × n (B itself n × k when transposed). Each C element is one sum over
// p = 0 ..< k, in order, with fused multiply-adds, then alpha·sum (+ beta·C) (+ bias): the result does not
// depend on the tiling, the row blocks a caller splits C into, or the thread.

#if defined(__x86_64__)
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE inline __attribute__((always_inline))

enum { PANEL = CK_SMALL_PRODUCT_PANEL, ROWS = 6, ROW_BLOCK = 96 };

static pthread_key_t buffer_key;
static int buffer_key_made;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static void make_buffer_key(void) { buffer_key_made = pthread_key_create(&buffer_key, free) == 0; }

/// This thread's packing buffer of CK_SMALL_PRODUCT_PACKED floats (NULL when it cannot be allocated).
static float *packing_buffer(void) {
    pthread_once(&buffer_once, make_buffer_key);
    if (!buffer_key_made) return NULL;
    float *buffer = pthread_getspecific(buffer_key);
    if (!buffer) {
        buffer = aligned_alloc(64, CK_SMALL_PRODUCT_PACKED * sizeof(float));
        if (buffer && pthread_setspecific(buffer_key, buffer) != 0) { free(buffer); buffer = NULL; }
    }
    return buffer;
}

/// out[q·16 + x] = b[x·ldb + q] for x, q < 8: eight rows of B become eight columns of a panel.
static INLINE AVX2 void transpose8(const float *b, ptrdiff_t ldb, float *out) {
    __m256 r0 = _mm256_loadu_ps(b), r1 = _mm256_loadu_ps(b + ldb);
    __m256 r2 = _mm256_loadu_ps(b + 2 * ldb), r3 = _mm256_loadu_ps(b + 3 * ldb);
    __m256 r4 = _mm256_loadu_ps(b + 4 * ldb), r5 = _mm256_loadu_ps(b + 5 * ldb);
    __m256 r6 = _mm256_loadu_ps(b + 6 * ldb), r7 = _mm256_loadu_ps(b + 7 * ldb);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(out + 0 * PANEL, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(out + 1 * PANEL, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(out + 2 * PANEL, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(out + 3 * PANEL, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(out + 4 * PANEL, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(out + 5 * PANEL, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(out + 6 * PANEL, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(out + 7 * PANEL, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/// op(B) as column panels of 16: panel j holds rows 0 ..< k of columns 16j ..< 16j + 16, zero past n.
static AVX2 void pack(int transB, ptrdiff_t n, ptrdiff_t k, const float *b, ptrdiff_t ldb, float *out) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += PANEL) {
        ptrdiff_t width = n - j0 < PANEL ? n - j0 : PANEL;
        float *panel = out + j0 * k;
        if (!transB) {
            for (ptrdiff_t q = 0; q < k; q++) {
                const float *row = b + q * ldb + j0;
                if (width == PANEL) {
                    _mm256_storeu_ps(panel + q * PANEL, _mm256_loadu_ps(row));
                    _mm256_storeu_ps(panel + q * PANEL + 8, _mm256_loadu_ps(row + 8));
                } else {
                    for (ptrdiff_t x = 0; x < PANEL; x++) panel[q * PANEL + x] = x < width ? row[x] : 0;
                }
            }
        } else {  // column x of op(B) is row j0 + x of B
            for (ptrdiff_t x0 = 0; x0 < PANEL; x0 += 8) {
                ptrdiff_t q = 0;
                if (width - x0 >= 8)
                    for (; q + 8 <= k; q += 8)
                        transpose8(b + (j0 + x0) * ldb + q, ldb, panel + q * PANEL + x0);
                for (ptrdiff_t x = x0; x < x0 + 8; x++)
                    for (ptrdiff_t r = q; r < k; r++) panel[r * PANEL + x] = x < width ? b[(j0 + x) * ldb + r] : 0;
            }
        }
    }
}

/// Lanes 0 ..< count set (count may be ≤ 0 or ≥ 8).
static INLINE AVX2 __m256i lanes_below(ptrdiff_t count) {
    int c = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Row r of the tile: C[r, 0 ..< width] = alpha·(s0, s1) (+ beta·C; C is not read when beta is 0)
/// (+ the panel's bias, when there is one). Lanes past width are neither read nor written (y + 8 and
/// bias + 8 are formed only when width > 8).
static INLINE AVX2 void store_row(float *y, __m256 s0, __m256 s1, float alpha, float beta, const float *bias,
                                  ptrdiff_t width) {
    __m256 a = _mm256_set1_ps(alpha), y0 = _mm256_mul_ps(a, s0), y1 = _mm256_mul_ps(a, s1), b = _mm256_set1_ps(beta);
    if (width == PANEL) {
        if (beta != 0) {
            y0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(y), y0);
            y1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(y + 8), y1);
        }
        if (bias) {
            y0 = _mm256_add_ps(_mm256_loadu_ps(bias), y0);
            y1 = _mm256_add_ps(_mm256_loadu_ps(bias + 8), y1);
        }
        _mm256_storeu_ps(y, y0);
        _mm256_storeu_ps(y + 8, y1);
        return;
    }
    __m256i m0 = lanes_below(width);
    if (beta != 0) y0 = _mm256_fmadd_ps(b, _mm256_maskload_ps(y, m0), y0);
    if (bias) y0 = _mm256_add_ps(_mm256_maskload_ps(bias, m0), y0);
    _mm256_maskstore_ps(y, m0, y0);
    if (width > 8) {
        __m256i m1 = lanes_below(width - 8);
        if (beta != 0) y1 = _mm256_fmadd_ps(b, _mm256_maskload_ps(y + 8, m1), y1);
        if (bias) y1 = _mm256_add_ps(_mm256_maskload_ps(bias + 8, m1), y1);
        _mm256_maskstore_ps(y + 8, m1, y1);
    }
}

/// Row r's two accumulators gain A[r, p]·(panel row p).
#define ACCUMULATE(r, s0, s1)                                         \
    do {                                                              \
        __m256 x = _mm256_broadcast_ss(column + (r) * rowStride);     \
        s0 = _mm256_fmadd_ps(x, b0, s0);                              \
        s1 = _mm256_fmadd_ps(x, b1, s1);                              \
    } while (0)

/// A tile of `rows` (≤ 6, a constant after inlining) rows by one panel: twelve accumulators at most,
/// two panel loads and one broadcast per row for each p.
static INLINE AVX2 void tile(const int rows, const float *a, ptrdiff_t rowStride, ptrdiff_t depthStride, ptrdiff_t k,
                             const float *panel, float alpha, float beta, const float *bias, float *c, ptrdiff_t ldc,
                             ptrdiff_t width) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (ptrdiff_t q = 0; q < k; q++) {
        __m256 b0 = _mm256_loadu_ps(panel + q * PANEL), b1 = _mm256_loadu_ps(panel + q * PANEL + 8);
        const float *column = a + q * depthStride;
        ACCUMULATE(0, c00, c01);
        if (rows > 1) ACCUMULATE(1, c10, c11);
        if (rows > 2) ACCUMULATE(2, c20, c21);
        if (rows > 3) ACCUMULATE(3, c30, c31);
        if (rows > 4) ACCUMULATE(4, c40, c41);
        if (rows > 5) ACCUMULATE(5, c50, c51);
    }
    store_row(c, c00, c01, alpha, beta, bias, width);
    if (rows > 1) store_row(c + ldc, c10, c11, alpha, beta, bias, width);
    if (rows > 2) store_row(c + 2 * ldc, c20, c21, alpha, beta, bias, width);
    if (rows > 3) store_row(c + 3 * ldc, c30, c31, alpha, beta, bias, width);
    if (rows > 4) store_row(c + 4 * ldc, c40, c41, alpha, beta, bias, width);
    if (rows > 5) store_row(c + 5 * ldc, c50, c51, alpha, beta, bias, width);
}

AVX2 int ck_small_product(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                          const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                          const float *bias, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0 || k <= 0 || k > CK_SMALL_PRODUCT_PACKED) return 1;
    ptrdiff_t panels = n / PANEL + (n % PANEL != 0);
    if (panels > CK_SMALL_PRODUCT_PACKED / PANEL / k) return 1;  // packed size beyond the buffer (no overflow)
    float *packed = packing_buffer();
    if (!packed) return 1;
    pack(transB, n, k, b, ldb, packed);
    // A[i, p] sits at a + i·rowStride + p·depthStride.
    ptrdiff_t rowStride = transA ? 1 : lda, depthStride = transA ? lda : 1;
    for (ptrdiff_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        ptrdiff_t i1 = m - i0 < ROW_BLOCK ? m : i0 + ROW_BLOCK;
        for (ptrdiff_t j = 0; j < panels; j++) {
            ptrdiff_t width = n - j * PANEL < PANEL ? n - j * PANEL : PANEL;
            const float *panel = packed + j * PANEL * k, *panelBias = bias ? bias + j * PANEL : NULL;
            ptrdiff_t i = i0;
            for (; i + ROWS <= i1; i += ROWS)
                tile(6, a + i * rowStride, rowStride, depthStride, k, panel, alpha, beta, panelBias,
                     c + i * ldc + j * PANEL, ldc, width);
            if (i == i1) continue;
            const float *rest = a + i * rowStride;
            float *out = c + i * ldc + j * PANEL;
            switch (i1 - i) {
            case 5: tile(5, rest, rowStride, depthStride, k, panel, alpha, beta, panelBias, out, ldc, width); break;
            case 4: tile(4, rest, rowStride, depthStride, k, panel, alpha, beta, panelBias, out, ldc, width); break;
            case 3: tile(3, rest, rowStride, depthStride, k, panel, alpha, beta, panelBias, out, ldc, width); break;
            case 2: tile(2, rest, rowStride, depthStride, k, panel, alpha, beta, panelBias, out, ldc, width); break;
            default: tile(1, rest, rowStride, depthStride, k, panel, alpha, beta, panelBias, out, ldc, width); break;
            }
        }
    }
    return 0;
}

#else
// Not x86-64: ck_has_avx2_fma() is 0 and the engine calls BLAS; say so to a direct caller.
int ck_small_product(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                     const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                     const float *bias, float *c, ptrdiff_t ldc) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha;
    (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)bias; (void)c; (void)ldc;
    return 1;
}
#endif
