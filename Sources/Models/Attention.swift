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

/// The path a call of `CausalSelfAttention` took (`lastPath`: for tests and analysis).
public enum AttentionPath: String, Sendable {
    /// Materialised scores, Q, K and V left in the projections' layout [B, T, H, D] (`attendInPlace`).
    case projectionsLayout
    /// Materialised scores, Q, K and V permuted to [B, H, T, D] (the general path).
    case materialized
    /// `Tensor.causalAttention`'s key blocks with an online softmax.
    case blocked
    /// Inference reading the KV cache in place (`Kernels.cachedAttention`).
    case cache
}

/// Multi-head causal self-attention (Vaswani et al. 2017), with grouped-query heads (Ainslie et
/// al. 2023) and the positional scheme at its injection point:
///
///     scores = score(rot(Q), rot(K)) + bias(positions) + causal mask;  out = softmax(scores)·V
///
/// with score = QKᵀ/√D or cos(Q, K)/τ. Shapes: x [B, T, C] → [B, T, C]; inside, Q is [B, H, T, D],
/// K and V [B, Hkv, T, D] (expanded to H heads for the product), scores [B, H, Tq, Tk]; the
/// materialised path without a cache mostly keeps Q, K and V as the projections wrote them,
/// [B, T, H, D] (`attendInPlace`). With a KV cache, Tq new queries attend to Tk = cached + Tq
/// keys. In inference the cache holds keys as
/// scored (rotated, normalised) and is read in place (`Kernels.cachedAttention`): a step rotates
/// only its new keys. A scaling that changes with the length (dynamic NTK, LongRoPE), an analysis
/// recorder or recorded gradients take the general path instead, which caches keys unrotated and
/// rotates them all at every call, so no rotation goes stale.
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
    /// Scores (and score-bias values) per chunk of queries when a prefill attends to a KV cache in place.
    public var cachedScoreBudget = 1 << 22
    /// When set, every call takes the materialised path and hands the recorder the unrotated
    /// queries and keys [B, H, T, D] and the attention probabilities [B, H, Tq, Tk] (for analysis).
    public var recorder: ((_ queries: Tensor, _ keys: Tensor, _ probabilities: Tensor) -> Void)?
    /// The path the last call took.
    public private(set) var lastPath: AttentionPath?

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
        // Without a cache or a recorder the keys are the queries' tokens: the plan is known now.
        let uncachedPlan = cache == nil && recorder == nil
            ? try plan(encoding: encoding, queryPositions: positions, keyPositions: positions) : nil
        if case .materialized? = uncachedPlan, hkv == h, learnedScale == nil {
            let bias = encoding.injectionPoint == .attentionScore
                ? try encoding.distanceScoreBias(queryPositions: positions, keyPositions: positions) : nil
            if encoding.injectionPoint != .attentionScore || bias != nil {
                lastPath = .projectionsLayout
                return try attendInPlace(x, positions: positions, encoding: encoding, bias: bias)
            }
        }
        func heads(_ y: Tensor, _ count: Int) throws -> Tensor {
            try y.reshaped([b, t, count, d]).permuted([0, 2, 1, 3])
        }
        var q = try heads(queryProjection(x), h)
        var k = try heads(keyProjection(x), hkv), v = try heads(valueProjection(x), hkv)
        if let cache, recorder == nil, !GradientMode.isEnabled, !encoding.rotationDependsOnLength {
            lastPath = .cache
            return try cachedAttention(q, k, v, positions: positions, encoding: encoding, cache: cache)
        }
        var keyPositions = positions
        if let cache {
            (k, v, keyPositions) = try cache.appending(keys: k, values: v, positions: positions, content: .unrotatedKeys)
        }
        let (unrotatedQueries, unrotatedKeys) = (q, k)
        let totalLength = keyPositions.length
        let scale: Float
        (q, k, scale) = try scored(q, k, queryPositions: positions, keyPositions: keyPositions, sequenceLength: totalLength,
                                   encoding: encoding)
        if hkv < h { (k, v) = (try expandHeads(k, batch: b, length: totalLength), try expandHeads(v, batch: b, length: totalLength)) }
        let context: Tensor
        if recorder == nil,
           case let .blocked(bias) = try uncachedPlan ?? plan(encoding: encoding, queryPositions: positions,
                                                               keyPositions: keyPositions) {
            lastPath = .blocked
            context = try Tensor.causalAttention(queries: q, keys: k, values: v, scale: scale, distanceBias: bias)
        } else {
            lastPath = .materialized
            var scores = try q.matmul(k, transposeOther: true, scale: scale)
            if encoding.injectionPoint == .attentionScore {
                scores = try scores + encoding.scoreBias(queries: q, queryPositions: positions, keyPositions: keyPositions)
            }
            let probabilities = try scores.causalSoftmax()  // the causal mask without a mask tensor
            if let recorder {
                recorder(unrotatedQueries, hkv < h ? try expandHeads(unrotatedKeys, batch: b, length: totalLength) : unrotatedKeys, probabilities)
            }
            context = try probabilities.matmul(v)
        }
        return try outputProjection(context.permuted([0, 2, 1, 3]).reshaped([b, t, c]))
    }

    /// The materialised path without a cache, a recorder, shared key heads or a learned score scale
    /// (whose gradient, a sum over every query and key, would add in another order), for a scheme
    /// whose bias (if any) does not read the queries: queries, keys and values stay in the
    /// projections' layout [B, T, H, D] and the context is written in it (`Tensor.headScores`,
    /// `headContext`), so no permute copies them to [B, H, T, D] and back. The same products in the
    /// same order as the general path: the same result bit for bit (tested).
    func attendInPlace(_ x: Tensor, positions: PositionIDs, encoding: any PositionalEncoding,
                       bias: Tensor?) throws -> Tensor {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        let h = numberOfHeads, d = c / h
        let (q, k, scale) = try scored(queryProjection(x).reshaped([b, t, h, d]),
                                       keyProjection(x).reshaped([b, t, h, d]),
                                       queryPositions: positions, keyPositions: positions, sequenceLength: t,
                                       encoding: encoding, layout: .timeThenHeads)
        let v = try valueProjection(x).reshaped([b, t, h, d])
        var scores = try Tensor.headScores(queries: q, keys: k, scale: scale)
        if let bias { scores = try scores + bias }
        let context = try Tensor.headContext(probabilities: scores.causalSoftmax(), values: v)
        return try outputProjection(context.reshaped([b, t, c]))
    }

    /// Queries and keys as the scores use them, and the scores' scale: normalised first (cosine
    /// attention: rotation keeps norms), rotated (rotary schemes), then normalised and scaled by
    /// s_qk (nGPT, whose unit vectors' dot products lie in [−1, 1]: the scores are multiplied by
    /// √D to restore a softmax temperature). Each key depends only on itself and its position.
    func scored(_ queries: Tensor, _ keys: Tensor, queryPositions: PositionIDs, keyPositions: PositionIDs,
                sequenceLength: Int, encoding: any PositionalEncoding,
                layout: HeadLayout = .headsThenTime) throws -> (Tensor, Tensor, Float) {
        var (q, k) = (queries, keys)
        var scale = 1 / Float(q.shape[3]).squareRoot()
        if case let .cosine(temperature, learned) = scoring {
            q = try q.l2Normalized(axis: -1)
            k = try k.l2Normalized(axis: -1)
            if learned, let learnedScale { q = try q * learnedScale; scale = 1 } else { scale = 1 / temperature }
        }
        if encoding.injectionPoint == .queryKeyRotation {
            q = try encoding.rotate(q, positions: queryPositions, sequenceLength: sequenceLength, layout: layout)
            k = try encoding.rotate(k, positions: keyPositions, sequenceLength: sequenceLength, layout: layout)
        }
        if scoring == .normalized, let learnedScale {
            q = try q.l2Normalized(axis: -1) * learnedScale
            k = try k.l2Normalized(axis: -1) * learnedScale
            scale = Float(q.shape[3]).squareRoot()
        }
        return (q, k, scale)
    }

    /// Inference with a KV cache: only the new keys are rotated and appended (as scored); the
    /// queries attend to the cache in place, grouped heads read without being copied.
    func cachedAttention(_ queries: Tensor, _ keys: Tensor, _ values: Tensor, positions: PositionIDs,
                         encoding: any PositionalEncoding, cache: LayerCache) throws -> Tensor {
        let (b, h, t, d) = (queries.shape[0], queries.shape[1], queries.shape[2], queries.shape[3])
        let totalLength = cache.length + t
        let (q, k, scale) = try scored(queries, keys, queryPositions: positions, keyPositions: positions,
                                       sequenceLength: totalLength, encoding: encoding)
        let cached = cache.length
        let keyPositions = try cache.append(keys: k, values: values, positions: positions, content: .scoredKeys)
        let out = TensorStorage(count: b * h * t * d, zeroed: false)
        // A long prefill goes in chunks of queries, so that a score bias [B, H, chunk, Tk] stays small;
        // a chunk ending at token e sees the first cached + e keys (the rest of the cache is ignored).
        let chunk = max(1, min(t, cachedScoreBudget / max(1, h * totalLength)))
        for start in stride(from: 0, to: t, by: chunk) {
            let rows = min(chunk, t - start), visible = cached + start + rows
            let whole = rows == t
            let qChunk = whole ? q : try q.sliced(axis: 2, start..<(start + rows))
            var bias: Tensor?
            if encoding.injectionPoint == .attentionScore {
                let queryPositions = whole ? positions : try PositionIDs(
                    values: (0..<b).flatMap { positions.row($0).dropFirst(start).prefix(rows) }, batchSize: b, length: rows)
                let visibleKeys = visible == totalLength ? keyPositions : try PositionIDs(
                    values: (0..<b).flatMap { keyPositions.row($0).prefix(visible) }, batchSize: b, length: visible)
                bias = try encoding.scoreBias(queries: qChunk, queryPositions: queryPositions, keyPositions: visibleKeys)
            }
            if let bias, bias.shape != [1, h, rows, visible], bias.shape != [b, h, rows, visible] {
                throw TensorError.shapeMismatch(operation: "CausalSelfAttention (KV cache)", shapes: [bias.shape],
                                                detail: "a score bias must be [1 or B, H, Tq, Tk] = [1 or \(b), \(h), \(rows), \(visible)]")
            }
            let shape = CachedAttentionShape(batch: b, heads: h, keyValueHeads: numberOfKeyValueHeads, queries: rows,
                                             cached: visible, capacity: cache.capacity, headDimension: d)
            let chunkOut = whole ? out : TensorStorage(count: b * h * rows * d, zeroed: false)
            cache.withStorage { keyPointer, valuePointer in
                Kernels.cachedAttention(q: qChunk.storage.pointer, keys: keyPointer, values: valuePointer, out: chunkOut.pointer,
                                        shape: shape, scale: scale, bias: bias?.storage.pointer, biasBatches: bias?.shape[0] ?? 1)
            }
            if !whole {
                for pair in 0..<(b * h) {
                    (out.pointer + (pair * t + start) * d).update(from: chunkOut.pointer + pair * rows * d, count: rows * d)
                }
            }
        }
        let context = Tensor(shape: [b, h, t, d], storage: out)
        return try outputProjection(context.permuted([0, 2, 1, 3]).reshaped([b, t, h * d]))
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
                throw ConfigurationError(context: "CausalSelfAttention", parameter: "implementation", value: "blocked",
                                                  allowed: "materialized or automatic for \(type(of: encoding)), whose bias depends on the queries")
            }
            return .materialized
        }
        return .blocked(DistanceBias(table: table, minimumDistance: low, queryPositions: qp, keyPositions: kp, positionBatches: n))
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        prefixed("query", queryProjection.namedParameters) + prefixed("key", keyProjection.namedParameters)
            + prefixed("value", valueProjection.namedParameters) + prefixed("output", outputProjection.namedParameters)
            + (learnedScale.map { [("scale", $0)] } ?? [])
    }
}

