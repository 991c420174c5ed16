#include "CKernels.h"
#include "lanes.h"

// Every matrix product of the engine where the CPU has AVX2 and FMA; written first for the lab's models:
// attention's per-head products (T × D by D × T at T = 24–256, D = 16–64), the projections (K = 64–1024)
// and their weight gradients (depth: the batch's tokens). OpenBLAS packs both operands into its own
// layouts on every call and runs a separate pass to scale C whenever beta ≠ 1; at the smallest sizes
// that was a quarter of a training step. Here only op(B) is
// packed (into column panels of 16, a block of at most 256 columns by the depth that fits beside them in
// 64 Ki floats, a buffer per thread); A is read in place, one element broadcast at a time (or, transposed
// with its depths a page apart, copied a row block at a time).
//
// Layouts (row-major): C is m × n with row stride ldc; op(A) is m × k (A itself k × m when
// transposed), op(B) is k × n (B itself n × k when transposed). Each C element is one sum over
// p = 0 ..< k, in order, with fused multiply-adds, then alpha·sum (+ beta·C) (+ bias): the result does not
// depend on the tiling, the blocks of op(B), the row blocks a caller splits C into, or the thread; nor on
// the CPU, so long as it runs AVX2 and FMA; nor on the register tiles (AVX2's 6 rows × 16 columns in two 8-lane
// registers per row, or, where the CPU has AVX-512, 6 rows × 32 columns in two 16-lane ones).

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE inline __attribute__((always_inline))

enum { PANEL = CK_SMALL_PRODUCT_PANEL, ROWS = 6, ROW_BLOCK = 96, COLUMN_BLOCK = 256, PACKED_A_DEPTH = 1024,
       PACKED_A_STRIDE = 1024 };

/// The packing buffer: op(B)'s block, then a row block of a transposed A.
enum { BUFFER = CK_SMALL_PRODUCT_PACKED + ROW_BLOCK * PACKED_A_DEPTH };

static pthread_key_t buffer_key;
static int buffer_key_made;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static void make_buffer_key(void) { buffer_key_made = pthread_key_create(&buffer_key, free) == 0; }

/// This thread's packing buffer of BUFFER floats (NULL when it cannot be allocated).
static float *packing_buffer(void) {
    pthread_once(&buffer_once, make_buffer_key);
    if (!buffer_key_made) return NULL;
    float *buffer = pthread_getspecific(buffer_key);
    if (!buffer) {
        buffer = aligned_alloc(64, BUFFER * sizeof(float));
        if (buffer && pthread_setspecific(buffer_key, buffer) != 0) { free(buffer); buffer = NULL; }
    }
    return buffer;
}

