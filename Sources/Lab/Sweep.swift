import Dispatch
import Foundation
import Models
import NN
import PositionalEncodings
import Synchronization
import TensorCore
import Tasks

/// A grid of runs: schemes × tasks × seeds × training lengths × model sizes, the other settings
/// shared. Read from JSON (keys as below) or built from command-line lists.
public struct SweepSpecification: Codable, Equatable, Sendable {
    public var tasks: [String]
    /// Schemes with their settings (in JSON: a name, a text form such as `rope{"rope_theta": 500}`, or an object).
    public var pes: [SchemeSpecification]
    public var seeds: [UInt64]
    public var trainLengths: [Int]
    public var modelDimensions: [Int]
    /// Evaluation lengths as multiples of each run's training length.
    public var evalMultipliers: [Int]
    public var taskOptions: TaskOptions
    public var layers: Int
    public var heads: Int
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    public var evalSamples: Int
    /// Predictive Position Coupling for every run (tasks with coupled positions only).
    public var predictPositions: Bool
    public var architecture: ArchitectureOptions

    public init(tasks: [String], pes: [SchemeSpecification], seeds: [UInt64] = [0], trainLengths: [Int] = [32], modelDimensions: [Int] = [64],
                evalMultipliers: [Int] = [1, 2, 4, 8], taskOptions: TaskOptions = TaskOptions(), layers: Int = 3, heads: Int = 4,
                steps: Int = 3000, batchSize: Int = 32, learningRate: Float = 3e-3, evalSamples: Int = 64,
                predictPositions: Bool = false, architecture: ArchitectureOptions = ArchitectureOptions()) throws {
        for (name, count) in [("tasks", tasks.count), ("pes", pes.count), ("seeds", seeds.count), ("trainLengths", trainLengths.count),
                              ("modelDimensions", modelDimensions.count), ("evalMultipliers", evalMultipliers.count)] {
            try require(count > 0, name, "[]", "at least one value")
        }
        // Checked before any product: a multiplier times a length must not overflow (found by FuzzSweepConfiguration).
        for length in trainLengths { try RunLimits.check(trainLength: length) }
        try require(evalMultipliers.allSatisfy { (1...RunLimits.maximumLength).contains($0) }, "evalMultipliers", evalMultipliers,
                    "multiples from 1 to \(RunLimits.maximumLength)")
        let size = [tasks.count, pes.count, seeds.count, trainLengths.count, modelDimensions.count]
            .reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        try require(size <= RunLimits.maximumSweepRuns, "sweep", "\(size) runs", "at most \(RunLimits.maximumSweepRuns) runs")
        for (name, values) in [("tasks", tasks.map { "\($0)" }), ("seeds", seeds.map { "\($0)" }),
                               ("trainLengths", trainLengths.map { "\($0)" }), ("modelDimensions", modelDimensions.map { "\($0)" }),
                               ("evalMultipliers", evalMultipliers.map { "\($0)" })] {
            try require(Set(values).count == values.count, name, values.joined(separator: ","), "distinct values")
        }
        self.tasks = tasks; self.pes = pes; self.seeds = seeds; self.trainLengths = trainLengths; self.modelDimensions = modelDimensions
        self.evalMultipliers = evalMultipliers; self.taskOptions = taskOptions; self.layers = layers; self.heads = heads
        self.steps = steps; self.batchSize = batchSize; self.learningRate = learningRate; self.evalSamples = evalSamples
        self.predictPositions = predictPositions
        self.architecture = architecture
        // Every run of the grid must be valid, and distinct, before any starts.
        let runs = try runs()
        try require(Set(runs.map(\.identity)).count == runs.count, "pes", pes.map(\.description),
                    "schemes that differ once their defaults are filled in (two of these are the same run)")
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(tasks: c.decode([String].self, forKey: .tasks), pes: c.decode([SchemeSpecification].self, forKey: .pes),
                      seeds: c.decodeIfPresent([UInt64].self, forKey: .seeds) ?? [0],
                      trainLengths: c.decodeIfPresent([Int].self, forKey: .trainLengths) ?? [32],
                      modelDimensions: c.decodeIfPresent([Int].self, forKey: .modelDimensions) ?? [64],
                      evalMultipliers: c.decodeIfPresent([Int].self, forKey: .evalMultipliers) ?? [1, 2, 4, 8],
                      taskOptions: c.decodeIfPresent(TaskOptions.self, forKey: .taskOptions) ?? TaskOptions(),
                      layers: c.decodeIfPresent(Int.self, forKey: .layers) ?? 3, heads: c.decodeIfPresent(Int.self, forKey: .heads) ?? 4,
                      steps: c.decodeIfPresent(Int.self, forKey: .steps) ?? 3000, batchSize: c.decodeIfPresent(Int.self, forKey: .batchSize) ?? 32,
                      learningRate: c.decodeIfPresent(Float.self, forKey: .learningRate) ?? 3e-3,
                      evalSamples: c.decodeIfPresent(Int.self, forKey: .evalSamples) ?? 64,
                      predictPositions: c.decodeIfPresent(Bool.self, forKey: .predictPositions) ?? false,
                      architecture: c.decodeIfPresent(ArchitectureOptions.self, forKey: .architecture) ?? ArchitectureOptions())
    }

