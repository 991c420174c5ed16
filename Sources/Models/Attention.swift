import Foundation
import NN
import PositionalEncodings
import TensorCore

/// How attention is computed; every choice gives the same result to float tolerance.
public enum AttentionImplementation: String, Codable, CaseIterable, Sendable {
    /// Blocked when the key count is large or the scheme allows nothing else, materialised otherwise.
    case automatic
    /// The [B, H, Tq, Tk] score matrix, then softmax and a product: fastest at short lengths.
    case materialized
    /// `Tensor.causalAttention`: key blocks with an online softmax, memory linear in T.
    /// Not available for Shaw's relative keys, whose bias depends on the query vectors.
    case blocked
}

/// Multi-head causal self-attention (Vaswani et al. 2017), with grouped-query heads (Ainslie et
/// al. 2023) and the positional scheme at its injection point:
///
///     scores = score(rot(Q), rot(K)) + bias(positions) + causal mask;  out = softmax(scores)·V
///
/// with score = QKᵀ/√D or cos(Q, K)/τ. Shapes: x [B, T, C] → [B, T, C]; inside, Q is [B, H, T, D],
/// K and V [B, Hkv, T, D] (expanded to H heads for the product), scores [B, H, Tq, Tk]. With a KV
/// cache, Tq new queries attend to Tk = cached + Tq keys. Keys are cached unrotated and rotated at
/// every call, so a scaling that changes with the length (dynamic NTK) never leaves a stale rotation.
public final class CausalSelfAttention: Layer {
    public let queryProjection: Linear
    public let keyProjection: Linear
    public let valueProjection: Linear
    public let outputProjection: Linear
    public let numberOfHeads: Int
    public let numberOfKeyValueHeads: Int
    public let scoring: AttentionScoring
    /// The learned 1/τ of cosine attention with a learned temperature, [1]; nGPT's s_qk, [D].
    public let learnedScale: Tensor?
    public var implementation: AttentionImplementation = .automatic
    /// When set, every call takes the materialised path and hands the recorder the unrotated
    /// queries and keys [B, H, T, D] and the attention probabilities [B, H, Tq, Tk] (for analysis).
    public var recorder: ((_ queries: Tensor, _ keys: Tensor, _ probabilities: Tensor) -> Void)?

    /// Above this many keys `automatic` switches to the blocked path: at 128 keys it already trains the
    /// reference model faster (`poslab bench train`: 16.9k against 14.0k tokens/s), at 64 it is slower.
    public static let blockedThreshold = 64

    public init(modelDimension: Int, numberOfHeads: Int, numberOfKeyValueHeads: Int? = nil, scoring: AttentionScoring = .scaledDotProduct,
                outputStandardDeviation: Float, generator: inout SplitMix64) throws {
        let keyValueHeads = numberOfKeyValueHeads ?? numberOfHeads
        try require(numberOfHeads > 0 && modelDimension % numberOfHeads == 0, "numberOfHeads", numberOfHeads,
                    "a positive divisor of modelDimension (\(modelDimension))")
        try require(keyValueHeads > 0 && numberOfHeads % keyValueHeads == 0, "numberOfKeyValueHeads", keyValueHeads,
                    "a positive divisor of numberOfHeads (\(numberOfHeads))")
        let keyValueWidth = modelDimension / numberOfHeads * keyValueHeads
        let biased = scoring != .normalized  // nGPT has no biases: its weight rows live on the sphere
        queryProjection = try Linear(inputs: modelDimension, outputs: modelDimension, bias: biased, generator: &generator)
        keyProjection = try Linear(inputs: modelDimension, outputs: keyValueWidth, bias: biased, generator: &generator)
        valueProjection = try Linear(inputs: modelDimension, outputs: keyValueWidth, bias: biased, generator: &generator)
        outputProjection = try Linear(inputs: modelDimension, outputs: modelDimension, bias: biased,
                                      standardDeviation: outputStandardDeviation, generator: &generator)
        self.numberOfHeads = numberOfHeads
        self.numberOfKeyValueHeads = keyValueHeads
        self.scoring = scoring
        switch scoring {
        case let .cosine(temperature, true): learnedScale = try Tensor([1 / temperature], shape: [1], requiresGradient: true)
        case .normalized: learnedScale = try Tensor(repeating: 1, shape: [modelDimension / numberOfHeads], requiresGradient: true)
        default: learnedScale = nil
        }
    }

