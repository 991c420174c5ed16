import ArgumentParser
import Foundation
import Lab
import Models
import NN
import PositionalEncodings
import TensorCore
import Tasks

/// Options shared by `train` and `sweep`: the model and the training.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model dimension C.") var modelDimension = 64
    @Option(help: "Transformer blocks (three: with two, whether ALiBi and NoPE learn copy depends on the seed).")
    var layers = 3
    @Option(help: "Attention heads H.") var heads = 4
    @Option(help: "Training steps.") var steps = 3000
    @Option(help: "Sequences per batch.") var batchSize = 32
    @Option(help: "Peak learning rate.", transform: parseFloat32) var learningRate: Float = 3e-3
    @Option(help: "Examples (or text windows) per evaluation length.") var evalSamples = 64
    @Option(help: "Key/value heads (grouped-query attention); default: as many as heads.") var kvHeads: Int?
    @Option(help: "Feed-forward network: mlp or swiGLU.") var feedForward: FeedForwardKind = .mlp
    @Option(help: "Norm: layerNorm or rmsNorm.") var normalization: NormalizationKind = .layerNorm
    @Option(help: "Norm placement: preNorm, postNorm, parallel (attention and feed-forward side by side, GPT-NeoX), or normalized (nGPT; needs --feed-forward swiGLU).") var placement: NormalizationPlacement = .preNorm
    @Option(help: "Cosine attention with this temperature (instead of q·k/√D).", transform: parseFloat32)
    var cosineTemperature: Float?
    @Flag(help: "Learn the cosine attention's temperature.") var learnedTemperature = false
    @Flag(help: "A separate output head instead of the token embedding's transpose.") var untied = false

    var architecture: ArchitectureOptions {
        ArchitectureOptions(keyValueHeads: kvHeads, feedForward: feedForward, normalization: normalization, placement: placement,
                            attentionScoring: cosineTemperature.map { .cosine(temperature: $0, learned: learnedTemperature) } ?? .scaledDotProduct,
                            tiedEmbeddings: !untied)
    }
}

extension FeedForwardKind: ExpressibleByArgument {}
extension DigitOrder: ExpressibleByArgument {}
extension SparseTarget: ExpressibleByArgument {}
extension AdditionMarkers: ExpressibleByArgument {}
extension NormalizationKind: ExpressibleByArgument {}
extension NormalizationPlacement: ExpressibleByArgument {}

/// Task settings shared by `train` and `sweep`.
struct TaskArguments: ParsableArguments {
    @Option(help: "Symbols of the symbolic tasks.") var alphabetSize: Int?
    @Option(help: "Tokens each target depends on (sparse, parity).") var k = 2
    @Option(help: "How far back from the end the k tokens may lie (sparse, parity).") var locality: Int?
    @Option(help: "Random offset of coupled position IDs in training (addition).") var maximumOffset = 0
    @Option(help: "Digit order (addition): \(DigitOrder.allCases.map(\.rawValue).joined(separator: ", ")).") var digitOrder = DigitOrder.reversedResult
    @Flag(help: "Pad both operands to the longer's digits and the sum to one more (addition).") var padOperands = false
    @Option(help: ArgumentHelp("IDs of \"+\" and \"=\" (addition): coupled (the significance before the sum's first digit, "
        + "as Cho et al.) or fixed (1 and 2 whatever the offset; runs before 2026-11-29)."))
    var additionMarkers = AdditionMarkers.coupled
    @Option(help: "The sparse task's target: sum (of the k marked symbols) or sumModulo (mod the alphabet, a sparse parity).")
    var sparseTarget = SparseTarget.sum
    @Option(help: "Data file: text for --task text (default: the King James Bible), JSON lines for --task jsonl.") var data: String?

    var options: TaskOptions {
        TaskOptions(alphabetSize: alphabetSize, k: k, locality: locality, digitOrder: digitOrder, maximumOffset: maximumOffset,
                    padOperands: padOperands, additionMarkers: additionMarkers, data: data.map { URL(fileURLWithPath: $0) },
                    sparseTarget: sparseTarget)
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one model on a task; with --out, evaluate it at longer lengths too.",
        discussion: "The run folder gets config.json, log.jsonl (one line per step), checkpoint.safetensors (atomic, every "
            + "--checkpoint-every steps) and eval.json; --resume continues a killed run to exactly the same weights.")

    @Option(help: "Task: \(LabTask.names.joined(separator: ", ")).") var task = "copy"
    @OptionGroup var taskArguments: TaskArguments
    @Option(help: ArgumentHelp(schemeHelp)) var pe = "rope"
    @Option(help: ArgumentHelp(ropeHelp)) var rope: String?
    @Option(help: "Training position IDs: sequential, offset:N (random offset up to N), randomized:N (sorted subset of 0..<N).")
    var positions = "sequential"
    @Option(help: "Longest training sequence, in tokens.") var trainLength = 32
    @OptionGroup var model: ModelOptions
    @Option(help: "Evaluation lengths in tokens, comma-separated (default: 1, 2, 4 and 8 times --train-length).") var evalLengths: String?
    @Option(help: "Seed for initialisation and data.") var seed: UInt64 = 0
    @Option(help: "Print every N steps.") var logEvery = 50
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Write a checkpoint every N steps (with --out).") var checkpointEvery = 100
    @Flag(help: "Continue the run in --out from its last checkpoint (options that contradict its config.json are refused).")
    var resume = false
    @Flag(help: "Predictive Position Coupling: learn the next token's coupled position ID and decode with the model's own IDs (addition).")
    var predictPositions = false