    /// Every run of the grid, task-major so that a report fills in task by task.
    public func runs() throws -> [RunSpecification] {
        var result: [RunSpecification] = []
        for task in tasks {
            for length in trainLengths {
                for dimension in modelDimensions {
                    for seed in seeds {
                        for pe in pes {
                            result.append(try RunSpecification(
                                task: task, taskOptions: taskOptions, pe: pe, seed: seed, trainLength: length, modelDimension: dimension,
                                layers: layers, heads: heads, steps: steps, batchSize: batchSize, learningRate: learningRate,
                                evalLengths: evalMultipliers.map { $0 * length }, evalSamples: evalSamples,
                                predictPositions: predictPositions, architecture: architecture))
                        }
                    }
                }
            }
        }
        return result
    }
}

/// Runs a sweep into `folder`: one folder per run under runs/, and results.csv aggregated from
/// every finished run. A finished run (eval.json present) is skipped; a killed one resumes from
/// its checkpoint. Files are written atomically, so an interruption loses no finished run.
public final class Sweep: Sendable {
    /// The grid, for sweeps made from one (nil for an explicit list of runs).
    public let specification: SweepSpecification?
    /// Every run, in order.
    public let plan: [RunSpecification]
    public let folder: URL
    public static let resultsFile = "results.csv", runsFolder = "runs"

    public enum Event: Sendable {
        case started(RunSpecification, resumed: Bool)
        case step(RunSpecification, TrainingProgress)
        case finished(RunSpecification, EvaluationReport, seconds: Double)
        case skipped(RunSpecification)
    }

    public init(specification: SweepSpecification, folder: URL) throws {
        self.specification = specification
        self.plan = try specification.runs()
        self.folder = folder
    }

    /// A sweep of explicitly listed runs (each distinct), such as a reproduction's arms × seeds.
    public init(plan: [RunSpecification], folder: URL) throws {
        try require(!plan.isEmpty, "runs", "[]", "at least one run")
        let names = plan.map(\.name)
        try require(Set(names).count == names.count, "runs", names.joined(separator: ", "), "distinct runs")
        self.specification = nil
        self.plan = plan
        self.folder = folder
    }

    public func runFolder(_ run: RunSpecification) -> URL {
        folder.appendingPathComponent(Sweep.runsFolder).appendingPathComponent(run.name)
    }

    public static let specificationFile = "sweep.json", planFile = "plan.json"

    /// plan.json: the name (which carries the identity) of every run of the plan, in order.
    struct PlanRecord: Codable {
        var runs: [String]

