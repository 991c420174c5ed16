import NN
import PositionalEncodings
import TensorCore

/// Models: decoder-only Transformers. Shape legend: B batch, T sequence, C model dimension,
/// H heads, D head dimension (C = H·D), V vocabulary.
///
/// Which normalisation every norm of the model uses.
public enum NormalizationKind: String, Codable, CaseIterable, Sendable {
    /// LayerNorm (Ba et al. 2016), with scale and shift.
    case layerNorm
    /// RMSNorm (Zhang and Sennrich 2019), scale only.
    case rmsNorm
}

/// Where a block's norms sit relative to its residual connections.
public enum NormalizationPlacement: String, Codable, CaseIterable, Sendable {
    /// h ← h + f(Norm(h)) (GPT-2 and most current models), with a final norm before the head.
    case preNorm
    /// h ← Norm(h + f(h)) (the original Transformer); no final norm.
    case postNorm
    /// h ← h + Attention(N₁(h)) + FFN(N₂(h)): attention and the feed-forward network read the same
    /// input side by side (GPT-J, GPT-NeoX and Pythia's `use_parallel_residual`), with a final norm.
    case parallel
    /// The normalised Transformer, nGPT (Loshchilov et al. 2024, arXiv 2410.01131): hidden states,
    /// embeddings and weight rows on the unit sphere; h ← Norm(h + α ⊙ (Norm(f(h)) − h)) with learned
    /// eigen learning rates α; attention on normalised, scaled queries and keys; scaled logits.
    /// α, s_qk, s_u, s_ν and s_z are plain learned vectors at their initial values (0.05 and 1); the
    /// paper's re-parametrisation of each (value = init·θ/scale, to tune their effective learning
    /// rates) is not used.
    case normalized
}

/// The feed-forward network of each block.
public enum FeedForwardKind: String, Codable, CaseIterable, Sendable {
    /// W₂·act(W₁x + b₁) + b₂ with the configured activation.
    case mlp
    /// W₂·(SiLU(W₁x) ⊙ W₃x), no biases (Shazeer 2020, "GLU Variants Improve Transformer").
    case swiGLU
}

/// How a query meets a key before the softmax.
public enum AttentionScoring: Codable, Equatable, Sendable {
    /// q·k/√D (Vaswani et al. 2017).
    case scaledDotProduct
    /// cos(q, k)/τ: q and k L2-normalised, divided by a temperature τ, fixed or learned (as the
    /// scale 1/τ; cosine attention of Swin v2, and of nGPT with a learned scale).
    case cosine(temperature: Float, learned: Bool)
    /// nGPT's: q and k L2-normalised per head after rotation, each scaled by a learned vector s_qk
    /// [D], and the scores multiplied by √D (Loshchilov et al. 2024, §2.3). Chosen by the
    /// `normalized` placement, which requires it.
    case normalized
}

/// The whole architecture as one Codable value, validated on creation: an invalid model cannot be built.
public struct TransformerConfiguration: Codable, Equatable, Sendable {
    public var vocabularySize: Int
    public var modelDimension: Int
    public var numberOfLayers: Int
    public var numberOfHeads: Int
    /// Key/value heads for grouped-query attention (Ainslie et al. 2023): each serves
    /// numberOfHeads / numberOfKeyValueHeads query heads; equal to numberOfHeads for multi-head attention.
    public var numberOfKeyValueHeads: Int
    public var feedForwardDimension: Int
    public var feedForward: FeedForwardKind
    public var activation: Activation
    public var normalization: NormalizationKind
    public var normalizationPlacement: NormalizationPlacement
    public var attentionScoring: AttentionScoring
    /// Whether the output head reuses the token embedding's matrix (Press and Wolf 2017).
    public var tiedEmbeddings: Bool
    /// Where and how position enters the model.
    public var positionalScheme: PositionalScheme
    /// Predictive Position Coupling (PPC; Golowich et al. 2025, "The Role of Sparsity for Length
    /// Generalization in Transformers"): P, the number of position-ID classes 0..<P of a second output
    /// head that predicts, at every input token, the (coupled) position ID of the next token, so that
    /// generation can feed the model its own predicted IDs instead of IDs computed from the task's
    /// structure (Position Coupling, Cho et al. 2024). P must exceed every ID the head is trained on
    /// and, for schemes with a table of positions, fit in it. Nil (the default): no position head.
    public var positionPrediction: Int?
    /// The factor the token embedding is multiplied by on the way in (not on the way out through a
    /// tied head). 1 (the default, and what configurations written before the key existed decode
    /// to) adds embeddings of initial std 0.02 to an input encoding as they are; √C is Vaswani et
    /// al. (2017, §3.4), who multiply the embeddings by √d_model so that they are not drowned by
    /// the sinusoidal table (amplitude 1). Lab runs keep 1 and bring the table down instead
    /// (`SchemeSpecification.defaultSinusoidalScale`, which says why); `ArchitectureOptions.scaledEmbeddings` sets √C.
    public var embeddingScale: Float
    /// ε of every norm (inside the square root); nil for the kind's default (LayerNorm 1e-5, RMSNorm
    /// 1e-6, as GPT-2 and Llama use). Imported models carry their own (`rms_norm_eps`, `layer_norm_eps`).
    public var normalizationEpsilon: Float?

