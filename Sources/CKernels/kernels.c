#include "CKernels.h"
#include "lanes.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

int ck_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/// e^x for eight lanes: the same Cephes expf as Swift's `Kernels.exponential` (range reduction
/// x = n·ln2 + r with ln2 split in two, a degree-5 polynomial for e^r, 2^n built in the exponent
/// bits), with fused multiply-adds. Below −87.34 the result is exactly 0.
static inline AVX2 __m256 exp8(__m256 x) {
    const __m256 high = _mm256_set1_ps(88.37626f), low = _mm256_set1_ps(-87.33655f);
    __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
    // max/min return their second operand when either is NaN: NaN stays NaN (a diverged score must
    // not become a number), −∞ becomes low (then 0 below).
    __m256 v = _mm256_min_ps(high, _mm256_max_ps(low, x));
    const __m256 magic = _mm256_set1_ps(12582912.0f);     // 1.5·2²³: rounds to nearest
    __m256 shifted = _mm256_fmadd_ps(v, _mm256_set1_ps(1.44269504f), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    v = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
    v = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), v);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, v), v, _mm256_add_ps(v, _mm256_set1_ps(1.0f)));
    __m256i integer = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(integer, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, scale));
}

/// The first `count` (< 8) lanes loaded, the others `fill`; memory past them is not touched. A masked load
/// rather than a copy through a stack array: a short row (a causal softmax's) stalled on the store
/// forwarding from eight scalar writes to one vector read.
static inline AVX2 __m256 load_partial(const float *x, ptrdiff_t count, float fill) {
    __m256i mask = lanes_below(count);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(x, mask), _mm256_castsi256_ps(mask));
}

static inline AVX2 void store_partial(float *x, __m256 v, ptrdiff_t count) {
    _mm256_maskstore_ps(x, lanes_below(count), v);
}

static inline AVX2 float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 float ck_exponentiate(float *x, ptrdiff_t count, float shift) {
    __m256 sums = _mm256_setzero_ps(), s = _mm256_set1_ps(shift);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        sums = _mm256_add_ps(sums, e);
    }
    float sum = sum8(sums);
    if (i < count) {
        // The lanes past count are −∞ after the shift is subtracted (so e^ gives 0 even for shift −∞).
        __m256i mask = lanes_below(count - i);
        __m256 shifted = _mm256_sub_ps(_mm256_maskload_ps(x + i, mask), s);
        __m256 e = exp8(_mm256_blendv_ps(_mm256_set1_ps(-INFINITY), shifted, _mm256_castsi256_ps(mask)));
        store_partial(x + i, e, count - i);
        sum += sum8(e);
    }
    return sum;
}

AVX2 float ck_maximum(const float *x, ptrdiff_t count) {
    __m256 best = _mm256_set1_ps(-INFINITY);
    ptrdiff_t i = 0;
    // A NaN lane is passed over (max returns its second operand when either is NaN), as the Swift twin does.
    for (; i + 8 <= count; i += 8) best = _mm256_max_ps(_mm256_loadu_ps(x + i), best);
    float lanes[8], result = -INFINITY;
    _mm256_storeu_ps(lanes, best);
    for (int j = 0; j < 8; j++) result = lanes[j] > result ? lanes[j] : result;
    for (; i < count; i++) result = x[i] > result ? x[i] : result;
    return result;
}

/// σ(2u) for GELU's tanh form, with u = √(2/π)(x + 0.044715x³): E/(E + 1), E = e^{2u}.
static inline AVX2 __m256 gelu_sigma(__m256 x) {
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 u = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.79788456f), x),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x2, _mm256_set1_ps(1.0f)));
    __m256 e = exp8(_mm256_add_ps(u, u));
    return _mm256_div_ps(e, _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
}

static inline AVX2 __m256 gelu_value(__m256 x) { return _mm256_mul_ps(x, gelu_sigma(x)); }

static inline AVX2 __m256 gelu_derivative(__m256 x) {
    __m256 s = gelu_sigma(x), one = _mm256_set1_ps(1.0f);
    __m256 slope = _mm256_mul_ps(_mm256_set1_ps(0.79788456f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.134145f), _mm256_mul_ps(x, x), one));
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(x, x), s), _mm256_sub_ps(one, s));
    return _mm256_fmadd_ps(t, slope, s);
}