    func validate() throws {
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, not \(logEvery)") }
    }

    /// The settings of config.json (top-level keys) that each option sets.
    static let settingOfOption: [String: String] = [
        "--task": "task", "--pe": "pe", "--rope": "pe", "--positions": "positions", "--seed": "seed",
        "--train-length": "trainLength", "--model-dimension": "modelDimension", "--layers": "layers", "--heads": "heads",
        "--steps": "steps", "--batch-size": "batchSize", "--learning-rate": "learningRate", "--eval-lengths": "evalLengths",
        "--eval-samples": "evalSamples", "--checkpoint-every": "checkpointEvery", "--predict-positions": "predictPositions",
        "--alphabet-size": "taskOptions", "--k": "taskOptions", "--locality": "taskOptions", "--maximum-offset": "taskOptions",
        "--digit-order": "taskOptions", "--pad-operands": "taskOptions", "--sparse-target": "taskOptions", "--data": "taskOptions",
        "--kv-heads": "architecture", "--feed-forward": "architecture", "--normalization": "architecture",
        "--placement": "architecture", "--cosine-temperature": "architecture", "--learned-temperature": "architecture",
        "--untied": "architecture",
    ]

    /// The settings that options given on the command line (`given`) set to something other than
    /// what the recorded run holds. Options not given take the recorded run's values, so that what
    /// derives from them (default evaluation lengths, a scheme's resolved settings) matches.
    func settingsInConflict(with recorded: RunSpecification, given: Set<String>) throws
        -> [(key: String, given: String, recorded: String)] {
        var probe = self
        if !given.contains("--train-length") { probe.trainLength = recorded.trainLength }
        if !given.contains("--eval-lengths") { probe.evalLengths = recorded.evalLengths.map(String.init).joined(separator: ",") }
        if !given.contains("--model-dimension") { probe.model.modelDimension = recorded.modelDimension }
        let g = try jsonFields(probe.runSpecification()), r = try jsonFields(recorded)
        let keys = Set(given.compactMap { Train.settingOfOption[$0] })
        return keys.sorted().compactMap { key in g[key] == r[key] ? nil : (key, g[key] ?? "none", r[key] ?? "none") }
    }

    /// The run these options specify.
    func runSpecification() throws -> RunSpecification {
        try RunSpecification(
            task: task, taskOptions: taskArguments.options, pe: parseScheme(pe, rope: rope), positions: parsePositions(positions), seed: seed,
            trainLength: trainLength, modelDimension: model.modelDimension, layers: model.layers, heads: model.heads, steps: model.steps,
            batchSize: model.batchSize, learningRate: model.learningRate, evalLengths: try evalLengths.map(parseLengths),
            evalSamples: model.evalSamples, checkpointEvery: checkpointEvery, predictPositions: predictPositions,
            architecture: model.architecture)
    }

    func run() throws {
        if resume, out == nil { throw ValidationError("--resume needs --out, the folder of the run to continue") }
        let folder = URL(fileURLWithPath: out ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("poslab-train-\(ProcessInfo.processInfo.processIdentifier)").path)
        var specification = try runSpecification()
        let hasRun = FileManager.default.fileExists(atPath: folder.appendingPathComponent(Experiment.configurationFile).path)
        if let out { try checkOutputFolder(out) }
        if resume {
            guard hasRun else { throw ValidationError("--resume: \(folder.path) holds no run to continue (no config.json)") }
            let recorded = try Experiment.specification(in: folder)
            // The run's config.json decides; an option given here that says otherwise is refused, not ignored.
            let conflicts = try settingsInConflict(with: recorded, given: givenOptions())
            guard conflicts.isEmpty else {
                throw ValidationError("--resume: the run in \(folder.path) was specified with "
                    + conflicts.map { "\($0.key) = \($0.recorded)" }.joined(separator: ", ") + "; this command gives "
                    + conflicts.map { "\($0.key) = \($0.given)" }.joined(separator: ", ")
                    + ". Resume without those options, or train a new run in another folder.")
            }
            specification = recorded
        } else if hasRun {
            throw ValidationError("--out \(folder.path) already holds a run; pass --resume to continue it, or choose another folder")
        }
        let lock = try FolderLock(folder, what: "training run")
        defer { lock.release() }
        let experiment = Experiment(specification: specification, folder: folder)
        if resume, experiment.hasCheckpoint { printError("resumed \(experiment.checkpointURL.path)") }
        print("\(specification.task), \(specification.label), sequences up to \(specification.trainLength) tokens; \(specification.steps) steps")
        guard let trained = try trainShowingProgress(experiment, resume: resume, logEvery: logEvery, record: out != nil) else {
            try? FileManager.default.removeItem(at: folder)
            return
        }
        let report = try evaluate(trained, specification)
        try experiment.writeEvaluation(report)
        print("checkpoint: \(experiment.checkpointURL.path)")
    }
}