        /// The name of run `index` in the plan.json of `folder`, if it can be read.
        static func name(ofLine index: Int, in folder: URL) -> String? {
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(Sweep.planFile).path),
                  let record = try? JSONDecoder().decode(PlanRecord.self, from: data), record.runs.indices.contains(index) else { return nil }
            return record.runs[index]
        }
    }

    /// Runs everything, `jobs` runs at a time (with more than one, each on its own thread alone while
    /// another runs beside it: one per core uses them all); `onEvent` is called from worker threads,
    /// serialised.
    /// `stop`, when requested, ends each running run at its next step boundary (checkpoint written)
    /// and starts no other; `run` then throws `TrainingStopped`.
    public func run(jobs: Int, stop: StopRequest? = nil, onEvent: @escaping @Sendable (Event) -> Void) throws {
        try require(jobs >= 1, "jobs", jobs, "a positive count")
        let runs = plan
        let sweepLock = try FolderLock(folder, what: "sweep")
        defer { sweepLock.release() }
        // A folder planned for an array keeps its plan: this sweep may run it here, not replace it.
        if let existing = FileManager.default.contents(atPath: folder.appendingPathComponent(Sweep.planLinesFile).path),
           String(decoding: existing, as: UTF8.self) != (try planText()) {
            throw LabError.invalid("\(folder.path) holds a plan (plan.jsonl) for other runs, whose tasks may be running; "
                                   + "choose another folder, or run its tasks with --run-index")
        }
        if let specification { try AtomicFile.write(prettyJSON(specification), to: folder.appendingPathComponent(Sweep.specificationFile)) }
        try AtomicFile.write(prettyJSON(PlanRecord(runs: runs.map(\.name))), to: folder.appendingPathComponent(Sweep.planFile))
        // The workers share the next run's index, a stop, the failed runs, and (one at a time) onEvent and results.csv.
        struct Shared { var next = 0; var failure: (any Error)?; var failed: [(name: String, error: any Error)] = [] }
        let shared = Mutex(Shared())
        let events = Mutex(())
        let report: @Sendable (Event) -> Void = { event in events.withLock { _ in onEvent(event) } }
        let stopRequest = stop
        // Runs side by side keep each its parallel regions (the same chunks, so the same results) on its
        // own thread: the engine's worker pool serves one region at a time, and runs sharing it would
        // leave its polling workers competing with the runs for the cores. A run alone uses them all.
        DispatchQueue.concurrentPerform(iterations: min(jobs, runs.count)) { _ in
            while true {
                let (index, stop) = shared.withLock { state in
                    defer { state.next += 1 }
                    return (state.next, state.failure != nil)
                }
                guard index < runs.count, !stop else { return }
                guard stopRequest?.isRequested != true else {
                    shared.withLock { state in if state.failure == nil { state.failure = TrainingStopped() } }
                    return
                }
                do {
                    try Parallel.sharingCores { try execute(runs[index], stop: stopRequest, report: report) }
                    try events.withLock { _ in try writeResults() }
                } catch let stopped as TrainingStopped {
                    shared.withLock { state in if state.failure == nil { state.failure = stopped } }
                } catch let failed as RunFailed {
                    // One run's failure (recorded in its failure.json) is not the sweep's: the others go on.
                    shared.withLock { state in state.failed.append((failed.run, failed.error)) }
                } catch {
                    shared.withLock { state in if state.failure == nil { state.failure = error } }
                }
            }
        }
        let (failure, failed) = shared.withLock { ($0.failure, $0.failed) }
        if let failure { throw failure }
        try writeResults()
        if !failed.isEmpty {
            throw LabError.invalid("\(failed.count) of \(runs.count) runs failed (recorded in their failure.json and in "
                + "results.csv; the others finished): " + failed.map { "\($0.name): \($0.error)" }.joined(separator: "; "))
        }
    }

    func execute(_ run: RunSpecification, stop: StopRequest? = nil, report: (Event) -> Void) throws {
        let runFolder = runFolder(run)
        let runLock = try FolderLock(runFolder, what: "sweep run")
        defer { runLock.release() }
        let evaluationURL = runFolder.appendingPathComponent(Experiment.evaluationFile)
        let experiment = Experiment(specification: run, folder: runFolder)
        // The folder's name carries the run's identity; its config.json must say the same run, or
        // nothing in it is used (a finished run is skipped only when its whole specification matches).
        if FileManager.default.fileExists(atPath: runFolder.appendingPathComponent(Experiment.configurationFile).path),
           try Experiment.specification(in: runFolder) != run {
            throw LabError.invalid("\(runFolder.path) holds a run with another specification; remove it or choose another sweep folder")
        }
        if let data = FileManager.default.contents(atPath: evaluationURL.path) {
            // A run trained on randomized positions and scored on 0..T−1 (before evaluation drew its
            // positions as training did) is evaluated again from its final checkpoint, not reported.
            let recorded = try decodeJSON(EvaluationReport.self, from: data, file: evaluationURL.path)
            guard recorded.isStale(for: run), experiment.hasCheckpoint else { report(.skipped(run)); return }
            try FileManager.default.removeItem(at: evaluationURL)
        }
        do {
            try train(run, experiment: experiment, stop: stop, report: report)
            try? FileManager.default.removeItem(at: runFolder.appendingPathComponent(RunFailure.file))
        } catch let error where !(error is TrainingStopped) {
            // Recorded (with how many attempts have failed) for results.csv and the report; a later
            // attempt (a requeue, the sweep run again) tries anew.
            try RunFailure.record(error, in: runFolder)
            throw RunFailed(run: run.name, error: error)
        }
    }

    private func train(_ run: RunSpecification, experiment: Experiment, stop: StopRequest?,
                       report: (Event) -> Void) throws {
        let runFolder = experiment.folder
        let start = Date()
        report(.started(run, resumed: experiment.hasCheckpoint))
        let model: Transformer
        do { model = try experiment.train(resume: true, stop: stop) { report(.step(run, $0)) } }
        catch let diverged as TrainingDiverged {
            // A diverged run is a result: recorded, and the sweep goes on.
            let evaluation = EvaluationReport.diverged(run, diverged)
            try experiment.writeEvaluation(evaluation)
            report(.finished(run, evaluation, seconds: Date().timeIntervalSince(start)))
            return
        }
        let evaluation = try Evaluator.report(model: model, run: run)
        // Analysis at twice the training length: inside and just beyond what training covered (within
        // a learned table's positions).
        let representable = model.positionalEncodings.compactMap(\.maximumPosition).min().map { $0 + 1 } ?? Int.max
        let drawable = run.positions.longestEvaluation ?? Int.max
        let analysis = try Analyzer.analyze(model: model, run: run,
                                            length: min(2 * run.trainLength, representable, drawable, Analyzer.maximumLength))
        try AtomicFile.write(prettyJSON(analysis), to: runFolder.appendingPathComponent(Analyzer.fileName))
        try experiment.writeEvaluation(evaluation)
        report(.finished(run, evaluation, seconds: Date().timeIntervalSince(start)))
    }

    /// results.csv from the finished runs of this sweep's plan under runs/.
    public func writeResults() throws { try Sweep.writeResults(in: folder) }

    public typealias FinishedRun = (folder: URL, run: RunSpecification, evaluation: EvaluationReport)

    /// The finished runs in a sweep folder: specification and evaluation (a run whose last attempt
    /// failed, with `failure.json` and no eval.json, as status "failed" without results). When the folder has a
    /// plan.json (or, from older sweeps, a sweep.json), only the runs of its plan count (a run left
    /// from an earlier plan is not this sweep's result); a folder whose config.json does not match
    /// its name's identity is refused.
    public static func finishedRuns(in folder: URL) throws -> [FinishedRun] {
        let runs = folder.appendingPathComponent(runsFolder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []
        var plan: Set<String>?
        if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(planFile).path) {
            plan = Set(try JSONDecoder().decode(PlanRecord.self, from: data).runs)
        } else if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(specificationFile).path) {
            plan = Set(try JSONDecoder().decode(SweepSpecification.self, from: data).runs().map(\.name))
        }
        return try names.sorted().compactMap { name in
            if let plan, !plan.contains(name) { return nil }
            let runFolder = runs.appendingPathComponent(name)
            let data = FileManager.default.contents(atPath: runFolder.appendingPathComponent(Experiment.evaluationFile).path)
            let failure = data == nil ? RunFailure.recorded(in: runFolder) : nil
            guard data != nil || failure != nil,
                  FileManager.default.fileExists(atPath: runFolder.appendingPathComponent(Experiment.configurationFile).path) else {
                return nil
            }
            let run = try Experiment.specification(in: runFolder)
            guard plan == nil || run.name == name else {
                throw LabError.invalid("\(runFolder.path): its config.json is another run (\(run.name)); remove the folder")
            }
            guard let data else { return (runFolder, run, EvaluationReport.failed(run)) }
            return (runFolder, run, try JSONDecoder().decode(EvaluationReport.self, from: data))
        }
    }

    public static let csvHeader = "task,pe,label,scheme,seed,train_length,model_dimension,steps,eval_length,accuracy,"
        + "token_accuracy,loss,perplexity,count,identity,series,kernels,status"

    static func resultsCSV(_ runs: [FinishedRun]) -> String {
        var lines = [csvHeader]
        for (folder, run, evaluation) in runs {
            let fields = [run.task, run.pe.name, run.label, run.pe.description, String(run.seed), String(run.trainLength),
                          String(run.modelDimension), String(run.steps)].map(csvField).joined(separator: ",")
            // Its identity, the kernels it trained on (Report.kernelSet), which decide its rounding, and its status.
            let tail = "\(run.identity),\(run.identityWithoutSeed)," + csvField(Report.kernelSet(ofRunIn: folder)) + ","
                + (evaluation.status ?? "finished")
            if evaluation.results.isEmpty {
                // A run without results (diverged) still has its row, with empty figures.
                lines.append(fields + ",,,,,,," + tail)
            }
            for r in evaluation.results {
                lines.append(fields + ",\(r.length),"
                             + String(format: "%.6g,%.6g,%.6g,%.6g,%d", r.accuracy, r.tokenAccuracy, r.loss, r.perplexity, r.count)
                             + "," + tail)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
