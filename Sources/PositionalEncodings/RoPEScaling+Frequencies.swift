import Foundation
import TensorCore

/// Inverse frequencies θ_i (i < R/2) and the attention factor that scales cos and sin.
public struct RoPEFrequencies: Equatable, Sendable {
    public var inverseFrequencies: [Double]
    public var attentionFactor: Double
}

extension RoPEScaling {
    /// The frequencies for rotary dimension R (`rotaryDimension`), `base`, the model's
    /// `maximumPositionEmbeddings` (transformers' `max_position_embeddings`: dynamic's L₀, and the
    /// original length of yarn, llama3 and longrope when the dictionary gives none) and the current
    /// `sequenceLength` (read by dynamic and longrope). Formulas follow transformers 5.24's
    /// `modeling_rope_utils` (`_compute_*_parameters`); `ReferenceFixtureTests` checks them
    /// against its output.
    public func frequencies(rotaryDimension dim: Int, base: Double, maximumPositionEmbeddings: Int? = nil,
                            sequenceLength: Int? = nil) throws -> RoPEFrequencies {
        guard dim > 0, dim % 2 == 0 else {
            throw ConfigurationError(parameter: "rotary dimension", value: "\(dim)", allowed: "a positive even number")
        }
        guard base > 0, base.isFinite else { throw ConfigurationError(parameter: "rope_theta (base)", value: "\(base)", allowed: "a positive number") }
        let half = dim / 2
        func standard(_ b: Double) -> [Double] { (0..<half).map { 1 / pow(b, Double(2 * $0) / Double(dim)) } }
        func original(_ given: Int?, _ type: String) throws -> Int {
            guard let length = given ?? maximumPositionEmbeddings else {
                throw ConfigurationError(parameter: "\(type).original_max_position_embeddings", value: "missing",
                                         allowed: "a positive whole number in the parameters, or the model's max_position_embeddings")
            }
            return length
        }
        switch self {
        case .none:
            return RoPEFrequencies(inverseFrequencies: standard(base), attentionFactor: 1)
        case let .linear(factor):
            return RoPEFrequencies(inverseFrequencies: standard(base).map { $0 / factor }, attentionFactor: 1)
        case let .ntk(factor):
            return RoPEFrequencies(inverseFrequencies: standard(base * pow(factor, Double(dim) / Double(dim - 2))), attentionFactor: 1)
        case let .dynamic(factor, originalLength):
            // `_compute_dynamic_ntk_parameters` reads the model's max_position_embeddings only (a
            // dictionary's original_max_position_embeddings is ignored there); ours is the fallback.
            let trained = try original(maximumPositionEmbeddings ?? originalLength, "dynamic")
            let length = Double(max(sequenceLength ?? trained, trained))
            let scaled = base * pow(factor * length / Double(trained) - (factor - 1), Double(dim) / Double(dim - 2))
            return RoPEFrequencies(inverseFrequencies: standard(scaled), attentionFactor: 1)
        case let .yarn(y):
            return try yarnFrequencies(y, dim: dim, base: base, trained: try original(y.originalMaximumLength, "yarn"))
        case let .llama3(l):
            let trained = try original(l.originalMaximumLength, "llama3")
            return RoPEFrequencies(inverseFrequencies: llama3Frequencies(l, Double(trained), standard(base)), attentionFactor: 1)
        case let .longRoPE(l):
            guard l.shortFactor.count == half, l.longFactor.count == half else {
                throw ConfigurationError(parameter: "longrope.short_factor/long_factor", value: "\(l.shortFactor.count) and \(l.longFactor.count) entries",
                                         allowed: "R/2 = \(half) entries each")
            }
            // `_compute_longrope_parameters`: an explicit factor wins; otherwise (Phi-3) the ratio of
            // max_position_embeddings to the original length sets the default attention factor.
            let trained = try original(l.originalMaximumLength, "longrope")
            let factor = l.factor ?? maximumPositionEmbeddings.map { Double($0) / Double(trained) } ?? 1
            let attention = l.attentionFactor ?? (factor <= 1 ? 1 : (1 + log(factor) / log(Double(trained))).squareRoot())
            let extension_ = (sequenceLength ?? 0) > trained ? l.longFactor : l.shortFactor
            let inverse = (0..<half).map { 1 / (extension_[$0] * pow(base, Double(2 * $0) / Double(dim))) }
            return RoPEFrequencies(inverseFrequencies: inverse, attentionFactor: attention)
        case let .proportional(factor, fraction):
            // `_compute_proportional_rope_parameters`: int(fraction · D // 2) rotated pairs, then zeros.
            let rotated = min(half, Int((fraction * Double(dim) / 2).rounded(.down)))
            return RoPEFrequencies(inverseFrequencies: standard(base).enumerated().map { $0.offset < rotated ? $0.element / factor : 0 },
                                   attentionFactor: 1)
        }
    }

    /// YaRN (Peng et al. 2023): dimensions that turn fewer than β_slow times over the trained
    /// length are interpolated (θ/s), those that turn more than β_fast times are kept, with a
    /// linear ramp between; attention factor 0.1·mscale·ln(s) + 1 (or the ratio of two such).
    private func yarnFrequencies(_ y: YaRNParameters, dim: Int, base: Double, trained: Int) throws -> RoPEFrequencies {
        let factor = y.factor
        func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }
        var attention = y.attentionFactor
        if attention == nil {
            if let m = y.mscale, let all = y.mscaleAllDimensions, m != 0, all != 0 {
                attention = mscale(factor, m) / mscale(factor, all)
            } else {
                attention = mscale(factor)
            }
        }
        // The dimension index at which a frequency turns `rotations` times over the trained length.
        func correctionDimension(_ rotations: Double) -> Double {
            Double(dim) * log(Double(trained) / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        var low = correctionDimension(y.betaFast), high = correctionDimension(y.betaSlow)
        if y.truncate { low = floor(low); high = ceil(high) }
        low = max(low, 0); high = min(high, Double(dim - 1))
        if low == high { high += 0.001 } // avoid a division by zero in the ramp
        let half = dim / 2
        let inverse = (0..<half).map { i -> Double in
            let frequency = pow(base, Double(2 * i) / Double(dim))
            let extrapolation = 1 / frequency, interpolation = 1 / (factor * frequency)
            let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
            let keep = 1 - ramp // share of extrapolation (the unscaled frequency)
            return interpolation * (1 - keep) + extrapolation * keep
        }
        return RoPEFrequencies(inverseFrequencies: inverse, attentionFactor: attention ?? 1)
    }

    /// Llama 3.1: wavelengths above L₀/low_freq_factor are divided by the factor, those below
    /// L₀/high_freq_factor kept, and those between smoothly interpolated.
    private func llama3Frequencies(_ l: Llama3Parameters, _ trained: Double, _ inverse: [Double]) -> [Double] {
        let lowWavelength = trained / l.lowFrequencyFactor, highWavelength = trained / l.highFrequencyFactor
        return inverse.map { theta in
            let wavelength = 2 * Double.pi / theta
            if wavelength < highWavelength { return theta }
            if wavelength > lowWavelength { return theta / l.factor }
            let smooth = (trained / wavelength - l.lowFrequencyFactor) / (l.highFrequencyFactor - l.lowFrequencyFactor)
            return (1 - smooth) * theta / l.factor + smooth * theta
        }
    }
}
