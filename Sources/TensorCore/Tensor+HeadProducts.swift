/// Attention's two products per head, read from and written to the projections' layout
/// [B, T, H, D] (a [B, T, C] projection reshaped, C = H·D) with row stride H·D: no permute to
/// [B, H, T, D] and back. Each (b, h) is one product of the same shapes, transposes and order as
/// `matmul` on [B, H, T, D] copies, so the results are the same bit for bit; only the strides differ.
/// Shapes: B batch, H heads, Tq queries, Tk keys, D head dimension.

/// How attention heads lie in a rank-4 tensor.
public enum HeadLayout: Sendable {
    /// [B, H, T, D]: each head's rows together, as `matmul`, blocked attention and the KV cache read them.
    case headsThenTime
    /// [B, T, H, D]: a projection's [B, T, C] output reshaped (C = H·D), each token's heads together.
    case timeThenHeads

    /// The axis that holds the positions: 2 in [B, H, T, D], 1 in [B, T, H, D] (the heads' is 3 − it).
    public var timeAxis: Int { self == .headsThenTime ? 2 : 1 }

    /// The layout as shape errors name it.
    public var legend: String { self == .headsThenTime ? "[B, H, T, D]" : "[B, T, H, D]" }

    /// The batch row and position of row `row` of [B, H, T] (or [B, T, H]) rows.
    @inline(__always) func batchAndPosition(ofRow row: Int, heads: Int, length: Int) -> (batch: Int, position: Int) {
        let batch = row / (heads &* length)
        return (batch, self == .headsThenTime ? row % length : (row / heads) % length)
    }
}

/// The batch row and position of consecutive rows of [B, H, T] (or [B, T, H]) rows: the divisions of
/// `batchAndPosition` once, then a step per row (a kernel with a head dimension of 16 spent more on the
/// three divisions per row than on the row).
public struct HeadRowWalker {
    public private(set) var batch: Int, position: Int
    private var head: Int
    private let heads: Int, length: Int, layout: HeadLayout

    /// Starts at row `row`.
    public init(row: Int, heads: Int, length: Int, layout: HeadLayout) {
        (self.heads, self.length, self.layout) = (heads, length, layout)
        (batch, position) = layout.batchAndPosition(ofRow: row, heads: heads, length: length)
        head = layout == .headsThenTime ? (row / length) % heads : row % heads
    }

    /// Moves to the next row.
    @inline(__always) public mutating func advance() {
        if layout == .headsThenTime {
            position &+= 1
            if position == length { position = 0; head &+= 1; if head == heads { head = 0; batch &+= 1 } }
        } else {
            head &+= 1
            if head == heads { head = 0; position &+= 1; if position == length { position = 0; batch &+= 1 } }
        }
    }
}

