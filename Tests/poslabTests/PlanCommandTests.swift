import Foundation
import XCTest

/// A sweep as a plan whose runs are trained by separate processes (as the tasks of a job array).
final class PlanCommandTests: CommandTestCase {
    func testAPlanRunsAsSeparateTasksIntoOneFolder() throws {
        let out = folder.appendingPathComponent("plan").path
        let grid = ["sweep", "--tasks", "copy", "--pes", "nope,rope", "--seeds", "0,1", "--train-lengths", "12", "--steps", "4",
                    "--layers", "1", "--model-dimension", "16", "--eval-multipliers", "1,2", "--eval-samples", "3", "--out", out]
        let planned = try cli.poslab(grid + ["--plan"])
        XCTAssertEqual(planned.status, 0, planned.error)
        let lines = try String(contentsOfFile: out + "/plan.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4, "one specification per line")
        let identity = try XCTUnwrap(planned.output.split(separator: "\n").last { $0.hasPrefix("plan:") }?
            .split(separator: " ").drop { $0 != "identity" }.dropFirst().first).trimmingCharacters(in: .punctuationCharacters)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/runs"), "--plan trains nothing")
        XCTAssertEqual(try cli.poslab(grid + ["--plan"]).status, 0, "the same plan may be written again")

        // Two processes at once, each taking two tasks (one by index, one as a Slurm array task would).
        let binary = try cli.binary().path
        let shells = try [[0, 2], [1, 3]].map { tasks -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "\"$0\" sweep --out \"$1\" --run-index \(tasks[0]) --plan-identity \(identity) && "
                                 + "SLURM_ARRAY_TASK_ID=\(tasks[1]) SLURM_CPUS_PER_TASK=1 \"$0\" sweep --out \"$1\" --run-index slurm",
                                 binary, out]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        for shell in shells {
            shell.waitUntilExit()
            XCTAssertEqual(shell.terminationStatus, 0, "\(shell.arguments ?? [])")
        }
        let csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + 4 * 2, "every task's runs, whichever process wrote results.csv last")
        XCTAssertEqual(try cli.poslab(["report", out]).status, 0)

        // A finished task run again is skipped; bad indices, a changed plan and grid options are refused.
        let again = try cli.poslab(["sweep", "--out", out, "--run-index", "1"])
        XCTAssertEqual(again.status, 0, again.error)
        XCTAssertTrue(again.error.contains("finished earlier"), again.error)
        let cases: [([String], [String: String], String)] = [
            (["--run-index", "4"], [:], "invalid run index = 4; allowed: 0 to 3"),
            (["--run-index", "0", "--plan-identity", "0123456789abcdef"], [:], "has changed since this task was submitted"),
            (["--run-index", "slurm"], [:], "SLURM_ARRAY_TASK_ID is not set"),
            (["--run-index", "slurm"], ["SLURM_ARRAY_TASK_ID": "x"], "SLURM_ARRAY_TASK_ID is \"x\""),
            (["--run-index", "0", "--steps", "9"], [:], "drop --steps"),
            (["--run-index", "0", "--plan"], [:], "give one"),
        ]
        for (arguments, environment, expected) in cases {
            let result = try cli.poslab(["sweep", "--out", out] + arguments, environment: environment)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments) should say \(expected): \(result.error)")
        }
        let otherPlan = try cli.poslab(["sweep", "--tasks", "copy", "--pes", "alibi", "--train-lengths", "12", "--out", out, "--plan"])
        XCTAssertEqual(otherPlan.status, 2)
        XCTAssertTrue(otherPlan.error.contains("already holds another plan"), otherPlan.error)
        // A shared folder that cannot be written: a clear message before any work.
        let unwritable = try cli.poslab(["sweep", "--tasks", "copy", "--out", "/proc/poslab-sweep", "--plan"])
        XCTAssertEqual(unwritable.status, 2)
        XCTAssertTrue(unwritable.error.contains("/proc/poslab-sweep: cannot create this folder"), unwritable.error)
        let missing = try cli.poslab(["sweep", "--out", folder.appendingPathComponent("none").path, "--run-index", "0"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.error.contains("plan.jsonl"), missing.error)
    }

