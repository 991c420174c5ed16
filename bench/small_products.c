// The engine's small-product kernel (Sources/CKernels/small_products.c) against OpenBLAS's sgemm on
// the products of PositionLab's models, one after the other in one run, single-threaded, best of
// several repeats; prints GFLOP/s of each, their ratio, and the largest difference between them.
//
//   cc -O2 -I Sources/CKernels/include bench/small_products.c -o /tmp/sp -l:libopenblas.so.0 -lpthread -lm
//   /tmp/sp             (TILES=avx2 /tmp/sp: the kernel's AVX2 tiles on a CPU with AVX-512)
//
// (OPENBLAS_CORETYPE chooses OpenBLAS's kernels, as for poslab: on this CPU, set it to the core
// `poslab bench sgemm` reports, or OpenBLAS 0.3.21 may fall back to SSE3 on a CPU newer than itself.)
// The engine sends the kernel every product where the CPU has AVX2 and FMA (Sources/TensorCore/Kernels/
// MatrixProduct.swift), for the same bits on every such CPU: these rows show what that costs or gains.
#include "../Sources/CKernels/kernels.c"
#include "../Sources/CKernels/small_products.c"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

// cblas.h would need libopenblas-dev; the runtime library is enough with these declarations.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int threads);
char *openblas_get_corename(void);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void compare(const char *name, int transA, int transB, int m, int n, int k, int batch, int repeats) {
    size_t as = (size_t)m * k, bs = (size_t)k * n, cs = (size_t)m * n;
    float *a = malloc(sizeof(float) * as * batch), *b = malloc(sizeof(float) * bs * batch);
    float *c = malloc(sizeof(float) * cs * batch), *d = malloc(sizeof(float) * cs * batch);
    for (size_t i = 0; i < as * batch; i++) a[i] = sinf(i * 0.37f);
    for (size_t i = 0; i < bs * batch; i++) b[i] = cosf(i * 0.11f);
    int lda = transA ? m : k, ldb = transB ? k : n;
    double blas = 1e9, ours = 1e9;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        for (int i = 0; i < batch; i++)
            cblas_sgemm(101, transA ? 112 : 111, transB ? 112 : 111, m, n, k, 1, a + i * as, lda, b + i * bs, ldb, 0,
                        c + i * cs, n);
        double t1 = now();
        for (int i = 0; i < batch; i++)
            if (ck_small_product(transA, transB, m, n, k, 1, a + i * as, lda, b + i * bs, ldb, 0, NULL, d + i * cs,
                                 n) != 0) {
                printf("%s: refused (beyond CK_SMALL_PRODUCT_PACKED)\n", name);
                return;
            }
        double t2 = now();
        if (t1 - t0 < blas) blas = t1 - t0;
        if (t2 - t1 < ours) ours = t2 - t1;
    }
    double worst = 0;
    for (size_t i = 0; i < cs * batch; i++) worst = fmax(worst, fabs(c[i] - d[i]));
    double flops = 2.0 * m * n * k * batch;
    printf("%-26s %c%c %5d x %5d x %5d  x%4d   %6.1f   %6.1f   %5.2f   %.1e\n", name, transA ? 'T' : 'N',
           transB ? 'T' : 'N', m, n, k, batch, flops / blas / 1e9, flops / ours / 1e9, blas / ours, worst);
    free(a); free(b); free(c); free(d);
}

void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda, const float *x, int incx,
                 float beta, float *y, int incy);

/// One row (decoding a token): the kernel's in-place path against OpenBLAS's sgemv. transB: y = W·x (W n × k, a
/// linear layer or the cache's keys); else y = x·B (B k × n, the cache's values).
static void compare_row(const char *name, int transB, int n, int k, int repeats) {
    float *w = malloc(sizeof(float) * (size_t)n * k), *x = malloc(sizeof(float) * k);
    float *y = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * n);
    for (size_t i = 0; i < (size_t)n * k; i++) w[i] = sinf(i * 0.37f);
    for (int i = 0; i < k; i++) x[i] = cosf(i * 0.11f);
    double blas = 1e9, ours = 1e9;
    for (int r = 0; r < 20; r++) {
        double t0 = now();
        for (int i = 0; i < repeats; i++)
            if (transB) cblas_sgemv(101, 111, n, k, 1, w, k, x, 1, 0, z, 1);
            else cblas_sgemv(101, 112, k, n, 1, w, n, x, 1, 0, z, 1);
        double t1 = now();
        for (int i = 0; i < repeats; i++) ck_small_product(0, transB, 1, n, k, 1, x, k, w, transB ? k : n, 0, NULL, y, n);
        double t2 = now();
        if (t1 - t0 < blas) blas = t1 - t0;
        if (t2 - t1 < ours) ours = t2 - t1;
    }
    double worst = 0, flops = 2.0 * n * k * repeats;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - z[i]));
    printf("%-26s %s  1 x %5d x %5d  (sgemv)  %6.1f   %6.1f   %5.2f   %.1e\n", name, transB ? "NT" : "NN", n, k,
           flops / blas / 1e9, flops / ours / 1e9, blas / ours, worst);
    free(w); free(x); free(y); free(z);
}

