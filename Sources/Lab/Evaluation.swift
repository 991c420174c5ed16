import Foundation
import Models
import PositionalEncodings
import TensorCore
import Tasks

/// One evaluation length's figures. For symbolic tasks `accuracy` is exact match of whole targets
/// (every target token the arg max given the true prefix, which is what greedy decoding produces)
/// and `tokenAccuracy` the share of target tokens right; for text, accuracy is next-byte accuracy,
/// loss and perplexity come from non-overlapping chunks, and the sliding figures from windows of
/// the length moved by half of it, counting only each window's second half (every scored byte then
/// has at least half a window of context; Press et al. 2022 evaluate ALiBi this way, with stride 1).
public struct LengthResult: Codable, Equatable, Sendable {
    public var length: Int
    public var accuracy: Double
    public var tokenAccuracy: Double
    public var loss: Double
    public var perplexity: Double
    public var count: Int
    public var slidingLoss: Double?
    public var slidingPerplexity: Double?
    /// Symbolic tasks: entry i is the share of examples whose i-th target token is right (over the
    /// examples that have one): where along the answer a model goes wrong beyond its training
    /// length (the first digits of a sum right and the last wrong, say). nil for text.
    public var tokenAccuracyByIndex: [Double]?

    enum CodingKeys: String, CodingKey {
        case length, accuracy, tokenAccuracy = "token_accuracy", loss, perplexity, count
        case slidingLoss = "sliding_loss", slidingPerplexity = "sliding_perplexity"
        case tokenAccuracyByIndex = "token_accuracy_by_index"
    }

    public init(length: Int, accuracy: Double, tokenAccuracy: Double, loss: Double, perplexity: Double, count: Int,
                slidingLoss: Double? = nil, slidingPerplexity: Double? = nil, tokenAccuracyByIndex: [Double]? = nil) {
        self.length = length; self.accuracy = accuracy; self.tokenAccuracy = tokenAccuracy; self.loss = loss
        self.perplexity = perplexity; self.count = count; self.slidingLoss = slidingLoss; self.slidingPerplexity = slidingPerplexity
        self.tokenAccuracyByIndex = tokenAccuracyByIndex
    }
}

/// eval.json.
public struct EvaluationReport: Codable, Equatable, Sendable {
    public var task: String
    /// The evaluated scheme's name.
    public var pe: String
    /// The evaluated scheme with every setting (its text form), and the run's readable label;
    /// nil in files written before they were recorded.
    public var scheme: String?
    public var label: String?
    public var trainLength: Int
    public var seed: UInt64
    public var results: [LengthResult]
    /// "finished", or "diverged" (no results: training stopped at `divergedAtStep` on a non-finite
    /// loss); nil in files written before the status was recorded (finished).
    public var status: String?
    public var divergedAtStep: Int?
    /// The position IDs evaluation gave examples that carry none of their own: "sequential", or
    /// "randomized:N" for a run trained on randomized positions; nil in files written before it was
    /// recorded (when such runs were evaluated on 0..T−1, see `PositionAssignment.atEvaluation`).
    public var positions: String?

    enum CodingKeys: String, CodingKey {
        case task, pe, scheme, label, trainLength = "train_length", seed, results, status, divergedAtStep = "diverged_at_step"
        case positions = "evaluation_positions"
    }

    /// Whether this report of `run` predates evaluation on the run's own kind of positions: a run
    /// trained on randomized positions and scored on 0..T−1. A sweep evaluates such a run again.
    public func isStale(for run: RunSpecification) -> Bool {
        guard case .randomized = run.positions, status == nil || status == "finished" else { return false }
        return positions != run.positions.atEvaluation.text
    }

    /// The report of a run whose training diverged.
    public static func diverged(_ run: RunSpecification, _ error: TrainingDiverged) -> EvaluationReport {
        var report = withoutResults(run, status: "diverged")
        report.divergedAtStep = error.step
        return report
    }

    /// The report of a run whose last attempt failed with an error (its failure.json says which).
    public static func failed(_ run: RunSpecification) -> EvaluationReport { withoutResults(run, status: "failed") }

    private static func withoutResults(_ run: RunSpecification, status: String) -> EvaluationReport {
        var report = EvaluationReport(task: run.task, pe: run.pe.name, scheme: run.pe.description, label: run.label,
                                      trainLength: run.trainLength, seed: run.seed, results: [])
        report.status = status
        return report
    }