/// t[l] lane i = r[i] lane l: eight vectors transposed.
static INLINE AVX2 void transpose8_vectors(const __m256 r[8], __m256 t[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    t[0] = _mm256_permute2f128_ps(u0, u4, 0x20), t[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    t[2] = _mm256_permute2f128_ps(u2, u6, 0x20), t[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    t[4] = _mm256_permute2f128_ps(u0, u4, 0x31), t[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    t[6] = _mm256_permute2f128_ps(u2, u6, 0x31), t[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// out[q·16 + x] = b[x·ldb + q] for x, q < 8: eight rows of B become eight columns of a panel.
static INLINE AVX2 void transpose8(const float *b, ptrdiff_t ldb, float *out) {
    __m256 r[8], t[8];
    for (int x = 0; x < 8; x++) r[x] = _mm256_loadu_ps(b + x * ldb);
    transpose8_vectors(r, t);
    for (int q = 0; q < 8; q++) _mm256_storeu_ps(out + q * PANEL, t[q]);
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

/// y[0 ..< width] (at most 8 of them) from the sums s: alpha·s (+ beta·y; y is not read when beta is 0)
/// (+ bias, when there is one). Lanes past width are neither read nor written.
static INLINE AVX2 void store_sums(float *y, __m256 s, float alpha, float beta, const float *bias, ptrdiff_t width) {
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(alpha), s);
    if (width >= 8) {
        if (beta != 0) v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(y), v);
        if (bias) v = _mm256_add_ps(_mm256_loadu_ps(bias), v);
        _mm256_storeu_ps(y, v);
        return;
    }
    __m256i mask = lanes_below(width);
    if (beta != 0) v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(y, mask), v);
    if (bias) v = _mm256_add_ps(_mm256_maskload_ps(bias, mask), v);
    _mm256_maskstore_ps(y, mask, v);
}

/// Row r of the tile: C[r, 0 ..< width] from its two accumulators, as store_sums forms them (y + 8 and
/// bias + 8 are formed only when width > 8).
static INLINE AVX2 void store_row(float *y, __m256 s0, __m256 s1, float alpha, float beta, const float *bias,
                                  ptrdiff_t width) {
    store_sums(y, s0, alpha, beta, bias, width);
    if (width > 8) store_sums(y + 8, s1, alpha, beta, bias ? bias + 8 : NULL, width - 8);
}

/// alpha·sum (+ beta·y) (+ bias): store_sums for one element.
static INLINE AVX2 float finish(float sum, float alpha, float beta, float y, const float *bias) {
    float value = alpha * sum;
    if (beta != 0) value = fmaf(beta, y, value);
    return bias ? *bias + value : value;
}

/// Row r's two accumulators gain A[r, p]·(panel row p).
#define ACCUMULATE(r, s0, s1)                                         \
    do {                                                              \
        __m256 x = _mm256_broadcast_ss(column + (r) * rowStride);     \
        s0 = _mm256_fmadd_ps(x, b0, s0);                              \
        s1 = _mm256_fmadd_ps(x, b1, s1);                              \
    } while (0)

/// Row r's accumulators start from C's running sums (a depth block after the first): lanes past width are
/// neither read nor used.
static INLINE AVX2 void load_row(const float *y, __m256 *s0, __m256 *s1, ptrdiff_t width) {
    if (width == PANEL) {
        *s0 = _mm256_loadu_ps(y);
        *s1 = _mm256_loadu_ps(y + 8);
        return;
    }
    *s0 = _mm256_maskload_ps(y, lanes_below(width));
    *s1 = width > 8 ? _mm256_maskload_ps(y + 8, lanes_below(width - 8)) : _mm256_setzero_ps();
}

/// A tile of `rows` (≤ 6, a constant after inlining) rows by one panel: twelve accumulators at most,
/// two panel loads and one broadcast per row for each p. With `carry`, the accumulators start from the
/// sums an earlier depth block left in C, so the sum over p stays one chain, in order.
static INLINE AVX2 void tile(const int rows, const float *a, ptrdiff_t rowStride, ptrdiff_t depthStride, ptrdiff_t k,
                             const float *panel, int carry, float alpha, float beta, const float *bias, float *c,
                             ptrdiff_t ldc, ptrdiff_t width) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (carry) {
        load_row(c, &c00, &c01, width);
        if (rows > 1) load_row(c + ldc, &c10, &c11, width);
        if (rows > 2) load_row(c + 2 * ldc, &c20, &c21, width);
        if (rows > 3) load_row(c + 3 * ldc, &c30, &c31, width);
        if (rows > 4) load_row(c + 4 * ldc, &c40, &c41, width);
        if (rows > 5) load_row(c + 5 * ldc, &c50, &c51, width);
    }
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

/// Whether block_product packs A: a transposed A whose depths lie a page (4 KiB) or more apart, as in the weight
/// gradient of a layer 1024 wide, where reading A in place touches a new page at every depth (on Zen 4, against
/// OpenBLAS's SkylakeX kernels: 0.80–0.85× in place, 0.92–0.96× packed). Narrower ones ran slower packed
/// (0.84–0.91× against 1.04–1.10×): the copy costs more than it saves when op(B) has few panels.
static INLINE int packs_a(ptrdiff_t rowStride, ptrdiff_t depthStride) {
    return rowStride == 1 && depthStride >= PACKED_A_STRIDE;
}

/// Rows i0 ..< i1 of a transposed A (A[i, p] at a + i + p·lda) over depths 0 ..< k, as tiles of 6 rows: tile t holds
/// A[i0 + 6t + r, q] at out[6kt + 6q + r], so that a tile reads its part of A in order instead of one cache line
/// (or one page, in a wide gradient) per depth.
static void pack_transposed_rows(const float *a, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t k, float *out) {
    for (ptrdiff_t q = 0; q < k; q++) {
        const float *row = a + q * lda;
        for (ptrdiff_t i = i0; i < i1; i += ROWS) {
            float *to = out + (i - i0) * k + q * ROWS;
            ptrdiff_t rows = i1 - i < ROWS ? i1 - i : ROWS;
            for (ptrdiff_t r = 0; r < rows; r++) to[r] = row[i + r];
        }
    }
}

/// C[0 ..< m, 0 ..< n] over one packed block of op(B) (n columns, depth k), A already offset to the block's
/// first depth: tiles of 6 rows by one panel, 96 rows at a time so that their part of A stays in cache. A
/// transposed A (rowStride 1) is packed a row block at a time into `packedA` (ROW_BLOCK × k floats).
static AVX2 void block_product(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t rowStride,
                               ptrdiff_t depthStride, const float *packed, float *packedA, int carry, float alpha,
                               float beta, const float *bias, float *c, ptrdiff_t ldc) {
    ptrdiff_t panels = n / PANEL + (n % PANEL != 0);
    for (ptrdiff_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        ptrdiff_t i1 = m - i0 < ROW_BLOCK ? m : i0 + ROW_BLOCK;
        // The tile of rows i ..< i + 6 starts at origin + (i − i0)·step; in it, A[i + r, q] is at
        // r·inRow + q·inDepth.
        const float *origin = a + i0 * rowStride;
        ptrdiff_t step = rowStride, inRow = rowStride, inDepth = depthStride;
        if (packs_a(rowStride, depthStride)) {  // the tile-major copy: tile t at packedA + 6kt
            pack_transposed_rows(a, depthStride, i0, i1, k, packedA);
            origin = packedA, step = k, inRow = 1, inDepth = ROWS;
        }
        for (ptrdiff_t j = 0; j < panels; j++) {
            ptrdiff_t width = n - j * PANEL < PANEL ? n - j * PANEL : PANEL;
            const float *panel = packed + j * PANEL * k, *panelBias = bias ? bias + j * PANEL : NULL;
            ptrdiff_t i = i0;
            for (; i + ROWS <= i1; i += ROWS)
                tile(6, origin + (i - i0) * step, inRow, inDepth, k, panel, carry, alpha, beta, panelBias,
                     c + i * ldc + j * PANEL, ldc, width);
            if (i == i1) continue;
            const float *rest = origin + (i - i0) * step;
            float *out = c + i * ldc + j * PANEL;
            switch (i1 - i) {
            case 5: tile(5, rest, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, width); break;
            case 4: tile(4, rest, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, width); break;
            case 3: tile(3, rest, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, width); break;
            case 2: tile(2, rest, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, width); break;
            default: tile(1, rest, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, width); break;
            }
        }
    }
}

// AVX-512: the same panels and the same sums, six rows by two panels at a time, a 16-lane register per row and
// panel. Each element's chain is the AVX2 tile's (one fused multiply-add per depth, in order, then alpha, beta and
// the bias as store_sums applies them), so the bits do not depend on which tiles ran. (Twelve rows by one panel
// read A in twelve streams: 0.8x the AVX2 tiles on Zen 4 for depths of 1024 and more.)

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/// C[0 ..< width] of one row from the sums s (width ≤ 16; lanes past it neither read nor written), as store_sums
/// forms them: alpha·s (+ beta·C) (+ bias).
static INLINE AVX512 void wide_store(float *y, __m512 s, float alpha, float beta, const float *bias, ptrdiff_t width) {
    __mmask16 mask = (__mmask16)((1u << width) - 1);
    __m512 v = _mm512_mul_ps(_mm512_set1_ps(alpha), s);
    if (beta != 0) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, y), v);
    if (bias) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias), v);
    _mm512_mask_storeu_ps(y, mask, v);
}