int main(void) {
    openblas_set_num_threads(1);
    char model[256] = "?";
    FILE *info = fopen("/proc/cpuinfo", "r");
    if (info) {
        char line[512];
        while (fgets(line, sizeof line, info))
            if (strncmp(line, "model name", 10) == 0) {
                snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
                break;
            }
        fclose(info);
    }
    model[strcspn(model, "\n")] = 0;
    // TILES=avx2 runs the kernel's AVX2 tiles on a CPU with AVX-512 (the same sums: compare their speed).
    const char *tiles = getenv("TILES");
    int wide = ck_small_product_wide_tiles(!(tiles && strcmp(tiles, "avx2") == 0));
    printf("CPU %s; OpenBLAS core %s; AVX2+FMA %s; kernel tiles %s; one thread\n", model, openblas_get_corename(),
           ck_has_avx2_fma() ? "yes" : "no (the kernel cannot run here)", wide ? "AVX-512" : "AVX2");
    if (!ck_has_avx2_fma()) return 0;
    printf("%-26s op  m       n       k      batch   OpenBLAS  kernel  ratio   max |diff|  (GFLOP/s)\n", "product");
    // Quickstart (C = 64, 4 heads, T = 24, B = 32) and the bench's small model (T = 64, B = 64).
    compare("quickstart attention QKt", 0, 1, 24, 24, 16, 128, 50);
    compare("quickstart attention PV", 0, 0, 24, 16, 24, 128, 50);
    compare("quickstart attention dV", 1, 0, 24, 16, 24, 128, 50);
    compare("quickstart projection", 0, 1, 768, 64, 64, 1, 200);
    compare("quickstart projection dX", 0, 0, 768, 64, 64, 1, 200);
    compare("quickstart MLP up", 0, 1, 768, 256, 64, 1, 200);
    compare("quickstart MLP down", 0, 1, 768, 64, 256, 1, 200);
    compare("small attention QKt", 0, 1, 64, 64, 16, 256, 20);
    compare("small attention PV", 0, 0, 64, 16, 64, 256, 20);
    compare("small projection", 0, 1, 4096, 64, 64, 1, 50);
    compare("small MLP up", 0, 1, 4096, 256, 64, 1, 50);
    compare("small MLP down", 0, 1, 4096, 64, 256, 1, 50);
    // The reference (C = 128, T = 128, B = 32) and large (C = 256, T = 256) models.
    compare("reference attention QKt", 0, 1, 128, 128, 32, 128, 20);
    compare("reference projection", 0, 1, 4096, 128, 128, 1, 20);
    compare("reference MLP up", 0, 1, 4096, 512, 128, 1, 20);
    compare("large projection", 0, 1, 8192, 256, 256, 1, 5);
    compare("large projection dX", 0, 0, 8192, 256, 256, 1, 5);
    // Decoding one token: a single row (the reference model's projection and MLP up).
    compare("decode projection", 0, 1, 1, 128, 128, 1, 2000);
    compare("decode MLP up", 0, 1, 1, 512, 128, 1, 2000);
    // Weight gradients dW (N × K) = dYᵀ · X, their depth the batch's rows: the quickstart (768 rows), the
    // small and reference models (4096) and the large one (8192); then products wider or deeper than 256.
    compare("quickstart dW QKV", 1, 0, 192, 64, 768, 1, 100);
    compare("quickstart dW MLP up", 1, 0, 256, 64, 768, 1, 100);
    compare("quickstart dW MLP down", 1, 0, 64, 256, 768, 1, 100);
    compare("small dW projection", 1, 0, 64, 64, 4096, 1, 50);
    compare("small dW MLP down", 1, 0, 64, 256, 4096, 1, 50);
    compare("reference dW projection", 1, 0, 128, 128, 4096, 1, 20);
    compare("reference dW MLP up", 1, 0, 512, 128, 4096, 1, 20);
    compare("reference dW MLP down", 1, 0, 128, 512, 4096, 1, 20);
    compare("large dW projection", 1, 0, 256, 256, 8192, 1, 5);
    compare("large dW MLP up", 1, 0, 1024, 256, 8192, 1, 5);
    compare("large MLP down", 0, 1, 8192, 256, 1024, 1, 5);
    compare("large MLP dX", 0, 0, 8192, 256, 1024, 1, 5);
    compare("large MLP down dW", 1, 0, 256, 1024, 8192, 1, 5);
    // Decoding, one row against sgemv: the reference model's linear layers, the KV cache at 2048 and 8192 tokens.
    compare_row("decode row: projection", 1, 128, 128, 2000);
    compare_row("decode row: MLP up", 1, 512, 128, 2000);
    compare_row("decode row: MLP down", 1, 128, 512, 2000);
    compare_row("decode row: C = 768", 1, 768, 768, 200);
    compare_row("decode row: scores, 2048", 1, 2048, 32, 500);
    compare_row("decode row: scores, 8192", 1, 8192, 32, 100);
    compare_row("decode row: values, 2048", 0, 32, 2048, 500);
    compare_row("decode row: values, 8192", 0, 32, 8192, 100);
    // An imported model's prefill (C = 768, 2048 tokens) and a text model's head (a 4096-token vocabulary).
    compare("C = 768 projection", 0, 1, 2048, 768, 768, 1, 3);
    compare("C = 768 MLP up", 0, 1, 2048, 3072, 768, 1, 3);
    compare("C = 768 MLP down", 0, 1, 2048, 768, 3072, 1, 3);
    // SmolLM-135M's shape (C = 576): its MLP's down-projection and 49,152-token head (256 of the rows).
    compare("SmolLM MLP down", 0, 1, 2048, 576, 1536, 1, 3);
    compare("SmolLM head", 0, 1, 256, 49152, 576, 1, 3);
    compare("head, vocabulary 4096", 0, 1, 2048, 4096, 128, 1, 3);
    compare("head dX, vocabulary 4096", 0, 0, 2048, 128, 4096, 1, 3);
    compare("head dW, vocabulary 4096", 1, 0, 4096, 128, 2048, 1, 3);
    compare("prefill scores, 8192 keys", 0, 1, 128, 8192, 64, 1, 5);
    return 0;
}
