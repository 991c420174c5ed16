import Foundation
import TensorCore

/// The context-extension forms of RoPE, each a transform of the inverse frequencies θ_i plus an
/// attention factor that scales cos and sin (and so every rotated query–key product by its
/// square). Read from and written as the `rope_parameters` / `rope_scaling` dictionaries of
/// transformers' model configurations, with the same key names, so a configuration can be pasted.
/// The formulas follow transformers 5.24's `modeling_rope_utils` (`ROPE_INIT_FUNCTIONS`), checked
/// against its output by the golden fixtures of `ReferenceFixtureTests` (`scripts/make_fixtures.sh`).
///
/// | rope_type | θ'_i | paper |
/// |---|---|---|
/// | default | base^(−2i/R) | Su et al. 2021 |
/// | linear | θ_i / factor (positions interpolated) | Chen et al. 2023, "Extending Context Window … via Positional Interpolation" |
/// | ntk | from base·factor^(R/(R−2)) (static NTK-aware; our key, not transformers') | bloc97 2023 |
/// | dynamic | ntk with factor·L/L₀ − (factor − 1) when the length L exceeds L₀ = max_position_embeddings | Emozilla 2023 (transformers' "dynamic") |
/// | yarn | interpolation blended with extrapolation by a ramp over wavelengths, attention factor 0.1·ln(s)+1 | Peng et al. 2023, "YaRN" |
/// | llama3 | long wavelengths / factor, short kept, smooth in between | Meta 2024, Llama 3.1 |
/// | longrope | θ_i / λ_i with λ the short or long factor list | Ding et al. 2024, "LongRoPE" |
/// | proportional | base^(−2i/D) / factor for the first ⌊p·D/2⌋ pairs of the whole head, 0 (unrotated) after | transformers' Gemma 4 global layers |
public enum RoPEScaling: Equatable, Sendable {
    case none
    case linear(factor: Double)
    case ntk(factor: Double)
    case dynamic(factor: Double, originalMaximumLength: Int?)
    case yarn(YaRNParameters)
    case llama3(Llama3Parameters)
    case longRoPE(LongRoPEParameters)
    /// transformers' "proportional" (Gemma 4): the head is rotated whole (R = D), its first
    /// ⌊fraction·D/2⌋ pairs at base^(−2i/D)/factor and the rest not at all: HoPE's fraction cut
    /// with linear scaling. `fraction` is the dictionary's `partial_rotary_factor`, which here does
    /// not shrink the rotary dimension.
    case proportional(factor: Double, fraction: Double)

    public static let ropeTypes = ["default", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope", "proportional"]
}

public struct YaRNParameters: Equatable, Sendable {
    public var factor: Double
    public var originalMaximumLength: Int?
    public var betaFast: Double = 32
    public var betaSlow: Double = 1
    public var mscale: Double?
    public var mscaleAllDimensions: Double?
    public var attentionFactor: Double?
    /// Whether the correction range is rounded outwards to whole dimensions (transformers' default).
    public var truncate: Bool = true

    public init(factor: Double, originalMaximumLength: Int? = nil, betaFast: Double = 32, betaSlow: Double = 1, mscale: Double? = nil,
                mscaleAllDimensions: Double? = nil, attentionFactor: Double? = nil, truncate: Bool = true) {
        self.factor = factor; self.originalMaximumLength = originalMaximumLength; self.betaFast = betaFast; self.betaSlow = betaSlow
        self.mscale = mscale; self.mscaleAllDimensions = mscaleAllDimensions; self.attentionFactor = attentionFactor; self.truncate = truncate
    }
}

public struct Llama3Parameters: Equatable, Sendable {
    public var factor: Double
    public var lowFrequencyFactor: Double
    public var highFrequencyFactor: Double
    /// The pretraining length; when nil, the model's `max_position_embeddings` (as transformers fills it in).
    public var originalMaximumLength: Int?

    public init(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaximumLength: Int? = nil) {
        self.factor = factor; self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor; self.originalMaximumLength = originalMaximumLength
    }
}

public struct LongRoPEParameters: Equatable, Sendable {
    public var shortFactor: [Double]
    public var longFactor: [Double]
    public var originalMaximumLength: Int?
    public var factor: Double?
    public var attentionFactor: Double?

