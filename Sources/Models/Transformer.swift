import Foundation
import NN
import PositionalEncodings
import TensorCore

/// The feed-forward network. MLP: W₂·f(W₁x + b₁) + b₂; SwiGLU: W₂·(SiLU(W₁x) ⊙ W₃x).
/// Shapes: [B, T, C] → [B, T, C].
public final class FeedForward: Layer {
    public let expansion: Linear
    /// SwiGLU's linear branch W₃; nil for the MLP.
    public let gate: Linear?
    public let contraction: Linear
    public let activation: Activation
    /// nGPT's learned scalings s_ν (of the SiLU branch, times √C) and s_u (of the linear branch), [F].
    public let activationScale: Tensor?
    public let gateScale: Tensor?
    let modelDimension: Int

    public init(modelDimension: Int, hiddenDimension: Int, kind: FeedForwardKind = .mlp, activation: Activation,
                outputStandardDeviation: Float, normalized: Bool = false, generator: inout SplitMix64) throws {
        let biased = kind == .mlp
        expansion = try Linear(inputs: modelDimension, outputs: hiddenDimension, bias: biased, generator: &generator)
        gate = kind == .swiGLU ? try Linear(inputs: modelDimension, outputs: hiddenDimension, bias: false, generator: &generator) : nil
        contraction = try Linear(inputs: hiddenDimension, outputs: modelDimension, bias: biased,
                                 standardDeviation: outputStandardDeviation, generator: &generator)
        self.activation = kind == .swiGLU ? .silu : activation
        activationScale = normalized ? try Tensor(repeating: 1, shape: [hiddenDimension], requiresGradient: true) : nil
        gateScale = normalized ? try Tensor(repeating: 1, shape: [hiddenDimension], requiresGradient: true) : nil
        self.modelDimension = modelDimension
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var preActivation = try expansion(x)
        if let activationScale {
            // nGPT (§2.4.2): ν = s_ν·√C ⊙ W_ν h, so the SiLU sees inputs of order one from unit-norm rows.
            preActivation = try preActivation * activationScale.scaled(by: Float(modelDimension).squareRoot())
        }
        let hidden = preActivation.activated(activation)
        guard let gate else { return try contraction(hidden) }
        var linear = try gate(x)
        if let gateScale { linear = try linear * gateScale }
        return try contraction(hidden * linear)
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("expansion", expansion.namedParameters) + (gate.map { prefixed("gate", $0.namedParameters) } ?? [])
            + prefixed("contraction", contraction.namedParameters)
            + (activationScale.map { [("activation_scale", $0)] } ?? []) + (gateScale.map { [("gate_scale", $0)] } ?? [])
    }
}

/// LayerNorm or RMSNorm, as the configuration says. Shapes: [..., C] → [..., C].
public final class Normalization: Layer {
    let layerNorm: LayerNorm?
    let rmsNorm: RMSNorm?

    /// ε nil: the norm's own default.
    public init(_ kind: NormalizationKind, dimension: Int, epsilon: Float? = nil) throws {
        layerNorm = kind == .layerNorm ? try epsilon.map { try LayerNorm(dimension: dimension, epsilon: $0) } ?? LayerNorm(dimension: dimension) : nil
        rmsNorm = kind == .rmsNorm ? try epsilon.map { try RMSNorm(dimension: dimension, epsilon: $0) } ?? RMSNorm(dimension: dimension) : nil
    }

    public var epsilon: Float { layerNorm?.epsilon ?? rmsNorm!.epsilon }
    /// The learned scale γ [C] (LayerNorm's and RMSNorm's "weight").
    public var scaleParameter: Tensor { layerNorm?.scale ?? rmsNorm!.scale }
    /// LayerNorm's shift β [C] ("bias"); nil for RMSNorm.
    public var shiftParameter: Tensor? { layerNorm?.shift }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if let layerNorm { return try layerNorm(x) }
        return try rmsNorm!(x)
    }

    public var namedParameters: [(name: String, tensor: Tensor)] { layerNorm?.namedParameters ?? rmsNorm?.namedParameters ?? [] }
}

/// A block: attention and a feed-forward network, each behind a residual connection and a norm.
/// Pre-norm: h ← h + Attention(N(h)); h ← h + FFN(N(h)) (GPT-2). Post-norm: h ← N(h + Attention(h));
/// h ← N(h + FFN(h)) (Vaswani et al. 2017). Parallel: h ← h + Attention(N₁(h)) + FFN(N₂(h)) (GPT-J, GPT-NeoX).
public final class TransformerBlock: Layer {
    public let attentionNorm: Normalization
    public let attention: CausalSelfAttention
    public let feedForwardNorm: Normalization
    public let feedForward: FeedForward
    public let placement: NormalizationPlacement
    /// nGPT's eigen learning rates α_A and α_M, [C], initialised to 0.05 (the paper's α_init).
    public let attentionRate: Tensor?
    public let feedForwardRate: Tensor?