/// `tile` with 16-lane registers over `panels` (1 or 2) panels: `rows` (≤ 6) rows, both constants after inlining;
/// the first panel is 16 columns wide when there are two, the last `width` wide (≤ 16).
static INLINE AVX512 void wide_tile(const int rows, const int panels, const float *a, ptrdiff_t rowStride,
                                   ptrdiff_t depthStride, ptrdiff_t k, const float *panel, int carry, float alpha,
                                   float beta, const float *bias, float *c, ptrdiff_t ldc, ptrdiff_t width) {
    __m512 sums[ROWS][2];
    ptrdiff_t widths[2] = {panels == 2 ? PANEL : width, width};
    for (int r = 0; r < rows; r++)
        for (int x = 0; x < panels; x++)
            sums[r][x] = carry ? _mm512_maskz_loadu_ps((__mmask16)((1u << widths[x]) - 1), c + r * ldc + x * PANEL)
                               : _mm512_setzero_ps();
    const float *second = panel + PANEL * k;  // the next panel's row 0
    for (ptrdiff_t q = 0; q < k; q++) {
        __m512 b0 = _mm512_loadu_ps(panel + q * PANEL), b1 = panels == 2 ? _mm512_loadu_ps(second + q * PANEL) : b0;
        const float *column = a + q * depthStride;
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(column[r * rowStride]);
            sums[r][0] = _mm512_fmadd_ps(x, b0, sums[r][0]);
            if (panels == 2) sums[r][1] = _mm512_fmadd_ps(x, b1, sums[r][1]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int x = 0; x < panels; x++)
            wide_store(c + r * ldc + x * PANEL, sums[r][x], alpha, beta, bias ? bias + x * PANEL : NULL, widths[x]);
}

/// Block products this thread ran with the wide tiles (a test's proof that they ran).
static _Thread_local long wide_blocks;

/// `block_product` with `wide_tile`s: two panels at a time (the last alone when their count is odd).
static AVX512 void wide_block_product(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t rowStride,
                                      ptrdiff_t depthStride, const float *packed, float *packedA, int carry,
                                      float alpha, float beta, const float *bias, float *c, ptrdiff_t ldc) {
    wide_blocks++;
    ptrdiff_t panels = n / PANEL + (n % PANEL != 0);
    for (ptrdiff_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        ptrdiff_t i1 = m - i0 < ROW_BLOCK ? m : i0 + ROW_BLOCK;
        const float *origin = a + i0 * rowStride;
        ptrdiff_t step = rowStride, inRow = rowStride, inDepth = depthStride;
        if (packs_a(rowStride, depthStride)) {
            pack_transposed_rows(a, depthStride, i0, i1, k, packedA);
            origin = packedA, step = k, inRow = 1, inDepth = ROWS;
        }
        for (ptrdiff_t j = 0; j < panels; j += 2) {
            int pair = j + 1 < panels;
            ptrdiff_t width = n - (j + pair) * PANEL < PANEL ? n - (j + pair) * PANEL : PANEL;
            const float *panel = packed + j * PANEL * k, *panelBias = bias ? bias + j * PANEL : NULL;
            for (ptrdiff_t i = i0; i < i1; i += ROWS) {
                const float *rows = origin + (i - i0) * step;
                float *out = c + i * ldc + j * PANEL;
#define WIDE(r) (pair ? wide_tile(r, 2, rows, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, \
                                width)                                                                        \
                      : wide_tile(r, 1, rows, inRow, inDepth, k, panel, carry, alpha, beta, panelBias, out, ldc, \
                                width))
                switch (i1 - i < ROWS ? i1 - i : ROWS) {
                case 6: WIDE(6); break;
                case 5: WIDE(5); break;
                case 4: WIDE(4); break;
                case 3: WIDE(3); break;
                case 2: WIDE(2); break;
                default: WIDE(1); break;
                }
#undef WIDE
            }
        }
    }
}