    public init(task: String, pe: String, scheme: String? = nil, label: String? = nil, trainLength: Int, seed: UInt64,
                results: [LengthResult]) {
        self.task = task; self.pe = pe; self.scheme = scheme; self.label = label; self.trainLength = trainLength
        self.seed = seed; self.results = results
    }
}

public enum Evaluator {
    /// eval.json for a run: its task at `lengths` (default: the run's) with `samples` examples each.
    public static func report(model: Transformer, run: RunSpecification, lengths: [Int]? = nil, samples: Int? = nil,
                              onLength: (LengthResult) throws -> Void = { _ in }) throws -> EvaluationReport {
        let results = try evaluate(model: model, task: run.makeTask(), lengths: lengths ?? run.evalLengths,
                                   samples: samples ?? run.evalSamples, positions: run.positions.atEvaluation, onLength: onLength)
        var report = EvaluationReport(task: run.task, pe: run.pe.name, scheme: run.pe.description, label: run.label,
                                      trainLength: run.trainLength, seed: run.seed, results: results)
        report.status = "finished"
        report.positions = run.positions.atEvaluation.text
        return report
    }

    /// Tokens per forward pass in evaluation: examples and text windows of one length go through
    /// the model in batches of about this many tokens (at least one sequence).
    public static let batchTokens = 32_768

    /// Evaluates `model` on `task` at each length. The examples depend only on the length, never
    /// on the run, so every scheme and seed is scored on the same data. `batchTokens` bounds a
    /// forward pass (results do not depend on it beyond float rounding).
    /// `positions` assigns the position IDs of examples that carry none of their own: sequential,
    /// or `.randomized(N)` for a run trained on randomized positions (see `PositionAssignment.atEvaluation`).
    public static func evaluate(model: Transformer, task: LabTask, lengths: [Int], samples: Int, batchTokens: Int = batchTokens,
                                positions: PositionAssignment = .sequential,
                                onLength: (LengthResult) throws -> Void = { _ in }) throws -> [LengthResult] {
        // Every length is checked before the first is evaluated: a bad one costs no compute and loses no result.
        try task.checkEvaluation(lengths: lengths, maximumPosition: model.positionalEncodings.compactMap(\.maximumPosition).min())
        try positions.checkEvaluation(lengths: lengths)
        var results: [LengthResult] = []
        for length in lengths {
            var generator = SplitMix64(seed: 0xE7A1_5EED ^ UInt64(length))
            // A generator of their own: the examples stay those every other run is scored on.
            var ids = EvaluationPositions(assignment: positions, generator: SplitMix64(seed: 0x9051_7105 ^ UInt64(length)))
            let result: LengthResult
            switch task {
            case let .sequence(sequenceTask):
                result = try evaluate(model, sequenceTask.evaluationTask, length: length, samples: samples,
                                      batchTokens: batchTokens, generator: &generator, positions: &ids)
            case let .text(text):
                result = try evaluate(model, text, length: length, samples: samples, batchTokens: batchTokens, positions: &ids)
            }
            try onLength(result)
            results.append(result)
        }
        return results
    }

