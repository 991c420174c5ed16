import ArgumentParser
import Foundation
import Interop
import Lab
import Models
import PositionalEncodings
import Synchronization
import TensorCore
import Tasks

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a trained run at the given lengths: accuracy, token accuracy, loss, perplexity.",
        discussion: "With --pe (and --rope) the run's weights are evaluated under another scheme of the same family: a RoPE "
            + "run as linear, ntk, dynamic, yarn, llama3, longrope, proportional or hope, e.g. --pe rope --rope "
            + "'{\"rope_type\": \"yarn\", \"factor\": 4}' (original_max_position_embeddings defaults to the run's training "
            + "length). With --pes, several such methods side by side: a methods × lengths table, and with --out an HTML "
            + "page beside the JSON.")

    @Option(help: "Run folder (config.json and checkpoint.safetensors).") var model: String
    @Option(help: "Evaluation lengths in tokens, comma-separated (default: the run's).") var lengths: String?
    @Option(help: "Examples (or text windows) per length (default: the run's).") var samples: Int?
    @Option(help: ArgumentHelp("Evaluate under this scheme instead of the run's own. " + schemeHelp)) var pe: String?
    @Option(help: ArgumentHelp(ropeHelp)) var rope: String?
    @Option(help: "Several schemes, comma-separated, each as --pe takes it; the run's own scheme is evaluated first.")
    var pes: String?
    @Option(help: "Write the results as JSON to this file (with --pes, also an HTML page with the same name and .html).")
    var out: String?
    @Option(help: ArgumentHelp("Text file to evaluate a text model on (default: the run's text; the King James Bible's "
                               + "held-out books for a transformers folder)."))
    var data: String?

    func validate() throws {
        if let samples, samples < 1 { throw ValidationError("--samples must be positive, not \(samples)") }
        if pe != nil, pes != nil { throw ValidationError("give --pe or --pes, not both") }
    }

    func run() throws {
        let lengths = try lengths.map(parseLengths)
        // Every scheme is parsed and checked against the run before any evaluation starts.
        let single = try pe.map { try parseScheme($0, rope: rope) }
        if let out {
            let url = URL(fileURLWithPath: out)
            try AtomicFile.checkDestination(url, parameter: "--out")
            if pes != nil { try AtomicFile.checkDestination(url.deletingPathExtension().appendingPathExtension("html"), parameter: "--out") }
        }
        let (run, trained) = try loadRun(model, data: data)
        if let pes {
            let methods = try parseSchemeList(pes, rope: rope)
            let swaps = try [(run, trained)] + methods.map { try Extension.swap(trained, run: run, to: $0) }
            var reports: [EvaluationReport] = []
            for (index, (swapped, swappedModel)) in swaps.enumerated() {
                print("\n\(index == 0 ? "as trained: " : "")\(swapped.label)  [\(swapped.pe.description)]")
                var report = try evaluate(swappedModel, swapped, lengths: lengths, samples: samples)
                report.label = index == 0 ? "\(run.label) (as trained)" : swapped.label
                reports.append(report)
            }
            print("\n" + methodsTable(run: run, reports: reports))
            if let out {
                let url = URL(fileURLWithPath: out)
                try AtomicFile.write(prettyJSON(reports), to: url)
                let page = url.deletingPathExtension().appendingPathExtension("html")
                try AtomicFile.write(Report.extensionPage(run: run, reports: reports), to: page)
                print("report: \(page.path)")
            }
            return
        }
        // --rope alone changes the run's own rotary scheme (a new rope_type replaces the old one).
        let swap = try single ?? (rope == nil ? nil : replacingRope(run.pe, rope: rope))
        var evaluated = (run: run, model: trained)
        if let swap { evaluated = try Extension.swap(trained, run: run, to: swap) }
        if swap != nil { print("\(run.label) weights evaluated as \(evaluated.run.label)  [\(evaluated.run.pe.description)]") }
        var report = try evaluate(evaluated.model, evaluated.run, lengths: lengths, samples: samples)
        if swap != nil { report.label = "\(evaluated.run.label) (trained as \(run.label))" }
        if let out { try AtomicFile.write(prettyJSON(report), to: URL(fileURLWithPath: out)) }
    }

    /// Methods × lengths: exact match, or perplexity for text.
    func methodsTable(run: RunSpecification, reports: [EvaluationReport]) -> String {
        let isText = run.task == "text"
        let lengths = Array(Set(reports.flatMap { $0.results.map(\.length) })).sorted()
        print(isText ? "perplexity by evaluation length:" : "exact match by evaluation length:")
        return table(["method"] + lengths.map(String.init), reports.map { report in
            [report.label ?? report.pe] + lengths.map { length in
                report.results.first { $0.length == length }.map {
                    String(format: isText ? "%.3f" : "%.2f", isText ? $0.perplexity : $0.accuracy) } ?? "–"
            }
        })
    }
}

