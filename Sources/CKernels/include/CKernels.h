// Kernels compiled for AVX2 with FMA: the few element-wise loops where Swift's SIMD types, built
// for the x86-64 baseline (SSE2) without unsafe flags, leave half the vector width and every fused
// multiply-add unused, and the matrix products of the lab's models (the same bits whatever OpenBLAS's
// kernels and the core count). Each function carries its instruction set as a target attribute, so the
// package needs no compiler flags; call one only when ck_has_avx2_fma() says the CPU runs it. Each has a
// naive twin in Swift (Foundation's expf, the scalar activations, Kernels.naiveSgemm), compared in the tests.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

/// 1 when this CPU (and its operating system) runs AVX2 and FMA instructions, else 0.
int ck_has_avx2_fma(void);

/// x[i] ← e^(x[i] − shift) for i < count; returns the sum of the results. Below −87.3 (including
/// −∞, the causal mask) the result is exactly 0.
float ck_exponentiate(float *x, ptrdiff_t count, float shift);

/// The largest of x[0..<count], −∞ when count is 0.
float ck_maximum(const float *x, ptrdiff_t count);

/// y = GELU(x) with the tanh approximation, written as x·σ(2u), u = √(2/π)(x + 0.044715x³).
void ck_gelu_tanh_forward(const float *x, float *y, ptrdiff_t count);

/// dx += dy · GELU′(x), the tanh approximation's derivative; dx = … when accumulate is 0 (dx not read).
void ck_gelu_tanh_backward(const float *dy, const float *x, float *dx, ptrdiff_t count, int accumulate);

/// y = x·σ(x).
void ck_silu_forward(const float *x, float *y, ptrdiff_t count);

/// dx += dy · σ(x)(1 + x(1 − σ(x))); dx = … when accumulate is 0 (dx not read).
void ck_silu_backward(const float *dy, const float *x, float *dx, ptrdiff_t count, int accumulate);

/// ck_small_product's column panels: op(B) is packed CK_SMALL_PRODUCT_PANEL columns at a time.
#define CK_SMALL_PRODUCT_PANEL 16

/// The floats of op(B) that ck_small_product packs at a time (a block of at most 256 columns by the depth that fits
/// beside them): 256 KiB per thread, beside 384 KiB for rows of a transposed A.
#define CK_SMALL_PRODUCT_PACKED 65536

/// C = alpha·op(A)·op(B) + beta·C (+ bias in every row when bias is not NULL), row-major
/// (small_products.c): op(A) m × k, op(B) k × n, C m × n with row strides lda, ldb, ldc as stored,
/// bias n floats; C is not read when beta is 0. Each element is one in-order sum over k with fused
/// multiply-adds, then alpha·sum (+ beta·C) (+ bias), whatever the blocking; with one row (m = 1), a sum in a
/// fixed order of its own (small_products.c, single_row). Returns 0, or 1 without
/// touching C when it cannot run the product (an empty dimension, no buffer, not x86-64): the caller
/// then uses BLAS.
int ck_small_product(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                     const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta,
                     const float *bias, float *c, ptrdiff_t ldc);

/// Whether ck_small_product runs its AVX-512 tiles (six rows by 32 columns, two 16-lane registers per row) or its
/// AVX2 ones (six rows by 16 columns, two 8-lane registers per row): the same sums in the same order, so the same
/// bits. By default the AVX-512 ones where the CPU has AVX-512F; `wanted` 0 asks for the AVX2 ones. Call it before
/// products run (each product reads the choice; one in flight may still use the old one). Returns 1 when the
/// AVX-512 tiles will run.
int ck_small_product_wide_tiles(int wanted);

/// The block products the calling thread has run with the AVX-512 tiles (tests: that they ran at all).
long ck_small_product_wide_blocks(void);

/// The CPUs the calling thread may run on (its affinity mask, the process's unless a thread changed its
/// own: taskset, a container's cpuset), or 0 where that is not known.
int ck_cpus_allowed(void);

/// One iteration of a parallel region: function(context, iteration).
typedef void (*ck_iteration_function)(void *context, ptrdiff_t iteration);

/// How long a worker of ck_parallel_run's pool polls for the next region before it sleeps.
#define CK_POOL_SPIN_MICROSECONDS 200

/// Calls function(context, i) for each i < iterations, on the calling thread and the workers of a pool
/// (worker_pool.c) that the first call with `workers` ≥ 1 starts with that many threads (at most 63; later
/// calls use the pool as it is), and returns when all have finished. Which thread runs which iteration is
/// not fixed: each must write only memory no other iteration touches. Runs them in order on the calling
/// thread when `workers` < 1, the pool is running another region (a nested or concurrent call), the thread
/// is marked sharing beside another, there are more than 65,535 iterations, or no worker could be started.
void ck_parallel_run(ptrdiff_t iterations, int workers, ck_iteration_function function, void *context);

/// Marks the calling thread as one of several sharing the cores (1) or not (0): while another thread is
/// marked so too, its regions run on it alone, in order; alone, on the pool.
void ck_parallel_set_sharing(int on);

#endif
