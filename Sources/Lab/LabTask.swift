import Foundation
import Models
import PositionalEncodings
import TensorCore
import Tasks

/// What a run trains on: a symbolic sequence task (exact-match evaluation) or a text (perplexity).
public enum LabTask {
    case sequence(any SequenceTask)
    case text(TextTask)

    public static let names = ["copy", "text"]

    public static func make(name: String, options: TaskOptions) throws -> LabTask {
        switch name {
        case "text":
            guard let data = options.data else {
                throw TensorError.invalidArgument(operation: "task text", parameter: "data", value: "none", allowed: "a UTF-8 text file")
            }
            return .text(try TextTask(contentsOf: URL(fileURLWithPath: data)))
        case "copy":
            return .sequence(try CopyTask(alphabetSize: options.alphabetSize ?? 16))
        default:
            throw TensorError.invalidArgument(operation: "task", parameter: "task", value: name, allowed: names.joined(separator: ", "))
        }
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
            guard largest >= 1 else {
                throw TensorError.invalidArgument(operation: "task \(task.name)", parameter: "trainLength", value: "\(length)",
                                                  allowed: "at least \(task.sequenceLength(size: 1)) tokens, the shortest example")
            }
            batch = try task.batch(count: count, sizes: 1...largest, generator: &generator)
        case let .text(text):
            batch = try text.batch(size: count, length: length, generator: &generator)
        }
        if batch.positions == nil, assignment != .sequential {
            batch.positions = try assignment.positions(batchSize: batch.batchSize, length: batch.length, generator: &generator).values
        }
        return batch
    }
}