    func testSlurmScriptsAndSubmission() throws {
        let out = folder.appendingPathComponent("slurm-sweep").path
        let grid = ["sweep", "--tasks", "copy", "--pes", "nope,rope,alibi", "--train-lengths", "12", "--steps", "4", "--layers", "1",
                    "--model-dimension", "16", "--out", out, "--slurm"]
        // No sbatch on the PATH: refused before anything is written.
        let noSbatch = try cli.poslab(grid + ["--submit"], environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(noSbatch.status, 2)
        XCTAssertTrue(noSbatch.error.contains("needs sbatch, which is not on the PATH"), noSbatch.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written")

        // A stand-in sbatch that records its arguments and answers as `sbatch --parsable` does.
        let bin = folder.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let calls = folder.appendingPathComponent("calls").path
        let fake = bin.appendingPathComponent("sbatch")
        try "#!/bin/sh\necho \"$*\" >> '\(calls)'\necho \"$(( $(wc -l < '\(calls)') + 4100 ));cluster\"\n"
            .write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let submitted = try cli.poslab(grid + ["--submit", "--time", "0:30:00", "--max-parallel", "2", "--cpus-per-task", "1",
                                              "--partition", "debug"],
                                       environment: ["PATH": bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")])
        XCTAssertEqual(submitted.status, 0, submitted.error)
        XCTAssertTrue(submitted.output.contains("array job 4101 (3 tasks), report job 4102"), submitted.output)
        let recorded = try String(contentsOfFile: calls, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(recorded.count, 2)
        XCTAssertTrue(recorded[0].hasPrefix("--parsable ") && recorded[0].hasSuffix("/slurm/array.sbatch"), String(recorded[0]))
        XCTAssertTrue(recorded[1].hasPrefix("--parsable --dependency=afterany:4101 "), String(recorded[1]))

        let array = try String(contentsOfFile: out + "/slurm/array.sbatch", encoding: .utf8)
        let identity = try XCTUnwrap(submitted.output.split(whereSeparator: \.isWhitespace).drop { $0 != "identity" }.dropFirst().first)
        for line in ["#SBATCH --array=0-2%2", "#SBATCH --cpus-per-task=1", "#SBATCH --time=0:30:00", "#SBATCH --partition=debug",
                     "#SBATCH --requeue", "--run-index slurm --plan-identity \(identity)", "--out \(out) ", "scontrol requeue"] {
            XCTAssertTrue(array.contains(line), "array.sbatch lacks \(line):\n\(array)")
        }
        XCTAssertEqual(try String(contentsOfFile: out + "/plan.jsonl", encoding: .utf8).split(separator: "\n").count, 3)
        let report = try String(contentsOfFile: out + "/slurm/report.sbatch", encoding: .utf8)
        XCTAssertTrue(report.contains("report \(out)"), report)

        for (arguments, expected) in [(["--time", "1h"], "invalid time = \"1h\""), (["--cpus-per-task", "0"], "cpusPerTask = 0"),
                                      (["--plan"], "give neither"), (["--out", out + " 2"], "invalid --out = ")] {
            let result = try cli.poslab(grid + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
        }
        let unpaired = try cli.poslab(["sweep", "--out", out, "--submit"])
        XCTAssertEqual(unpaired.status, 2)
        XCTAssertTrue(unpaired.error.contains("--submit goes with --slurm"), unpaired.error)
    }

    func testARunThatKeepsFailingIsRecordedAndTheOthersGoOn() throws {
        let out = folder.appendingPathComponent("failing").path
        let planned = try cli.poslab(["sweep", "--tasks", "copy", "--pes", "nope,rope", "--train-lengths", "12", "--steps", "4",
                                      "--layers", "1", "--model-dimension", "16", "--eval-multipliers", "1", "--eval-samples", "3",
                                      "--out", out, "--plan"])
        XCTAssertEqual(planned.status, 0, planned.error)
        let names = planned.output.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            return parts.count == 2 && Int(parts[0]) != nil ? String(parts[1]) : nil
        }
        XCTAssertEqual(names.count, 2)
        // Run 0's checkpoint path is a folder: every attempt fails after the run has begun.
        let broken = out + "/runs/" + names[0]
        try FileManager.default.createDirectory(atPath: broken + "/checkpoint.safetensors", withIntermediateDirectories: true)
        for attempt in 1...2 {
            let failed = try cli.poslab(["sweep", "--out", out, "--run-index", "0"])
            XCTAssertEqual(failed.status, 2, failed.error)
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: broken + "/failure.json")))
                                       as? [String: Any])
            XCTAssertEqual(record["attempts"] as? Int, attempt)
            XCTAssertFalse((record["error"] as? String ?? "").isEmpty)
        }
        XCTAssertEqual(try cli.poslab(["sweep", "--out", out, "--run-index", "1"]).status, 0, "the other run goes on")
        var csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertEqual(csv.filter { $0.hasSuffix(",failed") }.count, 1, "\(csv)")
        XCTAssertEqual(csv.filter { $0.hasSuffix(",finished") }.count, 1, "\(csv)")
        // A whole sweep of the same grid goes on past it too, and says which run failed.
        let whole = try cli.poslab(["sweep", "--tasks", "copy", "--pes", "nope,rope", "--train-lengths", "12", "--steps", "4",
                                    "--layers", "1", "--model-dimension", "16", "--eval-multipliers", "1", "--eval-samples", "3",
                                    "--out", out])
        XCTAssertEqual(whole.status, 2)
        XCTAssertTrue(whole.error.contains("1 of 2 runs failed") && whole.error.contains(names[0]), whole.error)
        // Repaired, the run finishes and its failure record goes.
        try FileManager.default.removeItem(atPath: broken + "/checkpoint.safetensors")
        XCTAssertEqual(try cli.poslab(["sweep", "--out", out, "--run-index", "0"]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: broken + "/failure.json"))
        csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.filter { $0.hasSuffix(",finished") }.count, 2, "\(csv)")
    }
}