/// Whether ck_small_product runs its AVX-512 tiles: -1 until decided, then 0 or 1.
static _Atomic int wide_tiles = -1;

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

int ck_small_product_wide_tiles(int wanted) {
    int wide = wanted && has_avx512();
    wide_tiles = wide;
    return wide;
}

/// The choice made, or (no choice yet) the default: a product never overrides an explicit choice.
static int uses_wide_tiles(void) {
    int wide = wide_tiles;
    if (wide >= 0) return wide;
    int undecided = -1;
    atomic_compare_exchange_strong(&wide_tiles, &undecided, has_avx512());
    return wide_tiles;
}

long ck_small_product_wide_blocks(void) { return wide_blocks; }

/// The columns of op(B) packed at a time: whole panels, at most COLUMN_BLOCK. With 1024 (a shallower depth
/// block beside them), C went through memory once per 64 depths: a 256 × 1024 weight gradient ran at 0.91×
/// OpenBLAS's SkylakeX kernels on Zen 4 against 0.97× with 256, a 768-wide projection 0.66× against 0.9×;
/// the narrower products were level.
static ptrdiff_t column_block(ptrdiff_t n) {
    ptrdiff_t padded = (n + PANEL - 1) / PANEL * PANEL;
    return padded < COLUMN_BLOCK ? padded : COLUMN_BLOCK;
}

