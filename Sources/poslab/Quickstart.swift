import ArgumentParser
import Foundation
import Lab
import PositionalEncodings
import Tasks
import TensorCore

struct Quickstart: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main job: seven positional schemes on copy and 1-sparse planted correlations, trained short, evaluated up to 8× longer.",
        discussion: "A small sweep (NoPE, sinusoidal, learned absolute, T5 bias, ALiBi, RoPE, HoPE × copy, sparse; one seed) sized to "
            + "finish in about eleven minutes on two cores. Ends with a summary table and the path of report.html.")

    @Option(help: "Sweep folder.") var out = "runs/quickstart"
    @Option(help: "Training steps per run.") var steps = 3000
    @Option(help: ArgumentHelp("Transformer blocks. Three: with two, whether the relative schemes (ALiBi, NoPE) learn "
                               + "copy at all depends on the seed.")) var layers = 3
    @Option(help: "Runs at a time, at most 64 (one per core unless given); side by side, each keeps to one core.")
    var jobs = min(64, Parallel.coreCount)
    @Option(help: ArgumentHelp("Schemes, comma-separated, each as --pe takes it (default: the seven). " + schemeHelp))
    var pes = "nope,sinusoidal,learned,t5,alibi,rope,hope"
    @Option(help: ArgumentHelp(ropeHelp + " Applied to every rope and hope scheme of --pes.")) var rope: String?

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, not \(steps)") }
        guard jobs >= 1, jobs <= 64 else { throw ValidationError("--jobs must be from 1 to 64, not \(jobs)") }
    }

    func run() throws {
        let specification = try SweepSpecification(
            tasks: ["copy", "sparse"], pes: parseSchemeList(pes, rope: rope), seeds: [0],
            // k = 1, the sparsest planted correlation: at this size and budget k = 2's modular sum does
            // not train for any scheme (the target stays at chance), which would compare nothing.
            trainLengths: [24], modelDimensions: [64], evalMultipliers: [1, 2, 4, 8], taskOptions: TaskOptions(k: 1),
            layers: layers, heads: 4,
            steps: steps,
            batchSize: 32, learningRate: 3e-3, evalSamples: 64)
        let start = Date()
        let report = try runSweep(specification, folder: URL(fileURLWithPath: out), jobs: jobs)
        let runs = try Sweep.finishedRuns(in: URL(fileURLWithPath: out))
        let lengths = runs.first?.evaluation.results.map(\.length) ?? []
        print("\nexact-match accuracy by evaluation length (trained on ≤ \(specification.trainLengths[0]) tokens):")
        // A run that did not learn its task where it was trained says nothing about extrapolation: flag it.
        func unlearned(_ r: Sweep.FinishedRun) -> Bool { Report.didNotLearn(r.run, r.evaluation) }
        print(table(["task", "pe"] + lengths.map(String.init), runs.map { r in
            [r.run.task, r.run.label + (unlearned(r) ? " !" : "")] + r.evaluation.results.map { String(format: "%.2f", $0.accuracy) }
        }))
        if runs.contains(where: unlearned) {
            print(String(format: "! below %.2f at its training length: it did not learn the task there, so its figures beyond "
                         + "it say nothing about extrapolation (try more --steps or another seed).", Report.learnedAccuracy))
        }
        print(String(format: "\nfinished in %.0f s; report: %@", Date().timeIntervalSince(start), report.path))
    }
}
