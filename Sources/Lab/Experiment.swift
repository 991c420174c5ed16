import Foundation
import Models
import PositionalEncodings
import Synchronization
import NN
import TensorCore
import Tasks

/// Trains one run in its folder: writes config.json, appends log.jsonl, checkpoints atomically
/// every `checkpointEvery` steps, and on `resume` continues from the last checkpoint to the same
/// weights an uninterrupted run reaches.
public final class Experiment {
    public let specification: RunSpecification
    public let folder: URL

    public static let configurationFile = "config.json", logFile = "log.jsonl", evaluationFile = "eval.json"

    public init(specification: RunSpecification, folder: URL) {
        self.specification = specification
        self.folder = folder
    }

    /// This training session, and `Kernels.blasProductCount` when it started.
    private var session: (record: TrainingSession, productsBefore: Int)?

    /// Records this session in environment.json; with `counting`, the products sent to OpenBLAS since it
    /// started. Without a session in this process (an evaluation of a run trained before), the last recorded
    /// session's count becomes unknown: it did not cover this evaluation.
    private func recordSession(counting: Bool = false) throws {
        guard let (started, before) = session else {
            guard var last = try TrainingSession.sessions(in: folder).last, last.blasProducts != nil else { return }
            last.blasProducts = nil
            return try TrainingSession.record(last, in: folder)
        }
        var record = started
        if counting { record.blasProducts = Kernels.blasProductCount - before }
        session = (record, before)
        try TrainingSession.record(record, in: folder)
    }

    /// Writes the run's evaluation (eval.json), after recording the products its session sent to OpenBLAS
    /// through the evaluation too (so that an eval.json never stands beside a count that missed it).
    public func writeEvaluation(_ report: EvaluationReport) throws {
        try recordSession(counting: true)
        try AtomicFile.write(prettyJSON(report), to: folder.appendingPathComponent(Experiment.evaluationFile))
    }

    public var checkpointURL: URL { folder.appendingPathComponent(Checkpoint.fileName) }
    public var hasCheckpoint: Bool { FileManager.default.fileExists(atPath: checkpointURL.path) }

    /// The specification saved in `folder`.
    public static func specification(in folder: URL) throws -> RunSpecification {
        let url = folder.appendingPathComponent(configurationFile)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw LabError.missing(url.path, "a run folder's config.json")
        }
        return try decodeJSON(RunSpecification.self, from: data, file: url.path)
    }

    /// Trains to the last step (or continues from the checkpoint when `resume`), returning the model.
    /// `stop`, when requested (by a signal handler, say), ends training at the next step
    /// boundary: a checkpoint is written there and `TrainingStopped` thrown; `resume` then
    /// continues to the same weights as an uninterrupted run.
    public func train(resume: Bool, stop: StopRequest? = nil, onStep: (TrainingProgress) throws -> Void = { _ in }) throws -> Transformer {
        if hasCheckpoint, !resume {
            throw LabError.invalid("\(folder.path) already holds a run; resume it or choose another folder")
        }
        try AtomicFile.write(prettyJSON(specification), to: folder.appendingPathComponent(Experiment.configurationFile))
        let task = try specification.makeTask()
        let model = try Transformer(configuration: specification.modelConfiguration(for: task), seed: specification.seed)
        let trainer = try Trainer(model: model, configuration: specification.trainingConfiguration())
        if resume, hasCheckpoint { try trainer.restoreCheckpoint(from: checkpointURL) }
        else if let source = specification.fineTuneFrom {
            try Extension.copyWeights(from: Extension.baseWeights(source), to: model, what: "fine-tune of \(source.folder)")
        }
        session = (TrainingSession(fromStep: trainer.step, kernels: try BLAS.load()), Kernels.blasProductCount)
        try recordSession()
        let log = try TrainingLog(url: folder.appendingPathComponent(Experiment.logFile), keepingStepsUpTo: trainer.step)
        let s = specification
        try trainer.train(nextBatch: { try task.trainingBatch(count: s.batchSize, length: s.trainLength, assignment: s.positions, generator: &$0) }) { p in
            guard p.loss.isFinite, p.gradientNorm.isFinite else {
                // No checkpoint of a diverged state: the last one stays the last finite step.
                try log.append(p, status: "diverged")
                try log.flush()
                throw TrainingDiverged(step: p.step, loss: p.loss, gradientNorm: p.gradientNorm)
            }
            try log.append(p)
            try onStep(p)
            let stopping = stop?.isRequested == true && p.step < p.totalSteps
            if p.step % s.checkpointEvery == 0 || p.step == p.totalSteps || stopping {
                try log.flush()
                try trainer.saveCheckpoint(to: checkpointURL)
                try recordSession(counting: true)
            }
            if stopping { throw TrainingStopped(step: p.step, totalSteps: p.totalSteps) }
        }
        try log.flush()
        return model
    }
}

