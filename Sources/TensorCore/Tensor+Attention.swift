/// A bias that depends only on the relative distance δ = queryPosition − keyPosition:
/// bias(h, i, j) = table[h, δ − minimumDistance]. Shapes: table [H, span]; queryPositions
/// [N, Tq] and keyPositions [N, Tk] row-major, N = `positionBatches` (1 when every batch row shares
/// its positions, else B).
public struct DistanceBias {
    public var table: Tensor
    public var minimumDistance: Int
    public var queryPositions: [Int]
    public var keyPositions: [Int]
    public var positionBatches: Int

    public init(table: Tensor, minimumDistance: Int, queryPositions: [Int], keyPositions: [Int], positionBatches: Int) {
        self.table = table; self.minimumDistance = minimumDistance
        self.queryPositions = queryPositions; self.keyPositions = keyPositions; self.positionBatches = positionBatches
    }

    /// The smallest and largest query − key position over the pairs the causal mask lets through
    /// (query i sees keys j ≤ i + Tk − Tq), in O(Tq + Tk) per row; nil when there are none.
    /// Positions are [batches, Tq] and [batches, Tk] row-major.
    public static func visibleDistanceRange(queryPositions qp: [Int], keyPositions kp: [Int], batches: Int,
                                            queries tq: Int, keys tk: Int) -> ClosedRange<Int>? {
        var low = Int.max, high = Int.min
        for row in 0..<batches {
            var keyLow = Int.max, keyHigh = Int.min, j = 0
            for i in 0..<tq {
                while j <= i + tk - tq { keyLow = min(keyLow, kp[row * tk + j]); keyHigh = max(keyHigh, kp[row * tk + j]); j += 1 }
                low = min(low, qp[row * tq + i] - keyHigh); high = max(high, qp[row * tq + i] - keyLow)
            }
        }
        return low <= high ? low...high : nil
    }
}

extension Tensor {
    /// Causal attention computed in key blocks with an online softmax (FlashAttention's schedule):
    /// softmax(scale·QKᵀ + bias + causal mask)·V without a T×T score matrix.
    ///
    /// Shapes: queries [B, H, Tq, D], keys and values [B, H, Tk, D] with Tq ≤ Tk (the queries are
    /// the last Tq tokens), result [B, H, Tq, D]. Gradients flow to queries, keys, values and the
    /// bias table. `Kernels.blockedAttentionForward` holds the kernel; the materialised
    /// composition (matmul, add, softmax, matmul) is its naive twin in the tests.
    public static func causalAttention(queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float,
                                       distanceBias: DistanceBias? = nil) throws -> Tensor {
        let name = "causalAttention"
        guard q.rank == 4, k.rank == 4, v.rank == 4, k.shape == v.shape, q.shape[0] == k.shape[0], q.shape[1] == k.shape[1],
              q.shape[3] == k.shape[3], q.shape[2] <= k.shape[2] else {
            throw TensorError.shapeMismatch(operation: name, shapes: [q.shape, k.shape, v.shape],
                                            detail: "expects queries [B, H, Tq, D], keys and values [B, H, Tk, D], Tq ≤ Tk")
        }
        let (b, h, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]), tk = k.shape[2]
        guard scale.isFinite else {
            throw TensorError.invalidArgument(operation: name, parameter: "scale", value: "\(scale)", allowed: "a finite number")
        }
        if let bias = distanceBias { try validate(bias, batch: b, heads: h, queries: tq, keys: tk) }
        let out = TensorStorage(count: q.count, zeroed: false)
        let logSumExp = TensorStorage(count: b * h * tq, zeroed: false)
        let queryPositions = distanceBias?.queryPositions ?? [], keyPositions = distanceBias?.keyPositions ?? []
        withBiasLayout(distanceBias, queryPositions, keyPositions) { layout in
            Kernels.blockedAttentionForward(q: q.storage.pointer, k: k.storage.pointer, v: v.storage.pointer, out: out.pointer,
                                            logSumExp: logSumExp.pointer, batch: b, heads: h, queries: tq, keys: tk,
                                            dimension: d, scale: scale, bias: layout)
        }
        let inputs = [q, k, v] + (distanceBias.map { [$0.table] } ?? [])
        return Tensor.result(shape: q.shape, storage: out, operation: name, inputs: inputs) { g in
            // The kernel accumulates (beta = 1), so tracked inputs take their gradients in place;
            // only an untracked input needs a scratch buffer.
            var scratch: [TensorStorage] = []  // kept alive until the kernel has run
            func target(_ x: Tensor) -> UnsafeMutablePointer<Float> {
                if x.isTracked { return x.gradientPointer() }
                scratch.append(TensorStorage(count: x.count))
                return scratch[scratch.count - 1].pointer
            }
            let (dq, dk, dv) = (target(q), target(k), target(v))
            let span = distanceBias?.table.shape[1] ?? 0
            let dBias = distanceBias?.table.isTracked == true ? TensorStorage(count: b * h * span) : nil
            withBiasLayout(distanceBias, queryPositions, keyPositions) { layout in
                Kernels.blockedAttentionBackward(q: q.storage.pointer, k: k.storage.pointer, v: v.storage.pointer,
                                                 out: out.pointer, dOut: g, logSumExp: logSumExp.pointer, dq: dq,
                                                 dk: dk, dv: dv, dBias: dBias?.pointer, batch: b, heads: h,
                                                 queries: tq, keys: tk, dimension: d, scale: scale, bias: layout)
            }
            withExtendedLifetime(scratch) {}
            if let dBias, let table = distanceBias?.table {
                let tableGradient = table.gradientPointer()
                for pair in 0..<(b * h) {
                    Kernels.accumulate(dBias.pointer + pair * span, into: tableGradient + (pair % h) * span, count: span)
                }
            }
        }
    }

    private static func validate(_ bias: DistanceBias, batch: Int, heads: Int, queries: Int, keys: Int) throws {
        let name = "causalAttention"
        guard bias.table.rank == 2, bias.table.shape[0] == heads, bias.table.shape[1] > 0 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [bias.table.shape], detail: "the distance bias table must be [H = \(heads), span]")
        }
        let n = bias.positionBatches
        guard n > 0, batch % n == 0, bias.queryPositions.count == n * queries, bias.keyPositions.count == n * keys else {
            throw TensorError.shapeMismatch(operation: name, shapes: [[bias.queryPositions.count], [bias.keyPositions.count]],
                                            detail: "positions must be [N, Tq] and [N, Tk] with N (\(n)) dividing B (\(batch))")
        }
        // Every visible (query, key) distance must index the table: checked here, not trusted in the kernel.
        let span = bias.table.shape[1]
        if let range = DistanceBias.visibleDistanceRange(queryPositions: bias.queryPositions, keyPositions: bias.keyPositions,
                                                         batches: n, queries: queries, keys: keys) {
            for index in [range.lowerBound - bias.minimumDistance, range.upperBound - bias.minimumDistance] where index < 0 || index >= span {
                throw TensorError.indexOutOfRange(operation: "\(name): distance bias table", index: index, validRange: 0..<span)
            }
        }
    }

    private static func withBiasLayout(_ bias: DistanceBias?, _ queryPositions: [Int], _ keyPositions: [Int],
                                       _ body: (AttentionBiasLayout?) -> Void) {
        guard let bias else { return body(nil) }
        queryPositions.withUnsafeBufferPointer { qp in
            keyPositions.withUnsafeBufferPointer { kp in
                body(AttentionBiasLayout(table: UnsafePointer(bias.table.storage.pointer), span: bias.table.shape[1],
                                         minimumDistance: bias.minimumDistance, queryPositions: qp.baseAddress!,
                                         keyPositions: kp.baseAddress!, positionBatches: bias.positionBatches))
            }
        }
    }
}