    public init(shortFactor: [Double], longFactor: [Double], originalMaximumLength: Int? = nil, factor: Double? = nil, attentionFactor: Double? = nil) {
        self.shortFactor = shortFactor; self.longFactor = longFactor; self.originalMaximumLength = originalMaximumLength
        self.factor = factor; self.attentionFactor = attentionFactor
    }
}

extension RoPEScaling {
    /// Reads a transformers-style dictionary (`rope_type`, or the older `type`). Keys that set the
    /// base rotation (`rope_theta`, `partial_rotary_factor`) are read by `RotaryConfiguration`,
    /// except that "proportional" reads `partial_rotary_factor` as its kept fraction.
    public init(parameters: [String: JSONValue]) throws {
        var type = "default"
        if case let .string(s)? = parameters["rope_type"] ?? parameters["type"] { type = s }
        let r = ParameterReader(values: parameters, context: type)
        func positive(_ key: String, _ value: Double) throws -> Double {
            guard value > 0, value.isFinite else { throw ConfigurationError(parameter: "\(type).\(key)", value: "\(value)", allowed: "a positive number") }
            return value
        }
        func length(_ key: String) throws -> Int? {
            guard let v = try r.number(key) else { return nil }
            // A length in tokens, up to 2^32: beyond it no Double-valued frequency formula is meaningful.
            guard v >= 1, v <= 4_294_967_296, let n = Int(exactly: v) else {
                throw ConfigurationError(parameter: "\(type).\(key)", value: "\(v)", allowed: "a whole number from 1 to 4294967296")
            }
            return n
        }
        switch type {
        case "default":
            self = .none
        case "linear":
            self = .linear(factor: try positive("factor", r.requiredNumber("factor")))
        case "ntk":
            self = .ntk(factor: try positive("factor", r.requiredNumber("factor")))
        case "dynamic":
            self = .dynamic(factor: try positive("factor", r.requiredNumber("factor")), originalMaximumLength: try length("original_max_position_embeddings"))
        case "yarn":
            var y = YaRNParameters(factor: try positive("factor", r.requiredNumber("factor")))
            y.originalMaximumLength = try length("original_max_position_embeddings")
            if let v = try r.number("beta_fast") { y.betaFast = try positive("beta_fast", v) }
            if let v = try r.number("beta_slow") { y.betaSlow = try positive("beta_slow", v) }
            y.mscale = try r.number("mscale")
            y.mscaleAllDimensions = try r.number("mscale_all_dim")
            y.attentionFactor = try r.number("attention_factor").map { try positive("attention_factor", $0) }
            y.truncate = try r.bool("truncate") ?? true
            self = .yarn(y)
        case "llama3":
            let low = try positive("low_freq_factor", r.requiredNumber("low_freq_factor"))
            let high = try positive("high_freq_factor", r.requiredNumber("high_freq_factor"))
            guard high > low else {
                throw ConfigurationError(parameter: "llama3.high_freq_factor", value: "\(high)", allowed: "more than low_freq_factor (\(low))")
            }
            self = .llama3(Llama3Parameters(factor: try positive("factor", r.requiredNumber("factor")), lowFrequencyFactor: low,
                                            highFrequencyFactor: high, originalMaximumLength: try length("original_max_position_embeddings")))
        case "longrope":
            let short = try r.numbers("short_factor"), long = try r.numbers("long_factor")
            for v in short + long where !(v > 0) {
                throw ConfigurationError(parameter: "longrope.short_factor/long_factor", value: "\(v)", allowed: "positive numbers")
            }
            self = .longRoPE(LongRoPEParameters(shortFactor: short, longFactor: long, originalMaximumLength: try length("original_max_position_embeddings"),
                                                factor: try r.number("factor").map { try positive("factor", $0) },
                                                attentionFactor: try r.number("attention_factor").map { try positive("attention_factor", $0) }))
        case "proportional":
            let fraction = try r.number("partial_rotary_factor") ?? 1
            guard fraction >= 0, fraction <= 1 else {
                throw ConfigurationError(parameter: "proportional.partial_rotary_factor", value: "\(fraction)", allowed: "0 ≤ fraction ≤ 1")
            }
            self = .proportional(factor: try positive("factor", r.number("factor") ?? 1), fraction: fraction)
        default:
            throw ConfigurationError(parameter: "rope_type", value: type, allowed: RoPEScaling.ropeTypes.joined(separator: ", "))
        }
    }

    /// The transformers-style dictionary of this scaling.
    public var parameters: [String: JSONValue] {
        func n(_ v: Double) -> JSONValue { .number(v) }
        switch self {
        case .none: return ["rope_type": .string("default")]
        case let .linear(f): return ["rope_type": .string("linear"), "factor": n(f)]
        case let .ntk(f): return ["rope_type": .string("ntk"), "factor": n(f)]
        case let .dynamic(f, original):
            var d: [String: JSONValue] = ["rope_type": .string("dynamic"), "factor": n(f)]
            if let original { d["original_max_position_embeddings"] = n(Double(original)) }
            return d
        case let .yarn(y):
            var d: [String: JSONValue] = ["rope_type": .string("yarn"), "factor": n(y.factor), "beta_fast": n(y.betaFast),
                                          "beta_slow": n(y.betaSlow), "truncate": .bool(y.truncate)]
            if let v = y.originalMaximumLength { d["original_max_position_embeddings"] = n(Double(v)) }
            if let v = y.mscale { d["mscale"] = n(v) }
            if let v = y.mscaleAllDimensions { d["mscale_all_dim"] = n(v) }
            if let v = y.attentionFactor { d["attention_factor"] = n(v) }
            return d
        case let .llama3(l):
            var d: [String: JSONValue] = ["rope_type": .string("llama3"), "factor": n(l.factor), "low_freq_factor": n(l.lowFrequencyFactor),
                                          "high_freq_factor": n(l.highFrequencyFactor)]
            if let v = l.originalMaximumLength { d["original_max_position_embeddings"] = n(Double(v)) }
            return d
        case let .longRoPE(l):
            var d: [String: JSONValue] = ["rope_type": .string("longrope"), "short_factor": .array(l.shortFactor.map(n)),
                                          "long_factor": .array(l.longFactor.map(n))]
            if let v = l.originalMaximumLength { d["original_max_position_embeddings"] = n(Double(v)) }
            if let v = l.factor { d["factor"] = n(v) }
            if let v = l.attentionFactor { d["attention_factor"] = n(v) }
            return d
        case let .proportional(factor, fraction):
            return ["rope_type": .string("proportional"), "factor": n(factor), "partial_rotary_factor": n(fraction)]
        }
    }

    /// Whether the frequencies depend on the current sequence length.
    public var dependsOnLength: Bool {
        switch self {
        case .dynamic, .longRoPE: return true
        default: return false
        }
    }
}

extension RoPEScaling: Codable {
    public init(from decoder: Decoder) throws {
        try self.init(parameters: try [String: JSONValue](from: decoder))
    }

    public func encode(to encoder: Encoder) throws { try parameters.encode(to: encoder) }
}