extension Tensor {
    /// Scores scale · Q_bh · K_bhᵀ for queries [B, Tq, H, D] and keys [B, Tk, H, D]; result
    /// [B, H, Tq, Tk]. Gradients flow to both (written in their own layout).
    public static func headScores(queries q: Tensor, keys k: Tensor, scale: Float) throws -> Tensor {
        let name = "headScores"
        guard q.rank == 4, k.rank == 4, q.shape[0] == k.shape[0], q.shape[2] == k.shape[2],
              q.shape[3] == k.shape[3] else {
            throw TensorError.shapeMismatch(operation: name, shapes: [q.shape, k.shape],
                                            detail: "expects queries [B, Tq, H, D] and keys [B, Tk, H, D]")
        }
        let (b, tq, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]), tk = k.shape[1]
        let layout = HeadUnits(heads: h, dimension: d), row = layout.rowStride, units = b * h, work = tq * tk * d
        let head = layout.offset  // unit i's scores: the block at i·Tq·Tk
        let out = TensorStorage(count: units * tq * tk, zeroed: false)
        let (qs, ks) = (q.storage, k.storage)
        forEachProduct(units, work: work) { i in
            Kernels.sgemmBlock(transposeA: false, transposeB: true, m: tq, n: tk, k: d, alpha: scale,
                               a: qs.pointer + head(i, tq), lda: row, b: ks.pointer + head(i, tk), ldb: row,
                               beta: 0, c: out.pointer + i * tq * tk, ldc: tk)
        }
        return Tensor.result(shape: [b, h, tq, tk], storage: out, operation: name, inputs: [q, k]) { g in
            // dQ_bh = scale · dS_bh · K_bh and dK_bh = scale · dS_bhᵀ · Q_bh, each (b, h) its own block.
            if q.isTracked {
                let (dq, add) = q.gradientDestination()
                forEachProduct(units, work: work) { i in
                    Kernels.sgemmBlock(transposeA: false, transposeB: false, m: tq, n: d, k: tk, alpha: scale,
                                       a: g + i * tq * tk, lda: tk, b: ks.pointer + head(i, tk), ldb: row,
                                       beta: add ? 1 : 0, c: dq + head(i, tq), ldc: row)
                }
            }
            if k.isTracked {
                let (dk, add) = k.gradientDestination()
                forEachProduct(units, work: work) { i in
                    Kernels.sgemmBlock(transposeA: true, transposeB: false, m: tk, n: d, k: tq, alpha: scale,
                                       a: g + i * tq * tk, lda: tk, b: qs.pointer + head(i, tq), ldb: row,
                                       beta: add ? 1 : 0, c: dk + head(i, tk), ldc: row)
                }
            }
        }
    }

    /// Context P_bh · V_bh for probabilities [B, H, Tq, Tk] and values [B, Tk, H, D]; result
    /// [B, Tq, H, D], the output projection's input once reshaped to [B, Tq, C].
    public static func headContext(probabilities p: Tensor, values v: Tensor) throws -> Tensor {
        let name = "headContext"
        guard p.rank == 4, v.rank == 4, p.shape[0] == v.shape[0], p.shape[1] == v.shape[2],
              p.shape[3] == v.shape[1] else {
            throw TensorError.shapeMismatch(operation: name, shapes: [p.shape, v.shape],
                                            detail: "expects probabilities [B, H, Tq, Tk] and values [B, Tk, H, D]")
        }
        let (b, h, tq, tk) = (p.shape[0], p.shape[1], p.shape[2], p.shape[3]), d = v.shape[3]
        let layout = HeadUnits(heads: h, dimension: d), row = layout.rowStride, units = b * h, work = tq * tk * d
        let head = layout.offset  // unit i's probabilities: the block at i·Tq·Tk
        let out = TensorStorage(count: b * tq * row, zeroed: false)
        let (ps, vs) = (p.storage, v.storage)
        forEachProduct(units, work: work) { i in
            Kernels.sgemmBlock(transposeA: false, transposeB: false, m: tq, n: d, k: tk, alpha: 1,
                               a: ps.pointer + i * tq * tk, lda: tk, b: vs.pointer + head(i, tk), ldb: row,
                               beta: 0, c: out.pointer + head(i, tq), ldc: row)
        }
        return Tensor.result(shape: [b, tq, h, d], storage: out, operation: name, inputs: [p, v]) { g in
            // dP_bh = dO_bh · V_bhᵀ and dV_bh = P_bhᵀ · dO_bh.
            if p.isTracked {
                let (dp, add) = p.gradientDestination()
                forEachProduct(units, work: work) { i in
                    Kernels.sgemmBlock(transposeA: false, transposeB: true, m: tq, n: tk, k: d, alpha: 1,
                                       a: g + head(i, tq), lda: row, b: vs.pointer + head(i, tk), ldb: row,
                                       beta: add ? 1 : 0, c: dp + i * tq * tk, ldc: tk)
                }
            }
            if v.isTracked {
                let (dv, add) = v.gradientDestination()
                forEachProduct(units, work: work) { i in
                    Kernels.sgemmBlock(transposeA: true, transposeB: false, m: tk, n: d, k: tq, alpha: 1,
                                       a: ps.pointer + i * tq * tk, lda: tk, b: g + head(i, tq), ldb: row,
                                       beta: add ? 1 : 0, c: dv + head(i, tk), ldc: row)
                }
            }
        }
    }
}

/// The (b, h) units of [B, T, H, D] tensors, unit i = b·H + h, each a [T, D] matrix with row stride H·D.
struct HeadUnits {
    let heads: Int, dimension: Int
    var rowStride: Int { heads * dimension }

    /// Where unit `unit`'s first row lies in a [B, length, H, D] tensor: b·length·H·D + h·D.
    func offset(_ unit: Int, _ length: Int) -> Int {
        (unit / heads) * length * rowStride + (unit % heads) * dimension
    }
}