/// One layer's cache: keys and values [B, Hkv, capacity, D], of which the first Tc rows of each
/// head are filled, and their positions [B, Tc]. Appending copies only the new rows; the capacity
/// doubles when full (a copy per doubling, amortised O(1) per token). A cache holds one kind of key
/// for its whole life: unrotated (the general path) or as scored (inference's in-place path).
public final class LayerCache {
    public enum Content: String, Sendable { case unrotatedKeys, scoredKeys }

    public private(set) var positions: PositionIDs?
    public private(set) var content: Content?
    /// Rows allocated per head.
    public private(set) var capacity = 0
    private var keys = TensorStorage(count: 0), values = TensorStorage(count: 0)
    private var heads = 0, headDimension = 0

    public init() {}

    /// The cached length Tc.
    public var length: Int { positions?.length ?? 0 }

    /// Appends, then returns contiguous copies of everything cached so far (the general path) and the positions.
    func appending(keys k: Tensor, values v: Tensor, positions p: PositionIDs,
                   content kind: Content) throws -> (Tensor, Tensor, PositionIDs) {
        let merged = try append(keys: k, values: v, positions: p, content: kind)
        return (contiguous(keys, batch: p.batchSize), contiguous(values, batch: p.batchSize), merged)
    }

    /// Appends new keys and values [B, Hkv, T, D] and their positions [B, T], copying only the new
    /// rows; returns the positions of everything cached.
    func append(keys k: Tensor, values v: Tensor, positions p: PositionIDs, content kind: Content) throws -> PositionIDs {
        guard k.rank == 4, k.shape == v.shape, k.shape[0] == p.batchSize, k.shape[2] == p.length else {
            throw TensorError.shapeMismatch(operation: "LayerCache.appending", shapes: [k.shape, v.shape, [p.batchSize, p.length]],
                                            detail: "keys and values [B, Hkv, T, D] with positions [B, T]")
        }
        let (b, g, t, d) = (k.shape[0], k.shape[1], k.shape[2], k.shape[3])
        if let positions {
            guard content == kind else {
                throw TensorError.invalidArgument(operation: "KeyValueCache", parameter: "content", value: kind.rawValue,
                                                  allowed: "\(content?.rawValue ?? "") like the tokens already cached (decode with "
                                                    + "one path: inference without a recorder, or the general path)")
            }
            guard positions.batchSize == b, heads == g, headDimension == d else {
                throw TensorError.shapeMismatch(operation: "LayerCache.appending",
                                                shapes: [k.shape, [positions.batchSize, heads, length, headDimension]],
                                                detail: "new keys must match the cached batch, heads and head dimension")
            }
        } else {
            (content, heads, headDimension) = (kind, g, d)
        }
        let old = length, total = old + t
        if total > capacity { grow(to: max(total, 2 * capacity, 16), batch: b) }
        for pair in 0..<(b * g) {
            let target = (pair * capacity + old) * d, source = pair * t * d
            (keys.pointer + target).update(from: k.storage.pointer + source, count: t * d)
            (values.pointer + target).update(from: v.storage.pointer + source, count: t * d)
        }
        var merged = p
        if let positions {
            var rows: [Int] = []
            rows.reserveCapacity(b * total)
            for row in 0..<b { rows += positions.row(row); rows += p.row(row) }
            merged = try PositionIDs(values: rows, batchSize: b, length: total)
        }
        positions = merged
        return merged
    }