    static func evaluate(_ model: Transformer, _ task: any SequenceTask, length: Int, samples: Int, batchTokens: Int,
                         generator: inout SplitMix64, positions: inout EvaluationPositions) throws -> LengthResult {
        let size = task.size(fittingIn: length)
        guard size >= task.minimumSize else {
            throw ConfigurationError(parameter: "evaluation length", value: "\(length)",
                                     allowed: "at least \(task.sequenceLength(size: task.minimumSize)) tokens, the shortest \(task.name) example")
        }
        var tally = Tally()
        let chunk = max(1, min(samples, batchTokens / length))
        var done = 0, exact = 0, correct = 0, scored = 0
        var decoded = IndexTally()
        while done < samples {
            let count = min(chunk, samples - done)
            let examples = try (0..<count).map { _ in try task.example(size: size, generator: &generator) }
            var batch = makeBatch(examples, padding: task.paddingToken)
            try positions.assign(to: &batch)
            try tally.add(model: model, batch: batch, exactMatch: true)
            if model.positionHead != nil, examples.allSatisfy({ $0.positions != nil }) {
                // Predictive Position Coupling: decode greedily, each new token at the position ID the
                // model itself predicted (the paper's inference); the prompt keeps its true IDs.
                let splits = examples.map { $0.lossMask.firstIndex(of: true) ?? $0.tokens.count }
                let requests = zip(examples, splits).map { example, split in
                    ContinuationRequest(prompt: Array(example.tokens[..<split]), promptPositions: Array(example.positions![..<split]))
                }
                let steps = zip(examples, splits).map { $0.tokens.count - $1 }.max() ?? 0
                let continuations = try model.greedyContinuations(requests, count: steps)
                for ((example, split), continuation) in zip(zip(examples, splits), continuations) {
                    let target = Array(example.tokens[split...])
                    var right = 0
                    for (index, token) in target.enumerated() {
                        let hit = index < continuation.tokens.count && continuation.tokens[index] == token
                        decoded.record(hit, at: index)
                        if hit { right += 1 }
                    }
                    correct += right; scored += target.count
                    if right == target.count { exact += 1 }
                }
            }
            done += count
        }
        var result = tally.result(length: length)
        if scored > 0 {
            // Accuracies from free-running decoding; loss and perplexity stay teacher-forced at the true IDs.
            result.accuracy = Double(exact) / Double(samples)
            result.tokenAccuracy = Double(correct) / Double(scored)
            result.tokenAccuracyByIndex = decoded.accuracies
        }
        return result
    }

    static func evaluate(_ model: Transformer, _ text: TextTask, length: Int, samples: Int, batchTokens: Int,
                         positions: inout EvaluationPositions) throws -> LengthResult {
        let bytes = text.heldOut
        guard bytes.count > length else {
            throw ConfigurationError(parameter: "evaluation length", value: "\(length)",
                                     allowed: "less than the \(bytes.count) held-out \(text.unit) of the text")
        }
        /// Windows of `length` bytes (start, first scored position), batched into forward passes.
        func tally(_ windows: [(start: Int, first: Int)]) throws -> Tally {
            var tally = Tally()
            let perBatch = max(1, batchTokens / length)
            for batchStart in stride(from: 0, to: windows.count, by: perBatch) {
                let group = windows[batchStart..<min(windows.count, batchStart + perBatch)]
                var inputs: [Int] = [], targets: [Int] = [], mask: [Bool] = []
                inputs.reserveCapacity(group.count * length); targets.reserveCapacity(group.count * length)
                for (start, first) in group {
                    inputs += bytes[start..<(start + length)].map(Int.init)
                    targets += bytes[(start + 1)...(start + length)].map(Int.init)
                    mask += (0..<length).map { $0 >= first }
                }
                var batch = TokenBatch(inputs: inputs, targets: targets, lossMask: mask, batchSize: group.count, length: length)
                try positions.assign(to: &batch)
                try tally.add(model: model, batch: batch, exactMatch: false)
            }
            return tally
        }
        // Non-overlapping windows, each scored whole; and windows sliding by half a length, each
        // scoring only its second half (every token then sees at least half a window of context).
        let chunks = try tally((0..<min(samples, (bytes.count - 1) / length)).map { ($0 * length, 0) })
        let shift = max(1, length / 2)
        var slidingWindows: [(start: Int, first: Int)] = []
        var start = 0
        while start + length < bytes.count, slidingWindows.count < samples {
            slidingWindows.append((start, start == 0 ? 0 : length - shift))
            start += shift
        }
        let sliding = try tally(slidingWindows)
        var result = chunks.result(length: length)
        result.accuracy = result.tokenAccuracy
        let slidingResult = sliding.result(length: length)
        result.slidingLoss = slidingResult.loss
        result.slidingPerplexity = slidingResult.perplexity
        return result
    }

    /// Position IDs for evaluation batches whose examples carry none (coupled tasks carry their own).
    struct EvaluationPositions {
        let assignment: PositionAssignment
        var generator: SplitMix64

        mutating func assign(to batch: inout TokenBatch) throws {
            guard batch.positions == nil, assignment != .sequential else { return }
            batch.positions = try assignment.positions(batchSize: batch.batchSize, length: batch.length, generator: &generator).values
        }
    }