/// The checkpointed model of a run folder, or the model of a transformers folder; a clear error
/// when the folder holds neither.
func checkpointedModel(_ folder: String) throws -> Transformer {
    if TransformersImport.isTransformersFolder(URL(fileURLWithPath: folder)) {
        return try TransformersImport(folder: URL(fileURLWithPath: folder)).model
    }
    let checkpoint = URL(fileURLWithPath: folder).appendingPathComponent(Checkpoint.fileName)
    guard FileManager.default.fileExists(atPath: checkpoint.path) else { throw ValidationError("--model \(folder) holds no \(Checkpoint.fileName)") }
    return try Transformer.load(from: checkpoint)
}

/// A run folder's specification and checkpointed model; or a transformers folder: one that
/// `poslab export` wrote, with the run it came from, or a model made elsewhere, as a text model
/// over its tokenizer.json (on the King James Bible's held-out books, or `data`), with its context
/// (`max_position_embeddings`) as training and evaluation length. Either way the scheme is the one
/// imported (half-split RoPE pairs; a GPT-2 table for sinusoidal and NoPE runs). `data` replaces
/// a text run's data.
func loadRun(_ folder: String, data: String? = nil) throws -> (RunSpecification, Transformer) {
    let url = URL(fileURLWithPath: folder)
    guard TransformersImport.isTransformersFolder(url) else {
        let model = try checkpointedModel(folder)
        var run = try Experiment.specification(in: url)
        if let data {
            guard run.task == "text" else { throw ValidationError("--data applies to text runs; \(folder) trained on \(run.task)") }
            run.taskOptions.data = URL(fileURLWithPath: data)
        }
        return (run, model)
    }
    let imported = try TransformersImport(folder: url)
    let c = imported.model.configuration
    let runFile = url.appendingPathComponent(InteropRun.fileName)
    if let recorded = try? Data(contentsOf: runFile) {
        var run = try decodeJSON(RunSpecification.self, from: recorded, file: runFile.path)
        guard run.modelDimension == c.modelDimension, run.layers == c.numberOfLayers else {
            throw ValidationError("--model \(folder): \(InteropRun.fileName) describes another model than config.json")
        }
        run.pe = SchemeSpecification(c.positionalScheme)
        if let data {
            guard run.task == "text" else { throw ValidationError("--data applies to text runs; \(folder) trained on \(run.task)") }
            run.taskOptions.data = URL(fileURLWithPath: data)
        }
        return (run, imported.model)
    }
    let tokenizer = url.appendingPathComponent("tokenizer.json")
    guard FileManager.default.fileExists(atPath: tokenizer.path) else {
        throw ValidationError("--model \(folder) is a transformers folder (\(imported.family.architecture)) without tokenizer.json: "
                              + "poslab evaluates a model made elsewhere as a text model, through its tokenizer")
    }
    let bpe = try ByteLevelBPE(contentsOf: tokenizer)
    guard bpe.vocabularySize <= c.vocabularySize else {
        throw ValidationError("--model \(folder): tokenizer.json has \(bpe.vocabularySize) tokens, the model's embedding only \(c.vocabularySize)")
    }
    let run = try RunSpecification(
        task: "text", taskOptions: TaskOptions(data: data.map { URL(fileURLWithPath: $0) }, tokenizer: tokenizer),
        pe: SchemeSpecification(c.positionalScheme), trainLength: imported.maximumPositions, modelDimension: c.modelDimension,
        layers: c.numberOfLayers, heads: c.numberOfHeads, steps: 1, batchSize: 1, evalLengths: [imported.maximumPositions],
        evalSamples: 8, checkpointEvery: 1,
        architecture: ArchitectureOptions(keyValueHeads: c.numberOfKeyValueHeads, feedForward: c.feedForward,
                                          normalization: c.normalization, tiedEmbeddings: c.tiedEmbeddings),
        checkingFit: false)
    return (run, imported.model)
}

