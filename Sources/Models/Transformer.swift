import Foundation
import NN
import TensorCore

/// Multi-head causal self-attention (Vaswani et al. 2017): softmax(QKᵀ/√D + mask)·V per head.
/// Shapes: x [B, T, C] → [B, T, C]; inside, Q, K, V are [B, H, T, D] and scores [B, H, T, T].
public final class CausalSelfAttention: Layer {
    public let queryProjection: Linear
    public let keyProjection: Linear
    public let valueProjection: Linear
    public let outputProjection: Linear
    public let numberOfHeads: Int

    public init(modelDimension: Int, numberOfHeads: Int, outputStandardDeviation: Float, generator: inout SplitMix64) throws {
        queryProjection = try Linear(inputs: modelDimension, outputs: modelDimension, generator: &generator)
        keyProjection = try Linear(inputs: modelDimension, outputs: modelDimension, generator: &generator)
        valueProjection = try Linear(inputs: modelDimension, outputs: modelDimension, generator: &generator)
        outputProjection = try Linear(inputs: modelDimension, outputs: modelDimension,
                                      standardDeviation: outputStandardDeviation, generator: &generator)
        self.numberOfHeads = numberOfHeads
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        let h = numberOfHeads, d = c / h
        func heads(_ y: Tensor) throws -> Tensor { try y.reshaped([b, t, h, d]).permuted([0, 2, 1, 3]) }
        let q = try heads(queryProjection(x)), k = try heads(keyProjection(x)), v = try heads(valueProjection(x))
        let scores = try q.matmul(k, transposeOther: true).scaled(by: 1 / Float(d).squareRoot())
        let weights = try (scores + CausalSelfAttention.causalMask(length: t)).softmax(axis: -1)
        let context = try weights.matmul(v).permuted([0, 2, 1, 3]).reshaped([b, t, c])
        return try outputProjection(context)
    }

    /// [T, T] with 0 on and below the diagonal and −∞ above: query i sees keys j ≤ i.
    public static func causalMask(length t: Int) throws -> Tensor {
        var values = [Float](repeating: 0, count: t * t)
        for i in 0..<t { for j in (i + 1)..<max(i + 1, t) { values[i * t + j] = -.infinity } }
        return try Tensor(values, shape: [t, t])
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("query", queryProjection.namedParameters) + prefixed("key", keyProjection.namedParameters)
            + prefixed("value", valueProjection.namedParameters) + prefixed("output", outputProjection.namedParameters)
    }
}

/// The feed-forward network: W₂·f(W₁x + b₁) + b₂. Shapes: [B, T, C] → [B, T, C].
public final class FeedForward: Layer {
    public let expansion: Linear
    public let contraction: Linear
    public let activation: Activation

    public init(modelDimension: Int, hiddenDimension: Int, activation: Activation, outputStandardDeviation: Float,
                generator: inout SplitMix64) throws {
        expansion = try Linear(inputs: modelDimension, outputs: hiddenDimension, generator: &generator)
        contraction = try Linear(inputs: hiddenDimension, outputs: modelDimension,
                                 standardDeviation: outputStandardDeviation, generator: &generator)
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try contraction(expansion(x).activated(activation)) }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("expansion", expansion.namedParameters) + prefixed("contraction", contraction.namedParameters)
    }
}

/// A pre-norm block: h ← h + Attention(LN(h)); h ← h + FFN(LN(h)) (GPT-2's arrangement).
public final class TransformerBlock: Layer {
    public let attentionNorm: LayerNorm
    public let attention: CausalSelfAttention
    public let feedForwardNorm: LayerNorm
    public let feedForward: FeedForward

    public init(configuration c: TransformerConfiguration, generator: inout SplitMix64) throws {
        // GPT-2 scales the residual projections by 1/√(2·layers) so the residual stream's variance stays put.
        let residualStd = 0.02 / Float(2 * c.numberOfLayers).squareRoot()
        attentionNorm = try LayerNorm(dimension: c.modelDimension)
        attention = try CausalSelfAttention(modelDimension: c.modelDimension, numberOfHeads: c.numberOfHeads,
                                            outputStandardDeviation: residualStd, generator: &generator)
        feedForwardNorm = try LayerNorm(dimension: c.modelDimension)
        feedForward = try FeedForward(modelDimension: c.modelDimension, hiddenDimension: c.feedForwardDimension,
                                      activation: c.activation, outputStandardDeviation: residualStd, generator: &generator)
    }

    public func callAsFunction(_ h: Tensor) throws -> Tensor {
        let h1 = try h + attention(attentionNorm(h))
        return try h1 + feedForward(feedForwardNorm(h1))
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("attention_norm", attentionNorm.namedParameters) + prefixed("attention", attention.namedParameters)
            + prefixed("feed_forward_norm", feedForwardNorm.namedParameters) + prefixed("feed_forward", feedForward.namedParameters)
    }
}

/// A decoder-only Transformer language model: token and learned position embeddings, blocks,
/// final LayerNorm, output head. Shapes: ids [B, T] → logits [B, T, V].
public final class Transformer: Layer {
    public let configuration: TransformerConfiguration
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let blocks: [TransformerBlock]
    public let finalNorm: LayerNorm
    public let outputHead: Linear?

    public init(configuration c: TransformerConfiguration, seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        configuration = c
        tokenEmbedding = try Embedding(count: c.vocabularySize, dimension: c.modelDimension, generator: &generator)
        positionEmbedding = try Embedding(count: c.maximumLength, dimension: c.modelDimension, standardDeviation: 0.01, generator: &generator)
        blocks = try (0..<c.numberOfLayers).map { _ in try TransformerBlock(configuration: c, generator: &generator) }
        finalNorm = try LayerNorm(dimension: c.modelDimension)
        outputHead = c.tiedEmbeddings ? nil : try Linear(inputs: c.modelDimension, outputs: c.vocabularySize, bias: false, generator: &generator)
    }

    /// Logits for every position. ids: [B·T] row-major token ids with shape [B, T].
    public func logits(_ ids: [Int], batchSize b: Int, length t: Int) throws -> Tensor {
        guard t <= configuration.maximumLength else {
            throw TensorError.invalidArgument(operation: "Transformer.logits", parameter: "length", value: "\(t)",
                                              allowed: "at most maximumLength (\(configuration.maximumLength))")
        }
        let positions = (0..<(b * t)).map { $0 % t }
        var h = try tokenEmbedding(ids, shape: [b, t]) + positionEmbedding(positions, shape: [b, t])
        for block in blocks { h = try block(h) }
        h = try finalNorm(h)
        if let outputHead { return try outputHead(h) }
        return try h.matmul(tokenEmbedding.weight, transposeOther: true)
    }

    /// Mean cross-entropy of the batch's selected targets.
    public func loss(_ batch: TokenBatch) throws -> Tensor {
        try logits(batch.inputs, batchSize: batch.batchSize, length: batch.length)
            .crossEntropy(targets: batch.targets, mask: batch.lossMask)
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        var all = prefixed("token_embedding", tokenEmbedding.namedParameters) + prefixed("position_embedding", positionEmbedding.namedParameters)
        for (i, block) in blocks.enumerated() { all += prefixed("blocks.\(i)", block.namedParameters) }
        all += prefixed("final_norm", finalNorm.namedParameters)
        if let outputHead { all += prefixed("output_head", outputHead.namedParameters) }
        return all
    }
}
