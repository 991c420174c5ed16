import ArgumentParser
import Foundation
import Lab
import Models
import PositionalEncodings

/// `poslab finetune`: a trained run continued for a few steps at a longer length under another
/// scheme of its family (Chen et al. 2023 fine-tune position-interpolated LLaMA models for 1,000
/// steps), then evaluated as any run.
struct FineTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a trained run at a longer length under another scheme of its family, then evaluate it.",
        discussion: "The new run folder records the base run (its folder and identity) in config.json; the optimiser "
            + "starts fresh, the weights are the base run's. Example: poslab finetune --model runs/rope --pe rope --rope "
            + "'{\"rope_type\": \"linear\", \"factor\": 4}' --train-length 128 --steps 200 --out runs/rope-pi")

    @Option(help: "The trained base run's folder.") var model: String
    @Option(help: ArgumentHelp("The scheme to fine-tune under (default: the base run's). " + schemeHelp)) var pe: String?
    @Option(help: ArgumentHelp(ropeHelp)) var rope: String?
    @Option(help: "Longest training sequence of the fine-tune (default: the base run's).") var trainLength: Int?
    @Option(help: "Fine-tuning steps.") var steps = 200
    @Option(help: "Peak learning rate (default: the base run's).", transform: parseFloat32) var learningRate: Float?
    @Option(help: "Evaluation lengths, comma-separated (default: 1, 2, 4 and 8 times the fine-tune's training length).")
    var evalLengths: String?
    @Option(help: "Print every N steps.") var logEvery = 50
    @Option(help: "The new run folder.") var out: String

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, not \(steps)") }
        if let trainLength, trainLength < 4 { throw ValidationError("--train-length must be at least 4, not \(trainLength)") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, not \(logEvery)") }
    }

    func run() throws {
        let baseFolder = URL(fileURLWithPath: model)
        let base = try Experiment.specification(in: baseFolder)
        let scheme = try pe.map { try parseScheme($0, rope: rope) } ?? replacingRope(base.pe, rope: rope)
        let specification = try Extension.fineTune(base: baseFolder, scheme: scheme, trainLength: trainLength, steps: steps,
                                                   learningRate: learningRate, evalLengths: try evalLengths.map(parseLengths))
        try checkOutputFolder(out)
        let folder = URL(fileURLWithPath: out)
        let experiment = Experiment(specification: specification, folder: folder)
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent(Experiment.configurationFile).path),
           try Experiment.specification(in: folder) != specification {
            throw ValidationError("--out \(folder.path) already holds another run; choose another folder")
        }
        let lock = try FolderLock(folder, what: "fine-tune")
        defer { lock.release() }
        print("fine-tuning \(base.label) as \(specification.label) on sequences up to \(specification.trainLength) tokens; "
              + "\(specification.steps) steps")
        guard let trained = try trainShowingProgress(experiment, resume: true, logEvery: logEvery, record: true) else { return }
        let report = try evaluate(trained, specification)
        try experiment.writeEvaluation(report)
        print("checkpoint: \(experiment.checkpointURL.path)")
    }
}