/// The depth packed at a time: what fits beside column_block(n) columns, and at most PACKED_A_DEPTH for a
/// transposed A (whose rows are packed too).
static ptrdiff_t depth_block(ptrdiff_t n, ptrdiff_t rowStride, ptrdiff_t depthStride) {
    ptrdiff_t depth = CK_SMALL_PRODUCT_PACKED / column_block(n);
    return packs_a(rowStride, depthStride) && depth > PACKED_A_DEPTH ? PACKED_A_DEPTH : depth;
}

/// The product in blocks of op(B) that fit the packing buffer: column blocks of at most COLUMN_BLOCK
/// columns, each in depth blocks of the rows that fit beside them. A depth block after the first
/// carries on from the sums the one before left in C; only the last applies alpha, beta and the bias. With
/// several depth blocks beta must be 0 (C holds the running sums, not its old values).
static AVX2 void blocked_product(int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,
                                 ptrdiff_t rowStride, ptrdiff_t depthStride, const float *b, ptrdiff_t ldb, float beta,
                                 const float *bias, float *c, ptrdiff_t ldc, float *packed) {
    ptrdiff_t columns = column_block(n), depth = depth_block(n, rowStride, depthStride);
    int wide = uses_wide_tiles();
    for (ptrdiff_t j0 = 0; j0 < n; j0 += columns) {
        ptrdiff_t width = n - j0 < columns ? n - j0 : columns;
        for (ptrdiff_t p0 = 0; p0 < k; p0 += depth) {
            ptrdiff_t rows = k - p0 < depth ? k - p0 : depth;
            int last = p0 + rows == k;
            pack(transB, width, rows, transB ? b + j0 * ldb + p0 : b + p0 * ldb + j0, ldb, packed);
            (wide ? wide_block_product : block_product)(
                m, width, rows, a + p0 * depthStride, rowStride, depthStride, packed, packed + CK_SMALL_PRODUCT_PACKED,
                p0 > 0, last ? alpha : 1, last ? beta : 0, last && bias ? bias + j0 : NULL, c + j0, ldc);
        }
    }
}