    /// Reallocates to `rows` per head, keeping the filled rows.
    private func grow(to rows: Int, batch b: Int) {
        let (newKeys, newValues) = (TensorStorage(count: b * heads * rows * headDimension, zeroed: false),
                                    TensorStorage(count: b * heads * rows * headDimension, zeroed: false))
        let filled = length * headDimension
        if filled > 0 {
            for pair in 0..<(b * heads) {
                let (to, from) = (pair * rows * headDimension, pair * capacity * headDimension)
                (newKeys.pointer + to).update(from: keys.pointer + from, count: filled)
                (newValues.pointer + to).update(from: values.pointer + from, count: filled)
            }
        }
        (keys, values, capacity) = (newKeys, newValues, rows)
    }

    /// [B, Hkv, Tc, D], copied out of the capacity layout (the general path needs whole tensors).
    private func contiguous(_ storage: TensorStorage, batch b: Int) -> Tensor {
        let (tc, d) = (length, headDimension)
        let out = TensorStorage(count: b * heads * tc * d, zeroed: false)
        for pair in 0..<(b * heads) {
            (out.pointer + pair * tc * d).update(from: storage.pointer + pair * capacity * d, count: tc * d)
        }
        return Tensor(shape: [b, heads, tc, d], storage: out)
    }

    /// The cache's keys and values in place, [B, Hkv, capacity, D].
    func withStorage<R>(_ body: (UnsafePointer<Float>, UnsafePointer<Float>) throws -> R) rethrows -> R {
        try body(keys.pointer, values.pointer)
    }
}
