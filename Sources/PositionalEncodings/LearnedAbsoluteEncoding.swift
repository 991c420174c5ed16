import NN
import TensorCore

/// Learned absolute positions (GPT-2; Radford et al. 2019): a trainable table P of
/// `maximumLength` rows, E = X + P[pos]. Injection point: the input embedding.
///
/// The table has no row for a position at or past `maximumLength`: asking for one is an error
/// naming the position and the table size, never a silent clamp.
public final class LearnedAbsoluteEncoding: PositionalEncoding {
    public let table: Embedding
    public let maximumLength: Int

    public init(maximumLength: Int, modelDimension: Int, standardDeviation: Float = 0.01, generator: inout SplitMix64) throws {
        try require(maximumLength > 0, "maximumLength", maximumLength, "a positive length")
        table = try Embedding(count: maximumLength, dimension: modelDimension, standardDeviation: standardDeviation, generator: &generator)
        self.maximumLength = maximumLength
    }

    public var injectionPoint: InjectionPoint { .inputEmbedding }
    public var maximumPosition: Int? { maximumLength - 1 }
    public var namedParameters: [(name: String, tensor: Tensor)] { prefixed("table", table.namedParameters) }

    public func inputEmbedding(positions: PositionIDs) throws -> Tensor {
        try checkRepresentable(positions, operation: "learned absolute positions (maximumLength \(maximumLength))")
        return try table(positions.values, shape: [positions.batchSize, positions.length])
    }
}