static inline AVX2 __m256 silu_sigma(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

static inline AVX2 __m256 silu_value(__m256 x) { return _mm256_mul_ps(x, silu_sigma(x)); }

static inline AVX2 __m256 silu_derivative(__m256 x) {
    __m256 s = silu_sigma(x), one = _mm256_set1_ps(1.0f);
    return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
}

#define FORWARD(name, value)                                                        \
    AVX2 void name(const float *x, float *y, ptrdiff_t count) {                     \
        ptrdiff_t i = 0;                                                            \
        for (; i + 8 <= count; i += 8) _mm256_storeu_ps(y + i, value(_mm256_loadu_ps(x + i))); \
        if (i < count) store_partial(y + i, value(load_partial(x + i, count - i, 0)), count - i); \
    }

/* dx += dy·f'(x), or dx = dy·f'(x) when accumulate is 0 (dx is then not read). */
#define BACKWARD(name, derivative)                                                  \
    AVX2 void name(const float *dy, const float *x, float *dx, ptrdiff_t count, int accumulate) { \
        ptrdiff_t i = 0;                                                            \
        for (; i + 8 <= count; i += 8) {                                            \
            __m256 d = derivative(_mm256_loadu_ps(x + i));                          \
            __m256 old = accumulate ? _mm256_loadu_ps(dx + i) : _mm256_setzero_ps(); \
            _mm256_storeu_ps(dx + i, _mm256_fmadd_ps(_mm256_loadu_ps(dy + i), d, old)); \
        }                                                                           \
        if (i < count) {                                                            \
            ptrdiff_t n = count - i;                                                \
            __m256 d = derivative(load_partial(x + i, n, 0));                       \
            __m256 old = accumulate ? load_partial(dx + i, n, 0) : _mm256_setzero_ps(); \
            __m256 r = _mm256_fmadd_ps(load_partial(dy + i, n, 0), d, old);         \
            store_partial(dx + i, r, n);                                            \
        }                                                                           \
    }

FORWARD(ck_gelu_tanh_forward, gelu_value)
BACKWARD(ck_gelu_tanh_backward, gelu_derivative)
FORWARD(ck_silu_forward, silu_value)
BACKWARD(ck_silu_backward, silu_derivative)

#else
// Not x86-64: ck_has_avx2_fma() is 0 and Swift runs its portable kernels; these scalar loops keep
// the functions defined (and correct) for a direct caller.
int ck_has_avx2_fma(void) { return 0; }

float ck_exponentiate(float *x, ptrdiff_t count, float shift) {
    float sum = 0;
    for (ptrdiff_t i = 0; i < count; i++) { x[i] = expf(x[i] - shift); sum += x[i]; }
    return sum;
}

float ck_maximum(const float *x, ptrdiff_t count) {
    float best = -INFINITY;
    for (ptrdiff_t i = 0; i < count; i++) best = x[i] > best ? x[i] : best;
    return best;
}

static float gelu_sigma(float x) {
    float u = 0.79788456f * x * (1 + 0.044715f * x * x), e = expf(2 * u);
    return isinf(e) ? 1 : e / (e + 1);
}

void ck_gelu_tanh_forward(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] * gelu_sigma(x[i]);
}

void ck_gelu_tanh_backward(const float *dy, const float *x, float *dx, ptrdiff_t count, int accumulate) {
    for (ptrdiff_t i = 0; i < count; i++) {
        float s = gelu_sigma(x[i]), slope = 0.79788456f * (1 + 0.134145f * x[i] * x[i]);
        dx[i] = (accumulate ? dx[i] : 0) + dy[i] * (s + 2 * x[i] * s * (1 - s) * slope);
    }
}

void ck_silu_forward(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] / (1 + expf(-x[i]));
}

void ck_silu_backward(const float *dy, const float *x, float *dx, ptrdiff_t count, int accumulate) {
    for (ptrdiff_t i = 0; i < count; i++) {
        float s = 1 / (1 + expf(-x[i]));
        dx[i] = (accumulate ? dx[i] : 0) + dy[i] * s * (1 + x[i] * (1 - s));
    }
}
#endif