/// x[0], x[stride], …, x[7·stride].
static INLINE AVX2 __m256 load_strided(const float *x, ptrdiff_t stride) {
    if (stride == 1) return _mm256_loadu_ps(x);
    return _mm256_setr_ps(x[0], x[stride], x[2 * stride], x[3 * stride], x[4 * stride], x[5 * stride], x[6 * stride],
                          x[7 * stride]);
}

/// The even and odd chains of x·B over 8·vectors columns from b (row p at b + p·ldb), up to the last whole pair of
/// depths; returns the depth reached. `full` (a constant after inlining): every lane is a column, read unmasked.
static INLINE AVX2 ptrdiff_t pair_chains(const int full, ptrdiff_t k, const float *x, ptrdiff_t xStride, const float *b,
                                         ptrdiff_t ldb, ptrdiff_t vectors, const __m256i masks[4], __m256 even[4],
                                         __m256 odd[4]) {
    ptrdiff_t p = 0;
    for (; p + 2 <= k; p += 2) {
        __m256 xe = _mm256_set1_ps(x[p * xStride]), xo = _mm256_set1_ps(x[(p + 1) * xStride]);
        const float *re = b + p * ldb, *ro = re + ldb;
        for (ptrdiff_t v = 0; v < vectors; v++) {
            even[v] = _mm256_fmadd_ps(xe, full ? _mm256_loadu_ps(re + 8 * v) : _mm256_maskload_ps(re + 8 * v, masks[v]),
                                      even[v]);
            odd[v] = _mm256_fmadd_ps(xo, full ? _mm256_loadu_ps(ro + 8 * v) : _mm256_maskload_ps(ro + 8 * v, masks[v]),
                                     odd[v]);
        }
    }
    return p;
}

