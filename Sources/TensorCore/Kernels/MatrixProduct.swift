import CKernels
import Foundation
import Synchronization

extension Kernels {
    /// C = alpha · op(A) · op(B) + beta · C, row-major, op(X) = X or Xᵀ. A is m×k after op, B is
    /// k×n after op; lda, ldb, ldc are the row strides of A, B, C as stored. Every product runs on
    /// `ck_small_product` where the CPU has AVX2 and FMA (`smallProducts`), elsewhere on OpenBLAS sgemm (or
    /// sgemv, for one row); none copies a transposed operand (the kernel packs op(B) as it reads it, or
    /// reads one row's in place).
    ///
    /// Large products are split into row (or column) blocks of C, one per core, each a
    /// single-threaded call: OpenBLAS's own pool busy-waits with sched_yield between calls, which
    /// cost a fifth of a small model's training step in `perf` (scheduler time). Block boundaries depend
    /// only on the shape and the core count, and the kernel sums each element in one order whatever the
    /// block: results are the same on any core count.
    ///
    /// `bias` (n floats, with beta = 0) is added to every row of C: C = alpha · op(A) · op(B) + bias,
    /// in the small kernel's epilogue, or written into C before OpenBLAS adds the product (beta = 1).
    public static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil) {
        let cores = Parallel.coreCount
        // One row without the kernel stays whole: OpenBLAS's sgemv, split, could sum some rows in another order.
        guard cores > 1, m * n * k >= 1 << 18, max(m, n) >= 2 * 16, m > 1 || smallProducts == .avx2FMA else {
            return sgemmBlock(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
                              lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias)
        }
        let splitRows = m >= n
        let extent = splitRows ? m : n, chunks = min(cores, extent / 16)
        Parallel.perform(iterations: chunks) { chunk in
            let start = chunk * extent / chunks, end = (chunk + 1) * extent / chunks
            if splitRows {  // rows of op(A) and of C
                sgemmBlock(transposeA: transposeA, transposeB: transposeB, m: end - start, n: n, k: k, alpha: alpha,
                           a: a + (transposeA ? start : start * lda), lda: lda, b: b, ldb: ldb, beta: beta,
                           c: c + start * ldc, ldc: ldc, bias: bias)
            } else {  // columns of op(B) and of C
                sgemmBlock(transposeA: transposeA, transposeB: transposeB, m: m, n: end - start, k: k, alpha: alpha,
                           a: a, lda: lda, b: b + (transposeB ? start * ldb : start), ldb: ldb, beta: beta,
                           c: c + start, ldc: ldc, bias: bias.map { $0 + start })
            }
        }
    }

    /// Who multiplies matrices: `avx2FMA` (CKernels' `ck_small_product`, compiled for AVX2 with FMA) when the
    /// CPU has them, else `blas`. `POSITIONLAB_SMALL_PRODUCTS=blas` sends every product to OpenBLAS (to
    /// compare, or to rule the kernel out). (The kernel and the variable are named from when the kernel took
    /// only the lab's small products; it takes every product now.)
    ///
    /// Each element's sum has one fixed order (an in-order chain of fused multiply-adds; for one row, an
    /// order of its own), whatever the core count and OpenBLAS's kernels: a run gives the same bits on every
    /// x86-64 CPU with AVX2 and FMA. On Zen 4 (`bench/small_products.c`, one thread, AVX-512 tiles) the
    /// kernel ran the lab's models' products at 0.86–1.41× OpenBLAS 0.3.21's SkylakeX kernels (the lowest:
    /// the quickstart's 24-key P·V), an imported model's wider ones (C = 768, SmolLM-135M's MLP) at
    /// 0.90–0.98× and its head at 1.04–1.06×, and one row at 1.03–1.67× its sgemv; SmolLM-135M's shape's
    /// forward pass (`poslab bench forward`) ran level with OpenBLAS taking its MLP and head.
    public enum SmallProductKernels: String, Codable, Sendable {
        case avx2FMA = "avx2+fma", blas
    }

    public static let smallProducts: SmallProductKernels = {
        _ = productTiles  // the tiles are chosen before the first product
        return runsAVX2(unless: smallProductsVariable, is: SmallProductKernels.blas.rawValue) ? .avx2FMA : .blas
    }()

    /// The register tiles `ck_small_product` runs: `avx512` (six rows by two 16-column panels, a 16-lane
    /// register each) where the CPU has AVX-512F, else `avx2` (six rows by one panel, two 8-lane registers).
    /// Both form every element's sum in the same order with the same operations, so the bits are the same; only
    /// the speed differs. `POSITIONLAB_PRODUCT_TILES=avx2` asks for the AVX2 ones on an AVX-512 CPU.
    public enum ProductTiles: String, Codable, Sendable {
        case avx512, avx2
    }

    public static let productTiles: ProductTiles =
        ck_small_product_wide_tiles(ProcessInfo.processInfo.environment[productTilesVariable] == "avx2" ? 0 : 1) != 0
            ? .avx512 : .avx2

    public static let productTilesVariable = "POSITIONLAB_PRODUCT_TILES"

    /// `productTiles` where the kernel runs (`smallProducts` "avx2+fma"), else nil: what a record names.
    public static var ownProductTiles: ProductTiles? { smallProducts == .avx2FMA ? productTiles : nil }

    /// Refuses a value of `POSITIONLAB_PRODUCT_TILES` other than "avx2" (or none).
    public static func checkProductTilesSetting() throws {
        try checkSetting(productTilesVariable, fallback: ProductTiles.avx2.rawValue,
                         fallbackMeaning: "the kernel's AVX2 tiles",
                         defaultMeaning: "AVX-512 tiles where the CPU has them")
    }

    public static let smallProductsVariable = "POSITIONLAB_SMALL_PRODUCTS"

    /// Refuses a value of `POSITIONLAB_SMALL_PRODUCTS` other than "blas" (or none).
    public static func checkSmallProductSetting() throws {
        try checkSetting(smallProductsVariable, fallback: SmallProductKernels.blas.rawValue,
                         fallbackMeaning: "OpenBLAS for every product",
                         defaultMeaning: "PositionLab's kernel for every product where the CPU has AVX2 and FMA")
    }

    /// One product on the calling thread (batched loops call it from their own workers): on
    /// `ck_small_product` when the CPU has AVX2 and FMA, else (or with `openBLAS`, to compare) on OpenBLAS,
    /// itself single-threaded (`BLAS`).
    public static func sgemmBlock(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                                  bias: UnsafePointer<Float>? = nil, openBLAS: Bool = false) {
        precondition(bias == nil || beta == 0, "sgemm: a bias is added to the product alone (beta = 0)")
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // BLAS leaves C untouched when k = 0 only if beta = 1; make the empty sum explicit.
            // As in BLAS, beta = 0 must not read C (it may be uninitialised: 0 · NaN is NaN).
            for i in 0..<m {
                for j in 0..<n {
                    let scaled = beta == 0 ? 0 : c[i * ldc + j] * beta
                    c[i * ldc + j] = bias.map { scaled + $0[j] } ?? scaled
                }
            }
            return
        }
        if smallProducts == .avx2FMA, !openBLAS,
           ck_small_product(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, bias, c,
                            ldc) == 0 {
            return
        }
        if m == 1 {  // one row without the kernel (a CPU without AVX2 and FMA): sgemv reads op(B) in place
            if let bias { c.update(from: bias, count: n) } else if beta == 0 { c.update(repeating: 0, count: n) }
            return sgemv(transposeA: !transposeB, m: transposeB ? n : k, n: transposeB ? k : n, alpha: alpha, a: b,
                         lda: ldb, x: a, incx: transposeA ? lda : 1, beta: bias == nil ? beta : 1, y: c)
        }
        blasProducts.add(1, ordering: .relaxed)
        if let bias { for i in 0..<m { (c + i * ldc).update(from: bias, count: n) } }
        blasSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: bias == nil ? beta : 1, c: c, ldc: ldc)
    }

    /// The products `sgemm`, `sgemmBlock` and `sgemv` have sent to OpenBLAS in this process, on
    /// any thread: a run whose count did not grow computed every product on `ck_small_product`, whose sums
    /// follow neither OpenBLAS's kernels nor the core count.
    public static var blasProductCount: Int { blasProducts.load(ordering: .relaxed) }

    private static let blasProducts = Atomic<Int>(0)

    /// OpenBLAS's sgemm, whatever the size (the small-product kernel's twin and rival).
    public static func blasSgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        BLAS.sgemm(BLAS.rowMajor, transposeA ? BLAS.transpose : BLAS.noTranspose,
                   transposeB ? BLAS.transpose : BLAS.noTranspose, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                   b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y = alpha · op(A) · x (+ beta · y): A is m×n row-major with row stride lda, op(A) = A or Aᵀ;
    /// x[i] at x + i·incx, y contiguous. OpenBLAS sgemv, reading A in place (sgemm with one row would
    /// pack A first): one-row products on a CPU without AVX2 and FMA. Its naive twin is `naiveSgemm`
    /// with one column.
    public static func sgemv(transposeA: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, incx: Int = 1, beta: Float, y: UnsafeMutablePointer<Float>) {
        blasProducts.add(1, ordering: .relaxed)
        guard m > 0, n > 0 else {
            for i in 0..<(transposeA ? n : m) { y[i] = beta == 0 ? 0 : y[i] * beta }
            return
        }
        BLAS.sgemv(BLAS.rowMajor, transposeA ? BLAS.transpose : BLAS.noTranspose, Int32(m), Int32(n), alpha, a, Int32(lda),
                   x, Int32(incx), beta, y, 1)
    }

    /// Naive twin of `sgemm`: the triple loop, accumulating in Double.
    public static func naiveSgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(x) * Double(y)
                }
                c[i * ldc + j] = alpha * Float(sum) + (beta == 0 ? 0 : beta * c[i * ldc + j])
            }
        }
    }

}