    public init(vocabularySize: Int, modelDimension: Int, numberOfLayers: Int, numberOfHeads: Int,
                numberOfKeyValueHeads: Int? = nil, feedForwardDimension: Int? = nil, feedForward: FeedForwardKind = .mlp,
                activation: Activation = .geluTanh, normalization: NormalizationKind = .layerNorm,
                normalizationPlacement: NormalizationPlacement = .preNorm, attentionScoring: AttentionScoring = .scaledDotProduct,
                tiedEmbeddings: Bool = true, positionalScheme: PositionalScheme = .none, positionPrediction: Int? = nil,
                embeddingScale: Float = 1, normalizationEpsilon: Float? = nil) throws {
        try require(vocabularySize > 0, "vocabularySize", vocabularySize, "a positive count")
        try require(modelDimension > 0, "modelDimension", modelDimension, "a positive dimension")
        try require(numberOfLayers > 0, "numberOfLayers", numberOfLayers, "a positive count")
        try require(numberOfHeads > 0, "numberOfHeads", numberOfHeads, "a positive count")
        try require(modelDimension % numberOfHeads == 0, "numberOfHeads", numberOfHeads,
                    "a divisor of modelDimension (\(modelDimension))")
        try require(embeddingScale > 0 && embeddingScale.isFinite, "embeddingScale", embeddingScale, "a positive finite factor")
        if let normalizationEpsilon {
            try require(normalizationEpsilon > 0 && normalizationEpsilon < 1, "normalizationEpsilon", normalizationEpsilon,
                        "a positive value below 1 (nil for the norm's default)")
        }
        let keyValueHeads = numberOfKeyValueHeads ?? numberOfHeads
        try require(keyValueHeads > 0 && numberOfHeads % keyValueHeads == 0, "numberOfKeyValueHeads", keyValueHeads,
                    "a positive divisor of numberOfHeads (\(numberOfHeads))")
        let feedForwardWidth = feedForwardDimension ?? 4 * modelDimension
        try require(feedForwardWidth > 0, "feedForwardDimension", feedForwardWidth, "a positive dimension")
        var attentionScoring = attentionScoring
        if normalizationPlacement == .normalized {
            // nGPT fixes its own scoring; a different explicit choice would be silently overridden.
            try require(attentionScoring == .scaledDotProduct || attentionScoring == .normalized, "attentionScoring", attentionScoring,
                        "nGPT's normalized scoring (the normalized placement sets it)")
            try require(feedForward == .swiGLU, "feedForward", feedForward, "swiGLU, nGPT's feed-forward network")
            attentionScoring = .normalized
        } else {
            try require(attentionScoring != .normalized, "attentionScoring", attentionScoring, "normalized only with the normalized placement (nGPT)")
        }
        if case let .cosine(temperature, _) = attentionScoring {
            try require(temperature > 0 && temperature.isFinite, "attentionScoring.temperature", temperature, "a positive finite value")
        }
        // Building the encoding once checks the scheme's own settings against these dimensions.
        var probe = SplitMix64(seed: 0)
        let encoding = try positionalScheme.makeEncoding(modelDimension: modelDimension, numberOfHeads: numberOfHeads, generator: &probe)
        if let classes = positionPrediction {
            try require(classes > 1, "positionPrediction", classes, "at least 2 position-ID classes (nil for no position head)")
            if let limit = encoding.maximumPosition {
                try require(classes - 1 <= limit, "positionPrediction", classes,
                            "at most \(limit + 1) classes: every predicted ID must fit the \(positionalScheme.name) scheme's table")
            }
        }
        self.vocabularySize = vocabularySize
        self.modelDimension = modelDimension
        self.numberOfLayers = numberOfLayers
        self.numberOfHeads = numberOfHeads
        self.numberOfKeyValueHeads = keyValueHeads
        self.feedForwardDimension = feedForwardWidth
        self.feedForward = feedForward
        self.activation = activation
        self.normalization = normalization
        self.normalizationPlacement = normalizationPlacement
        self.attentionScoring = attentionScoring
        self.tiedEmbeddings = tiedEmbeddings
        self.positionalScheme = positionalScheme
        self.positionPrediction = positionPrediction
        self.embeddingScale = embeddingScale
        self.normalizationEpsilon = normalizationEpsilon
    }

