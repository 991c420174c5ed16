import CKernels
import Foundation
import Synchronization
import TensorCore
import XCTest

/// The matrix products against `naiveSgemm`: the engine (its kernel for every product where the CPU has AVX2
/// and FMA, else OpenBLAS), OpenBLAS alone, and `ck_small_product` itself on every tile edge, its blocks of op(B),
/// its limits and threads; then the fixed order of each element's sum, bit for bit, which makes a run's results
/// the same on any core count and OpenBLAS core.
final class MatrixProductTwinTests: XCTestCase {
    typealias Product = @Sendable (_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                         _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                         _ bias: UnsafePointer<Float>?, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) -> Void

    static let engineProduct: Product = {
        Kernels.sgemm(transposeA: $0, transposeB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9,
                      beta: $10, c: $12, ldc: $13, bias: $11)
    }

    /// OpenBLAS for every product, whatever its size (the engine's other path).
    static let blasProduct: Product = {
        Kernels.sgemmBlock(transposeA: $0, transposeB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9,
                           beta: $10, c: $12, ldc: $13, bias: $11, openBLAS: true)
    }

    /// `ck_small_product` itself, which must take every product given here (it returns 1 when it cannot).
    static let smallProduct: Product = {
        let taken = ck_small_product($0 ? 1 : 0, $1 ? 1 : 0, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        XCTAssertEqual(taken, 0, "ck_small_product refused m=\($2) n=\($3) k=\($4)")
    }

    /// One product against `naiveSgemm`; with `bias` a row of n values added to every row (the engine
    /// takes a bias with beta = 0 only, `ck_small_product` with any beta).
    func sgemmCase(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, alpha: Float, beta: Float, padding: Int,
                   seed: UInt64, bias: Bool = false, product: Product = engineProduct) {
        // Stored shapes with row strides wider than the rows (`padding`): lda/ldb/ldc are honoured.
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        let lda = aColumns + padding, ldb = bColumns + padding, ldc = n + padding
        let a = Random.floats(max(1, aRows * lda), seed: seed), b = Random.floats(max(1, bRows * ldb), seed: seed + 1)
        let c0 = beta == 0 ? [Float](repeating: .nan, count: max(1, m * ldc)) : Random.floats(max(1, m * ldc), seed: seed + 2)
        let row = bias ? Random.floats(max(1, n), seed: seed + 3) : []
        var fast = c0, naive = c0
        fast.withUnsafeMutableBufferPointer { c in
            row.withUnsafeBufferPointer { r in
                product(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, bias ? r.baseAddress! : nil,
                        c.baseAddress!, ldc)
            }
        }
        naive.withUnsafeMutableBufferPointer { c in
            Kernels.naiveSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                               b: b, ldb: ldb, beta: beta, c: c.baseAddress!, ldc: ldc)
        }
        if bias { for i in 0..<m { for j in 0..<n { naive[i * ldc + j] += row[j] } } }
        let name = "sgemm m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) alpha=\(alpha) beta=\(beta) bias=\(bias)"
        for i in 0..<m {
            for j in 0..<ldc {
                let (x, y) = (fast[i * ldc + j], naive[i * ldc + j])
                if j >= n {
                    // Padding beyond n columns is never written.
                    XCTAssertEqual(x.bitPattern, c0[i * ldc + j].bitPattern, "\(name): padding written")
                    continue
                }
                var bound: Float = (abs(beta * c0[i * ldc + j]).isNaN ? 0 : abs(beta * c0[i * ldc + j])) + (bias ? abs(row[j]) : 0)
                for p in 0..<k {
                    let u = transposeA ? a[p * lda + i] : a[i * lda + p], v = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    bound += abs(alpha * u * v)
                }
                XCTAssertTrue(x.isFinite, "\(name): beta = 0 must not read C")
                XCTAssertLessThanOrEqual(abs(x - y), 1e-5 * bound + 1e-30, "\(name) at (\(i), \(j))")
                if abs(x - y) > 1e-5 * bound + 1e-30 { return }
            }
        }
    }