    public init(configuration c: TransformerConfiguration, generator: inout SplitMix64) throws {
        // GPT-2 scales the residual projections by 1/√(2·layers) so the residual stream's variance stays put.
        let residualStd = 0.02 / Float(2 * c.numberOfLayers).squareRoot()
        attentionNorm = try Normalization(c.normalization, dimension: c.modelDimension, epsilon: c.normalizationEpsilon)
        attention = try CausalSelfAttention(modelDimension: c.modelDimension, numberOfHeads: c.numberOfHeads,
                                            numberOfKeyValueHeads: c.numberOfKeyValueHeads, scoring: c.attentionScoring,
                                            outputStandardDeviation: residualStd, generator: &generator)
        feedForwardNorm = try Normalization(c.normalization, dimension: c.modelDimension, epsilon: c.normalizationEpsilon)
        let normalized = c.normalizationPlacement == .normalized
        feedForward = try FeedForward(modelDimension: c.modelDimension, hiddenDimension: c.feedForwardDimension, kind: c.feedForward,
                                      activation: c.activation, outputStandardDeviation: residualStd, normalized: normalized,
                                      generator: &generator)
        placement = c.normalizationPlacement
        attentionRate = normalized ? try Tensor(repeating: 0.05, shape: [c.modelDimension], requiresGradient: true) : nil
        feedForwardRate = normalized ? try Tensor(repeating: 0.05, shape: [c.modelDimension], requiresGradient: true) : nil
    }

    public func callAsFunction(_ h: Tensor, positions: PositionIDs, encoding: any PositionalEncoding, cache: LayerCache? = nil) throws -> Tensor {
        switch placement {
        case .preNorm:
            let h1 = try h + attention(attentionNorm(h), positions: positions, encoding: encoding, cache: cache)
            return try h1 + feedForward(feedForwardNorm(h1))
        case .postNorm:
            let h1 = try attentionNorm(h + attention(h, positions: positions, encoding: encoding, cache: cache))
            return try feedForwardNorm(h1 + feedForward(h1))
        case .parallel:
            let a = try attention(attentionNorm(h), positions: positions, encoding: encoding, cache: cache)
            return try h + a + feedForward(feedForwardNorm(h))
        case .normalized:
            // nGPT (eq. 10–11): step from h towards the normalised block output at rates α, back onto the sphere.
            guard let attentionRate, let feedForwardRate else {
                throw ConfigurationError(context: "TransformerBlock", parameter: "placement", value: "normalized",
                                         allowed: "a block built for nGPT")
            }
            let a = try attention(h, positions: positions, encoding: encoding, cache: cache).l2Normalized(axis: -1)
            let h1 = try (h + (a - h) * attentionRate).l2Normalized(axis: -1)
            let m = try feedForward(h1).l2Normalized(axis: -1)
            return try (h1 + (m - h1) * feedForwardRate).l2Normalized(axis: -1)
        }
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        let norms = placement == .normalized ? [] : prefixed("attention_norm", attentionNorm.namedParameters)
            + prefixed("feed_forward_norm", feedForwardNorm.namedParameters)
        return norms + prefixed("attention", attention.namedParameters) + prefixed("feed_forward", feedForward.namedParameters)
            + (attentionRate.map { [("attention_rate", $0)] } ?? []) + (feedForwardRate.map { [("feed_forward_rate", $0)] } ?? [])
    }
}

/// A decoder-only Transformer language model: token embedding, the positional scheme at its
/// injection point, blocks, a final norm (pre-norm), output head. Shapes: ids [B, T] → logits [B, T, V].
/// With `positionPrediction` = P, a position head (Predictive Position Coupling, Golowich et al.
/// 2025) also maps the final hidden state to position logits [B, T, P].
public final class Transformer: Layer {
    public let configuration: TransformerConfiguration
    public let tokenEmbedding: Embedding
    /// One encoding shared by every layer, or one per layer (`PositionalScheme.isPerLayer`).
    public let positionalEncodings: [any PositionalEncoding]
    public let blocks: [TransformerBlock]
    /// The norm before the head (pre-norm models only: a post-norm block already ends in one).
    public let finalNorm: Normalization?
    public let outputHead: Linear?
    /// Predictive Position Coupling's head (Golowich et al. 2025): C → P, no bias, on the final hidden
    /// state (after the final norm); its arg max at input t is the position ID of the token predicted
    /// there. Nil unless the configuration sets `positionPrediction`.
    public let positionHead: Linear?
    /// nGPT's logit scaling s_z, [V], initialised to 1: unit vectors' dot products need it to reach
    /// confident predictions. Nil for other placements.
    public let logitScale: Tensor?

