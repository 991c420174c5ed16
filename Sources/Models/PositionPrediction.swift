import Foundation
import NN
import PositionalEncodings
import TensorCore

/// Predictive Position Coupling (PPC; Golowich et al. 2025, "The Role of Sparsity for Length
/// Generalization in Transformers", arXiv:2502.16792). Position Coupling (Cho et al. 2024) gives
/// tokens task-computed position IDs (digits of equal significance share one), which needs the
/// task's structure at inference to number the output. PPC instead trains a second head to predict,
/// at every input token, the coupled ID of the next token, and at inference feeds the model the IDs
/// it predicted itself: the prompt is prefilled with its true IDs, and each generated token gets the
/// arg max of the position head at the step that produced it.
///
/// Training (`lossComponents`): position loss = mean cross-entropy of the position logits against
/// `TokenBatch.positionTargets` over `positionLossMask`, i.e. every non-padding input, not only the
/// token loss's target entries: the next token's ID is defined everywhere (the prompt included), and
/// the head is trained wherever it is (our reading of the paper, which predicts the ID of every next
/// token); `makeBatch` builds that mask. The objective is token loss + λ · position loss, with λ
/// `TrainingConfiguration.positionLossWeight` (default 1).
extension Transformer {
    /// The token loss and, for a model with a position head, the (unweighted) position loss.
    /// Positions: `positions` if given, else the batch's own, else 0..T−1. A batch without
    /// positionTargets gets, for a model with a head, the next entry's sequential ID (t + 1, or
    /// the override's next ID); a batch with coupled positions but no targets is refused (its
    /// padding hides the IDs that follow each row). A selected target outside 0..<P is an error
    /// naming positionPrediction.
    public func lossComponents(_ batch: TokenBatch, positions: PositionIDs? = nil) throws -> (token: Tensor, position: Tensor?) {
        let ids = try positions ?? batch.positionIDs()
        let h = try finalHiddenStates(batch.inputs, batchSize: batch.batchSize, length: batch.length, positions: ids)
        let token = try Transformer.scoredLoss(h, head: tokenLogits, classes: configuration.vocabularySize,
                                                 targets: batch.targets, mask: batch.lossMask)
        guard let positionHead else { return (token, nil) }
        let (targets, mask) = try positionTargets(of: batch, override: positions)
        guard mask.contains(true) else { return (token, nil) }
        return (token, try Transformer.scoredLoss(h, head: { try positionHead($0) },
                                                  classes: configuration.positionPrediction ?? 0, targets: targets, mask: mask))
    }

    /// The mean cross-entropy of `head` over the rows of h [B, T, C] that `mask` [B·T] selects,
    /// the head computed on those rows only: a task that scores only its answer (sparse: one token
    /// of each sequence) spends no product, softmax or gradient on the logits of the rest. The same
    /// loss as `head(h).crossEntropy(targets:mask:)`; the head's weight gradient sums over the
    /// selected rows alone, where the full product also added the other rows' exact zeros.
    /// `classes` is the head's width: a selected target outside 0..<classes takes the full path, whose
    /// error names the target's row in the batch.
    static func scoredLoss(_ h: Tensor, head: (Tensor) throws -> Tensor, classes: Int, targets: [Int],
                           mask: [Bool]) throws -> Tensor {
        let width = h.shape.last ?? 0, rows = width > 0 ? h.count / width : 0
        let selected = mask.indices.filter { mask[$0] }
        // Everything scored, nothing scored or a malformed batch: the full path (which names the error).
        guard !selected.isEmpty, selected.count < rows, mask.count == rows, targets.count == rows,
              selected.allSatisfy({ (0..<classes).contains(targets[$0]) }) else {
            return try head(h).crossEntropy(targets: targets, mask: mask)
        }
        let scored = try h.reshaped([rows, width]).gatherRows(selected, indexShape: [selected.count])
        return try head(scored).crossEntropy(targets: selected.map { targets[$0] })
    }

