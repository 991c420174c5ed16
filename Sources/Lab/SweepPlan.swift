import Foundation
import Models
import TensorCore

/// A sweep as a list of runs, to be run anywhere: the tasks of a Slurm job array, or several
/// machines writing one shared folder. `writePlan()` writes plan.jsonl, one run's whole
/// specification per line, and trains nothing; `runPlanned(in:index:)` trains and evaluates one
/// run of it; results.csv is rebuilt from the finished runs' own files, under its own lock, by
/// whichever process finishes a run (and by `poslab report`). Each run folder has its lock, so two
/// processes never train one run.
extension Sweep {
    public static let planLinesFile = "plan.jsonl", resultsLockFile = ".results.lock"

    /// plan.jsonl's text: each run's specification as compact JSON with sorted keys, one per line.
    public func planText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try plan.map { String(decoding: try encoder.encode($0), as: UTF8.self) + "\n" }.joined()
    }

    /// A plan's identity: a hash of its plan.jsonl text.
    public static func planIdentity(text: String) -> String { RunSpecification.fnv1a(text) }

    public var planIdentity: String { get throws { Sweep.planIdentity(text: try planText()) } }

    /// Writes sweep.json (for a grid), plan.json and plan.jsonl, and trains nothing. A folder that
    /// holds another plan is refused: an array may still be running against it.
    @discardableResult
    public func writePlan() throws -> URL {
        try FolderLock.holding(folder, what: "sweep plan") {
            let url = folder.appendingPathComponent(Sweep.planLinesFile)
            let text = try planText()
            if let existing = FileManager.default.contents(atPath: url.path).map({ String(decoding: $0, as: UTF8.self) }),
               existing != text {
                let runs = existing.split(separator: "\n").count
                throw LabError.invalid("\(folder.path) already holds another plan (identity \(Sweep.planIdentity(text: existing)), "
                    + "\(runs) runs) whose tasks may still be running; choose another folder, or remove its plan.jsonl once none runs")
            }
            if let specification {
                try AtomicFile.write(prettyJSON(specification), to: folder.appendingPathComponent(Sweep.specificationFile))
            }
            try AtomicFile.write(prettyJSON(PlanRecord(runs: plan.map(\.name))), to: folder.appendingPathComponent(Sweep.planFile))
            try AtomicFile.write(text, to: url)
            return url
        }
    }

    /// The lines of the plan in `folder` (its plan.jsonl) and the plan's identity.
    static func planLines(in folder: URL) throws -> (lines: [Substring], identity: String, url: URL) {
        let url = folder.appendingPathComponent(planLinesFile)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw LabError.missing(url.path, "a plan written by `poslab sweep --plan`")
        }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n")
        guard !lines.isEmpty else { throw LabError.invalid("\(url.path): the plan has no runs") }
        return (lines, planIdentity(text: text), url)
    }

    /// Trains and evaluates run `index` of the plan in `folder` (skipped when finished, resumed
    /// from its checkpoint when interrupted), then rebuilds results.csv. `expectedIdentity`, when
    /// given, must be the plan's: a plan changed under a running array is refused before any work.
    /// Only this run's line is read, so that one run's problem (its data file gone) is its own.
    @discardableResult
    public static func runPlanned(in folder: URL, index: Int, expectedIdentity: String? = nil, stop: StopRequest? = nil,
                                  onEvent: @escaping @Sendable (Event) -> Void = { _ in }) throws -> RunSpecification {
        let (lines, identity, url) = try planLines(in: folder)
        if let expectedIdentity, expectedIdentity != identity {
            throw ConfigurationError(parameter: "plan identity", value: expectedIdentity,
                                     allowed: "the identity of the plan in \(folder.path), \(identity): its plan.jsonl "
                                        + "has changed since this task was submitted")
        }
        try require(lines.indices.contains(index), "run index", index, "0 to \(lines.count - 1), the plan's \(lines.count) runs")
        let runFolder = folder.appendingPathComponent(runsFolder)
        let run: RunSpecification
        do {
            run = try decodeJSON(RunSpecification.self, from: Data(lines[index].utf8), file: "\(url.path), line \(index + 1)")
        } catch {
            // The run cannot even be specified any more (its data file is gone, say): recorded under
            // the name its line gives, when it gives one, and the task fails; the others go on.
            if let name = PlanRecord.name(ofLine: index, in: folder) { try? RunFailure.record(error, in: runFolder.appendingPathComponent(name)) }
            throw error
        }
        let sweep = try Sweep(plan: [run], folder: folder)
        do { try sweep.execute(run, stop: stop, report: onEvent) } catch let failed as RunFailed {
            try? sweep.writeResults()  // the failure shows in results.csv at once
            throw failed
        }
        try sweep.writeResults()
        return run
    }

    /// Rewrites results.csv from the finished runs in `folder`, holding results.csv's own lock
    /// (another process writing it is waited for).
    public static func writeResults(in folder: URL) throws {
        let lock = try FolderLock(folder, what: "results.csv", fileName: resultsLockFile, wait: true)
        defer { lock.release() }
        try AtomicFile.write(resultsCSV(finishedRuns(in: folder)), to: folder.appendingPathComponent(resultsFile))
    }
}

/// A run that began and failed (its failure.json written); its message is the error's own.
public struct RunFailed: Error, CustomStringConvertible {
    public let run: String
    public let error: any Error
    public var description: String { "\(error)" }
}

/// failure.json in a run folder: the error of the run's last attempt and how many attempts have
/// failed. results.csv lists such a run with status "failed"; a later attempt that finishes
/// removes the record.
public struct RunFailure: Codable, Equatable, Sendable {
    public static let file = "failure.json"
    public var error: String
    public var attempts: Int
    public var time: Date

    static func record(_ error: any Error, in folder: URL) throws {
        let attempts = (recorded(in: folder)?.attempts ?? 0) + 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let failure = RunFailure(error: "\(error)", attempts: attempts, time: Date())
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try AtomicFile.write(encoder.encode(failure), to: folder.appendingPathComponent(file))
    }

    /// The record in `folder`, if any.
    public static func recorded(in folder: URL) -> RunFailure? {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(file).path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(RunFailure.self, from: data)
    }
}