/// Trains `experiment` with a progress bar and a line every `logEvery` steps. A run that diverges
/// is recorded (eval.json with status "diverged", when `record`) and the command exits with 1.
/// Returns nil without `record` (a throwaway run: nothing to evaluate into).
func trainShowingProgress(_ experiment: Experiment, resume: Bool, logEvery: Int, record: Bool) throws -> Transformer? {
    let progress = ProgressLine()
    defer { progress.clear() }
    do {
        let trained = try experiment.train(resume: resume, stop: StopOnSignal.installed) { p in
            progress.show(p)
            if p.step % logEvery == 0 || p.step == 1 || p.step == p.totalSteps {
                progress.clear()
                print(String(format: "step %5d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %.0fs",
                             p.step, p.totalSteps, p.loss, p.learningRate, p.gradientNorm, p.tokensPerSecond, p.remainingSeconds))
            }
        }
        return record ? trained : nil
    } catch let diverged as TrainingDiverged {
        progress.clear()
        let url = experiment.folder.appendingPathComponent(Experiment.evaluationFile)
        if record { try experiment.writeEvaluation(EvaluationReport.diverged(experiment.specification, diverged)) }
        printError("\(diverged)" + (record ? "; recorded as diverged in \(url.path)" : ""))
        throw ExitCode(1)
    }
}

/// Refuses an output folder path that names an existing file, before any work.
func checkOutputFolder(_ path: String, parameter: String = "--out") throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
        throw ValidationError("\(parameter) \(path) is a file; give a folder (a new one, or a run folder to resume)")
    }
}

/// Evaluates and prints a table, returning eval.json's content.
func evaluate(_ model: Transformer, _ run: RunSpecification, lengths: [Int]? = nil, samples: Int? = nil) throws -> EvaluationReport {
    var rows: [[String]] = []
    let report = try Evaluator.report(model: model, run: run, lengths: lengths, samples: samples) { r in
        rows.append([String(r.length), String(format: "%.3f", r.accuracy), String(format: "%.3f", r.tokenAccuracy),
                     String(format: "%.4f", r.loss), String(format: "%.3f", r.perplexity), String(r.count)])
    }
    print(table(["length", "accuracy", "token acc.", "loss", "perplexity", "count"], rows))
    return report
}

func parseLengths(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 2 }) else {
        throw ValidationError("lengths must be comma-separated integers of at least 2, not \"\(text)\"")
    }
    return values.map { $0! }
}

/// A Float32 option as written: a number that Float32 holds (finite; not rounded to 0 or to
/// infinity from a value that is neither), or a message naming the value and the range.
func parseFloat32(_ text: String) throws -> Float {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    guard let wide = Double(trimmed), let narrow = Float(trimmed) else {
        throw ValidationError("\"\(text)\" is not a number")
    }
    guard wide.isFinite else { throw ValidationError("\(text) is not a finite number") }
    guard narrow.isFinite, (narrow == 0) == (wide == 0) else {
        throw ValidationError("\(text) is beyond Float32: allowed are magnitudes from "
                              + "\(Float.leastNonzeroMagnitude) to \(Float.greatestFiniteMagnitude), or 0")
    }
    return narrow
}

func parsePositions(_ text: String) throws -> PositionAssignment {
    let parts = text.split(separator: ":").map(String.init)
    switch (parts.first, parts.count > 1 ? Int(parts[1]) : nil) {
    case ("sequential", _): return .sequential
    case let ("offset", n?) where n >= 0: return .randomOffset(maximumOffset: n)
    case let ("randomized", n?) where n > 0: return .randomized(maximumPosition: n)
    default: throw ValidationError("--positions must be sequential, offset:N or randomized:N, not \"\(text)\"")
    }
}


/// A one-line progress bar on standard error, redrawn in place when it is a terminal.
final class ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastDraw = Date.distantPast

    func show(_ p: TrainingProgress, label: String = "") {
        guard isTerminal, Date().timeIntervalSince(lastDraw) > 0.1 || p.step == p.totalSteps else { return }
        lastDraw = Date()
        let width = 30, filled = width * p.step / max(1, p.totalSteps)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        printError(String(format: "\r%@%@ %d/%d  loss %.4f  %.0f tok/s  ETA %.0fs", label, bar, p.step, p.totalSteps, p.loss,
                          p.tokensPerSecond, p.remainingSeconds), newline: false)
    }

    func clear() { if isTerminal { printError("\r\u{1B}[K", newline: false) } }
}

/// The options (`--name`) given on this process's command line after the subcommand.
func givenOptions(_ arguments: [String] = CommandLine.arguments) -> Set<String> {
    Set(arguments.dropFirst().prefix { $0 != "--" }.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=")[0]) })
}

/// Each top-level field of a value's JSON, as compact JSON text with sorted keys.
func jsonFields<T: Encodable>(_ value: T) throws -> [String: String] {
    let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
    return object.mapValues { value in
        (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
    }
}
