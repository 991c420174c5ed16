import Foundation
import NN
import TensorCore

/// T5's bucketed relative bias (Raffel et al. 2020, "Exploring the Limits of Transfer Learning
/// with a Unified Text-to-Text Transformer", §2.1): a learned scalar per head per bucket of the
/// relative position n = key − query, added to the (unscaled in T5; here, scaled) scores.
///
/// Buckets: half of them (`numberOfBuckets`/2, after halving once more for the sign when
/// bidirectional) hold exact small distances; the rest grow logarithmically up to
/// `maximumDistance`, beyond which all distances share the last bucket. Injection point: the
/// attention scores. The logarithm is taken only for distances past the exact range, so log(0)
/// never occurs (transformers computes it for all and discards it with a `where`).
public final class T5Bias: PositionalEncoding {
    /// The table [numberOfBuckets, H].
    public let table: Tensor
    public let numberOfBuckets: Int
    public let maximumDistance: Int
    public let bidirectional: Bool

    public init(numberOfBuckets: Int = 32, maximumDistance: Int = 128, bidirectional: Bool = false,
                numberOfHeads: Int, generator: inout SplitMix64) throws {
        try T5Bias.validate(numberOfBuckets: numberOfBuckets, maximumDistance: maximumDistance, bidirectional: bidirectional)
        try require(numberOfHeads > 0, "numberOfHeads", numberOfHeads, "a positive count")
        table = try Tensor(normal: [numberOfBuckets, numberOfHeads], standardDeviation: 0.02, generator: &generator, requiresGradient: true)
        self.numberOfBuckets = numberOfBuckets
        self.maximumDistance = maximumDistance
        self.bidirectional = bidirectional
    }

    public static func validate(numberOfBuckets: Int, maximumDistance: Int, bidirectional: Bool) throws {
        let minimum = bidirectional ? 4 : 2
        try require(numberOfBuckets >= minimum, "numberOfBuckets", numberOfBuckets, "at least \(minimum)")
        let exact = (bidirectional ? numberOfBuckets / 2 : numberOfBuckets) / 2
        try require(maximumDistance > exact, "maximumDistance", maximumDistance,
                    "more than the exact range (\(exact) for \(numberOfBuckets) buckets\(bidirectional ? ", bidirectional" : ""))")
    }

    public var injectionPoint: InjectionPoint { .attentionScore }
    public var namedParameters: [(name: String, tensor: Tensor)] { [("table", table)] }

    /// The bucket of relative position `relativePosition` (key − query), as transformers'
    /// `T5Attention._relative_position_bucket` computes it (in Float32, like its tensors).
    public static func bucket(relativePosition: Int, bidirectional: Bool, numberOfBuckets: Int, maximumDistance: Int) -> Int {
        var buckets = numberOfBuckets
        var result = 0
        var n: Int
        if bidirectional {
            buckets /= 2
            if relativePosition > 0 { result += buckets }
            n = abs(relativePosition)
        } else {
            n = max(-relativePosition, 0)
        }
        let exact = buckets / 2
        if n < exact { return result + n }
        let ratio = Float(log(Double(maximumDistance) / Double(exact)))
        let large = exact + Int(logf(Float(n) / Float(exact)) / ratio * Float(buckets - exact))
        return result + min(large, buckets - 1)
    }

    public func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        try scoreBiasFromDistanceTable(queryPositions: queryPositions, keyPositions: keyPositions)
    }

    /// Column c holds the bias of the bucket of δ = minimumDistance + c (relative position −δ).
    public func distanceBiasTable(minimumDistance: Int, maximumDistance: Int) throws -> Tensor? {
        let rows = (minimumDistance...maximumDistance).map {
            T5Bias.bucket(relativePosition: -$0, bidirectional: bidirectional, numberOfBuckets: numberOfBuckets, maximumDistance: self.maximumDistance)
        }
        return try table.gatherRows(rows, indexShape: [rows.count]).transposed(0, 1)
    }
}
