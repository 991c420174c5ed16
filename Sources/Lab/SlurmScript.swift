import Foundation
import TensorCore

/// The Slurm job scripts of a planned sweep (see `Sweep.writePlan`): a job array whose task I
/// trains run I of the plan, and a report job that runs after the array however its tasks end
/// (`--dependency=afterany`). A task stopped by SIGTERM (preemption, the time limit) writes its
/// checkpoint and exits with 75; the script then requeues that task, which resumes.
public struct SlurmScript: Equatable, Sendable {
    public var partition: String?
    /// Time limit per task, in one of Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
    public var time: String?
    public var cpusPerTask: Int
    /// Tasks running at once (the array's `%M`); nil: as many as Slurm allows.
    public var maxParallel: Int?

    public init(partition: String? = nil, time: String? = nil, cpusPerTask: Int = 2, maxParallel: Int? = nil) throws {
        if let partition {
            try require(!partition.isEmpty && partition.allSatisfy { $0.isLetter || $0.isNumber || "-_.,".contains($0) },
                        "partition", "\"\(partition)\"", "a Slurm partition name (letters, digits, - _ . ,)")
        }
        if let time { try require(SlurmScript.isTime(time), "time", "\"\(time)\"", "M, M:S, H:M:S, D-H, D-H:M or D-H:M:S") }
        try require((1...1024).contains(cpusPerTask), "cpusPerTask", cpusPerTask, "1 to 1024")
        if let maxParallel { try require((1...100_000).contains(maxParallel), "maxParallel", maxParallel, "1 to 100000") }
        self.partition = partition; self.time = time; self.cpusPerTask = cpusPerTask; self.maxParallel = maxParallel
    }

    static func isTime(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return false }
        func numbers(_ s: Substring) -> [Int]? {
            let fields = s.split(separator: ":", omittingEmptySubsequences: false)
            let values = fields.map { f in f.allSatisfy(\.isASCII) && f.allSatisfy(\.isNumber) && (1...4).contains(f.count) ? Int(f) : nil }
            return values.contains(where: { $0 == nil }) ? nil : values.map { $0! }
        }
        if parts.count == 2 {
            guard let days = numbers(parts[0]), days.count == 1, let rest = numbers(parts[1]), (1...3).contains(rest.count) else { return false }
            return true
        }
        guard let fields = numbers(parts[0]) else { return false }
        return (1...3).contains(fields.count)
    }

    public static let folderName = "slurm", arrayFile = "array.sbatch", reportFile = "report.sbatch"

    /// Refuses a path that an `#SBATCH` line cannot carry: whitespace and quotes end the option's
    /// value, `%` is a Slurm pattern, and a line break would end the line.
    public static func checkPath(_ path: String, _ parameter: String) throws {
        let bad = path.filter { $0.isWhitespace || $0.isNewline || "%\"'\\$`".contains($0) }
        try require(bad.isEmpty, parameter, "\"\(path)\"", "a path without whitespace, quotes, %, $, ` or \\ "
                    + "(Slurm's #SBATCH lines cannot quote them)")
    }

    /// The array script for a plan of `runs` runs with `identity`, in `sweepFolder`, run by `poslab`.
    public func arrayScript(poslab: String, sweepFolder: String, runs: Int, identity: String) -> String {
        let logs = sweepFolder + "/" + SlurmScript.folderName
        var lines = ["#!/bin/bash",
                     "# Written by `poslab sweep --slurm`: task I trains run I of \(sweepFolder)/plan.jsonl (identity \(identity)).",
                     "#SBATCH --job-name=poslab-\(identity.prefix(8))",
                     "#SBATCH --array=0-\(runs - 1)" + (maxParallel.map { "%\($0)" } ?? ""),
                     "#SBATCH --cpus-per-task=\(cpusPerTask)",
                     "#SBATCH --ntasks=1",
                     "#SBATCH --requeue",
                     "#SBATCH --signal=B:TERM@120",
                     "#SBATCH --output=\(logs)/%A_%a.out",
                     "#SBATCH --open-mode=append"]
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        lines += ["",
                  "# SIGTERM (preemption, 120 s before the time limit) reaches poslab, which stops at the next step",
                  "# with a checkpoint and exits 75; this task is then requeued and resumes from that checkpoint.",
                  "\(shellQuoted(poslab)) sweep --out \(shellQuoted(sweepFolder)) --run-index slurm --plan-identity \(identity) &",
                  "child=$!",
                  "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT",
                  "wait \"$child\"; status=$?",
                  "while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; status=$?; done",
                  "# A wait cut short by the trap: the child's own status, if it was not reaped yet (127: it was).",
                  "wait \"$child\" 2>/dev/null; last=$?; [ \"$last\" -ne 127 ] && status=$last",
                  "if [ \"$status\" -eq 75 ]; then",
                  "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
                  "fi",
                  "exit \"$status\"",
                  ""]
        return lines.joined(separator: "\n")
    }

    /// The report script: results.csv and report.html from whatever runs finished.
    public func reportScript(poslab: String, sweepFolder: String, identity: String) -> String {
        var lines = ["#!/bin/bash",
                     "# Written by `poslab sweep --slurm`: after the array (afterany), results.csv and report.html.",
                     "#SBATCH --job-name=poslab-\(identity.prefix(8))-report",
                     "#SBATCH --cpus-per-task=1",
                     "#SBATCH --ntasks=1",
                     "#SBATCH --output=\(sweepFolder)/\(SlurmScript.folderName)/report-%j.out"]
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        lines += ["", "exec \(shellQuoted(poslab)) report \(shellQuoted(sweepFolder))", ""]
        return lines.joined(separator: "\n")
    }
}

/// `text` as one word of a POSIX shell command.
func shellQuoted(_ text: String) -> String {
    guard text.contains(where: { !($0.isLetter || $0.isNumber || "/._-+=:,@".contains($0)) }) else { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
