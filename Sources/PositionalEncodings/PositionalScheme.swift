import NN
import TensorCore

/// The one typed value by which a model picks its positional scheme. Each case carries only the
/// settings its scheme has, so an invalid combination cannot be written down; values are checked
/// again when the encoding is made.
public enum PositionalScheme: Codable, Equatable, Sendable {
    /// NoPE: causal mask only.
    case none
    /// Vaswani et al.'s sines and cosines added to the input, times `scale`.
    case sinusoidal(scale: Float)
    /// GPT-2's learned table of `maximumLength` rows added to the input.
    case learnedAbsolute(maximumLength: Int)
    /// A learned scalar per head per relative distance clipped to ±maximumDistance, in the scores.
    case relativeBias(maximumDistance: Int)
    /// T5's bucketed learned bias in the scores.
    case t5(numberOfBuckets: Int, maximumDistance: Int, bidirectional: Bool)
    /// Shaw et al.'s relative key vectors, clipped to ±maximumDistance, in the scores.
    case shaw(maximumDistance: Int)
    /// ALiBi's fixed linear biases in the scores.
    case alibi
    /// RoPE and its context-extension forms, on queries and keys.
    case rope(RotaryConfiguration)
    /// HoPE: RoPE with the low-frequency pairs made position-independent.
    case hope(RotaryConfiguration, cut: HoPECut)

    /// The short names that the command line accepts.
    public static let names = ["nope", "sinusoidal", "learned", "relative", "t5", "shaw", "alibi", "rope", "hope"]

    /// A scheme by short name with default settings; `trainingLength` sizes the learned table
    /// (unless `maximumLength` is given), HoPE's cut and RoPE's `max_position_embeddings`.
    public static func named(_ name: String, trainingLength: Int, maximumLength: Int? = nil) throws -> PositionalScheme {
        try SchemeSpecification(name: name).resolved(trainingLength: trainingLength, maximumLength: maximumLength ?? trainingLength)
    }

    /// The scheme with a fixed input table brought to the scale of token embeddings initialised at
    /// std 0.02 (GPT-2's): the sinusoidal table's amplitude divided by √C; every other scheme as it is.
    ///
    /// At amplitude 1 the table is ~35× the embeddings, and a sinusoidal model does not even fit
    /// copy at its training length (exact match 0.00). Vaswani et al. (2017, §3.4) multiply the
    /// embeddings by √C instead; that fits sinusoidal copy just as well, but it also multiplies the
    /// residual stream of every other scheme by √C against blocks whose outputs start at std
    /// 0.02/√(2·layers), and NoPE then fails copy (exact match 0.00 where it reaches 0.9).
    /// Dividing the table gives the same token-to-position ratio and leaves the other schemes alone.
    public func atEmbeddingScale(modelDimension: Int) -> PositionalScheme {
        guard case let .sinusoidal(scale) = self else { return self }
        return .sinusoidal(scale: scale / Float(modelDimension).squareRoot())
    }

    /// The short name of this scheme.
    public var name: String {
        switch self {
        case .none: return "nope"
        case .sinusoidal: return "sinusoidal"
        case .learnedAbsolute: return "learned"
        case .relativeBias: return "relative"
        case .t5: return "t5"
        case .shaw: return "shaw"
        case .alibi: return "alibi"
        case .rope: return "rope"
        case .hope: return "hope"
        }
    }

    /// Whether each layer has its own encoding (learned relative tables, as in Shaw et al.) rather
    /// than one shared by all layers (T5 shares its bias table across layers).
    public var isPerLayer: Bool {
        switch self {
        case .relativeBias, .shaw: return true
        default: return false
        }
    }

    /// Builds the encoding for a model of these dimensions.
    public func makeEncoding(modelDimension: Int, numberOfHeads: Int, generator: inout SplitMix64) throws -> any PositionalEncoding {
        try require(numberOfHeads > 0 && modelDimension % numberOfHeads == 0, "numberOfHeads", numberOfHeads,
                    "a positive divisor of modelDimension (\(modelDimension))")
        let headDimension = modelDimension / numberOfHeads
        switch self {
        case .none: return NoPositionalEncoding()
        case let .sinusoidal(scale): return try SinusoidalEncoding(modelDimension: modelDimension, scale: scale)
        case let .learnedAbsolute(maximumLength):
            return try LearnedAbsoluteEncoding(maximumLength: maximumLength, modelDimension: modelDimension, generator: &generator)
        case let .relativeBias(distance):
            return try RelativeBias(maximumDistance: distance, numberOfHeads: numberOfHeads, headDimension: headDimension)
        case let .t5(buckets, distance, bidirectional):
            return try T5Bias(numberOfBuckets: buckets, maximumDistance: distance, bidirectional: bidirectional,
                              numberOfHeads: numberOfHeads, generator: &generator)
        case let .shaw(distance): return try ShawRelative(maximumDistance: distance, headDimension: headDimension, generator: &generator)
        case .alibi: return try ALiBi(numberOfHeads: numberOfHeads)
        case let .rope(configuration): return try RotaryEncoding(configuration: configuration, headDimension: headDimension)
        case let .hope(configuration, cut): return try HoPE.encoding(configuration: configuration, headDimension: headDimension, cut: cut)
        }
    }
}
