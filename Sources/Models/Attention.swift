import Foundation
import NN
import PositionalEncodings
import TensorCore

/// Multi-head causal self-attention (Vaswani et al. 2017) with the positional scheme at its
/// injection point:
///
///     scores = rot(Q)·rot(K)ᵀ/√D + bias(Q, positions) + causal mask;  out = softmax(scores)·V
///
/// Shapes: x [B, T, C] → [B, T, C]; inside, Q, K, V are [B, H, T, D] and scores [B, H, Tq, Tk].
/// With a KV cache, Tq new queries attend to Tk = cached + Tq keys. Keys are cached unrotated and
/// rotated at every call, so a scaling that changes with the length (dynamic NTK) never leaves a
/// stale rotation in the cache.
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

    /// Attention of the tokens of `x` at `positions` to themselves and to what `cache` holds
    /// (keys, values and positions of earlier tokens, appended to here).
    public func callAsFunction(_ x: Tensor, positions: PositionIDs, encoding: any PositionalEncoding,
                               cache: LayerCache? = nil) throws -> Tensor {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        let h = numberOfHeads, d = c / h
        func heads(_ y: Tensor) throws -> Tensor { try y.reshaped([b, t, h, d]).permuted([0, 2, 1, 3]) }
        var q = try heads(queryProjection(x))
        var k = try heads(keyProjection(x)), v = try heads(valueProjection(x))
        var keyPositions = positions
        if let cache {
            (k, v, keyPositions) = try cache.appending(keys: k, values: v, positions: positions)
        }
        let totalLength = keyPositions.length
        if encoding.injectionPoint == .queryKeyRotation {
            q = try encoding.rotate(q, positions: positions, sequenceLength: totalLength)
            k = try encoding.rotate(k, positions: keyPositions, sequenceLength: totalLength)
        }
        var scores = try q.matmul(k, transposeOther: true).scaled(by: 1 / Float(d).squareRoot())
        if encoding.injectionPoint == .attentionScore {
            scores = try scores + encoding.scoreBias(queries: q, queryPositions: positions, keyPositions: keyPositions)
        }
        scores = try scores + CausalSelfAttention.causalMask(queries: t, keys: totalLength)
        let context = try scores.softmax(axis: -1).matmul(v).permuted([0, 2, 1, 3]).reshaped([b, t, c])
        return try outputProjection(context)
    }

    /// [Tq, Tk]: 0 where key j is at or before query i (the queries are the last Tq of the Tk
    /// tokens) and −∞ after it.
    public static func causalMask(queries tq: Int, keys tk: Int) throws -> Tensor {
        var values = [Float](repeating: 0, count: tq * tk)
        let shift = tk - tq
        for i in 0..<tq where i + shift + 1 < tk {
            for j in (i + shift + 1)..<tk { values[i * tk + j] = -.infinity }
        }
        return try Tensor(values, shape: [tq, tk])
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("query", queryProjection.namedParameters) + prefixed("key", keyProjection.namedParameters)
            + prefixed("value", valueProjection.namedParameters) + prefixed("output", outputProjection.namedParameters)
    }
}

/// One layer's cache: unrotated keys and values [B, H, Tc, D] and their positions [B, Tc].
public final class LayerCache {
    public private(set) var keys: Tensor?
    public private(set) var values: Tensor?
    public private(set) var positions: PositionIDs?

    public init() {}

    /// The cached length Tc.
    public var length: Int { positions?.length ?? 0 }

    /// Appends new keys, values and positions and returns everything cached so far.
    func appending(keys k: Tensor, values v: Tensor, positions p: PositionIDs) throws -> (Tensor, Tensor, PositionIDs) {
        let allKeys = try keys.map { try Tensor.concatenate([$0, k], axis: 2) } ?? k
        let allValues = try values.map { try Tensor.concatenate([$0, v], axis: 2) } ?? v
        var allPositions = p
        if let old = positions {
            var merged: [Int] = []
            merged.reserveCapacity(old.values.count + p.values.count)
            for row in 0..<p.batchSize { merged += old.row(row); merged += p.row(row) }
            allPositions = try PositionIDs(values: merged, batchSize: p.batchSize, length: old.length + p.length)
        }
        // The cache holds values, not graph: decoding runs without gradients.
        keys = allKeys.detached(); values = allValues.detached(); positions = allPositions
        return (allKeys, allValues, allPositions)
    }
}
