import Foundation
import NN
import TensorCore

/// Which rotary components HoPE keeps.
public enum HoPECut: Codable, Equatable, Sendable {
    /// Keep pair i when its wavelength 2π/θ_i fits at least once within the training length L
    /// (2π/θ_i ≤ L): the model sees every kept component turn a full period in training. The default.
    case trainingLength(Int)
    /// Keep the `count` highest-frequency pairs.
    case count(Int)
    /// Keep the highest-frequency ⌊fraction · R/2⌋ pairs (the fraction-based variant; over a whole
    /// head it equals transformers' "proportional" RoPE, `RoPEScaling.proportional`, at factor 1).
    case fraction(Double)
}

/// HoPE (Chen et al. 2024, "HoPE: A Novel Positional Encoding Without Long-Term Decay for
/// Enhanced Context Awareness and Extrapolation", arXiv 2410.21216): keep only RoPE's
/// high-frequency components and make the rest position-independent. Low-frequency components
/// never complete a period within the training length, so at longer lengths they reach angles
/// never seen in training, and the paper ties them to shortcut learning and a U-shaped attention
/// pattern; HoPE sets their θ to 0 (unrotated), which also removes RoPE's long-term decay.
///
/// Pair i of a query or key at position m is rotated by m·θ_i when kept, not at all otherwise.
/// Injection point: queries and keys, before their dot product.
public enum HoPE {
    /// The kept pair indices (θ_0 is the highest frequency) for `cut` over base θ_i = base^(−2i/R).
    public static func keptPairs(cut: HoPECut, rotaryDimension: Int, base: Double) throws -> [Int] {
        let half = rotaryDimension / 2
        switch cut {
        case let .trainingLength(length):
            guard length > 0 else { throw ConfigurationError(parameter: "hope train length", value: "\(length)", allowed: "a positive length") }
            return (0..<half).filter { 2 * Double.pi * pow(base, Double(2 * $0) / Double(rotaryDimension)) <= Double(length) }
        case let .count(count):
            guard count >= 0, count <= half else {
                throw ConfigurationError(parameter: "hope kept pairs", value: "\(count)", allowed: "0…\(half) (R/2)")
            }
            return Array(0..<count)
        case let .fraction(fraction):
            guard fraction >= 0, fraction <= 1 else {
                throw ConfigurationError(parameter: "hope fraction", value: "\(fraction)", allowed: "0 ≤ fraction ≤ 1")
            }
            return Array(0..<Int(fraction * Double(half)))
        }
    }

    /// A rotary encoding with HoPE's cut applied to `configuration`'s base frequencies.
    public static func encoding(configuration: RotaryConfiguration, headDimension: Int, cut: HoPECut) throws -> RotaryEncoding {
        let r = try configuration.rotaryDimension(headDimension: headDimension)
        let kept = Set(try keptPairs(cut: cut, rotaryDimension: r, base: configuration.base))
        return try RotaryEncoding(configuration: configuration, headDimension: headDimension,
                                  positionIndependentPairs: Set(0..<(r / 2)).subtracting(kept))
    }
}
