import Foundation

/// Decoding attention over a KV cache, read in place (inference only: no gradient).
///
/// Layouts (row-major): q, out [B, H, Tq, D]; keys, values [B, Hkv, capacity, D], of which the
/// first Tc rows of each head are filled; bias [biasBatches, H, Tq, Tc] (biasBatches 1 or B) or
/// none. The Tq queries are the last Tq of the Tc cached tokens: query i sees rows
/// 0 … Tc − Tq + i. Query head h reads key/value head h / (H / Hkv) (grouped-query attention,
/// without copying the shared heads). Per (batch, head) pair: scores = scale · Q Kᵀ (+ bias),
/// masked, softmax, then P V — two products on the cache's own memory (`sgemmBlock`; for one query the
/// small-product kernel reads it in place), so a decoding step costs O(Tc · D) per head and copies
/// nothing but the new tokens' rows into the cache. Several queries without a bias (a prefill) take
/// `blockedAttentionForward`'s schedule over the cache instead.
public struct CachedAttentionShape: Equatable, Sendable {
    public var batch: Int, heads: Int, keyValueHeads: Int, queries: Int, cached: Int, capacity: Int, headDimension: Int

    public init(batch: Int, heads: Int, keyValueHeads: Int, queries: Int, cached: Int, capacity: Int, headDimension: Int) {
        (self.batch, self.heads, self.keyValueHeads, self.queries) = (batch, heads, keyValueHeads, queries)
        (self.cached, self.capacity, self.headDimension) = (cached, capacity, headDimension)
    }

    /// Offset of (batch b, key/value head g, row 0) in the cache.
    @inline(__always) func cacheOffset(_ b: Int, _ g: Int) -> Int { (b * keyValueHeads + g) * capacity * headDimension }
}

extension Kernels {
    public static func cachedAttention(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                       out: UnsafeMutablePointer<Float>, shape s: CachedAttentionShape, scale: Float,
                                       bias: UnsafePointer<Float>?, biasBatches: Int) {
        let (tq, tc, d) = (s.queries, s.cached, s.headDimension)
        let group = s.heads / s.keyValueHeads, pairs = s.batch * s.heads
        if tq > 1, bias == nil {
            // Several queries and no score bias (a prefill): FlashAttention's blocked schedule on the cache in place,
            // a 128 × 256 tile of scores at a time. Blocks of 128 queries × every key they see went through memory
            // three times each: an 8192-token prefill ran 1.44× faster on two cores than on one.
            let logSumExp = UnsafeMutablePointer<Float>.allocate(capacity: max(1, pairs * tq))
            defer { logSumExp.deallocate() }
            blockedAttentionForward(q: q, k: keys, v: values, out: out, logSumExp: logSumExp, batch: s.batch,
                                    heads: s.heads, queries: tq, keys: tc, dimension: d, scale: scale, bias: nil,
                                    keyValueHeads: s.keyValueHeads, keyValueCapacity: s.capacity)
            return
        }
        let work = pairs * tq * tc * d
        let chunks = work >= 1 << 16 ? min(Parallel.coreCount, pairs) : 1
        // Several queries with a bias go through in blocks of rows, so the scores never exceed
        // block × Tc floats per core.
        let block = min(tq, max(1, (1 << 20) / max(1, tc)))
        Parallel.perform(iterations: chunks) { chunk in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, block * tc))
            defer { scores.deallocate() }
            for pair in (chunk * pairs / chunks)..<((chunk + 1) * pairs / chunks) {
                let (b, h) = (pair / s.heads, pair % s.heads)
                let cache = s.cacheOffset(b, h / group)
                let biasPair = bias.map { $0 + ((b % biasBatches) * s.heads + h) * tq * tc }
                for i0 in stride(from: 0, to: tq, by: block) {
                    let rows = min(block, tq - i0), keys0 = tc - tq + i0 + rows  // keys the block's last query sees
                    let qBlock = q + (pair * tq + i0) * d, outBlock = out + (pair * tq + i0) * d
                    // A decoding step (one row) reads the cache in place.
                    sgemmBlock(transposeA: false, transposeB: true, m: rows, n: keys0, k: d, alpha: scale, a: qBlock, lda: d,
                               b: keys + cache, ldb: d, beta: 0, c: scores, ldc: tc)
                    for r in 0..<rows {
                        let i = i0 + r, row = scores + r * tc, visible = tc - tq + i + 1
                        if let biasPair { for j in 0..<visible { row[j] += biasPair[i * tc + j] } }
                        // SIMD (a scalar max waits on each comparison: a third of an 8192-token prefill).
                        var maximum = Kernels.maximum(row, count: visible)
                        if maximum == -.infinity { maximum = 0 }
                        let inverse = 1 / exponentiate(row, count: visible, subtracting: maximum)
                        for j in 0..<visible { row[j] *= inverse }
                        for j in visible..<keys0 { row[j] = 0 }
                    }
                    sgemmBlock(transposeA: false, transposeB: false, m: rows, n: d, k: keys0, alpha: 1, a: scores, lda: tc,
                               b: values + cache, ldb: d, beta: 0, c: outBlock, ldc: d)
                }
            }
        }
    }

    /// Naive twin of `cachedAttention`: per query, scores, mask, softmax and weighted sum in Double.
    public static func naiveCachedAttention(q: [Float], keys: [Float], values: [Float], shape s: CachedAttentionShape,
                                            scale: Float, bias: [Float]?, biasBatches: Int) -> [Float] {
        let (tq, tc, d) = (s.queries, s.cached, s.headDimension)
        let group = s.heads / s.keyValueHeads
        var out = [Float](repeating: 0, count: s.batch * s.heads * tq * d)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let cache = s.cacheOffset(b, h / group), pair = b * s.heads + h
                for i in 0..<tq {
                    let visible = tc - tq + i + 1
                    var logits = [Double](repeating: 0, count: visible)
                    for j in 0..<visible {
                        var dot = 0.0
                        for e in 0..<d { dot += Double(q[(pair * tq + i) * d + e]) * Double(keys[cache + j * d + e]) }
                        let biasIndex = (((b % biasBatches) * s.heads + h) * tq + i) * tc + j
                        logits[j] = Double(scale) * dot + Double(bias.map { $0[biasIndex] } ?? 0)
                    }
                    let top = logits.max() ?? 0
                    let weights = logits.map { Foundation.exp($0 - top) }
                    let total = weights.reduce(0, +)
                    for e in 0..<d {
                        var sum = 0.0
                        for j in 0..<visible { sum += weights[j] * Double(values[cache + j * d + e]) }
                        out[(pair * tq + i) * d + e] = Float(sum / total)
                    }
                }
            }
        }
        return out
    }
}
