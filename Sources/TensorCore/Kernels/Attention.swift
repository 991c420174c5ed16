import Foundation

/// Memory-efficient causal attention: FlashAttention's blocked, online-softmax schedule
/// (Dao et al. 2022; the backward of FlashAttention-2, Dao 2023) on the CPU, each block product
/// one call of `sgemmBlock`. No T×T score matrix is ever held: per (batch, head) pair only one
/// [queryBlock, keyBlock] tile of scores lives at a time.
///
/// Layouts (row-major): q, out, dOut [B, H, Tq, D]; k, v [B, H, Tk, D]; logSumExp [B, H, Tq].
/// The queries are the last Tq of the Tk keys (a KV cache holds the first Tk − Tq), so query i
/// sees keys j ≤ i + (Tk − Tq).
///
/// An optional bias depends on the relative distance only: bias(h, i, j) = table[h, δ − δ_min]
/// with δ = queryPosition[i] − keyPosition[j], added to the scaled score inside the block loop
/// (ALiBi, T5 buckets, learned relative biases all reduce to such a table).
public struct AttentionBiasLayout {
    /// [H, span] row-major.
    public var table: UnsafePointer<Float>
    public var span: Int
    public var minimumDistance: Int
    /// [positionBatches, Tq] and [positionBatches, Tk]; row b of the batch uses row b mod positionBatches.
    public var queryPositions: UnsafePointer<Int>
    public var keyPositions: UnsafePointer<Int>
    public var positionBatches: Int

    public init(table: UnsafePointer<Float>, span: Int, minimumDistance: Int, queryPositions: UnsafePointer<Int>,
                keyPositions: UnsafePointer<Int>, positionBatches: Int) {
        self.table = table; self.span = span; self.minimumDistance = minimumDistance
        self.queryPositions = queryPositions; self.keyPositions = keyPositions; self.positionBatches = positionBatches
    }
}

extension Kernels {
    /// Tile sizes: the cores split (pair, query block) units, each tile product a single-threaded
    /// OpenBLAS call. With D = 32, 128 × 256 tiles beat 64 × 64 ones (fewer, larger calls, less
    /// packing per flop): `poslab bench attention` (B = 1, H = 4) on an AMD EPYC, 2 cores, with the
    /// portable (SSE2) exponentials, forward / backward GFLOP/s at T = 2048 32 / 43 → 34–35 / 50–57,
    /// at T = 8192 29 / 49 → 31–38 / 46–62 (README, "Element-wise kernels for the CPU").
    public static let attentionQueryBlock = 128
    public static let attentionKeyBlock = 256
    /// Rows per slab of a tile that the causal mask cuts (forward only).
    public static let attentionDiagonalSlab = 32

    /// Scores of one tile, scaled, biased and masked in place: tile[r][c] for query i0 + r, key j0 + c.
    @inline(__always)
    static func attentionTile(_ tile: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, rows: Int,
                              cols: Int, d: Int, i0: Int, j0: Int, shift: Int, scale: Float, head: Int, batch: Int,
                              tq: Int, tk: Int, bias: AttentionBiasLayout?) {
        let kb = attentionKeyBlock
        sgemmBlock(transposeA: false, transposeB: true, m: rows, n: cols, k: d, alpha: scale, a: q, lda: d, b: k, ldb: d,
              beta: 0, c: tile, ldc: kb)
        for r in 0..<rows {
            let row = tile + r * kb
            let limit = i0 + r + shift - j0  // columns beyond this are in the future
            if let bias {
                let pb = batch % bias.positionBatches
                let qp = bias.queryPositions[pb * tq + i0 + r] - bias.minimumDistance
                let kp = bias.keyPositions + pb * tk + j0
                let t = bias.table + head * bias.span
                for c in 0..<max(0, min(cols, limit + 1)) { row[c] += t[qp - kp[c]] }
            }
            if limit + 1 < cols { for c in max(0, limit + 1)..<cols { row[c] = -.infinity } }
        }
    }