    /// How every layer computes attention (results agree to float tolerance; speed and memory differ).
    public var attentionImplementation: AttentionImplementation = .automatic {
        didSet { for block in blocks { block.attention.implementation = attentionImplementation } }
    }

    public init(configuration c: TransformerConfiguration, seed: UInt64) throws {
        TensorStorage.prepareForInference()  // fixed mmap threshold unless a Trainer chose its own (see there)
        var generator = SplitMix64(seed: seed)
        configuration = c
        tokenEmbedding = try Embedding(count: c.vocabularySize, dimension: c.modelDimension, generator: &generator)
        positionalEncodings = try (0..<(c.positionalScheme.isPerLayer ? c.numberOfLayers : 1)).map { _ in
            try c.positionalScheme.makeEncoding(modelDimension: c.modelDimension, numberOfHeads: c.numberOfHeads, generator: &generator)
        }
        blocks = try (0..<c.numberOfLayers).map { _ in try TransformerBlock(configuration: c, generator: &generator) }
        finalNorm = [.preNorm, .parallel].contains(c.normalizationPlacement) ? try Normalization(c.normalization, dimension: c.modelDimension, epsilon: c.normalizationEpsilon) : nil
        outputHead = c.tiedEmbeddings ? nil : try Linear(inputs: c.modelDimension, outputs: c.vocabularySize, bias: false, generator: &generator)
        // Drawn last, so that models without the head keep the weights a seed always gave them.
        positionHead = try c.positionPrediction.map {
            try Linear(inputs: c.modelDimension, outputs: $0, bias: false, standardDeviation: 0.02, generator: &generator)
        }
        logitScale = c.normalizationPlacement == .normalized
            ? try Tensor(repeating: 1, shape: [c.vocabularySize], requiresGradient: true) : nil
        normalizeWeights()
    }

    /// nGPT keeps every matrix's vectors along the model dimension on the unit sphere: embedding
    /// and head rows, query/key/value and feed-forward input rows, output-projection and
    /// feed-forward output columns. Called at initialisation and after every optimiser step
    /// (Loshchilov et al. 2024, §2.6); a no-op for other placements.
    public func normalizeWeights() {
        guard configuration.normalizationPlacement == .normalized else { return }
        var rows = [tokenEmbedding.weight] + (outputHead.map { [$0.weight] } ?? [])
        var columns: [Tensor] = []
        for block in blocks {
            rows += [block.attention.queryProjection.weight, block.attention.keyProjection.weight, block.attention.valueProjection.weight,
                     block.feedForward.expansion.weight] + (block.feedForward.gate.map { [$0.weight] } ?? [])
            columns += [block.attention.outputProjection.weight, block.feedForward.contraction.weight]
        }
        for matrix in rows { Transformer.normalize(matrix, alongRows: true) }
        for matrix in columns { Transformer.normalize(matrix, alongRows: false) }
    }

    /// Scales each row (or column) of a [R, K] matrix in place to unit L2 norm, with the engine's
    /// L2 kernel: rows are R lines of K contiguous values, columns K lines of R values strided by K.
    static func normalize(_ matrix: Tensor, alongRows: Bool) {
        let (r, k) = (matrix.shape[0], matrix.shape[1])
        let norms = TensorStorage(count: alongRows ? r : k, zeroed: false)
        let v = matrix.storage.pointer
        if alongRows {
            Kernels.l2NormalizeForward(v, v, norms: norms.pointer, outer: r, extent: k, inner: 1, epsilon: 1e-12)
        } else {
            Kernels.l2NormalizeForward(v, v, norms: norms.pointer, outer: 1, extent: r, inner: k, epsilon: 1e-12)
        }
    }

    /// The encoding that layer `index` uses.
    public func encoding(layer index: Int) -> any PositionalEncoding {
        positionalEncodings[positionalEncodings.count == 1 ? 0 : index]
    }

    /// Logits for every position. ids: [B·T] row-major with shape [B, T]; positions default to
    /// 0..T−1 after whatever `cache` holds; `cache`, when given, is read and extended.
    public func logits(_ ids: [Int], batchSize b: Int, length t: Int, positions: PositionIDs? = nil,
                       cache: KeyValueCache? = nil) throws -> Tensor {
        try tokenLogits(finalHiddenStates(ids, batchSize: b, length: t, positions: positions, cache: cache))
    }

