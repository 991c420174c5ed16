import Foundation
import TensorCore

/// Linear warm-up to the peak rate, then cosine decay to the minimum rate at `totalSteps`
/// (the schedule of GPT-3, Brown et al. 2020, and of nanoGPT).
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public var peak: Float
    public var minimum: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, minimum: Float? = nil, warmupSteps: Int, totalSteps: Int) throws {
        try require(peak > 0 && peak.isFinite, "learningRate", peak, "a positive, finite value")
        let minimum = minimum ?? peak / 10
        try require(minimum >= 0 && minimum <= peak, "minimumLearningRate", minimum, "0 ≤ minimum ≤ peak (\(peak))")
        try require(totalSteps > 0, "steps", totalSteps, "a positive count")
        try require(warmupSteps >= 0 && warmupSteps <= totalSteps, "warmupSteps", warmupSteps, "0 ≤ warm-up ≤ steps (\(totalSteps))")
        self.peak = peak; self.minimum = minimum; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(peak: c.decode(Float.self, forKey: .peak), minimum: c.decode(Float.self, forKey: .minimum),
                      warmupSteps: c.decode(Int.self, forKey: .warmupSteps), totalSteps: c.decode(Int.self, forKey: .totalSteps))
    }

    /// The rate for zero-based `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minimum + (peak - minimum) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// Scales every gradient by min(1, maxNorm/‖g‖) where ‖g‖ is the global L2 norm over all
/// parameters (Pascanu et al. 2013). Returns ‖g‖ before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float) throws -> Float {
    try require(maxNorm > 0, "maxGradientNorm", maxNorm, "a positive value")
    let gradients = parameters.compactMap(\.gradient)
    let total = gradients.reduce(0.0) { $0 + Kernels.sumOfSquares($1.storage.pointer, count: $1.count) }.squareRoot()
    let norm = Float(total)
    if norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for g in gradients { Kernels.affine(g.storage.pointer, g.storage.pointer, count: g.count, alpha: scale, beta: 0) }
    }
    return norm
}