    /// Forward: out = softmax(scale·QKᵀ + bias + mask)·V, and the row log-sum-exp for the backward.
    /// k and v may be a KV cache's [B, Hkv, capacity, D] (`keyValueHeads` Hkv dividing H, each read by its H/Hkv
    /// query heads; the first Tk rows of each head filled): a prefill attends to it in place.
    public static func blockedAttentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                               out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                               batch: Int, heads: Int, queries tq: Int, keys tk: Int, dimension d: Int,
                                               scale: Float, bias: AttentionBiasLayout?, keyValueHeads: Int? = nil,
                                               keyValueCapacity: Int? = nil) {
        let qb = attentionQueryBlock, kb = attentionKeyBlock, shift = tk - tq
        let hkv = keyValueHeads ?? heads, capacity = keyValueCapacity ?? tk, group = heads / max(1, hkv)
        // Where pair (b, h)'s keys and values start: b·Hkv + h/group heads in, each `capacity` rows.
        func keyValueHead(_ pair: Int) -> Int { ((pair / heads) * hkv + (pair % heads) / group) * capacity * d }
        let queryBlocks = (tq + qb - 1) / qb, units = batch * heads * queryBlocks
        let chunks = min(Parallel.coreCount, units, max(1, tq * tk * d * batch * heads / 100_000))
        Parallel.perform(iterations: chunks) { chunk in
            // Workspace per chunk, never per element.
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: qb * kb)
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: qb * d)
            var m = [Float](repeating: 0, count: qb), l = [Float](repeating: 0, count: qb)
            defer { tile.deallocate(); acc.deallocate() }
            var unit = chunk * units / chunks
            while unit < (chunk + 1) * units / chunks {
                defer { unit += 1 }
                let pair = unit / queryBlocks, i0 = (unit % queryBlocks) * qb
                let rows = min(qb, tq - i0), b = pair / heads, h = pair % heads
                let qp = q + (pair * tq + i0) * d
                for r in 0..<rows { m[r] = -.infinity; l[r] = 0 }
                acc.initialize(repeating: 0, count: rows * d)
                let keyEnd = min(tk, i0 + rows + shift)
                var j0 = 0
                while j0 < keyEnd {
                    let cols = min(kb, keyEnd - j0)
                    // A tile that the causal mask cuts is done in slabs of rows, each only as wide as its
                    // last row sees: the masked triangle costs a slab's, not the tile's (at T = 2048, 6% of
                    // the products and exponentials was masked work).
                    let masked = i0 + shift - j0 + 1 < cols
                    let slab = masked ? attentionDiagonalSlab : rows
                    var r0 = 0
                    while r0 < rows {
                        let slabRows = min(slab, rows - r0)
                        let slabCols = min(cols, max(0, i0 + r0 + slabRows - 1 + shift - j0 + 1))
                        if slabCols == 0 { r0 += slab; continue }  // no key of this tile is visible yet
                        let slabTile = tile + r0 * kb, slabAcc = acc + r0 * d
                        attentionTile(slabTile, q: qp + r0 * d, k: k + keyValueHead(pair) + j0 * d, rows: slabRows,
                                      cols: slabCols, d: d, i0: i0 + r0, j0: j0, shift: shift, scale: scale, head: h,
                                      batch: b, tq: tq, tk: tk, bias: bias)
                        for r in r0..<(r0 + slabRows) {
                            let row = tile + r * kb
                            let newMax = max(m[r], maximum(row, count: slabCols))
                            if newMax == -.infinity {  // nothing visible yet in this row
                                for c in 0..<slabCols { row[c] = 0 }
                                continue
                            }
                            // Online softmax (Milakov and Gimelshein 2018): rescale what was summed under the old max.
                            let correction = m[r] == -.infinity ? 0 : expf(m[r] - newMax)
                            let sum = exponentiate(row, count: slabCols, subtracting: newMax)
                            l[r] = l[r] * correction + sum
                            if correction != 1 { let a = acc + r * d; for x in 0..<d { a[x] *= correction } }
                            m[r] = newMax
                        }
                        sgemmBlock(transposeA: false, transposeB: false, m: slabRows, n: d, k: slabCols, alpha: 1,
                                   a: slabTile, lda: kb, b: v + keyValueHead(pair) + j0 * d, ldb: d, beta: 1,
                                   c: slabAcc, ldc: d)
                        r0 += slab
                    }
                    j0 += kb
                }
                for r in 0..<rows {
                    let o = out + (pair * tq + i0 + r) * d, a = acc + r * d
                    // A row with no visible key (only when Tk = 0) gives zeros, not NaN.
                    let inverse = l[r] > 0 ? 1 / l[r] : 0
                    for x in 0..<d { o[x] = a[x] * inverse }
                    logSumExp[pair * tq + i0 + r] = l[r] > 0 ? m[r] + logf(l[r]) : .infinity
                }
            }
        }
    }

    /// Backward: accumulates dQ, dK, dV (and, per (batch, head) pair, dBias [B·H, span]) from dOut,
    /// recomputing each probability tile from the saved log-sum-exp.
    public static func blockedAttentionBackward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                                out: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                                                logSumExp: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
                                                dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                                dBias: UnsafeMutablePointer<Float>?, batch: Int, heads: Int,
                                                queries tq: Int, keys tk: Int, dimension d: Int, scale: Float,
                                                bias: AttentionBiasLayout?) {
        let qb = attentionQueryBlock, kb = attentionKeyBlock, shift = tk - tq
        let pairs = batch * heads
        // dK and dV of a pair gather from every query block, so pairs (not query blocks) split over cores.
        let chunks = min(Parallel.coreCount, pairs)
        Parallel.perform(iterations: chunks) { chunk in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: qb * kb)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: qb * kb)
            var delta = [Float](repeating: 0, count: tq)
            defer { p.deallocate(); dp.deallocate() }
            for pair in (chunk * pairs / chunks)..<((chunk + 1) * pairs / chunks) {
                let b = pair / heads, h = pair % heads
                // Δ_i = dO_i · O_i, the softmax backward's row term.
                for i in 0..<tq {
                    let o = out + (pair * tq + i) * d, g = dOut + (pair * tq + i) * d
                    var s: Float = 0
                    for x in 0..<d { s += o[x] * g[x] }
                    delta[i] = s
                }
                var i0 = 0
                while i0 < tq {
                    let rows = min(qb, tq - i0)
                    let qp = q + (pair * tq + i0) * d, gp = dOut + (pair * tq + i0) * d
                    let keyEnd = min(tk, i0 + rows + shift)
                    var j0 = 0
                    while j0 < keyEnd {
                        let cols = min(kb, keyEnd - j0)
                        let kp = k + (pair * tk + j0) * d, vp = v + (pair * tk + j0) * d
                        attentionTile(p, q: qp, k: kp, rows: rows, cols: cols, d: d, i0: i0, j0: j0, shift: shift,
                                      scale: scale, head: h, batch: b, tq: tq, tk: tk, bias: bias)
                        for r in 0..<rows {
                            _ = exponentiate(p + r * kb, count: cols, subtracting: logSumExp[pair * tq + i0 + r])
                        }
                        // dV += Pᵀ·dO;  dP = dO·Vᵀ.
                        sgemmBlock(transposeA: true, transposeB: false, m: cols, n: d, k: rows, alpha: 1, a: p, lda: kb,
                              b: gp, ldb: d, beta: 1, c: dv + (pair * tk + j0) * d, ldc: d)
                        sgemmBlock(transposeA: false, transposeB: true, m: rows, n: cols, k: d, alpha: 1, a: gp, lda: d,
                              b: vp, ldb: d, beta: 0, c: dp, ldc: kb)
                        // dS = P ⊙ (dP − Δ), kept in dp.
                        for r in 0..<rows {
                            let pr = p + r * kb, dr = dp + r * kb, di = delta[i0 + r]
                            for c in 0..<cols { dr[c] = pr[c] * (dr[c] - di) }
                        }
                        if let bias, let dBias {
                            let pb = b % bias.positionBatches, gradientRow = dBias + pair * bias.span
                            for r in 0..<rows {
                                let qpos = bias.queryPositions[pb * tq + i0 + r] - bias.minimumDistance
                                let kpos = bias.keyPositions + pb * tk + j0, dr = dp + r * kb
                                for c in 0..<max(0, min(cols, i0 + r + shift - j0 + 1)) { gradientRow[qpos - kpos[c]] += dr[c] }
                            }
                        }
                        // dQ += scale·dS·K;  dK += scale·dSᵀ·Q.
                        sgemmBlock(transposeA: false, transposeB: false, m: rows, n: d, k: cols, alpha: scale, a: dp, lda: kb,
                              b: kp, ldb: d, beta: 1, c: dq + (pair * tq + i0) * d, ldc: d)
                        sgemmBlock(transposeA: true, transposeB: false, m: cols, n: d, k: rows, alpha: scale, a: dp, lda: kb,
                              b: qp, ldb: d, beta: 1, c: dk + (pair * tk + j0) * d, ldc: d)
                        j0 += kb
                    }
                    i0 += qb
                }
            }
        }
    }
}
