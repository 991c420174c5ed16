import ArgumentParser
import Foundation
import Models
import NN
import PositionalEncodings
import TensorCore
import Tasks

/// Everything a training run was started with, saved as `config.json` in its folder.
struct RunConfiguration: Codable, Equatable {
    /// "copy" or "text".
    var task: String
    /// The text file of the "text" task.
    var data: String?
    /// Copy: the longest input; text: the window length.
    var trainLength: Int
    var alphabetSize: Int
    var model: TransformerConfiguration
    var training: TrainingConfiguration
    var checkpointEvery: Int
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small decoder-only Transformer on the copy task or on a text (byte-level).",
        discussion: "With --out, the run folder gets config.json, log.jsonl (one line per step) and checkpoint.safetensors, "
            + "written atomically every --checkpoint-every steps; --resume continues a killed run to exactly the same weights.")

    @Option(help: "Task: copy, or text (byte-level language modelling of --data).") var task = "copy"
    @Option(help: "Text file for --task text.") var data: String?
    @Option(help: "Training steps.") var steps = 200
    @Option(help: "Sequences per batch.") var batchSize = 16
    @Option(help: "Copy: longest input (the sequence is twice this plus two). Text: window length.") var trainLength = 16
    @Option(help: "Model dimension C.") var modelDimension = 64
    @Option(help: "Positional scheme: \(PositionalScheme.names.joined(separator: ", ")).") var pe = "rope"
    @Option(help: "Transformer blocks.") var layers = 2
    @Option(help: "Attention heads H.") var heads = 4
    @Option(help: "Key/value heads (grouped-query attention); default: as many as heads.") var kvHeads: Int?
    @Option(help: "Feed-forward network: mlp or swiGLU.") var feedForward: FeedForwardKind = .mlp
    @Option(help: "Norm: layerNorm or rmsNorm.") var normalization: NormalizationKind = .layerNorm
    @Option(help: "Norm placement: preNorm or postNorm.") var placement: NormalizationPlacement = .preNorm
    @Option(help: "Peak learning rate.") var learningRate: Float = 3e-3
    @Option(help: "Seed for initialisation and data.") var seed: UInt64 = 0
    @Option(help: "Print every N steps.") var logEvery = 20
    @Option(help: "Run folder for configuration, log and checkpoints.") var out: String?
    @Option(help: "Write a checkpoint every N steps (with --out).") var checkpointEvery = 50
    @Flag(help: "Continue the run in --out from its last checkpoint (its config.json wins over other options).") var resume = false

    func run() throws {
        if resume, out == nil { throw ValidationError("--resume needs --out, the folder of the run to continue") }
        let folder = out.map { URL(fileURLWithPath: $0, isDirectory: true) }
        let checkpointURL = folder?.appendingPathComponent(Checkpoint.fileName)
        var run = try makeRunConfiguration()
        if let folder, let checkpointURL {
            let configURL = folder.appendingPathComponent("config.json")
            let exists = FileManager.default.fileExists(atPath: checkpointURL.path)
            if resume, FileManager.default.fileExists(atPath: configURL.path) {
                run = try JSONDecoder().decode(RunConfiguration.self, from: Data(contentsOf: configURL))
            } else if exists {
                throw ValidationError("--out \(folder.path) already holds a run; pass --resume to continue it, or choose another folder")
            }
            try AtomicFile.write(pretty(run), to: configURL)
        }
        let nextBatch = try batchSource(run)
        let model = try Transformer(configuration: run.model, seed: run.training.seed)
        let trainer = try Trainer(model: model, configuration: run.training)
        if resume, let checkpointURL, FileManager.default.fileExists(atPath: checkpointURL.path) {
            try trainer.restoreCheckpoint(from: checkpointURL)
            printError("resumed \(checkpointURL.path) at step \(trainer.step)")
        }
        let log = try folder.map { try TrainingLog(url: $0.appendingPathComponent("log.jsonl"), keepingStepsUpTo: trainer.step) }
        print(run.task == "copy" ? "copy task, inputs of 1...\(run.trainLength) symbols" : "text \(run.data ?? ""), windows of \(run.trainLength) bytes",
              terminator: "; \(model.parameterCount) parameters; \(run.training.steps) steps\n")
        let progress = ProgressLine()
        try trainer.train(nextBatch: nextBatch) { p in
            try log?.append(p)
            progress.show(p)
            if p.step % logEvery == 0 || p.step == 1 || p.step == p.totalSteps {
                progress.clear()
                print(String(format: "step %5d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %.0fs",
                             p.step, p.totalSteps, p.loss, p.learningRate, p.gradientNorm, p.tokensPerSecond, p.remainingSeconds))
            }
            if let checkpointURL, p.step % run.checkpointEvery == 0 || p.step == p.totalSteps {
                try log?.flush()
                try trainer.saveCheckpoint(to: checkpointURL)
            }
        }
        progress.clear()
        if let checkpointURL { print("checkpoint: \(checkpointURL.path)") }
    }

    func makeRunConfiguration() throws -> RunConfiguration {
        guard checkpointEvery > 0 else { throw ValidationError("--checkpoint-every must be a positive count, not \(checkpointEvery)") }
        guard trainLength > 0 else { throw ValidationError("--train-length must be positive, not \(trainLength)") }
        let vocabulary: Int, sequenceLength: Int
        switch task {
        case "copy": (vocabulary, sequenceLength) = (try CopyTask(alphabetSize: 16).vocabularySize, CopyTask.sequenceLength(inputLength: trainLength))
        case "text":
            guard data != nil else { throw ValidationError("--task text needs --data FILE, a UTF-8 text file") }
            (vocabulary, sequenceLength) = (TextTask.vocabularySize, trainLength)
        default: throw ValidationError("--task must be copy or text, not \(task)")
        }
        let model = try TransformerConfiguration(
            vocabularySize: vocabulary, modelDimension: modelDimension, numberOfLayers: layers, numberOfHeads: heads,
            numberOfKeyValueHeads: kvHeads, feedForward: feedForward, normalization: normalization, normalizationPlacement: placement,
            positionalScheme: PositionalScheme.named(pe, trainingLength: sequenceLength))
        let training = try TrainingConfiguration(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
        return RunConfiguration(task: task, data: data.map { URL(fileURLWithPath: $0).path }, trainLength: trainLength, alphabetSize: 16, model: model, training: training,
                                checkpointEvery: checkpointEvery)
    }
}

