import Foundation
import Models
import PositionalEncodings
import TensorCore
import Tasks

/// What a run trains on: a symbolic sequence task (exact-match evaluation) or a text (perplexity).
public enum LabTask {
    case sequence(any SequenceTask)
    case text(TextTask)

    public static let names = TaskCatalog.names + ["text"]

    /// A task by name: the catalog's symbolic tasks (and their "+" mixtures), or "text": byte-level
    /// language modelling of `options.data`, by default the King James Bible with its last books held out.
    public static func make(name: String, options: TaskOptions) throws -> LabTask {
        if name == "text" {
            let text = try options.data.map { try TextTask(contentsOf: $0) } ?? TextTask.kingJamesBible()
            guard let tokenizer = options.tokenizer else { return .text(text) }
            return .text(try text.tokenized(with: ByteLevelBPE(contentsOf: tokenizer)))
        }
        return .sequence(try TaskCatalog.named(name, options: options))
    }

    public var vocabularySize: Int {
        switch self {
        case let .sequence(task): return task.vocabularySize
        case let .text(text): return text.vocabularySize
        }
    }

    /// Why this task cannot train at `length` tokens, or nil: a sequence task whose shortest
    /// example is longer, a text whose training part is too short for one window.
    public func trainingProblem(length: Int) -> String? {
        switch self {
        case let .sequence(task):
            let shortest = task.sequenceLength(size: task.minimumSize)
            return task.size(fittingIn: length) >= task.minimumSize ? nil
                : "at least \(shortest) tokens, the shortest \(task.name) example"
        case let .text(text):
            return text.training.count > length + 1 ? nil : "less than the training text's \(text.training.count - 1) \(text.unit)"
        }
    }

    /// Why this task cannot be evaluated at `length` tokens, or nil: a sequence task's evaluation
    /// examples do not fit, or the held-out text has no window of that length.
    public func evaluationProblem(length: Int) -> String? {
        switch self {
        case let .sequence(task):
            let evaluation = task.evaluationTask
            let shortest = evaluation.sequenceLength(size: evaluation.minimumSize)
            return evaluation.size(fittingIn: length) >= evaluation.minimumSize ? nil
                : "at least \(shortest) tokens, the shortest \(task.name) example"
        case let .text(text):
            return text.heldOut.count > length ? nil : "less than the \(text.heldOut.count) held-out \(text.unit) of the text"
        }
    }

    /// Throws one `ConfigurationError` naming every length of `lengths` this task cannot be
    /// evaluated at (and `maximumPosition`, the model's last representable position, if given),
    /// so that a run or an evaluation is refused before any compute, not after.
    public func checkEvaluation(lengths: [Int], maximumPosition: Int? = nil) throws {
        var problems: [(length: Int, reason: String)] = []
        for length in lengths {
            if let limit = maximumPosition, length - 1 > limit {
                problems.append((length, "at most \(limit + 1) tokens, the positions the model's scheme represents"))
            } else if let reason = evaluationProblem(length: length) {
                problems.append((length, reason))
            }
        }
        guard !problems.isEmpty else { return }
        throw ConfigurationError(parameter: "evaluation length", value: problems.map { "\($0.length)" }.joined(separator: ", "),
                                 allowed: Dictionary(grouping: problems, by: \.reason).sorted { $0.value[0].length < $1.value[0].length }
                                    .map { $0.key }.joined(separator: "; "))
    }

    /// Training batches of sequences up to `length` tokens, with position IDs from `assignment`
    /// (or the task's own coupled IDs).
    public func trainingBatch(count: Int, length: Int, assignment: PositionAssignment,
                              generator: inout SplitMix64) throws -> TokenBatch {
        var batch: TokenBatch
        switch self {
        case let .sequence(task):
            if let problem = trainingProblem(length: length) {
                throw ConfigurationError(parameter: "trainLength", value: "\(length)", allowed: problem)
            }
            let largest = task.size(fittingIn: length)
            batch = try task.batch(count: count, sizes: task.minimumSize...largest, generator: &generator)
        case let .text(text):
            batch = try text.batch(size: count, length: length, generator: &generator)
        }
        if batch.positions == nil, assignment != .sequential {
            batch.positions = try assignment.positions(batchSize: batch.batchSize, length: batch.length, generator: &generator).values
        }
        return batch
    }
}