    /// Token logits [B, T, V] and, with a position head, position logits [B, T, P] (Predictive
    /// Position Coupling, Golowich et al. 2025) from one forward pass; arguments as for `logits`.
    public func outputs(_ ids: [Int], batchSize b: Int, length t: Int, positions: PositionIDs? = nil,
                        cache: KeyValueCache? = nil) throws -> (logits: Tensor, positionLogits: Tensor?) {
        let h = try finalHiddenStates(ids, batchSize: b, length: t, positions: positions, cache: cache)
        return (try tokenLogits(h), try positionHead.map { try $0(h) })
    }

    /// The last hidden states [B, T, C], after the final norm: what the heads read.
    public func finalHiddenStates(_ ids: [Int], batchSize b: Int, length t: Int, positions: PositionIDs? = nil,
                                  cache: KeyValueCache? = nil) throws -> Tensor {
        if let cache, cache.layers.count != blocks.count {
            throw TensorError.invalidArgument(operation: "Transformer.logits", parameter: "cache", value: "\(cache.layers.count) layers",
                                              allowed: "a cache made for this model (\(blocks.count) layers)")
        }
        let positions = positions ?? .sequential(batchSize: b, length: t, offset: cache?.length ?? 0)
        guard positions.batchSize == b, positions.length == t else {
            throw TensorError.shapeMismatch(operation: "Transformer.logits", shapes: [[b, t], [positions.batchSize, positions.length]],
                                            detail: "positions must be [B, T] like the ids")
        }
        for encoding in positionalEncodings { try encoding.checkRepresentable(positions, operation: "Transformer.logits") }
        var h = try tokenEmbedding(ids, shape: [b, t])
        if configuration.embeddingScale != 1 { h = h.scaled(by: configuration.embeddingScale) }
        if positionalEncodings[0].injectionPoint == .inputEmbedding {
            h = try h + positionalEncodings[0].inputEmbedding(positions: positions)
        }
        for (i, block) in blocks.enumerated() {
            h = try block(h, positions: positions, encoding: encoding(layer: i), cache: cache?.layers[i])
        }
        if let finalNorm { h = try finalNorm(h) }
        return h
    }

    /// Token logits of hidden states [..., C]: [..., V].
    func tokenLogits(_ h: Tensor) throws -> Tensor {
        let logits = try outputHead.map { try $0(h) } ?? h.matmul(tokenEmbedding.weight, transposeOther: true)
        return try logitScale.map { try logits * $0 } ?? logits
    }

    /// The training objective: mean cross-entropy of the batch's selected targets, plus, with a
    /// position head, `positionLossWeight` × the position loss (see `lossComponents`).
    /// Positions: `positions` if given, else the batch's own, else 0..T−1.
    public func loss(_ batch: TokenBatch, positions: PositionIDs? = nil, positionLossWeight: Float = 1) throws -> Tensor {
        try Transformer.objective(lossComponents(batch, positions: positions), positionLossWeight: positionLossWeight)
    }

    /// token + weight · position (the token loss alone without a position loss or with weight 0).
    static func objective(_ parts: (token: Tensor, position: Tensor?), positionLossWeight weight: Float) throws -> Tensor {
        guard let position = parts.position, weight != 0 else { return parts.token }
        return try parts.token + (weight == 1 ? position : position.scaled(by: weight))
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        var all = prefixed("token_embedding", tokenEmbedding.namedParameters)
        for (i, encoding) in positionalEncodings.enumerated() {
            all += prefixed(positionalEncodings.count == 1 ? "positional" : "positional.\(i)", encoding.namedParameters)
        }
        for (i, block) in blocks.enumerated() { all += prefixed("blocks.\(i)", block.namedParameters) }
        if let finalNorm { all += prefixed("final_norm", finalNorm.namedParameters) }
        if let outputHead { all += prefixed("output_head", outputHead.namedParameters) }
        if let logitScale { all.append(("logit_scale", logitScale)) }
        if let positionHead { all += prefixed("position_head", positionHead.namedParameters) }
        return all
    }
}

/// The keys and values of every layer for incremental decoding.
public final class KeyValueCache {
    public let layers: [LayerCache]

    public init(model: Transformer) { layers = model.blocks.map { _ in LayerCache() } }

    /// Tokens cached so far.
    public var length: Int { layers.first?.length ?? 0 }
}