    /// Right answers by the index of the target token within its example.
    struct IndexTally {
        var right: [Int] = [], seen: [Int] = []

        mutating func record(_ hit: Bool, at index: Int) {
            while seen.count <= index { right.append(0); seen.append(0) }
            seen[index] += 1
            if hit { right[index] += 1 }
        }

        var accuracies: [Double] { zip(right, seen).map { Double($0) / Double($1) } }
    }

    /// Running sums over scored tokens and sequences.
    struct Tally {
        var lossSum = 0.0, tokens = 0, correctTokens = 0, sequences = 0, exact = 0
        var byIndex = IndexTally()

        mutating func add(model: Transformer, batch: TokenBatch, exactMatch: Bool) throws {
            let v = model.configuration.vocabularySize
            let logits = try GradientMode.withoutGradient {
                try model.logits(batch.inputs, batchSize: batch.batchSize, length: batch.length, positions: batch.positionIDs()).scalars
            }
            for row in 0..<batch.batchSize {
                var allRight = true, any = false, index = 0
                for t in 0..<batch.length {
                    let i = row * batch.length + t
                    guard batch.lossMask[i] else { continue }
                    any = true
                    let z = logits[(i * v)..<((i + 1) * v)]
                    var best = z.startIndex, top = -Float.infinity
                    for j in z.indices where z[j] > top { top = z[j]; best = j }
                    var sum = 0.0
                    for value in z { sum += exp(Double(value - top)) }
                    lossSum += log(sum) - Double(z[z.startIndex + batch.targets[i]] - top)
                    tokens += 1
                    let hit = best - z.startIndex == batch.targets[i]
                    if hit { correctTokens += 1 } else { allRight = false }
                    if exactMatch { byIndex.record(hit, at: index) }
                    index += 1
                }
                if any { sequences += 1; if allRight { exact += 1 } }
            }
        }

        func result(length: Int) -> LengthResult {
            let loss = tokens > 0 ? lossSum / Double(tokens) : .nan
            return LengthResult(length: length, accuracy: sequences > 0 ? Double(exact) / Double(sequences) : 0,
                                tokenAccuracy: tokens > 0 ? Double(correctTokens) / Double(tokens) : 0,
                                loss: loss, perplexity: exp(loss), count: sequences,
                                tokenAccuracyByIndex: byIndex.seen.isEmpty ? nil : byIndex.accuracies)
        }
    }
}

extension PositionAssignment {
    /// The position IDs a run trained with this assignment is evaluated with. Randomized positions
    /// stay randomized: Ruoss et al. 2023 draw a sorted random subset of the same range [0, N) at
    /// test time too, and a model that has almost never seen neighbouring IDs cannot be judged on
    /// 0..T−1. A random offset becomes offset 0, as Cho et al. 2024 evaluate; coupled IDs come from
    /// the task's examples.
    public var atEvaluation: PositionAssignment {
        if case .randomized = self { return self }
        return .sequential
    }

    /// The assignment as written on the command line: sequential, offset:N, randomized:N, coupled.
    public var text: String {
        switch self {
        case .sequential: return "sequential"
        case let .randomOffset(n): return "offset:\(n)"
        case let .randomized(n): return "randomized:\(n)"
        case .coupled: return "coupled"
        }
    }

    /// The longest sequence whose positions this assignment draws at evaluation (and in analysis
    /// and generation): N for randomized:N; nil, no bound, for the others.
    public var longestEvaluation: Int? {
        if case let .randomized(n) = atEvaluation { return n }
        return nil
    }

    /// Refuses, before any compute, lengths whose positions this assignment cannot draw at evaluation.
    func checkEvaluation(lengths: [Int]) throws {
        guard let maximumPosition = longestEvaluation else { return }
        let beyond = lengths.filter { $0 > maximumPosition }
        guard beyond.isEmpty else {
            throw ConfigurationError(parameter: "evaluation length", value: beyond.map(String.init).joined(separator: ", "),
                                     allowed: "at most \(maximumPosition) tokens: a run trained on randomized positions from "
                                        + "[0, \(maximumPosition)) is evaluated on positions drawn from that range (choose "
                                        + "--eval-lengths, whose default is 1, 2, 4 and 8 times the training length, or a larger "
                                        + "randomized:N)")
        }
    }
}