/// Runs a sweep with progress lines, then writes results.csv and report.html.
func runSweep(_ specification: SweepSpecification, folder: URL, jobs: Int) throws -> URL {
    try runSweep(Sweep(specification: specification, folder: folder), jobs: jobs)
    let report = try Report.write(sweepFolder: folder)
    try warnIfMixedKernels(folder)
    return report
}

/// Prints the report's warning when a sweep's runs did not all train on the same kernels.
func warnIfMixedKernels(_ folder: URL) throws {
    if let warning = Report.mixedKernelsWarning(Report.kernelSets(try Sweep.finishedRuns(in: folder))) {
        printError("warning: " + warning)
    }
}

/// Runs a sweep's plan with progress lines (no report).
func runSweep(_ sweep: Sweep, jobs: Int) throws {
    let folder = sweep.folder
    let total = sweep.plan.count
    let finished = Mutex(0)  // sweep events arrive one at a time, from the sweep's worker threads
    let start = Date()
    print("sweep: \(total) runs into \(folder.path), \(jobs) at a time")
    try sweep.run(jobs: jobs, stop: StopOnSignal.installed) { event in
        switch event {
        case let .started(run, resumed):
            print("  start  \(run.name)\(resumed ? " (resuming)" : "")")
        case let .step(run, p) where p.step % max(1, p.totalSteps / 4) == 0:
            print(String(format: "         %@ step %d/%d loss %.3f %.0f tok/s", run.name, p.step, p.totalSteps, p.loss, p.tokensPerSecond))
        case .step: break
        case let .finished(run, evaluation, seconds):
            let finished = finished.withLock { $0 += 1; return $0 }
            let accuracies = evaluation.results.map { String(format: "%d:%.2f", $0.length, $0.accuracy) }.joined(separator: " ")
            let elapsed = Date().timeIntervalSince(start)
            let outcome = evaluation.status == "diverged" ? "DIVERGED at step \(evaluation.divergedAtStep ?? 0)" : "accuracy " + accuracies
            print(String(format: "  done   %@ in %.0fs  %@  [%d/%d, ETA %.0fs]", run.name, seconds, outcome, finished, total,
                         elapsed / Double(finished) * Double(total - finished)))
        case let .skipped(run):
            finished.withLock { $0 += 1 }
            print("  skip   \(run.name) (finished earlier)")
        }
    }
}

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sweep",
        abstract: "Train and evaluate a grid of runs (schemes × tasks × seeds × training lengths × model sizes); resumable.",
        discussion: "The grid comes from --config (a JSON file with the keys tasks, pes, seeds, trainLengths, modelDimensions, "
            + "evalMultipliers, taskOptions, layers, heads, steps, batchSize, learningRate, evalSamples) or from the list options. "
            + "In the file, each entry of pes is a scheme as --pe takes it, or an object {\"name\": \"rope\", \"rope_theta\": 500}. "
            + "Writes runs/<name>/ (the name ends in the run's identity, a hash of its whole specification), plan.json, "
            + "results.csv and report.html into --out; a run is skipped only when its whole specification matches a "
            + "finished one, a killed one resumes, and a diverged one is recorded as such.")

    @Option(help: "A JSON sweep file.") var config: String?
    @Option(help: "Tasks, comma-separated.") var tasks = "copy"
    @Option(help: ArgumentHelp("Schemes, comma-separated; each as --pe takes it. " + schemeHelp)) var pes = "nope,rope,alibi"
    @Option(help: ArgumentHelp(ropeHelp + " Applied to every rope and hope scheme of --pes.")) var rope: String?
    @Option(help: "Seeds, comma-separated.") var seeds = "0"
    @Option(help: "Training lengths in tokens, comma-separated.") var trainLengths = "32"
    @Option(help: "Model dimensions, comma-separated (default: --model-dimension).") var modelDimensions: String?
    @Option(help: "Evaluation lengths as multiples of the training length.") var evalMultipliers = "1,2,4,8"
    @OptionGroup var model: ModelOptions
    @OptionGroup var taskArguments: TaskArguments
    @Flag(help: "Predictive Position Coupling for every run (addition).") var predictPositions = false
    @Option(help: "Runs at a time: one uses every core; more run each on one core (then give one per core).")
    var jobs = 1
    @Option(help: "Sweep folder.") var out: String
    @Flag(help: "Write the grid's runs to plan.jsonl in --out (one whole specification per line) and train nothing.")
    var plan = false
    @Option(help: ArgumentHelp("Train and evaluate only run I of the plan in --out (from --plan), then rebuild results.csv; "
                               + "'slurm' reads I from SLURM_ARRAY_TASK_ID.", valueName: "I"))
    var runIndex: RunIndex?
    @Option(help: "With --run-index: the identity --plan printed; the task is refused if the plan has changed since.")
    var planIdentity: String?
    @Flag(help: ArgumentHelp("Write the plan and Slurm scripts for it (a job array, one task per run, and a report job "
                             + "after it) into --out/slurm.")) var slurm = false
    @Option(help: "With --slurm: the partition.") var partition: String?
    @Option(help: "With --slurm: the time limit per task (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S).") var time: String?
    @Option(help: "With --slurm: CPUs per task (the engine uses them all).") var cpusPerTask = 2
    @Option(help: "With --slurm: tasks running at once.") var maxParallel: Int?
    @Flag(help: "With --slurm: submit the array and the report job with sbatch, and print their job IDs.") var submit = false

    func validate() throws {
        guard jobs >= 1, jobs <= 64 else { throw ValidationError("--jobs must be from 1 to 64, not \(jobs)") }
        if plan, runIndex != nil { throw ValidationError("--plan writes the plan and --run-index runs one of it: give one") }
        if planIdentity != nil, runIndex == nil { throw ValidationError("--plan-identity goes with --run-index") }
        if slurm, plan || runIndex != nil { throw ValidationError("--slurm writes the plan itself; give neither --plan nor --run-index") }
        if !slurm, let given = [("--submit", submit), ("--partition", partition != nil), ("--time", time != nil),
                                ("--max-parallel", maxParallel != nil), ("--cpus-per-task", cpusPerTask != 2)].first(where: \.1) {
            throw ValidationError("\(given.0) goes with --slurm")
        }
        if runIndex != nil, config != nil {
            throw ValidationError("--run-index takes its run from the plan in --out; the grid was given when the plan was written")
        }
    }

    /// The grid the list and model options specify (the defaults where none is given).
    func optionsSpecification() throws -> SweepSpecification {
        func list<T>(_ text: String, _ name: String, _ parse: (String) -> T?) throws -> [T] {
            let values = text.split(separator: ",").map { parse($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { throw ValidationError("--\(name): cannot read \"\(text)\"") }
            return values.map { $0! }
        }
        return try SweepSpecification(
            tasks: list(tasks, "tasks") { $0 }, pes: parseSchemeList(pes, rope: rope), seeds: list(seeds, "seeds") { UInt64($0) },
            trainLengths: list(trainLengths, "train-lengths") { Int($0) },
            modelDimensions: list(modelDimensions ?? String(model.modelDimension), "model-dimensions") { Int($0) },
            evalMultipliers: list(evalMultipliers, "eval-multipliers") { Int($0) }, taskOptions: taskArguments.options,
            layers: model.layers, heads: model.heads, steps: model.steps, batchSize: model.batchSize,
            learningRate: model.learningRate, evalSamples: model.evalSamples, predictPositions: predictPositions,
            architecture: model.architecture)
    }

    func run() throws {
        try checkOutputFolder(out)
        let fromOptions = try optionsSpecification()
        // Options that say what runs (the grid) beside a source that already says it (a plan, a file).
        let gridOptions = givenOptions().subtracting(["--out", "--jobs", "--config", "--plan", "--run-index", "--plan-identity",
                                                      "--slurm", "--partition", "--time", "--cpus-per-task", "--max-parallel",
                                                      "--submit"]).sorted()
        if let runIndex {
            guard gridOptions.isEmpty else {
                throw ValidationError("--run-index takes its run from the plan in --out; drop \(gridOptions.joined(separator: ", "))")
            }
            try runPlanned(index: runIndex.resolve(environment: ProcessInfo.processInfo.environment))
            return
        }
        let specification: SweepSpecification
        if let config {
            // The file is the whole grid: any other grid option beside it would be silently ignored.
            guard gridOptions.isEmpty else {
                throw ValidationError("--config \(config) holds the whole grid; give \(gridOptions.joined(separator: ", ")) in the "
                                      + "file instead of on the command line")
            }
            guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("--config \(config) cannot be read") }
            specification = try decodeJSON(SweepSpecification.self, from: data, file: config)
        } else {
            specification = fromOptions
        }
        if slurm {
            try writeSlurm(specification)
            return
        }
        if plan {
            let sweep = try Sweep(specification: specification, folder: URL(fileURLWithPath: out))
            let url = try sweep.writePlan()
            for (index, run) in sweep.plan.enumerated() { print("\(index)  \(run.name)") }
            let identity = try sweep.planIdentity
            print("plan: \(sweep.plan.count) runs, identity \(identity), in \(url.path)")
            print("run one with: poslab sweep --out \(out) --run-index I --plan-identity \(identity)")
            return
        }
        let report = try runSweep(specification, folder: URL(fileURLWithPath: out), jobs: jobs)
        print("report: \(report.path)")
    }

    /// --slurm: the plan, the array and report scripts, and with --submit both jobs submitted.
    func writeSlurm(_ specification: SweepSpecification) throws {
        let script = try SlurmScript(partition: partition, time: time, cpusPerTask: cpusPerTask, maxParallel: maxParallel)
        // Before anything is written: a submission needs sbatch.
        let sbatch = submit ? try executableOnPath("sbatch") : nil
        let folder = URL(fileURLWithPath: out).standardizedFileURL
        // The binary that runs now, wherever the PATH found it (argv[0] may be a bare name).
        let poslab = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        try SlurmScript.checkPath(folder.path, "--out")
        try SlurmScript.checkPath(poslab, "the poslab binary's path")
        let sweep = try Sweep(specification: specification, folder: folder)
        try sweep.writePlan()
        let identity = try sweep.planIdentity
        let scripts = folder.appendingPathComponent(SlurmScript.folderName)
        let array = scripts.appendingPathComponent(SlurmScript.arrayFile), report = scripts.appendingPathComponent(SlurmScript.reportFile)
        try AtomicFile.write(script.arrayScript(poslab: poslab, sweepFolder: folder.path, runs: sweep.plan.count,
                                                identity: identity), to: array)
        try AtomicFile.write(script.reportScript(poslab: poslab, sweepFolder: folder.path, identity: identity), to: report)
        print("plan: \(sweep.plan.count) runs, identity \(identity)\nscripts: \(array.path), \(report.path)")
        guard let sbatch else {
            print("submit with: job=$(sbatch --parsable \(array.path)) && sbatch --dependency=afterany:${job%%;*} \(report.path)")
            return
        }
        let arrayJob = try runSbatch(sbatch, [array.path])
        let reportJob = try runSbatch(sbatch, ["--dependency=afterany:\(arrayJob)", report.path])
        print("submitted: array job \(arrayJob) (\(sweep.plan.count) tasks), report job \(reportJob)")
    }

    /// Runs `sbatch --parsable ARGUMENTS` and returns the job ID it prints.
    func runSbatch(_ sbatch: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sbatch)
        process.arguments = ["--parsable"] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let job = printed.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard process.terminationStatus == 0, !job.isEmpty, job.allSatisfy(\.isNumber) else {
            throw ValidationError("sbatch \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): "
                                  + (message + printed).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return job
    }

    /// Trains and evaluates one run of the plan in --out, with progress lines.
    func runPlanned(index: Int) throws {
        let folder = URL(fileURLWithPath: out)
        let start = Date()
        let run = try Sweep.runPlanned(in: folder, index: index, expectedIdentity: planIdentity,
                                       stop: StopOnSignal.installed) { event in
            switch event {
            case let .started(run, resumed): printError("run \(index): \(run.name)\(resumed ? " (resuming)" : "")")
            case let .step(_, p) where p.step % max(1, p.totalSteps / 10) == 0:
                printError(String(format: "  step %d/%d loss %.3f %.0f tok/s", p.step, p.totalSteps, p.loss, p.tokensPerSecond))
            case .step: break
            case let .finished(_, evaluation, _):
                let outcome = evaluation.status == "diverged" ? "DIVERGED at step \(evaluation.divergedAtStep ?? 0)"
                    : evaluation.results.map { String(format: "%d:%.2f", $0.length, $0.accuracy) }.joined(separator: " ")
                printError("  done: \(outcome)")
            case let .skipped(run): printError("run \(index): \(run.name) finished earlier")
            }
        }
        print(String(format: "%@ in %.0f s; results.csv rebuilt", run.name, Date().timeIntervalSince(start)))
    }
}

/// A run of a plan: its index, or `slurm` for the index of this Slurm array task.
enum RunIndex: ExpressibleByArgument, Equatable {
    case index(Int)
    case slurm

    init?(argument: String) {
        if argument == "slurm" { self = .slurm } else if let i = Int(argument), i >= 0 { self = .index(i) } else { return nil }
    }

    func resolve(environment: [String: String]) throws -> Int {
        switch self {
        case let .index(i): return i
        case .slurm:
            guard let text = environment["SLURM_ARRAY_TASK_ID"] else {
                throw ValidationError("--run-index slurm: SLURM_ARRAY_TASK_ID is not set (this is not a task of a Slurm job array)")
            }
            guard let i = Int(text), i >= 0 else {
                throw ValidationError("--run-index slurm: SLURM_ARRAY_TASK_ID is \"\(text)\", not a run index")
            }
            return i
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report",
        abstract: "Write report.html and rebuild results.csv for a sweep folder, from the runs finished so far.")
    @Argument(help: "Sweep folder (with runs/*/eval.json).") var folder: String

    func run() throws {
        let url = URL(fileURLWithPath: folder)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ValidationError("\(folder) is not a sweep folder (no such folder)")
        }
        try Sweep.writeResults(in: url)  // from the finished runs' own files, whoever wrote them
        let report = try Report.write(sweepFolder: url)
        try warnIfMixedKernels(url)
        print(report.path)
    }
}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look inside a trained run: attention against distance, effective k and locality, rotary components, decay bound.",
        discussion: "Writes analysis.json into the run folder (or --out); `poslab report` draws it.")

    @Option(help: "Run folder (config.json and checkpoint.safetensors).") var model: String
    @Option(help: "Sequence length to analyse (default: twice the training length).") var length: Int?
    @Option(help: "Examples to average over.") var samples = 16
    @Option(help: "Where to write the JSON (default: analysis.json in the run folder).") var out: String?

    func run() throws {
        guard (1...10_000).contains(samples) else { throw ValidationError("--samples must be from 1 to 10000, not \(samples)") }
        // The analysis keeps every head's T × T attention probabilities.
        if let length, !(2...Analyzer.maximumLength).contains(length) {
            throw ValidationError("--length must be from 2 to \(Analyzer.maximumLength) (the analysis holds T × T attention "
                                  + "per head), not \(length)")
        }
        let folder = URL(fileURLWithPath: model)
        let (run, trained) = try loadRun(model)
        var longest = Analyzer.maximumLength
        if let n = run.positions.longestEvaluation {
            // Analysed on positions drawn from the run's training range, as it is evaluated.
            if let length, length > n {
                throw ValidationError("--length \(length) exceeds \(n): \(model) was trained on randomized positions from "
                                      + "[0, \(n)) and is analysed on positions drawn from that range")
            }
            longest = min(longest, n)
        }
        let report = try Analyzer.analyze(model: trained, run: run, length: length ?? min(2 * run.trainLength, longest),
                                          samples: samples)
        print(table(["layer", "effective k", "mean distance", "attention at distance 0", "at 1", "at 2"], report.layers.enumerated().map { i, layer in
            let byDistance = (0..<3).map { d in layer.attentionByDistance.map { $0.indices.contains(d) ? $0[d] : 0 }.reduce(0, +) / Double(layer.attentionByDistance.count) }
            return [String(i), String(format: "%.2f", layer.effectiveK), String(format: "%.2f", layer.meanDistance)] + byDistance.map { String(format: "%.3f", $0) }
        }))
        if let pairs = report.fullPeriodPairs { print("rotary pairs with a full period within \(run.trainLength) tokens: \(pairs)") }
        let url = out.map { URL(fileURLWithPath: $0) } ?? folder.appendingPathComponent(Analyzer.fileName)
        try AtomicFile.write(prettyJSON(report), to: url)
        print("analysis: \(url.path)")
    }
}

/// The path of `name` on the PATH, or a message saying it is not there.
func executableOnPath(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
    let folders = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
    if let found = folders.map({ $0 + "/" + name }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
        return found
    }
    throw ValidationError("--submit needs \(name), which is not on the PATH (\(folders.joined(separator: ":"))); "
                          + "without --submit the scripts are written for you to submit where Slurm is")
}

