import TensorCore

/// AdamW (Loshchilov and Hutter 2019, "Decoupled Weight Decay Regularization"): Adam's update
/// with weight decay applied to the weights directly, not through the gradient.
///
///     p ← p − lr·λ·p
///     m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²
///     p ← p − lr·(m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε)
public struct AdamWConfiguration: Codable, Equatable, Sendable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) throws {
        try require(beta1 >= 0 && beta1 < 1, "beta1", beta1, "0 ≤ β₁ < 1")
        try require(beta2 >= 0 && beta2 < 1, "beta2", beta2, "0 ≤ β₂ < 1")
        try require(epsilon > 0, "epsilon", epsilon, "a positive value")
        try require(weightDecay >= 0, "weightDecay", weightDecay, "a non-negative value")
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(beta1: c.decode(Float.self, forKey: .beta1), beta2: c.decode(Float.self, forKey: .beta2),
                      epsilon: c.decode(Float.self, forKey: .epsilon), weightDecay: c.decode(Float.self, forKey: .weightDecay))
    }
}

public final class AdamW {
    public let configuration: AdamWConfiguration
    public let parameters: [Tensor]
    /// Whether weight decay applies to each parameter: matrices yes, gains and biases no (as GPT-2 and nanoGPT do).
    public let decays: [Bool]
    /// First and second moment estimates, one per parameter (saved in checkpoints).
    public let firstMoments: [TensorStorage]
    public let secondMoments: [TensorStorage]
    /// Updates taken so far (t in the bias corrections).
    public var stepCount: Int = 0

    public init(parameters: [Tensor], configuration: AdamWConfiguration, decays: [Bool]? = nil) throws {
        if let decays { try require(decays.count == parameters.count, "decays", decays.count, "one flag per parameter (\(parameters.count))") }
        self.configuration = configuration
        self.parameters = parameters
        self.decays = decays ?? parameters.map { $0.rank >= 2 }
        firstMoments = parameters.map { TensorStorage(count: $0.count) }
        secondMoments = parameters.map { TensorStorage(count: $0.count) }
    }

    /// One update with learning rate `learningRate`; parameters without a gradient are skipped.
    public func step(learningRate: Float) throws {
        try require(learningRate >= 0 && learningRate.isFinite, "learningRate", learningRate, "a finite, non-negative value")
        stepCount += 1
        let c = configuration
        let t = Float(stepCount)
        let correction1 = 1 - pow(c.beta1, t), correction2 = 1 - pow(c.beta2, t)
        for (index, parameter) in parameters.enumerated() {
            guard let gradient = parameter.gradient else { continue }
            Kernels.adamWUpdate(parameter.storage.pointer, gradient: gradient.storage.pointer,
                                firstMoment: firstMoments[index].pointer, secondMoment: secondMoments[index].pointer,
                                count: parameter.count, learningRate: learningRate, beta1: c.beta1, beta2: c.beta2,
                                epsilon: c.epsilon, weightDecay: decays[index] ? c.weightDecay : 0,
                                correction1: correction1, correction2: correction2)
        }
    }
}

extension Kernels {
    /// The fused AdamW update of one parameter buffer, eight lanes at a time (Swift's SIMD8) and
    /// spread over cores. Each lane does its twin's operations in its twin's order (no fused
    /// multiply-adds: Swift does not contract), and square root and division are correctly rounded
    /// in both, so the results are bit for bit those of `naiveAdamWUpdate`, which a test checks.
    public static func adamWUpdate(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                                   firstMoment m: UnsafeMutablePointer<Float>, secondMoment v: UnsafeMutablePointer<Float>,
                                   count: Int, learningRate lr: Float, beta1: Float, beta2: Float, epsilon: Float,
                                   weightDecay: Float, correction1: Float, correction2: Float) {
        let decay = 1 - lr * weightDecay
        let stepScale = lr / correction1
        let inverseCorrection2 = 1 / correction2
        let (keep1, take1, keep2, take2) = (beta1, 1 - beta1, beta2, 1 - beta2)
        Parallel.forEachChunk(count: count) { _, range in
            let (pr, gr, mr, vr) = (UnsafeMutableRawPointer(p), UnsafeRawPointer(g), UnsafeMutableRawPointer(m),
                                    UnsafeMutableRawPointer(v))
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let offset = i &* 4
                let gi = gr.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let mi = keep1 * mr.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self) + take1 * gi
                let vi = keep2 * vr.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self) + take2 * gi * gi
                mr.storeBytes(of: mi, toByteOffset: offset, as: SIMD8<Float>.self)
                vr.storeBytes(of: vi, toByteOffset: offset, as: SIMD8<Float>.self)
                let pi = pr.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let updated = pi * decay - stepScale * mi / ((vi * inverseCorrection2).squareRoot() + epsilon)
                pr.storeBytes(of: updated, toByteOffset: offset, as: SIMD8<Float>.self)
                i &+= 8
            }
            naiveAdamWUpdate(p + i, gradient: g + i, firstMoment: m + i, secondMoment: v + i, count: range.upperBound - i,
                             beta1: beta1, beta2: beta2, epsilon: epsilon, decay: decay, stepScale: stepScale,
                             inverseCorrection2: inverseCorrection2)
        }
    }

    /// Scalar twin of `adamWUpdate` (and its tail): one element at a time, on one thread, with the
    /// step's constants as `adamWUpdate` derives them.
    public static func naiveAdamWUpdate(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                                        firstMoment m: UnsafeMutablePointer<Float>,
                                        secondMoment v: UnsafeMutablePointer<Float>, count: Int, beta1: Float,
                                        beta2: Float, epsilon: Float, decay: Float, stepScale: Float,
                                        inverseCorrection2: Float) {
        for i in 0..<max(0, count) {
            let gi = g[i]
            let mi = beta1 * m[i] + (1 - beta1) * gi
            let vi = beta2 * v[i] + (1 - beta2) * gi * gi
            m[i] = mi; v[i] = vi
            p[i] = p[i] * decay - stepScale * mi / ((vi * inverseCorrection2).squareRoot() + epsilon)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
