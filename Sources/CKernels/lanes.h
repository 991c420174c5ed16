// A lane mask shared by the AVX2 kernels (kernels.c, small_products.c): a private header of CKernels.
#ifndef CKERNELS_LANES_H
#define CKERNELS_LANES_H

#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>

/// Lanes 0 ..< count set, for masked loads and stores (count may be ≤ 0 or ≥ 8).
static inline __attribute__((always_inline, target("avx2,fma"))) __m256i lanes_below(ptrdiff_t count) {
    int c = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif
