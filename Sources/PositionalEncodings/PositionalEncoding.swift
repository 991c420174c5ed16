import NN
import TensorCore

/// PositionalEncodings: every way position enters a Transformer, behind one protocol.
/// Shape legend: B batch, T sequence (Tq queries, Tk keys), C model dimension, H heads,
/// D head dimension, R rotary dimension (R ≤ D, even).
///
/// Self-attention is order-blind; position enters at exactly one of these places.
public enum InjectionPoint: String, Codable, Sendable {
    /// Nowhere: the causal mask alone (NoPE).
    case none
    /// Added to the token embedding before the first block (absolute schemes): E = X + P.
    case inputEmbedding
    /// Applied to queries and keys before their dot product (rotary schemes).
    case queryKeyRotation
    /// Added to the attention scores before the softmax (relative biases, ALiBi).
    case attentionScore
}

/// A positional scheme. Each conforming type implements the member for its injection point;
/// the others keep their defaults, which the model never calls.
public protocol PositionalEncoding: Layer {
    /// Where this scheme enters attention.
    var injectionPoint: InjectionPoint { get }

    /// The largest position ID the scheme can represent, or nil when any is fine.
    var maximumPosition: Int? { get }

    /// Input embedding schemes: the [B, T, C] tensor added to the token embeddings.
    func inputEmbedding(positions: PositionIDs) throws -> Tensor

    /// Rotary schemes: queries or keys [B, H, T, D] ([B, T, H, D] with `layout` .timeThenHeads)
    /// rotated to `positions` [B, T]. `sequenceLength` is the current total length (dynamic scaling
    /// depends on it).
    func rotate(_ x: Tensor, positions: PositionIDs, sequenceLength: Int, layout: HeadLayout) throws -> Tensor

    /// Rotary schemes whose angles change with the current total length (dynamic NTK, LongRoPE):
    /// a KV cache must then keep keys unrotated and rotate them all at every step.
    var rotationDependsOnLength: Bool { get }

    /// Score schemes: the term added to the scaled scores QKᵀ/√D, [1 or B, H, Tq, Tk], for
    /// queries [B, H, Tq, D] at `queryPositions` and keys at `keyPositions`.
    func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor

    /// Score schemes whose bias depends on the relative distance δ = query − key position alone
    /// (and the head): the table [H, span] with column c the bias of δ = minimumDistance + c, built
    /// differentiably from the scheme's parameters, so blocked attention can add it tile by tile.
    /// Nil for schemes whose bias also depends on the queries (Shaw) or that have no bias.
    func distanceBiasTable(minimumDistance: Int, maximumDistance: Int) throws -> Tensor?
}

extension PositionalEncoding {
    public var maximumPosition: Int? { nil }

    public var rotationDependsOnLength: Bool { false }

    public func inputEmbedding(positions: PositionIDs) throws -> Tensor {
        throw notApplicable("inputEmbedding")
    }

    public func rotate(_ x: Tensor, positions: PositionIDs, sequenceLength: Int, layout: HeadLayout) throws -> Tensor {
        throw notApplicable("rotate")
    }

    /// `rotate` of queries or keys [B, H, T, D].
    public func rotate(_ x: Tensor, positions: PositionIDs, sequenceLength: Int) throws -> Tensor {
        try rotate(x, positions: positions, sequenceLength: sequenceLength, layout: .headsThenTime)
    }

    public func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        throw notApplicable("scoreBias")
    }

    public func distanceBiasTable(minimumDistance: Int, maximumDistance: Int) throws -> Tensor? { nil }

    /// `scoreBias` for a scheme whose bias depends on the distance alone: its `distanceBiasTable`
    /// over the distances present, looked up per (query, key). One mechanism serves the
    /// materialised path (here) and the blocked path (the table itself), so they cannot disagree.
    func scoreBiasFromDistanceTable(queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        guard let bias = try distanceScoreBias(queryPositions: queryPositions, keyPositions: keyPositions) else {
            throw notApplicable("distanceBiasTable")
        }
        return bias
    }

    /// The score bias [1 or B, H, Tq, Tk] of a scheme whose bias depends on the distance alone, built
    /// from its `distanceBiasTable` without the queries; nil when it has no such table (Shaw, whose
    /// bias reads the queries, and schemes without a bias). Where it is not nil it is `scoreBias`.
    public func distanceScoreBias(queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor? {
        // A scheme without a table answers before any distance is computed.
        guard try GradientMode.withoutGradient({ try distanceBiasTable(minimumDistance: 0, maximumDistance: 0) }) != nil
        else { return nil }
        let (distances, batches) = try relativeDistances(queryPositions, keyPositions)
        let low = distances.min() ?? 0, high = distances.max() ?? 0
        guard let table = try distanceBiasTable(minimumDistance: low, maximumDistance: high) else { return nil }
        // [H, span] → [span, H] rows, gathered per (batch, query, key) → [batches, H, Tq, Tk].
        return try table.transposed(0, 1).gatherRows(distances.map { $0 - low }, indexShape: [batches, queryPositions.length, keyPositions.length])
            .permuted([0, 3, 1, 2])
    }

    private func notApplicable(_ member: String) -> TensorError {
        TensorError.invalidArgument(operation: "\(Self.self).\(member)", parameter: "injection point",
                                    value: injectionPoint.rawValue, allowed: "the member of the scheme's own injection point")
    }

    /// Throws when a position is beyond what the scheme represents.
    public func checkRepresentable(_ positions: PositionIDs, operation: String) throws {
        if let limit = maximumPosition, let worst = positions.values.max(), worst > limit {
            throw TensorError.indexOutOfRange(operation: "\(operation): position beyond the scheme's table", index: worst, validRange: 0..<(limit + 1))
        }
        if let lowest = positions.values.min(), lowest < 0 {
            throw TensorError.indexOutOfRange(operation: "\(operation): negative position", index: lowest, validRange: 0..<Int.max)
        }
    }
}

/// Relative distances (query position − key position) for every query row and key column, per
/// batch row when positions differ between rows: [1 or B, Tq, Tk] row-major, and that leading count.
func relativeDistances(_ queries: PositionIDs, _ keys: PositionIDs) throws -> (values: [Int], batches: Int) {
    guard queries.batchSize == keys.batchSize else {
        throw TensorError.shapeMismatch(operation: "relative positions", shapes: [[queries.batchSize, queries.length], [keys.batchSize, keys.length]],
                                        detail: "query and key positions need the same batch size")
    }
    let shared = queries.relativeStructureIsShared && keys.relativeStructureIsShared && queries.offsetsMatch(keys)
    let batches = shared ? 1 : queries.batchSize
    let (tq, tk) = (queries.length, keys.length)
    var values = [Int](repeating: 0, count: batches * tq * tk)
    for b in 0..<batches {
        let qRow = b * tq, kRow = b * tk
        for i in 0..<tq {
            let qp = queries.values[qRow + i]
            for j in 0..<tk { values[(b * tq + i) * tk + j] = qp - keys.values[kRow + j] }
        }
    }
    return (values, batches)
}
