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
            if let data = options.data { return .text(try TextTask(contentsOf: data)) }
            return .text(try TextTask.kingJamesBible())
        }
        return .sequence(try TaskCatalog.named(name, options: options))
    }

    public var vocabularySize: Int {
        switch self {
        case let .sequence(task): return task.vocabularySize
        case .text: return TextTask.vocabularySize
        }
    }

    /// Training batches of sequences up to `length` tokens, with position IDs from `assignment`
    /// (or the task's own coupled IDs).
    public func trainingBatch(count: Int, length: Int, assignment: PositionAssignment,
                              generator: inout SplitMix64) throws -> TokenBatch {
        var batch: TokenBatch
        switch self {
        case let .sequence(task):
            let largest = task.size(fittingIn: length)
            guard largest >= task.minimumSize else {
                throw TensorError.invalidArgument(operation: "task \(task.name)", parameter: "trainLength", value: "\(length)",
                                                  allowed: "at least \(task.sequenceLength(size: task.minimumSize)) tokens, the shortest example")
            }
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