    func testSgemmAgainstNaiveSgemm() {
        var seed: UInt64 = 1
        let sizes = [(1, 1, 1), (3, 5, 7), (8, 8, 8), (17, 33, 9), (64, 65, 63), (130, 70, 257), (1, 100, 300), (200, 1, 50)]
        for (m, n, k) in sizes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    // The engine's choice (the small kernel where it applies), then OpenBLAS for every size.
                    for product in [Self.engineProduct, Self.blasProduct] {
                        seed += 3
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1, beta: 0,
                                  padding: 0, seed: seed, product: product)
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: -0.5, beta: 1.5,
                                  padding: 3, seed: seed, product: product)
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 0.5, beta: 0,
                                  padding: 2, seed: seed + 1, bias: true, product: product)
                    }
                }
            }
        }
        // k = 0: C becomes beta · C (the empty sum), for both twins; with a bias, the bias.
        sgemmCase(m: 4, n: 5, k: 0, transposeA: false, transposeB: false, alpha: 1, beta: 0.5, padding: 0, seed: 99)
        sgemmCase(m: 4, n: 5, k: 0, transposeA: true, transposeB: true, alpha: 1, beta: 0, padding: 2, seed: 98)
        sgemmCase(m: 4, n: 5, k: 0, transposeA: true, transposeB: false, alpha: 1, beta: 0, padding: 1, seed: 97, bias: true)
        // Products split over cores (when there are several) by columns (n > m) and by rows, with a bias:
        // on the small kernel (k = 64) and on OpenBLAS (wider than 1024, or deeper with more rows).
        for (m, n, k) in [(40, 700, 64), (700, 40, 64), (40, 1100, 300), (1100, 300, 1100)] {
            sgemmCase(m: m, n: n, k: k, transposeA: false, transposeB: true, alpha: 1, beta: 0, padding: 1,
                      seed: UInt64(m + k), bias: true)
        }
    }

    /// The AVX2 small-product kernel on every tile edge: rows around its 6-row tiles and 96-row blocks,
    /// columns around its 16-wide panels and the 8-wide halves of its transposes, depths around 8 (the
    /// transposes) and up to 256 (deeper products, in several packed blocks, in the next tests); every
    /// transpose, alpha, beta, a bias row, padded strides.
    func testSmallProductKernelAgainstNaiveSgemm() throws {
        try XCTSkipIf(ck_has_avx2_fma() == 0, "this CPU has no AVX2 with FMA: the engine never calls the kernel")
        var seed: UInt64 = 500
        let rows = [1, 5, 6, 7, 12, 13, 95, 96, 97, 200], columns = [1, 7, 8, 9, 15, 16, 17, 24, 33, 64]
        let depths = [1, 7, 8, 9, 16, 23, 64, 256]
        for (index, m) in rows.enumerated() {
            let n = columns[index]
            for (offset, k) in depths.enumerated() {
                for transposeA in [false, true] {
                    for transposeB in [false, true] {
                        seed += 3
                        // The first case meets another column count at each depth: ten of them per row count.
                        let n2 = columns[(index + offset) % columns.count]
                        sgemmCase(m: m, n: n2, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1, beta: 0,
                                  padding: 0, seed: seed, product: Self.smallProduct)
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: -0.5,
                                  beta: 1.5, padding: 3, seed: seed, product: Self.smallProduct)
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 0.125,
                                  beta: 1, padding: 9, seed: seed + 1, product: Self.smallProduct)
                        sgemmCase(m: m, n: n2, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 2,
                                  beta: 0, padding: 5, seed: seed + 2, bias: true, product: Self.smallProduct)
                        sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1,
                                  beta: 0.5, padding: 1, seed: seed + 3, bias: true, product: Self.smallProduct)
                    }
                }
            }
        }
    }

    /// Its limits: it refuses only an empty product, and leaves C untouched then (the engine would call
    /// OpenBLAS); the engine sends it every product, however wide and deep; each thread packs into its own buffer.
    func testSmallProductKernelLimitsAndThreads() throws {
        try XCTSkipIf(ck_has_avx2_fma() == 0, "this CPU has no AVX2 with FMA: the engine never calls the kernel")
        // Widths and depths beyond one packed block (64 Ki floats; at most 256 columns a block).
        for (n, k) in [(16, 4096), (257, 256), (4097, 16), (1, 70_000), (64, 1024), (1025, 64)] {
            let a = [Float](repeating: 1, count: k), b = [Float](repeating: 1, count: n * k)
            var c = [Float](repeating: .nan, count: n)
            XCTAssertEqual(ck_small_product(0, 0, 1, n, k, 1, a, k, b, n, 0, nil, &c, n), 0, "n=\(n) k=\(k)")
            XCTAssertEqual(c.allSatisfy { $0 == Float(k) }, true, "n=\(n) k=\(k)")
        }
        var c = [Float](repeating: 7, count: 4)
        XCTAssertEqual(ck_small_product(0, 0, 0, 4, 3, 1, [0], 3, [Float](repeating: 0, count: 12), 4, 0, nil, &c, 4), 1)
        XCTAssertEqual(ck_small_product(0, 0, 2, 2, 0, 1, [0], 1, [0], 2, 0, nil, &c, 2), 1)
        XCTAssertEqual(c, [7, 7, 7, 7])
        // Products more than 1024 wide and 256 deep (an imported model's MLP and head), which until 2026-11-30
        // went to OpenBLAS: the engine sends them to the kernel too, split over the cores, with beta and a bias.
        if Kernels.smallProducts == .avx2FMA {
            let before = Kernels.blasProductCount
            for (m, n, k, transposeA, transposeB) in [(260, 1030, 300, false, true), (70, 1300, 400, true, false)] {
                sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1, beta: 0,
                          padding: 1, seed: 77, bias: true)
                sgemmCase(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 0.5, beta: 1.5,
                          padding: 0, seed: 79)
            }
            XCTAssertEqual(Kernels.blasProductCount, before, "a wide product went to OpenBLAS")
        }
        // Eight concurrent streams of products of different widths, each result checked: a shared packing
        // buffer would mix their panels.
        let worst = Mutex([Float](repeating: 0, count: 8))
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            let (m, n, k) = (37, 16 * (t + 1) + t, 64)
            let a = Random.floats(m * k, seed: UInt64(t) + 1), b = Random.floats(k * n, seed: UInt64(t) + 20)
            var fast = [Float](repeating: 0, count: m * n), naive = fast
            Kernels.naiveSgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                               beta: 0, c: &naive, ldc: n)
            for _ in 0..<200 {
                _ = ck_small_product(0, 0, m, n, k, 1, a, k, b, n, 0, nil, &fast, n)
                let difference = zip(fast, naive).map { abs($0 - $1) }.max() ?? 0
                worst.withLock { $0[t] = max($0[t], difference) }
            }
        }
        for (t, difference) in worst.withLock({ $0 }).enumerated() { XCTAssertLessThan(difference, 1e-4, "thread \(t)") }
    }

    /// The kernel's promise, bit for bit: each element is one in-order chain of fused multiply-adds over the
    /// depth, then alpha·sum (+ beta·C) (+ bias), whatever the blocks it packs op(B) in (depths beyond a
    /// block with beta = 0 and beta ≠ 0, more than 256 columns), the tiles and the rows each core takes
    /// (`Kernels.sgemm` splits C over the cores). This is why a run's results do not depend on the core
    /// count or on OpenBLAS's kernels. Both register tiles (AVX-512 where this CPU has it, and AVX2) form the same
    /// bits, on every row remainder of a tile (1 to 5 rows) and panel count (odd and even, the last partial or whole).
    func testSmallProductIsOneInOrderSumPerElement() throws {
        try XCTSkipIf(ck_has_avx2_fma() == 0, "this CPU has no AVX2 with FMA: the engine never calls the kernel")
        try XCTSkipIf(Kernels.smallProducts != .avx2FMA, "POSITIONLAB_SMALL_PRODUCTS sends every product to OpenBLAS")
        defer { _ = ck_small_product_wide_tiles(Kernels.productTiles == .avx512 ? 1 : 0) }
        for wanted: Int32 in [1, 0] {
            let wide = ck_small_product_wide_tiles(wanted)
            if wanted == 1 && wide == 0 { continue }  // no AVX-512 here: the AVX2 tiles below
            let blocks = ck_small_product_wide_blocks()
            try checkInOrderSums(tiles: wide != 0 ? "AVX-512" : "AVX2")
            // The kernel was called on this thread: its wide tiles ran exactly when chosen.
            XCTAssertEqual(ck_small_product_wide_blocks() > blocks, wide != 0, "wide tiles ran: \(wide != 0)")
        }
    }

    private func checkInOrderSums(tiles: String) throws {
        var seed: UInt64 = 900
        let shapes = [(13, 40, 1500, false, false), (7, 1030, 70, false, true), (70, 33, 2100, true, false),
                      (200, 64, 768, true, false), (9, 17, 5000, true, true), (40, 700, 64, false, true),
                      (13, 29, 1500, false, false), (5, 48, 300, false, false), (2, 16, 33, true, true),
                      (1023, 20, 1300, true, false)]  // the last: A's depths 1024 floats apart, so it is packed too
        for (m, n, k, transposeA, transposeB) in shapes {
            let cases: [(Float, Float, Bool)] = [(1, 0, false), (0.5, 1.5, false), (-2, 0, true), (0.25, -1, true)]
            for (alpha, beta, withBias) in cases {
                seed += 4
                let lda = (transposeA ? m : k) + 1, ldb = (transposeB ? k : n) + 2, ldc = n + 3
                let a = Random.floats((transposeA ? k : m) * lda, seed: seed)
                let b = Random.floats((transposeB ? n : k) * ldb, seed: seed + 1)
                let c0 = Random.floats(m * ldc, seed: seed + 2), bias = Random.floats(n, seed: seed + 3)
                var expected = c0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum: Float = 0
                        for p in 0..<k {
                            let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                            sum = sum.addingProduct(x, transposeB ? b[j * ldb + p] : b[p * ldb + j])
                        }
                        var value = alpha * sum
                        if beta != 0 { value = value.addingProduct(beta, c0[i * ldc + j]) }
                        if withBias { value = bias[j] + value }
                        expected[i * ldc + j] = value
                    }
                }
                let name = "\(tiles) tiles, m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) alpha=\(alpha) "
                    + "beta=\(beta) bias=\(withBias)"
                var direct = c0, engine = c0
                XCTAssertEqual(ck_small_product(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb,
                                                beta, withBias ? bias : nil, &direct, ldc), 0, name)
                XCTAssertEqual(bits(direct), bits(expected), "the kernel, \(name)")
                // The engine: a bias only with beta = 0.
                guard beta == 0 || !withBias else { continue }
                Kernels.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
                              lda: lda, b: b, ldb: ldb, beta: beta, c: &engine, ldc: ldc, bias: withBias ? bias : nil)
                XCTAssertEqual(bits(engine), bits(expected), "the engine, \(name)")
            }
        }
    }

    /// A product of one row (decoding a token) reads op(B) in place, each element's sum in a fixed order of its
    /// own, bit for bit. W·x (op(B) = Bᵀ: a linear layer, the cache's scores) is a dot product per row of B:
    /// eight lanes along the depth (lane l sums p ≡ l mod 8 in order with fused multiply-adds), added in order
    /// l0 + l1 + … + l7, then the last k mod 8 terms in order. x·B (the cache's weighted values) is two chains
    /// per element, over the even and the odd p, each in order, then even + odd. Then alpha·sum (+ beta·y)
    /// (+ bias). Rows of B in groups of 8 and one at a time, columns in blocks of 32 and a partial one; through
    /// the kernel and the engine (which splits a wide row over the cores), with A's row strided too.
    func testOneRowProductsHaveAFixedOrderOfTheirOwn() throws {
        try XCTSkipIf(ck_has_avx2_fma() == 0, "this CPU has no AVX2 with FMA: the engine never calls the kernel")
        try XCTSkipIf(Kernels.smallProducts != .avx2FMA, "POSITIONLAB_SMALL_PRODUCTS sends every product to OpenBLAS")
        var seed: UInt64 = 1300
        // (3000, 128): wide enough for the engine to split the row's columns over the cores.
        let shapes = [(37, 1500, 1), (9, 13, 3), (8, 7, 1), (3000, 64, 1), (1, 8, 2), (19, 32, 1), (1, 1, 1),
                      (40, 1501, 2), (3000, 128, 1)]
        for transposeB in [true, false] {
            for (n, k, xStride) in shapes {
                for (alpha, beta, withBias) in [(Float(1), Float(0), false), (0.5, 1.5, false), (-2, 0, true)] {
                    seed += 4
                    let ldb = (transposeB ? k : n) + 1, x = Random.floats(k * xStride, seed: seed)
                    let b = Random.floats((transposeB ? n : k) * ldb, seed: seed + 1)
                    let y0 = Random.floats(n, seed: seed + 2), bias = Random.floats(n, seed: seed + 3)
                    func element(_ j: Int, _ p: Int) -> Float { transposeB ? b[j * ldb + p] : b[p * ldb + j] }
                    var expected = y0
                    for j in 0..<n {
                        var sum: Float
                        if transposeB {
                            let vectorDepth = k - k % 8
                            var lanes = [Float](repeating: 0, count: 8)
                            for p in stride(from: 0, to: vectorDepth, by: 8) {
                                for l in 0..<8 {
                                    lanes[l] = lanes[l].addingProduct(element(j, p + l), x[(p + l) * xStride])
                                }
                            }
                            sum = lanes[0]
                            for l in 1..<8 { sum += lanes[l] }
                            for p in vectorDepth..<k { sum = sum.addingProduct(x[p * xStride], element(j, p)) }
                        } else {
                            var even: Float = 0, odd: Float = 0
                            for p in 0..<k {
                                if p % 2 == 0 { even = even.addingProduct(x[p * xStride], element(j, p)) }
                                else { odd = odd.addingProduct(x[p * xStride], element(j, p)) }
                            }
                            sum = even + odd
                        }
                        var value = alpha * sum
                        if beta != 0 { value = value.addingProduct(beta, y0[j]) }
                        expected[j] = withBias ? bias[j] + value : value
                    }
                    let name = "tB=\(transposeB) n=\(n) k=\(k) stride=\(xStride) alpha=\(alpha) beta=\(beta) "
                        + "bias=\(withBias)"
                    var direct = y0, engine = y0
                    XCTAssertEqual(ck_small_product(xStride == 1 ? 0 : 1, transposeB ? 1 : 0, 1, n, k, alpha, x, xStride,
                                                    b, ldb, beta, withBias ? bias : nil, &direct, n), 0, name)
                    XCTAssertEqual(bits(direct), bits(expected), "the kernel, \(name)")
                    guard beta == 0 || !withBias else { continue }
                    Kernels.sgemm(transposeA: xStride != 1, transposeB: transposeB, m: 1, n: n, k: k, alpha: alpha,
                                  a: x, lda: xStride, b: b, ldb: ldb, beta: beta, c: &engine, ldc: n,
                                  bias: withBias ? bias : nil)
                    XCTAssertEqual(bits(engine), bits(expected), "the engine, \(name)")
                }
            }
        }
    }

    /// A product over an empty inner axis is all zeros, even in uninitialised output storage.
    func testEmptyInnerAxisGivesZeros() throws {
        var c = [Float](repeating: .nan, count: 12)
        Kernels.sgemm(transposeA: false, transposeB: false, m: 3, n: 4, k: 0, alpha: 1, a: [0], lda: 1, b: [0], ldb: 4,
                      beta: 0, c: &c, ldc: 4)
        XCTAssertEqual(c, [Float](repeating: 0, count: 12))
        let a = try Tensor(zeros: [2, 3, 0], requiresGradient: true), b = try Tensor(zeros: [0, 4], requiresGradient: true)
        let y = try a.matmul(b)
        XCTAssertEqual(y.shape, [2, 3, 4])
        XCTAssertEqual(y.scalars, [Float](repeating: 0, count: 24))
        try y.sum().backward()
        XCTAssertEqual(a.gradient?.shape, [2, 3, 0])
    }
}