    /// Decoding re-validates: a hand-edited configuration file cannot build an invalid model.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(vocabularySize: c.decode(Int.self, forKey: .vocabularySize),
                      modelDimension: c.decode(Int.self, forKey: .modelDimension),
                      numberOfLayers: c.decode(Int.self, forKey: .numberOfLayers),
                      numberOfHeads: c.decode(Int.self, forKey: .numberOfHeads),
                      numberOfKeyValueHeads: c.decodeIfPresent(Int.self, forKey: .numberOfKeyValueHeads),
                      feedForwardDimension: c.decodeIfPresent(Int.self, forKey: .feedForwardDimension),
                      feedForward: c.decodeIfPresent(FeedForwardKind.self, forKey: .feedForward) ?? .mlp,
                      activation: c.decodeIfPresent(Activation.self, forKey: .activation) ?? .geluTanh,
                      normalization: c.decodeIfPresent(NormalizationKind.self, forKey: .normalization) ?? .layerNorm,
                      normalizationPlacement: c.decodeIfPresent(NormalizationPlacement.self, forKey: .normalizationPlacement) ?? .preNorm,
                      attentionScoring: c.decodeIfPresent(AttentionScoring.self, forKey: .attentionScoring) ?? .scaledDotProduct,
                      tiedEmbeddings: c.decodeIfPresent(Bool.self, forKey: .tiedEmbeddings) ?? true,
                      positionalScheme: c.decodeIfPresent(PositionalScheme.self, forKey: .positionalScheme) ?? .none,
                      positionPrediction: c.decodeIfPresent(Int.self, forKey: .positionPrediction),
                      embeddingScale: c.decodeIfPresent(Float.self, forKey: .embeddingScale) ?? 1,
                      normalizationEpsilon: c.decodeIfPresent(Float.self, forKey: .normalizationEpsilon))
    }

    /// D = C / H.
    public var headDimension: Int { modelDimension / numberOfHeads }
}

/// A batch of token sequences for next-token training. Shapes: inputs, targets, lossMask,
/// positions, positionTargets and positionLossMask are [B, T] row-major; lossMask selects the
/// targets that count in the token loss; positions, when given, are the inputs' position IDs
/// (coupled, randomized, offset), else 0..T−1.
///
/// Predictive Position Coupling (Golowich et al. 2025): positionTargets[b, t] is the position ID of
/// the token after input t (the ID the model should give the token it predicts there), the target
/// of the position head (`TransformerConfiguration.positionPrediction`); positionLossMask selects
/// the entries that count in the position loss (every non-padding input, the prompt included:
/// wherever the next token's ID is defined), nil for all. Without positionTargets, a model with a
/// position head derives them from sequential positions (1…T) and refuses a batch that has its own.
public struct TokenBatch: Sendable {
    public var inputs: [Int]
    public var targets: [Int]
    public var lossMask: [Bool]
    public var positions: [Int]?
    public var positionTargets: [Int]?
    public var positionLossMask: [Bool]?
    public var batchSize: Int
    public var length: Int

    public init(inputs: [Int], targets: [Int], lossMask: [Bool], positions: [Int]? = nil, positionTargets: [Int]? = nil,
                positionLossMask: [Bool]? = nil, batchSize: Int, length: Int) {
        self.inputs = inputs; self.targets = targets; self.lossMask = lossMask; self.positions = positions
        self.positionTargets = positionTargets; self.positionLossMask = positionLossMask
        self.batchSize = batchSize; self.length = length
    }

    /// The number of targets that count in the loss.
    public var selectedCount: Int { lossMask.lazy.filter { $0 }.count }

    /// The batch's position IDs, or nil for the default 0..T−1.
    public func positionIDs() throws -> PositionIDs? {
        try positions.map { try PositionIDs(values: $0, batchSize: batchSize, length: length) }
    }
}
