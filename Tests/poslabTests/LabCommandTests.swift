import Foundation
import XCTest

/// End to end: sweep, report, eval, analyze, quickstart, and their bad input.
final class LabCommandTests: CommandTestCase {
    func testSweepReportEvalAndAnalyze() throws {
        let out = folder.appendingPathComponent("sweep").path
        let sweep = try cli.poslab(["sweep", "--tasks", "copy,sparse", "--pes", "alibi,hope", "--steps", "8", "--train-lengths", "16",
                                    "--model-dimension", "16", "--eval-samples", "4", "--eval-multipliers", "1,2", "--out", out, "--jobs", "2"])
        XCTAssertEqual(sweep.status, 0, sweep.error)
        XCTAssertTrue(sweep.output.contains("report: "), sweep.output)
        let csv = try String(contentsOfFile: out + "/results.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + 4 * 2)
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("inside the models"))
        let again = try cli.poslab(["sweep", "--tasks", "copy,sparse", "--pes", "alibi,hope", "--steps", "8", "--train-lengths", "16",
                                    "--model-dimension", "16", "--eval-samples", "4", "--eval-multipliers", "1,2", "--out", out])
        XCTAssertEqual(again.output.components(separatedBy: "skip ").count - 1, 4, again.output)
        XCTAssertEqual(try cli.poslab(["report", out]).status, 0)

        let names = try FileManager.default.contentsOfDirectory(atPath: out + "/runs")
        let run = out + "/runs/" + (try XCTUnwrap(names.first { $0.hasPrefix("copy-hope-L16-C16-s0-") }, "\(names)"))
        let evalRun = try cli.poslab(["eval", "--model", run, "--lengths", "16,32,64", "--samples", "3", "--out", folder.appendingPathComponent("e.json").path])
        XCTAssertEqual(evalRun.status, 0, evalRun.error)
        XCTAssertTrue(evalRun.output.contains("perplexity"), evalRun.output)
        let evaluation = try cli.json(evalRun.withOutput(String(contentsOf: folder.appendingPathComponent("e.json"), encoding: .utf8)))
        XCTAssertEqual(evaluation["task"] as? String, "copy")
        XCTAssertEqual(evaluation["pe"] as? String, "hope")
        XCTAssertEqual(evaluation["train_length"] as? Int, 16)
        let results = try XCTUnwrap(evaluation["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["length"] as? Int }, [16, 32, 64])
        for key in ["accuracy", "token_accuracy", "loss", "perplexity", "count"] { XCTAssertNotNil(results[0][key], key) }

        let analysis = try cli.poslab(["analyze", "--model", run, "--length", "24", "--samples", "2"])
        XCTAssertEqual(analysis.status, 0, analysis.error)
        XCTAssertTrue(analysis.output.contains("effective k"), analysis.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/analysis.json"))
    }

    func testBadLabInputIsExitTwoWithAClearMessage() throws {
        let jsonl = folder.appendingPathComponent("data.jsonl")
        try "{\"input\": \"ab\", \"target\": \"ba\"}\n{\"input\": \"cd\"\n".write(to: jsonl, atomically: true, encoding: .utf8)
        let empty = folder.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let learned = folder.appendingPathComponent("learned").path
        XCTAssertEqual(try cli.poslab(["train", "--pe", "learned", "--steps", "2", "--train-length", "12", "--model-dimension", "16",
                                       "--eval-lengths", "12", "--out", learned]).status, 0)
        let smallText = folder.appendingPathComponent("small.txt")
        try String(repeating: "In the beginning. ", count: 100).write(to: smallText, atomically: true, encoding: .utf8)
        let notWritten = folder.appendingPathComponent("never").path
        let goodSweep = folder.appendingPathComponent("good.json")
        try #"{"tasks": ["copy"], "pes": ["rope"], "trainLengths": [12], "steps": 2}"#.write(to: goodSweep, atomically: true, encoding: .utf8)
        let badSweep = folder.appendingPathComponent("sweep.json"), truncated = folder.appendingPathComponent("cut.json")
        try #"{"tasks": "copy", "pes": ["rope"]}"#.write(to: badSweep, atomically: true, encoding: .utf8)
        try #"{"tasks": ["copy"]"#.write(to: truncated, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["sweep", "--config", badSweep.path, "--out", folder.appendingPathComponent("s2").path], "sweep.json: tasks: expected a list"),
            (["sweep", "--config", truncated.path, "--out", folder.appendingPathComponent("s3").path], "cut.json: not valid JSON"),
            (["train", "--task", "sorting", "--steps", "1"], "sorting"),
            // A grid file is the whole grid: options beside it are refused, not silently ignored.
            (["sweep", "--config", goodSweep.path, "--steps", "5", "--layers", "1", "--out", notWritten], "give --layers, --steps in the file"),
            (["train", "--pe", "warp", "--steps", "1"], "warp"),
            (["train", "--task", "jsonl", "--data", jsonl.path, "--steps", "1"], "line 2"),
            (["eval", "--model", empty], "checkpoint.safetensors"),
            (["eval", "--model", learned, "--lengths", "12,400"], "invalid evaluation length = 400; allowed: at most"),
            // Lengths a task or a text cannot fill: refused before training, so no result is lost after it.
            (["train", "--eval-lengths", "3,24", "--steps", "1", "--out", notWritten], "invalid evaluation length = 3; allowed: at least 4"),
            (["train", "--task", "addition", "--eval-lengths", "5,32", "--steps", "1", "--out", notWritten], "length = 5"),
            (["train", "--task", "text", "--data", smallText.path, "--train-length", "16", "--eval-lengths", "16,400,4096",
              "--steps", "1", "--out", notWritten], "invalid evaluation length = 400, 4096; allowed: less than the 180 held-out"),
            (["train", "--task", "text", "--data", smallText.path, "--train-length", "4000", "--steps", "1"], "trainLength = 4000"),
            (["analyze", "--model", empty], "checkpoint.safetensors"),
            (["report", empty], "finished runs"),
            (["sweep", "--tasks", "copy", "--pes", "rope,warp", "--out", folder.appendingPathComponent("s").path], "warp"),
            (["sweep", "--config", folder.appendingPathComponent("absent.json").path, "--out", empty], "absent.json"),
            (["train", "--positions", "shuffled", "--steps", "1"], "--positions"),
            (["train", "--placement", "normalized", "--steps", "1"], "feedForward"),
            (["train", "--kv-heads", "3", "--steps", "1"], "numberOfKeyValueHeads"),
            // Sizes beyond the run limits, refused before anything is built or allocated.
            (["train", "--log-every", "0", "--steps", "1"], "--log-every"),
            (["train", "--layers", "100000000000", "--steps", "1"], "layers = 100000000000"),
            (["train", "--batch-size", "100000000", "--steps", "1"], "batchSize = 100000000"),
            (["train", "--train-length", "100000000", "--steps", "1"], "trainLength = 100000000"),
            (["train", "--steps", "100000000000000"], "steps = 100000000000000"),
            (["train", "--eval-lengths", "16,1099511627776", "--steps", "1"], "evalLengths = 1099511627776"),
            (["train", "--positions", "randomized:1000000000000", "--steps", "1"], "positions = 1000000000000"),
            (["train", "--model-dimension", "16384", "--heads", "4", "--layers", "1024", "--steps", "1"], "invalid memory = at least"),
            (["train", "--eval-samples", "0", "--steps", "1"], "evalSamples = 0"),
            // Floats are Float32: a value it cannot hold is named as written, not as inf or 0.
            (["train", "--learning-rate", "1e39", "--steps", "1"], "1e39 is beyond Float32"),
            // A key given twice in JSON is refused, not resolved by the parser's silent choice.
            (["train", "--pe", #"rope{"rope_theta": 100, "rope_theta": 200}"#, "--steps", "1"], "rope_theta given twice"),
            (["train", "--learning-rate", "1e-50", "--steps", "1"], "1e-50 is beyond Float32"),
            (["train", "--learning-rate", "nan", "--steps", "1"], "nan is not a finite number"),
            (["generate", "--model", learned, "--temperature", "1e40", "--tokens", "5"], "1e40 is beyond Float32"),
            (["positions", "rope", "--head-dim", "1000000000000"], "--head-dim"),
            (["analyze", "--model", learned, "--length", "100000"], "--length"),
            (["positions", "hope", "--head-dim", "1000000000000", "--train-length", "64"], "--head-dim"),
            (["positions", "alibi", "--heads", "1000000000000"], "--heads"),
            (["positions", "t5", "--max-relative", "1000000000000"], "--max-relative"),
            (["positions", "decay", "--head-dim", "64", "--max-distance", "1000000000000"], "--max-distance"),
            (["positions", "decay", "--head-dim", "100000000", "--max-distance", "100"], "--head-dim"),
        ]
        for (arguments, expected) in cases {
            let result = try cli.poslab(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments) should name \(expected): \(result.error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: notWritten), "a refused run writes nothing")
    }

    func testArchitectureOptionsReachTheRunConfiguration() throws {
        let out = folder.appendingPathComponent("ngpt").path
        let run = try cli.poslab(["train", "--placement", "normalized", "--feed-forward", "swiGLU", "--kv-heads", "2", "--untied",
                                  "--steps", "3", "--train-length", "12", "--model-dimension", "16", "--eval-lengths", "12", "--out", out])
        XCTAssertEqual(run.status, 0, run.error)
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        for expected in ["\"placement\" : \"normalized\"", "\"feedForward\" : \"swiGLU\"", "\"keyValueHeads\" : 2", "\"tiedEmbeddings\" : false"] {
            XCTAssertTrue(config.contains(expected), "config.json lacks \(expected): \(config)")
        }
        XCTAssertEqual(try cli.poslab(["generate", "--model", out, "--tokens", "5,26,27", "--count", "4"]).status, 0)
    }

    func testQuickstartRunsEverySchemeOnBothTasks() throws {
        let out = folder.appendingPathComponent("quick").path
        let result = try cli.poslab(["quickstart", "--steps", "3", "--out", out])
        XCTAssertEqual(result.status, 0, result.error)
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(out)/runs")
        for scheme in ["nope", "sinusoidal", "learned", "t5", "alibi", "rope", "hope"] {
            for task in ["copy", "sparse"] {
                let name = names.first { $0.hasPrefix("\(task)-\(scheme)-L24-C64-s0-") } ?? "absent"
                XCTAssertTrue(result.output.contains(task) && FileManager.default.fileExists(atPath: "\(out)/runs/\(name)/eval.json"),
                              "\(task) \(scheme)")
            }
        }
        XCTAssertTrue(result.output.contains("report: \(out)/report.html"), result.output)
    }
}

extension PosLabCLI.Run {
    /// The same run with other output (for commands whose JSON goes to a file).
    func withOutput(_ text: String) -> PosLabCLI.Run { PosLabCLI.Run(status: status, output: text, error: error) }
}
