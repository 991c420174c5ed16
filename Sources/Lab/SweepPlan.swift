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

    /// A plan's identity: a hash of its runs' identities, in order.
    public static func planIdentity(_ runs: [RunSpecification]) -> String {
        RunSpecification.fnv1a(runs.map(\.identity).joined(separator: "\n"))
    }

    public var planIdentity: String { Sweep.planIdentity(plan) }

    /// Writes sweep.json (for a grid), plan.json and plan.jsonl, and trains nothing. A folder that
    /// holds another plan is refused: an array may still be running against it.
    @discardableResult
    public func writePlan() throws -> URL {
        try FolderLock.holding(folder, what: "sweep plan") {
            let url = folder.appendingPathComponent(Sweep.planLinesFile)
            if FileManager.default.fileExists(atPath: url.path) {
                let existing = try Sweep.planned(in: folder)
                guard existing.identity == planIdentity else {
                    throw LabError.invalid("\(folder.path) already holds another plan (identity \(existing.identity), "
                        + "\(existing.runs.count) runs) whose tasks may still be running; choose another folder, or "
                        + "remove its plan.jsonl once none runs")
                }
            }
            if let specification {
                try AtomicFile.write(prettyJSON(specification), to: folder.appendingPathComponent(Sweep.specificationFile))
            }
            try AtomicFile.write(prettyJSON(PlanRecord(runs: plan.map(\.name))), to: folder.appendingPathComponent(Sweep.planFile))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let lines = try plan.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
            try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: url)
            return url
        }
    }

    /// The runs of the plan in `folder` (its plan.jsonl) and the plan's identity.
    public static func planned(in folder: URL) throws -> (runs: [RunSpecification], identity: String) {
        let url = folder.appendingPathComponent(planLinesFile)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw LabError.missing(url.path, "a plan written by `poslab sweep --plan`")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let runs = try lines.enumerated().map { index, line in
            try decodeJSON(RunSpecification.self, from: Data(line.utf8), file: "\(url.path), line \(index + 1)")
        }
        guard !runs.isEmpty else { throw LabError.invalid("\(url.path): the plan has no runs") }
        return (runs, planIdentity(runs))
    }

    /// Trains and evaluates run `index` of the plan in `folder` (skipped when finished, resumed
    /// from its checkpoint when interrupted), then rebuilds results.csv. `expectedIdentity`, when
    /// given, must be the plan's: a plan changed under a running array is refused before any work.
    @discardableResult
    public static func runPlanned(in folder: URL, index: Int, expectedIdentity: String? = nil, stop: StopRequest? = nil,
                                  onEvent: @escaping @Sendable (Event) -> Void = { _ in }) throws -> RunSpecification {
        let (runs, identity) = try planned(in: folder)
        if let expectedIdentity, expectedIdentity != identity {
            throw ConfigurationError(parameter: "plan identity", value: expectedIdentity,
                                     allowed: "the identity of the plan in \(folder.path), \(identity): its plan.jsonl "
                                        + "has changed since this task was submitted")
        }
        try require(runs.indices.contains(index), "run index", index, "0 to \(runs.count - 1), the plan's \(runs.count) runs")
        let sweep = try Sweep(plan: runs, folder: folder)
        try sweep.execute(runs[index], stop: stop, report: onEvent)
        try sweep.writeResults()
        return runs[index]
    }

    /// Rewrites results.csv from the finished runs in `folder`, holding results.csv's own lock
    /// (another process writing it is waited for).
    public static func writeResults(in folder: URL) throws {
        let lock = try FolderLock(folder, what: "results.csv", fileName: resultsLockFile, wait: true)
        defer { lock.release() }
        try AtomicFile.write(resultsCSV(finishedRuns(in: folder)), to: folder.appendingPathComponent(resultsFile))
    }
}
