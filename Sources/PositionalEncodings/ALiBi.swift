import Foundation
import NN
import TensorCore

/// ALiBi (Press, Smith and Lewis 2022, "Train Short, Test Long: Attention with Linear Biases
/// Enables Input Length Extrapolation"): no position embedding; each head h adds
///
///     bias(i, j) = −m_h · (i − j)
///
/// to the scaled score of query i and key j (j ≤ i under the causal mask). Injection point: the
/// attention scores. The slopes m_h form a geometric sequence starting at 2^(−8/n) with that
/// ratio, for n heads a power of two; otherwise the slopes of the closest smaller power of two,
/// followed by every other slope of the next power of two (the paper's rule, as BLOOM and MPT
/// compute it).
public final class ALiBi: PositionalEncoding {
    public let slopes: [Float]

    public init(numberOfHeads: Int) throws {
        try require(numberOfHeads > 0, "numberOfHeads", numberOfHeads, "a positive count")
        slopes = ALiBi.slopes(numberOfHeads: numberOfHeads).map(Float.init)
    }

    /// The paper's slopes for `numberOfHeads` heads, in Double.
    public static func slopes(numberOfHeads n: Int) -> [Double] {
        func powerOfTwoSlopes(_ count: Int) -> [Double] {
            let start = pow(2, -8 / Double(count))
            return (1...count).map { pow(start, Double($0)) }
        }
        var closest = 1
        while closest * 2 <= n { closest *= 2 }
        var result = powerOfTwoSlopes(closest)
        if closest < n {
            let extra = powerOfTwoSlopes(2 * closest)
            result += stride(from: 0, to: 2 * (n - closest), by: 2).map { extra[$0] }
        }
        return result
    }

    public var injectionPoint: InjectionPoint { .attentionScore }
    public var namedParameters: [(name: String, tensor: Tensor)] { [] }

    public func scoreBias(queries: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Tensor {
        try scoreBiasFromDistanceTable(queryPositions: queryPositions, keyPositions: keyPositions)
    }

    public func distanceBiasTable(minimumDistance: Int, maximumDistance: Int) throws -> Tensor? {
        let span = maximumDistance - minimumDistance + 1
        var values = [Float](repeating: 0, count: slopes.count * span)
        for (head, m) in slopes.enumerated() {
            for c in 0..<span { values[head * span + c] = -m * Float(minimumDistance + c) }
        }
        return try Tensor(values, shape: [slopes.count, span])
    }
}