    /// Attention of the tokens of `x` at `positions` to themselves and to what `cache` holds
    /// (keys, values and positions of earlier tokens, appended to here).
    public func callAsFunction(_ x: Tensor, positions: PositionIDs, encoding: any PositionalEncoding,
                               cache: LayerCache? = nil) throws -> Tensor {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        let h = numberOfHeads, hkv = numberOfKeyValueHeads, d = c / h
        func heads(_ y: Tensor, _ count: Int) throws -> Tensor { try y.reshaped([b, t, count, d]).permuted([0, 2, 1, 3]) }
        var q = try heads(queryProjection(x), h)
        var k = try heads(keyProjection(x), hkv), v = try heads(valueProjection(x), hkv)
        var keyPositions = positions
        if let cache {
            (k, v, keyPositions) = try cache.appending(keys: k, values: v, positions: positions)
        }
        let (unrotatedQueries, unrotatedKeys) = (q, k)
        let totalLength = keyPositions.length
        var scale = 1 / Float(d).squareRoot()
        if case let .cosine(temperature, learned) = scoring {
            // Normalise before rotating: rotation keeps norms, so the cosine is unchanged by it.
            q = try q.l2Normalized(axis: -1)
            k = try k.l2Normalized(axis: -1)
            if learned, let learnedScale { q = try q * learnedScale; scale = 1 } else { scale = 1 / temperature }
        }
        if encoding.injectionPoint == .queryKeyRotation {
            q = try encoding.rotate(q, positions: positions, sequenceLength: totalLength)
            k = try encoding.rotate(k, positions: keyPositions, sequenceLength: totalLength)
        }
        if scoring == .normalized, let learnedScale {
            // nGPT: normalise after rotating, scale both by s_qk, and multiply the scores by √D
            // (unit vectors' dot products lie in [−1, 1]; the paper restores a softmax temperature).
            q = try q.l2Normalized(axis: -1) * learnedScale
            k = try k.l2Normalized(axis: -1) * learnedScale
            scale = Float(d).squareRoot()
        }
        if hkv < h { (k, v) = (try expandHeads(k, batch: b, length: totalLength), try expandHeads(v, batch: b, length: totalLength)) }
        let context: Tensor
        if recorder == nil, case let .blocked(bias) = try plan(encoding: encoding, queryPositions: positions, keyPositions: keyPositions) {
            context = try Tensor.causalAttention(queries: q, keys: k, values: v, scale: scale, distanceBias: bias)
        } else {
            var scores = try q.matmul(k, transposeOther: true).scaled(by: scale)
            if encoding.injectionPoint == .attentionScore {
                scores = try scores + encoding.scoreBias(queries: q, queryPositions: positions, keyPositions: keyPositions)
            }
            scores = try scores + CausalSelfAttention.causalMask(queries: t, keys: totalLength)
            let probabilities = try scores.softmax(axis: -1)
            if let recorder {
                recorder(unrotatedQueries, hkv < h ? try expandHeads(unrotatedKeys, batch: b, length: totalLength) : unrotatedKeys, probabilities)
            }
            context = try probabilities.matmul(v)
        }
        return try outputProjection(context.permuted([0, 2, 1, 3]).reshaped([b, t, c]))
    }

    /// [B, Hkv, T, D] → [B, H, T, D], each key/value head repeated for its H/Hkv query heads
    /// (a broadcast product, so the backward sums the group's gradients).
    func expandHeads(_ x: Tensor, batch b: Int, length t: Int) throws -> Tensor {
        let group = numberOfHeads / numberOfKeyValueHeads, d = x.shape[3]
        let ones = try Tensor(repeating: 1, shape: [1, 1, group, 1, 1])
        return try (x.reshaped([b, numberOfKeyValueHeads, 1, t, d]) * ones).reshaped([b, numberOfHeads, t, d])
    }

    enum Plan { case materialized, blocked(DistanceBias?) }

    /// Which path this call takes, with the blocked path's distance bias (if the scheme has one).
    func plan(encoding: any PositionalEncoding, queryPositions: PositionIDs, keyPositions: PositionIDs) throws -> Plan {
        let wantsBlocked: Bool
        switch implementation {
        case .materialized: return .materialized
        case .blocked: wantsBlocked = true
        case .automatic: wantsBlocked = keyPositions.length > CausalSelfAttention.blockedThreshold
        }
        guard wantsBlocked else { return .materialized }
        guard encoding.injectionPoint == .attentionScore else { return .blocked(nil) }
        let shared = (1..<max(1, queryPositions.batchSize)).allSatisfy {
            queryPositions.row($0).elementsEqual(queryPositions.row(0)) && keyPositions.row($0).elementsEqual(keyPositions.row(0))
        }
        let n = shared ? 1 : queryPositions.batchSize
        let qp = Array(queryPositions.values.prefix(n * queryPositions.length))
        let kp = Array(keyPositions.values.prefix(n * keyPositions.length))
        let range = DistanceBias.visibleDistanceRange(queryPositions: qp, keyPositions: kp, batches: n,
                                                      queries: queryPositions.length, keys: keyPositions.length) ?? 0...0
        let (low, high) = (range.lowerBound, range.upperBound)
        guard let table = try encoding.distanceBiasTable(minimumDistance: low, maximumDistance: high) else {
            if implementation == .blocked {
                throw TensorError.invalidArgument(operation: "CausalSelfAttention", parameter: "implementation", value: "blocked",
                                                  allowed: "materialized or automatic for \(type(of: encoding)), whose bias depends on the queries")
            }
            return .materialized
        }
        return .blocked(DistanceBias(table: table, minimumDistance: low, queryPositions: qp, keyPositions: kp, positionBatches: n))
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
            + (learnedScale.map { [("scale", $0)] } ?? [])
    }
}

/// One layer's cache: unrotated keys and values [B, Hkv, Tc, D] and their positions [B, Tc].
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
