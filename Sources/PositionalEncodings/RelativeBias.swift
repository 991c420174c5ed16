import NN
import TensorCore

/// A learned scalar per head per clipped relative distance, added inside the scaling:
///
///     A_ij = (q_i·k_j + R_h[clip(i − j, −K, K)]) / √D
///
/// (the seed document's form of relative position encoding; Shaw et al. 2018 and Huang et al.
/// 2019 clip distances the same way). Injection point: the attention scores. Distances beyond
/// K share the last entry, so any length is representable.
public final class RelativeBias: PositionalEncoding {
    /// The table [2K+1, H]: row r holds the bias of distance r − K for every head.
    public let table: Tensor
    public let maximumDistance: Int
    public let headDimension: Int

    public init(maximumDistance: Int, numberOfHeads: Int, headDimension: Int) throws {
        try require(maximumDistance > 0, "maximumDistance", maximumDistance, "a positive distance")
        try require(numberOfHeads > 0, "numberOfHeads", numberOfHeads, "a positive count")
        try require(headDimension > 0, "headDimension", headDimension, "a positive dimension")
        table = try Tensor(zeros: [2 * maximumDistance + 1, numberOfHeads], requiresGradient: true)
        self.maximumDistance = maximumDistance
        self.headDimension = headDimension
    }

    public var injectionPoint: InjectionPoint { .attentionScore }
    public var namedParameters: [(name: String, tensor: Tensor)] { [("table", table)] }

    public func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        try scoreBiasFromDistanceTable(queryPositions: queryPositions, keyPositions: keyPositions)
    }

    /// Column c holds R_h[clip(δ, −K, K)]/√D for δ = minimumDistance + c.
    public func distanceBiasTable(minimumDistance: Int, maximumDistance: Int) throws -> Tensor? {
        let k = self.maximumDistance
        let rows = (minimumDistance...maximumDistance).map { min(max($0, -k), k) + k }
        return try table.gatherRows(rows, indexShape: [rows.count]).transposed(0, 1).scaled(by: 1 / Float(headDimension).squareRoot())
    }
}