    /// The position head's targets and mask for `batch`, checked against P.
    func positionTargets(of batch: TokenBatch, override positions: PositionIDs?) throws -> (targets: [Int], mask: [Bool]) {
        let operation = "Transformer.loss", (b, t) = (batch.batchSize, batch.length), count = b * t
        let classes = configuration.positionPrediction ?? 0
        let targets: [Int]
        if let given = batch.positionTargets {
            targets = given
        } else if batch.positions != nil && positions == nil {
            throw TensorError.invalidArgument(operation: operation, parameter: "positionTargets", value: "nil",
                                              allowed: "[B, T] next-token position IDs for a batch with coupled positions "
                                                  + "(the model has a position head: positionPrediction = \(classes))")
        } else {
            let own = positions?.values ?? Array([[Int]](repeating: Array(0..<t), count: b).joined())
            targets = (0..<count).map { i in i % t + 1 < t ? own[i + 1] : own[i] + 1 }
        }
        let mask = batch.positionLossMask ?? [Bool](repeating: true, count: count)
        guard targets.count == count, mask.count == count else {
            throw TensorError.shapeMismatch(operation: operation, shapes: [[b, t], [targets.count], [mask.count]],
                                            detail: "positionTargets and positionLossMask must be [B, T] like the inputs")
        }
        for i in 0..<count where mask[i] && !(0..<classes).contains(targets[i]) {
            throw TensorError.invalidArgument(operation: operation, parameter: "positionTargets",
                                              value: "\(targets[i]) (row \(i / t), input \(i % t))",
                                              allowed: "position IDs 0..<\(classes): raise positionPrediction (now \(classes)) above the largest ID")
        }
        return (targets, mask)
    }
}

/// Where the position IDs of generated tokens come from.
public enum GeneratedPositions: Equatable, Sendable {
    /// The position head's arg max at the step that produced the token (Predictive Position
    /// Coupling, Golowich et al. 2025); needs `positionPrediction`.
    case predicted
    /// Given IDs, one per generated token (at least `count`): Position Coupling with the task's true
    /// IDs, the oracle that PPC is measured against.
    case given([Int])
    /// The prompt's last ID + 1, + 2, … (no coupling).
    case sequential
}

/// One continuation to compute: prompt tokens, their position IDs (nil: 0..n−1), and where the
/// generated tokens' IDs come from.
public struct ContinuationRequest: Equatable, Sendable {
    public var prompt: [Int]
    public var promptPositions: [Int]?
    public var generatedPositions: GeneratedPositions

    public init(prompt: [Int], promptPositions: [Int]? = nil, generatedPositions: GeneratedPositions = .predicted) {
        self.prompt = prompt; self.promptPositions = promptPositions; self.generatedPositions = generatedPositions
    }
}

/// Generated tokens and the position IDs they were fed with.
public struct Continuation: Equatable, Sendable {
    /// The new tokens (ending with `stop` when it was produced).
    public var tokens: [Int]
    /// The position ID each new token was given (predicted, given or sequential).
    public var positions: [Int]
    /// The position head's arg max at the step that produced each token — its prediction of that
    /// token's ID, whatever ID was then used; nil for a model without the head.
    public var predictedPositions: [Int]?
}

extension Transformer {
    /// Predictive Position Coupling's inference (Golowich et al. 2025): prefills `prompt` with its true
    /// coupled IDs `promptPositions` (nil: 0..n−1) through a KV cache, then gives each generated token
    /// the position ID the position head predicted for it at the previous step (the step that chose
    /// the token). Tokens are chosen by `sampling`; `stop` ends generation when produced.
    public func generateWithPredictedPositions(prompt: [Int], promptPositions: [Int]?, count: Int,
                                               sampling: SamplingConfiguration, stop: Int? = nil) throws -> Continuation {
        let request = ContinuationRequest(prompt: prompt, promptPositions: promptPositions, generatedPositions: .predicted)
        return try continueRows([request], count: count, sampling: sampling, stop: stop)[0]
    }

    /// The greedy continuation of one prompt, for evaluation: `generatedPositions` .predicted (PPC),
    /// .given (the true coupled IDs) or .sequential. Returns the tokens and the IDs used.
    public func greedyContinuation(prompt: [Int], promptPositions: [Int]?, count: Int,
                                   generatedPositions: GeneratedPositions = .predicted, stop: Int? = nil) throws -> Continuation {
        let request = ContinuationRequest(prompt: prompt, promptPositions: promptPositions, generatedPositions: generatedPositions)
        return try continueRows([request], count: count, sampling: SamplingConfiguration(), stop: stop)[0]
    }