/// Where and on which kernels a run trained: one record per training session in the run's
/// `environment.json` (a resumed run may continue on another machine, or another BLAS core).
public struct TrainingSession: Codable, Equatable {
    public static let file = "environment.json"

    public let fromStep: Int
    public let started: Date
    public let cores: Int
    public let kernels: BLASKernels
    /// The element-wise kernels (exponentials, activations): "avx2+fma" or "portable"; nil in
    /// records written before they were chosen at run time.
    public let elementwise: Kernels.ElementwiseKernels?
    /// Who multiplied matrices: "avx2+fma" (`ck_small_product`) or "blas"; nil in records written
    /// before the engine had its own kernel (every product then ran on OpenBLAS).
    public let smallProducts: Kernels.SmallProductKernels?
    /// The kernel's register tiles ("avx512" or "avx2", `Kernels.productTiles`): its speed, not its bits; nil
    /// where the kernel did not run ("blas"), and in records written before the AVX-512 tiles.
    public let productTiles: Kernels.ProductTiles?
    /// The matrix products this process sent to OpenBLAS (`Kernels.blasProductCount`) from the session's start
    /// to its last checkpoint, and to the run's evaluation after the last session; those of runs trained
    /// beside it in one process count too. 0 with small products on "avx2+fma": every product of the session
    /// ran on PositionLab's kernel, whose sums follow neither OpenBLAS's core nor the core count. Nil until the
    /// first checkpoint, and in records written before products were counted.
    public var blasProducts: Int?

    public init(fromStep: Int, started: Date = Date(), cores: Int = Parallel.coreCount, kernels: BLASKernels,
                elementwise: Kernels.ElementwiseKernels = Kernels.elementwise,
                smallProducts: Kernels.SmallProductKernels = Kernels.smallProducts,
                productTiles: Kernels.ProductTiles? = Kernels.ownProductTiles, blasProducts: Int? = nil) {
        (self.fromStep, self.started, self.cores, self.kernels) = (fromStep, started, cores, kernels)
        (self.elementwise, self.smallProducts, self.blasProducts) = (elementwise, smallProducts, blasProducts)
        self.productTiles = productTiles
    }

    /// Whether every product of the session ran on PositionLab's own kernel (see `blasProducts`).
    public var ownProductsOnly: Bool { smallProducts == .avx2FMA && blasProducts == 0 }

    /// The sessions recorded in `folder` (none for runs made before this record existed).
    public static func sessions(in folder: URL) throws -> [TrainingSession] {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(file).path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode([String: [TrainingSession]].self, from: data)["sessions"] ?? []
    }

    /// Appends `session`, dropping sessions that started at or after its step (they are trained again).
    static func record(_ session: TrainingSession, in folder: URL) throws {
        let kept = try sessions(in: folder).filter { $0.fromStep < session.fromStep }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(["sessions": kept + [session]])
        try AtomicFile.write(data + Data("\n".utf8), to: folder.appendingPathComponent(file))
    }
}

/// A request to stop training at the next step boundary, safe to make from any thread (a
/// signal handler's): the run writes a checkpoint there and stops with `TrainingStopped`.
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func request() { flag.store(true, ordering: .relaxed) }
    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}

/// Training stopped on request after `step` (its checkpoint written), or before a sweep's next run
/// (`step` nil). Not an error of the run: it continues with `--resume` (or the sweep re-run).
public struct TrainingStopped: Error, CustomStringConvertible {
    public let step: Int?
    public let totalSteps: Int?
    public init(step: Int? = nil, totalSteps: Int? = nil) { self.step = step; self.totalSteps = totalSteps }

    public var description: String {
        guard let step, let totalSteps else { return "stopped on request before the next run" }
        return "stopped on request after step \(step) of \(totalSteps), its checkpoint written"
    }
}

/// A training step whose loss or gradient norm is not finite (NaN or infinite). Not bad input:
/// a result, recorded as the run's status `diverged` in eval.json and results.csv.
public struct TrainingDiverged: Error, CustomStringConvertible {
    public let step: Int
    public let loss: Float
    public let gradientNorm: Float

    public var description: String { "training diverged at step \(step) (loss \(loss), gradient norm \(gradientNorm))" }
}

public enum LabError: Error, CustomStringConvertible {
    case missing(String, String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .missing(path, what): return "\(path): missing (expected \(what))"
        case let .invalid(message): return message
        }
    }
}

