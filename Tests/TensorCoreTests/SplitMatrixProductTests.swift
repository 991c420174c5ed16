import TensorCore
import XCTest

/// `Kernels.sgemm` splits large products into blocks of C over the cores; its naive twin checks
/// every block boundary, both split directions and every transpose, with padded strides.
final class SplitMatrixProductTests: XCTestCase {
    func testSplitProductsMatchTheNaiveTwin() {
        var generator = SplitMix64(seed: 12)
        // (m, n, k): split along rows (m ≥ n), along columns (n > m), odd extents, and one below the threshold.
        for (m, n, k) in [(200, 70, 40), (33, 301, 29), (129, 129, 17), (20, 20, 20)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let (rowsA, colsA) = transposeA ? (k, m) : (m, k), (rowsB, colsB) = transposeB ? (n, k) : (k, n)
                    let lda = colsA + 3, ldb = colsB + 1, ldc = n + 2
                    let a = (0..<(rowsA * lda)).map { _ in generator.nextNormal() }
                    let b = (0..<(rowsB * ldb)).map { _ in generator.nextNormal() }
                    let start = (0..<(m * ldc)).map { _ in generator.nextNormal() }
                    var fast = start, naive = start
                    fast.withUnsafeMutableBufferPointer { c in
                        Kernels.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: 0.5, c: c.baseAddress!, ldc: ldc)
                    }
                    naive.withUnsafeMutableBufferPointer { c in
                        Kernels.naiveSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda,
                                           b: b, ldb: ldb, beta: 0.5, c: c.baseAddress!, ldc: ldc)
                    }
                    var worst: Float = 0
                    for i in 0..<m { for j in 0..<ldc { worst = max(worst, abs(fast[i * ldc + j] - naive[i * ldc + j])) } }
                    XCTAssertLessThan(worst, 1e-3, "m \(m) n \(n) k \(k) tA \(transposeA) tB \(transposeB)")
                    // The padding between rows of C is never written.
                    for i in 0..<m { for j in n..<ldc { XCTAssertEqual(fast[i * ldc + j], start[i * ldc + j]) } }
                }
            }
        }
    }
}