/// One row (m = 1): y = alpha·x·op(B) (+ beta·y) (+ bias), op(B) read in place, nothing packed; x[p] at
/// x + p·xStride. Each element's sum has an order of its own (below), fixed, but not the blocked product's.
static AVX2 void single_row(int transB, ptrdiff_t n, ptrdiff_t k, float alpha, const float *x, ptrdiff_t xStride,
                            const float *b, ptrdiff_t ldb, float beta, const float *bias, float *y) {
    if (!transB) {
        // x·B: 32 columns at a time; each element two chains of fused multiply-adds, over the even and the odd
        // p, each in order, then even + odd (one chain, 8192 long on a KV cache's values, waited on each
        // multiply-add's latency: 0.71× OpenBLAS's sgemv).
        for (ptrdiff_t j0 = 0; j0 < n; j0 += 32) {
            ptrdiff_t width = n - j0 < 32 ? n - j0 : 32, vectors = (width + 7) / 8;
            __m256 even[4], odd[4];
            __m256i masks[4];
            for (int v = 0; v < 4; v++)
                even[v] = _mm256_setzero_ps(), odd[v] = _mm256_setzero_ps(), masks[v] = lanes_below(width - 8 * v);
            ptrdiff_t p = width == 32 ? pair_chains(1, k, x, xStride, b + j0, ldb, 4, masks, even, odd)
                                      : pair_chains(0, k, x, xStride, b + j0, ldb, vectors, masks, even, odd);
            if (p < k) {  // an odd depth: its last term ends the even chain
                __m256 xe = _mm256_set1_ps(x[p * xStride]);
                for (ptrdiff_t v = 0; v < vectors; v++)
                    even[v] = _mm256_fmadd_ps(xe, _mm256_maskload_ps(b + p * ldb + j0 + 8 * v, masks[v]), even[v]);
            }
            for (ptrdiff_t v = 0; v < vectors; v++)
                store_sums(y + j0 + 8 * v, _mm256_add_ps(even[v], odd[v]), alpha, beta, bias ? bias + j0 + 8 * v : NULL,
                           width - 8 * v);
        }
        return;
    }
    // op(B) = Bᵀ: each y_j is a dot product of x with row j of B, read in order: eight lanes along p (lane l
    // sums p ≡ l mod 8 in order), added in order l0 + l1 + … + l7, then the last k mod 8 terms in order. Eight
    // rows at a time (eight chains in flight), whose lanes are added by transposing them. (Transposing B to keep
    // one chain per element ran at a quarter of OpenBLAS's sgemv on 128 × 512.)
    ptrdiff_t j = 0, vectorDepth = k - k % 8;
    for (; j + 8 <= n; j += 8) {
        __m256 acc[8], t[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
        for (ptrdiff_t p = 0; p < vectorDepth; p += 8) {
            __m256 xv = load_strided(x + p * xStride, xStride);
            for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(b + (j + r) * ldb + p), xv, acc[r]);
        }
        transpose8_vectors(acc, t);  // t[l] lane r: row r's lane l
        __m256 sums = t[0];
        for (int l = 1; l < 8; l++) sums = _mm256_add_ps(sums, t[l]);
        for (ptrdiff_t q = vectorDepth; q < k; q++) {
            const float *column = b + j * ldb + q;
            __m256 v = _mm256_setr_ps(column[0], column[ldb], column[2 * ldb], column[3 * ldb], column[4 * ldb],
                                      column[5 * ldb], column[6 * ldb], column[7 * ldb]);
            sums = _mm256_fmadd_ps(_mm256_set1_ps(x[q * xStride]), v, sums);
        }
        store_sums(y + j, sums, alpha, beta, bias ? bias + j : NULL, 8);
    }
    for (; j < n; j++) {  // the last rows, one at a time, in the same order
        __m256 acc = _mm256_setzero_ps();
        for (ptrdiff_t p = 0; p < vectorDepth; p += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(b + j * ldb + p), load_strided(x + p * xStride, xStride), acc);
        float lanes[8], sum;
        _mm256_storeu_ps(lanes, acc);
        sum = lanes[0];
        for (int l = 1; l < 8; l++) sum += lanes[l];
        for (ptrdiff_t q = vectorDepth; q < k; q++) sum = fmaf(x[q * xStride], b[j * ldb + q], sum);
        y[j] = finish(sum, alpha, beta, beta != 0 ? y[j] : 0, bias ? bias + j : NULL);
    }
}

AVX2 int ck_small_product(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                          const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                          const float *bias, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return 1;
    if (m == 1) {
        single_row(transB, n, k, alpha, a, transA ? lda : 1, b, ldb, beta, bias, c);
        return 0;
    }
    float *packed = packing_buffer();
    if (!packed) return 1;
    // A[i, p] sits at a + i·rowStride + p·depthStride.
    ptrdiff_t rowStride = transA ? 1 : lda, depthStride = transA ? lda : 1;
    if (beta == 0 || k <= depth_block(n, rowStride, depthStride)) {
        blocked_product(transB, m, n, k, alpha, a, rowStride, depthStride, b, ldb, beta, bias, c, ldc, packed);
        return 0;
    }
    // Several depth blocks and a C to keep: the sums go to a buffer first, then C = alpha·sum + beta·C
    // (+ bias), as store_row forms it.
    float *sums = malloc(sizeof(float) * (size_t)m * (size_t)n);
    if (!sums) return 1;
    blocked_product(transB, m, n, k, 1, a, rowStride, depthStride, b, ldb, 0, NULL, sums, n, packed);
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++)
            c[i * ldc + j] = finish(sums[i * n + j], alpha, beta, c[i * ldc + j], bias ? bias + j : NULL);
    free(sums);
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

int ck_small_product_wide_tiles(int wanted) { (void)wanted; return 0; }

long ck_small_product_wide_blocks(void) { return 0; }
#endif