    /// Greedy continuations of many prompts, in request order; prompts of equal length are decoded
    /// together as one batch (rows are independent: the same tokens as one at a time, up to float
    /// rounding in exact ties).
    public func greedyContinuations(_ requests: [ContinuationRequest], count: Int, stop: Int? = nil,
                                    maximumBatchSize: Int = 128) throws -> [Continuation] {
        try require(maximumBatchSize > 0, "maximumBatchSize", maximumBatchSize, "a positive count")
        var results = [Continuation?](repeating: nil, count: requests.count)
        let groups = Dictionary(grouping: requests.indices) { requests[$0].prompt.count }
        for length in groups.keys.sorted() {
            let members = groups[length]!
            for start in stride(from: 0, to: members.count, by: maximumBatchSize) {
                let chunk = Array(members[start..<min(start + maximumBatchSize, members.count)])
                let rows = try continueRows(chunk.map { requests[$0] }, count: count, sampling: SamplingConfiguration(), stop: stop)
                for (index, row) in zip(chunk, rows) { results[index] = row }
            }
        }
        return results.map { $0! }
    }

    /// Decodes prompts of one length together through a KV cache.
    func continueRows(_ requests: [ContinuationRequest], count: Int, sampling: SamplingConfiguration, stop: Int?) throws -> [Continuation] {
        let operation = "generate"
        let b = requests.count, n = requests.first?.prompt.count ?? 0
        let (v, p) = (configuration.vocabularySize, configuration.positionPrediction ?? 0)
        guard count >= 0 else {
            throw TensorError.invalidArgument(operation: operation, parameter: "count", value: "\(count)", allowed: "a non-negative count")
        }
        var promptPositions: [[Int]] = []
        for request in requests {
            guard !request.prompt.isEmpty, request.prompt.count == n else {
                throw TensorError.invalidArgument(operation: operation, parameter: "prompt", value: "\(request.prompt.count) tokens",
                                                  allowed: "at least one token (\(n) in one batch)")
            }
            if let bad = request.prompt.first(where: { $0 < 0 || $0 >= v }) {
                throw TensorError.indexOutOfRange(operation: "\(operation): prompt token", index: bad, validRange: 0..<v)
            }
            let own = request.promptPositions ?? Array(0..<n)
            guard own.count == n else {
                throw TensorError.invalidArgument(operation: operation, parameter: "promptPositions", value: "\(own.count) IDs",
                                                  allowed: "one ID per prompt token (\(n))")
            }
            switch request.generatedPositions {
            case .predicted where positionHead == nil:
                throw TensorError.invalidArgument(operation: operation, parameter: "positionPrediction", value: "nil",
                                                  allowed: "a position head (TransformerConfiguration.positionPrediction) to predict positions")
            case let .given(ids) where ids.count < count:
                throw TensorError.invalidArgument(operation: operation, parameter: "generatedPositions", value: "\(ids.count) IDs",
                                                  allowed: "one ID per generated token (\(count))")
            default: break
            }
            promptPositions.append(own)
        }
        var rows = [Continuation](repeating: Continuation(tokens: [], positions: [], predictedPositions: positionHead == nil ? nil : []),
                                  count: b)
        guard b > 0, count > 0 else { return rows }
        var generator = SplitMix64(seed: sampling.seed)
        let cache = KeyValueCache(model: self)
        try GradientMode.withoutGradient {
            let prefill = try PositionIDs(values: Array(promptPositions.joined()), batchSize: b, length: n)
            var output = try outputs(Array(requests.map(\.prompt).joined()), batchSize: b, length: n, positions: prefill, cache: cache)
            var rowStride = n, finished = [Bool](repeating: false, count: b)
            for step in 0..<count {
                let logits = output.logits.scalars, positionLogits = output.positionLogits?.scalars
                for r in 0..<b where !finished[r] {
                    let last = r * rowStride + rowStride - 1
                    let token = sampling.choose(logits[(last * v)..<((last + 1) * v)], generator: &generator)
                    let predicted = positionLogits.map { argMax($0[(last * p)..<((last + 1) * p)]) }
                    let position: Int
                    switch requests[r].generatedPositions {
                    case .predicted: position = predicted!
                    case let .given(ids): position = ids[step]
                    case .sequential: position = promptPositions[r][n - 1] + 1 + step
                    }
                    rows[r].tokens.append(token)
                    rows[r].positions.append(position)
                    if let predicted { rows[r].predictedPositions?.append(predicted) }
                    if token == stop { finished[r] = true }
                }
                if step == count - 1 || !finished.contains(false) { break }
                // Finished rows are fed their last token again; their outputs are ignored.
                let fed = try PositionIDs(values: rows.map { $0.positions.last! }, batchSize: b, length: 1)
                output = try outputs(rows.map { $0.tokens.last! }, batchSize: b, length: 1, positions: fed, cache: cache)
                rowStride = 1
            }
        }
        return rows
    }
}
