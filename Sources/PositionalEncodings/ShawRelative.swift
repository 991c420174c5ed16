import NN
import TensorCore

/// Relative key embeddings (Shaw, Uszkoreit and Vaswani 2018, "Self-Attention with Relative
/// Position Representations"): a learned vector a_r per clipped offset r = clip(j − i, −K, K),
/// shared by the heads of a layer, enters the score through the query:
///
///     e_ij = q_i·(k_j + a_{clip(j−i)}) / √D = (q_i·k_j + q_i·a_{clip(j−i)}) / √D
///
/// Injection point: the attention scores (the term q_i·a_{clip(j−i)}/√D). Computed as
/// Q·Aᵀ ([…, Tq, 2K+1]) followed by a gather of each query's offsets, never as a Tq×Tk×D tensor.
public final class ShawRelative: PositionalEncoding {
    /// The table [2K+1, D]: row r is a_{r−K}.
    public let table: Tensor
    public let maximumDistance: Int
    public let headDimension: Int

    public init(maximumDistance: Int, headDimension: Int, generator: inout SplitMix64) throws {
        try require(maximumDistance > 0, "maximumDistance", maximumDistance, "a positive distance")
        try require(headDimension > 0, "headDimension", headDimension, "a positive dimension")
        table = try Tensor(normal: [2 * maximumDistance + 1, headDimension], standardDeviation: 0.02, generator: &generator, requiresGradient: true)
        self.maximumDistance = maximumDistance
        self.headDimension = headDimension
    }

    public var injectionPoint: InjectionPoint { .attentionScore }
    public var namedParameters: [(name: String, tensor: Tensor)] { [("table", table)] }

    public func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        guard queries.rank == 4, queries.shape[3] == headDimension, queries.shape[2] == queryPositions.length else {
            throw TensorError.shapeMismatch(operation: "ShawRelative.scoreBias", shapes: [queries.shape],
                                            detail: "queries must be [B, H, Tq, D] with D = \(headDimension), Tq = \(queryPositions.length)")
        }
        let (distances, batches) = try relativeDistances(queryPositions, keyPositions)
        let k = maximumDistance
        // Offset j − i = −(i − j), clipped, as a table row.
        let columns = distances.map { min(max(-$0, -k), k) + k }
        let perOffset = try queries.matmul(table, transposeOther: true) // [B, H, Tq, 2K+1]
        return try perOffset.gatheringLastAxis(columns, columns: keyPositions.length, indexBatches: batches)
            .scaled(by: 1 / Float(headDimension).squareRoot())
    }
}
