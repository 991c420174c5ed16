import NN
import PositionalEncodings
import TensorCore

/// Models: decoder-only Transformers. Shape legend: B batch, T sequence, C model dimension,
/// H heads, D head dimension (C = H·D), V vocabulary.
///
/// The whole architecture as one Codable value, validated on creation: an invalid model cannot be built.
public struct TransformerConfiguration: Codable, Equatable, Sendable {
    public var vocabularySize: Int
    public var modelDimension: Int
    public var numberOfLayers: Int
    public var numberOfHeads: Int
    public var feedForwardDimension: Int
    public var activation: Activation
    /// Whether the output head reuses the token embedding's matrix (Press and Wolf 2017).
    public var tiedEmbeddings: Bool
    /// Where and how position enters the model.
    public var positionalScheme: PositionalScheme

    public init(vocabularySize: Int, modelDimension: Int, numberOfLayers: Int, numberOfHeads: Int,
                feedForwardDimension: Int? = nil, activation: Activation = .geluTanh, tiedEmbeddings: Bool = true,
                positionalScheme: PositionalScheme = .none) throws {
        try require(vocabularySize > 0, "vocabularySize", vocabularySize, "a positive count")
        try require(modelDimension > 0, "modelDimension", modelDimension, "a positive dimension")
        try require(numberOfLayers > 0, "numberOfLayers", numberOfLayers, "a positive count")
        try require(numberOfHeads > 0, "numberOfHeads", numberOfHeads, "a positive count")
        try require(modelDimension % numberOfHeads == 0, "numberOfHeads", numberOfHeads,
                    "a divisor of modelDimension (\(modelDimension))")
        let feedForward = feedForwardDimension ?? 4 * modelDimension
        try require(feedForward > 0, "feedForwardDimension", feedForward, "a positive dimension")
        // Building the encoding once checks the scheme's own settings against these dimensions.
        var probe = SplitMix64(seed: 0)
        _ = try positionalScheme.makeEncoding(modelDimension: modelDimension, numberOfHeads: numberOfHeads, generator: &probe)
        self.vocabularySize = vocabularySize
        self.modelDimension = modelDimension
        self.numberOfLayers = numberOfLayers
        self.numberOfHeads = numberOfHeads
        self.feedForwardDimension = feedForward
        self.activation = activation
        self.tiedEmbeddings = tiedEmbeddings
        self.positionalScheme = positionalScheme
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(vocabularySize: c.decode(Int.self, forKey: .vocabularySize),
                      modelDimension: c.decode(Int.self, forKey: .modelDimension),
                      numberOfLayers: c.decode(Int.self, forKey: .numberOfLayers),
                      numberOfHeads: c.decode(Int.self, forKey: .numberOfHeads),
                      feedForwardDimension: c.decode(Int.self, forKey: .feedForwardDimension),
                      activation: c.decode(Activation.self, forKey: .activation),
                      tiedEmbeddings: c.decode(Bool.self, forKey: .tiedEmbeddings),
                      positionalScheme: c.decode(PositionalScheme.self, forKey: .positionalScheme))
    }

    /// D = C / H.
    public var headDimension: Int { modelDimension / numberOfHeads }
}

/// A batch of token sequences for next-token training. Shapes: inputs, targets and lossMask
/// are [B, T] row-major; lossMask selects the targets that count in the loss.
public struct TokenBatch: Sendable {
    public var inputs: [Int]
    public var targets: [Int]
    public var lossMask: [Bool]
    public var batchSize: Int
    public var length: Int

    public init(inputs: [Int], targets: [Int], lossMask: [Bool], batchSize: Int, length: Int) {
        self.inputs = inputs; self.targets = targets; self.lossMask = lossMask
        self.batchSize = batchSize; self.length = length
    }

    /// The number of targets that count in the loss.
    public var selectedCount: Int { lossMask.lazy.filter { $0 }.count }
}