/// The run's batches, drawn with the trainer's data generator.
func batchSource(_ run: RunConfiguration) throws -> (inout SplitMix64) throws -> TokenBatch {
    let size = run.training.batchSize, length = run.trainLength
    if run.task == "text" {
        let text = try TextTask(contentsOf: URL(fileURLWithPath: run.data ?? ""))
        _ = try { var probe = SplitMix64(seed: 0); return try text.batch(size: 1, length: length, generator: &probe) }()
        return { try text.batch(size: size, length: length, generator: &$0) }
    }
    let copy = try CopyTask(alphabetSize: run.alphabetSize)
    return { copy.batch(size: size, inputLengths: 1...length, generator: &$0) }
}

extension FeedForwardKind: ExpressibleByArgument {}
extension NormalizationKind: ExpressibleByArgument {}
extension NormalizationPlacement: ExpressibleByArgument {}

func pretty<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}

/// The step log, JSON lines: step, loss, learning rate, gradient norm, tokens/s, elapsed seconds.
/// Appended in batches; on resume, lines after the checkpoint's step (and a torn last line) are
/// dropped once, atomically, since those steps will be trained again.
final class TrainingLog {
    let handle: FileHandle
    var pending: [String] = []

    init(url: URL, keepingStepsUpTo step: Int) throws {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        let kept = text.split(separator: "\n").map(String.init).filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let s = object["step"] as? Int else { return false }
            return s <= step
        }
        try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: url)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? flush() }

    func append(_ p: TrainingProgress) throws {
        pending.append(String(format: #"{"step": %d, "loss": %.6g, "learning_rate": %.6g, "gradient_norm": %.6g, "tokens_per_second": %.1f, "elapsed_seconds": %.3f}"#,
                              p.step, p.loss, p.learningRate, p.gradientNorm, p.tokensPerSecond, p.elapsedSeconds))
        if pending.count >= 50 { try flush() }
    }

    func flush() throws {
        guard !pending.isEmpty else { return }
        try handle.write(contentsOf: Data(pending.map { $0 + "\n" }.joined().utf8))
        try handle.synchronize()
        pending.removeAll()
    }
}

/// A one-line progress bar on standard error, redrawn in place when it is a terminal.
final class ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastDraw = Date.distantPast

    func show(_ p: TrainingProgress) {
        guard isTerminal, Date().timeIntervalSince(lastDraw) > 0.1 || p.step == p.totalSteps else { return }
        lastDraw = Date()
        let width = 30, filled = width * p.step / max(1, p.totalSteps)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        printError(String(format: "\r%@ %d/%d  loss %.4f  %.0f tok/s  ETA %.0fs", bar, p.step, p.totalSteps, p.loss,
                          p.tokensPerSecond, p.remainingSeconds), newline: false)
    }

    func clear() { if isTerminal { printError("\r\u{1B}[K", newline: false) } }
}
