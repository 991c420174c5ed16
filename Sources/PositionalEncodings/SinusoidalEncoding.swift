import Foundation
import NN
import TensorCore

/// Absolute sinusoidal positions (Vaswani et al. 2017, "Attention Is All You Need", §3.5):
///
///     P[pos, 2i]   = sin(pos / base^(2i/C))
///     P[pos, 2i+1] = cos(pos / base^(2i/C))
///
/// with base 10000, multiplied by `scale` (1 in the paper; some models use √C or a learned
/// scalar's initial value). Injection point: the input embedding, E = X + scale·P.
/// No parameters; defined for every position.
public final class SinusoidalEncoding: PositionalEncoding {
    public let modelDimension: Int
    public let base: Double
    public let scale: Float

    public init(modelDimension: Int, base: Double = 10_000, scale: Float = 1) throws {
        try require(modelDimension > 0 && modelDimension % 2 == 0, "modelDimension", modelDimension, "a positive even dimension")
        try require(base > 1, "base", base, "a value above 1")
        try require(scale.isFinite, "scale", scale, "a finite value")
        self.modelDimension = modelDimension
        self.base = base
        self.scale = scale
    }

    public var injectionPoint: InjectionPoint { .inputEmbedding }
    public var namedParameters: [(name: String, tensor: Tensor)] { [] }

    /// The interleaved table row for one position, computed in Double.
    public func row(position: Int) -> [Float] {
        var row = [Float](repeating: 0, count: modelDimension)
        for i in 0..<(modelDimension / 2) {
            let angle = Double(position) / pow(base, Double(2 * i) / Double(modelDimension))
            row[2 * i] = scale * Float(sin(angle))
            row[2 * i + 1] = scale * Float(cos(angle))
        }
        return row
    }

    public func inputEmbedding(positions: PositionIDs) throws -> Tensor {
        try checkRepresentable(positions, operation: "sinusoidal")
        var values: [Float] = []
        values.reserveCapacity(positions.values.count * modelDimension)
        var cache: [Int: [Float]] = [:]
        for p in positions.values {
            if let row = cache[p] { values += row } else { let row = row(position: p); cache[p] = row; values += row }
        }
        return try Tensor(values, shape: [positions.batchSize, positions.length, modelDimension])
    }
}