/// Decodes a file the user may have written or edited (config.json, a sweep file): a malformed
/// one is a `LabError` naming the file, the field's path and what was expected, not a raw
/// `DecodingError`. Errors of validation (a `ConfigurationError` from the values) name the file too.
public func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws -> T {
    try DuplicateKeys.check(data, in: file)
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as ConfigurationError where error.context == nil {
        // A value the file holds that validation refuses: named with the file it is in.
        throw ConfigurationError(parameter: error.parameter, value: error.value, allowed: error.allowed, context: file)
    } catch let error as DecodingError {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.drop { $0 == "." })
        }
        let reason: String
        switch error {
        case let .typeMismatch(expected, context): reason = "\(path(context)): expected \(describe(expected))"
        case let .valueNotFound(expected, context): reason = "\(path(context)): expected \(describe(expected)), found null"
        case let .keyNotFound(key, context):
            reason = "\(context.codingPath.isEmpty ? "" : path(context) + ": ")missing the key \"\(key.stringValue)\""
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                // Foundation says only "not valid JSON": tell a syntax error from a value that does not fit.
                do {
                    _ = try JSONSerialization.jsonObject(with: data)
                    reason = "a number does not fit its field (a negative count, a fraction where a whole number belongs, "
                        + "or a value too large)"
                } catch {
                    let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
                    reason = "not valid JSON" + (detail.map { " (\($0))" } ?? "")
                }
            } else {
                reason = "\(path(context)): \(context.debugDescription)"
            }
        @unknown default: reason = "\(error)"
        }
        throw LabError.invalid("\(file): \(reason)")
    }
}

private func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    case is Int.Type, is UInt64.Type: return "a whole number"
    case is Float.Type, is Double.Type: return "a number"
    default:
        let name = "\(type)"
        return name.hasPrefix("Array") ? "a list" : name.hasPrefix("Dictionary") ? "an object" : "a value of type \(name)"
    }
}

/// `value` as pretty JSON with sorted keys and a final newline: every file the lab writes.
public func prettyJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}

/// The step log, JSON lines: step, loss, learning rate, gradient norm, tokens/s, elapsed seconds.
/// Appended in batches; on resume, lines after the checkpoint's step (and a torn last line) are
/// dropped once, atomically, since those steps will be trained again.
public final class TrainingLog {
    let handle: FileHandle
    var pending: [String] = []

    public init(url: URL, keepingStepsUpTo step: Int) throws {
        let kept = try TrainingLog.entries(url).filter { $0.step <= step }.map(\.line)
        try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: url)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? flush() }

    /// Appends a step; a value that is not finite is written as null (JSON has no NaN), and a
    /// `status` (such as "diverged") is added when given.
    public func append(_ p: TrainingProgress, status: String? = nil) throws {
        func number(_ value: Float) -> String { value.isFinite ? String(format: "%.6g", value) : "null" }
        pending.append("{\"step\": \(p.step), \"loss\": \(number(p.loss)), \"learning_rate\": \(number(p.learningRate)), "
                       + "\"gradient_norm\": \(number(p.gradientNorm)), "
                       + String(format: #""tokens_per_second": %.1f, "elapsed_seconds": %.3f"#, p.tokensPerSecond, p.elapsedSeconds)
                       + (status.map { ", \"status\": \"\($0)\"" } ?? "") + "}")
        if pending.count >= 50 { try flush() }
    }

    public func flush() throws {
        guard !pending.isEmpty else { return }
        try handle.write(contentsOf: Data(pending.map { $0 + "\n" }.joined().utf8))
        try handle.synchronize()
        pending.removeAll()
    }

    /// Every line of a log with its step, for a resume: only a torn last line (no final newline,
    /// not JSON: a write cut short) is dropped; any other line that is not a log entry stops the
    /// resume with its number, so that nothing is deleted unread.
    static func entries(_ url: URL) throws -> [(step: Int, line: String)] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let torn = !text.isEmpty && !text.hasSuffix("\n")
        var entries: [(step: Int, line: String)] = []
        for (index, line) in lines.enumerated() {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let step = object?["step"] as? Int {
                entries.append((step, line))
            } else if !(torn && index == lines.count - 1) {
                throw LabError.invalid("\(url.path): line \(index + 1) is not a log entry (\(line.prefix(60))); "
                                       + "the resume stops rather than delete it: fix or remove the line, then resume")
            }
        }
        return entries
    }

    /// The complete lines of a log: step, loss and the line itself.
    public static func read(_ url: URL) -> [(step: Int, loss: Double, line: String)] {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"] as? Int, let loss = object["loss"] as? Double else { return nil }
            return (step, loss, String(line))
        }
    }
}
