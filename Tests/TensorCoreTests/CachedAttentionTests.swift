import TensorCore
import XCTest

/// `Kernels.cachedAttention` (the KV cache read in place) against its naive twin: grouped heads,
/// several new queries, a bias shared or per batch, capacities beyond the filled rows, sizes on
/// both sides of the parallel split, and the blocked schedule of a prefill.
final class CachedAttentionTests: XCTestCase {
    func testSgemvAgainstNaiveSgemm() {
        var generator = SplitMix64(seed: 12)
        for (m, n, lda) in [(1, 1, 1), (7, 5, 8), (300, 32, 40), (0, 3, 3)] {
            let a = TensorStorage(count: max(1, m * lda)), x = TensorStorage(count: max(m, n)), y = TensorStorage(count: max(m, n))
            for i in 0..<a.count { a.pointer[i] = generator.nextNormal() }
            for i in 0..<x.count { x.pointer[i] = generator.nextNormal() }
            for transpose in [false, true] {
                let (rows, inner) = transpose ? (n, m) : (m, n)
                Kernels.sgemv(transposeA: transpose, m: m, n: n, alpha: 0.5, a: a.pointer, lda: lda, x: x.pointer, beta: 0, y: y.pointer)
                let expected = TensorStorage(count: max(1, rows))
                // op(A)·x as a product of op(A) [rows, inner] with x [inner, 1].
                Kernels.naiveSgemm(transposeA: transpose, transposeB: false, m: rows, n: 1, k: inner, alpha: 0.5, a: a.pointer, lda: lda,
                                   b: x.pointer, ldb: 1, beta: 0, c: expected.pointer, ldc: 1)
                for i in 0..<rows { XCTAssertEqual(y.pointer[i], expected.pointer[i], accuracy: 1e-4, "\(m)×\(n) transposed \(transpose)") }
            }
        }
    }

    func testCachedAttentionAgainstNaiveTwin() {
        var generator = SplitMix64(seed: 11)
        func values(_ n: Int) -> [Float] { (0..<n).map { _ in generator.nextNormal() } }
        let shapes = [
            CachedAttentionShape(batch: 1, heads: 1, keyValueHeads: 1, queries: 1, cached: 1, capacity: 1, headDimension: 4),
            CachedAttentionShape(batch: 2, heads: 4, keyValueHeads: 2, queries: 3, cached: 9, capacity: 16, headDimension: 8),
            CachedAttentionShape(batch: 1, heads: 4, keyValueHeads: 1, queries: 1, cached: 700, capacity: 1024, headDimension: 32),
            CachedAttentionShape(batch: 3, heads: 2, keyValueHeads: 2, queries: 5, cached: 40, capacity: 40, headDimension: 16),
            // Without a bias, several queries take the blocked schedule: query blocks of 128 and key blocks of 256,
            // over a cached prefix (Tc > Tq) and over the prompt alone (a prefill), the cache wider than its rows.
            CachedAttentionShape(batch: 2, heads: 4, keyValueHeads: 2, queries: 300, cached: 520, capacity: 600,
                                 headDimension: 16),
            CachedAttentionShape(batch: 1, heads: 2, keyValueHeads: 1, queries: 260, cached: 260, capacity: 512,
                                 headDimension: 8),
        ]
        for s in shapes {
            for biasBatches in [0, 1, s.batch] {
                let q = values(s.batch * s.heads * s.queries * s.headDimension)
                let cacheCount = s.batch * s.keyValueHeads * s.capacity * s.headDimension
                let (keys, vals) = (values(cacheCount), values(cacheCount))
                let bias = biasBatches == 0 ? nil : values(biasBatches * s.heads * s.queries * s.cached)
                let out = TensorStorage(count: q.count, zeroed: false)
                let biasStorage = bias.map { values in TensorStorage(copying: values.withUnsafeBufferPointer { $0 }) }
                let (qs, ks, vs) = (q.withUnsafeBufferPointer { TensorStorage(copying: $0) },
                                    keys.withUnsafeBufferPointer { TensorStorage(copying: $0) },
                                    vals.withUnsafeBufferPointer { TensorStorage(copying: $0) })
                Kernels.cachedAttention(q: qs.pointer, keys: ks.pointer, values: vs.pointer, out: out.pointer, shape: s, scale: 0.3,
                                        bias: biasStorage.map { UnsafePointer($0.pointer) }, biasBatches: max(1, biasBatches))
                let expected = Kernels.naiveCachedAttention(q: q, keys: keys, values: vals, shape: s, scale: 0.3, bias: bias,
                                                            biasBatches: max(1, biasBatches))
                let worst = zip(out.array, expected).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(s), bias batches \(biasBatches)")
            }
        }
    }
}
