import Foundation
import XCTest

/// Schemes with their settings on the command line: train, eval (with an inference-time swap and
/// a methods × lengths comparison), finetune and sweep; bad specifications exit with 2 and write nothing.
final class SchemeCommandTests: CommandTestCase {
    func testSettingsReachConfigAndRunsSwapAndFineTune() throws {
        let run = folder.appendingPathComponent("rope").path
        let train = try cli.poslab(["train", "--pe", #"rope{"rope_theta": 500}"#, "--rope", #"{"partial_rotary_factor": 0.5}"#,
                                "--steps", "3", "--train-length", "12", "--model-dimension", "16", "--eval-lengths", "12",
                                "--out", run])
        XCTAssertEqual(train.status, 0, train.error)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/config.json")))
            as? [String: Any])
        let pe = try XCTUnwrap(config["pe"] as? [String: Any])
        XCTAssertEqual(pe["name"] as? String, "rope")
        XCTAssertEqual(pe["rope_theta"] as? Double, 500)
        XCTAssertEqual(pe["partial_rotary_factor"] as? Double, 0.5)

        let out = folder.appendingPathComponent("yarn.json").path
        let yarn = try cli.poslab(["eval", "--model", run, "--pe", "rope", "--rope", #"{"rope_type": "yarn", "factor": 4}"#,
                               "--lengths", "12,48", "--samples", "2", "--out", out])
        XCTAssertEqual(yarn.status, 0, yarn.error)
        let report = try cli.json(yarn.withOutput(String(contentsOfFile: out, encoding: .utf8)))
        XCTAssertTrue((report["scheme"] as? String)?.contains(#""rope_type":"yarn""#) ?? false, "\(report)")

        let methods = folder.appendingPathComponent("methods.json").path
        let compare = try cli.poslab(["eval", "--model", run, "--pes", #"hope,rope{"rope_type": "linear", "factor": 4}"#,
                                  "--lengths", "12,24", "--samples", "2", "--out", methods])
        XCTAssertEqual(compare.status, 0, compare.error)
        XCTAssertTrue(compare.output.contains("exact match by evaluation length"), compare.output)
        let html = try String(contentsOfFile: folder.appendingPathComponent("methods.html").path, encoding: .utf8)
        XCTAssertTrue(html.contains("<svg") && html.contains("(as trained)") && html.contains("hope"), html)

        let tuned = folder.appendingPathComponent("tuned").path
        let fineTune = try cli.poslab(["finetune", "--model", run, "--rope", #"{"rope_type": "linear", "factor": 2}"#,
                                   "--train-length", "24", "--steps", "2", "--out", tuned])
        XCTAssertEqual(fineTune.status, 0, fineTune.error)
        let tunedConfig = try String(contentsOfFile: tuned + "/config.json", encoding: .utf8)
        XCTAssertTrue(tunedConfig.contains("fineTuneFrom") && tunedConfig.contains("\"linear\""), tunedConfig)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tuned + "/eval.json"))

        let sweep = folder.appendingPathComponent("sweep").path
        let grid = try cli.poslab(["sweep", "--pes", #"rope,rope{"rope_theta": 100},t5{"buckets": 8, "max_distance": 16}"#,
                               "--steps", "2", "--train-lengths", "12", "--model-dimension", "16", "--eval-samples", "2",
                               "--eval-multipliers", "1", "--out", sweep])
        XCTAssertEqual(grid.status, 0, grid.error)
        let csv = try String(contentsOfFile: sweep + "/results.csv", encoding: .utf8)
        for label in ["rope(rope_theta=100)", "t5(buckets=8, max_distance=16)"] { XCTAssertTrue(csv.contains(label), csv) }
    }

    func testBadSchemesExitTwoAndWriteNothing() throws {
        let run = folder.appendingPathComponent("alibi").path
        XCTAssertEqual(try cli.poslab(["train", "--pe", "alibi", "--steps", "2", "--train-length", "12", "--model-dimension", "16",
                                   "--eval-lengths", "12", "--out", run]).status, 0)
        let out = folder.appendingPathComponent("never").path
        let cases: [([String], String)] = [
            (["train", "--pe", #"rope{"factr": 2}"#, "--steps", "1", "--out", out], "factr"),
            (["train", "--pe", #"rope{"rope_type": "yarn""#, "--steps", "1", "--out", out], "JSON object"),
            (["train", "--pe", "alibi", "--rope", #"{"factor": 2}"#, "--steps", "1", "--out", out], "--rope"),
            (["train", "--pe", #"t5{"buckets": -3}"#, "--steps", "1", "--out", out], "t5.buckets"),
            (["eval", "--model", run, "--pe", "rope", "--out", out], "cannot be used under rope"),
            (["eval", "--model", run, "--pes", "alibi,{", "--out", out], "unbalanced"),
            (["finetune", "--model", folder.appendingPathComponent("absent").path, "--out", out], "config.json"),
            (["finetune", "--model", run, "--pe", "rope", "--out", out], "cannot be used under rope"),
            (["train", "--pe", #"rope{"rope_theta": 500}"#, "--rope", #"{"rope_theta": 300}"#, "--steps", "1", "--out", out],
             "given twice"),
            (["train", "--rope", #"{"rope_type": 5}"#, "--steps", "1", "--out", out], "rope.rope_type"),
            (["train", "--rope", #"{"rope_type": "LINEAR", "factor": 2}"#, "--steps", "1", "--out", out], "rope.rope_type"),
            (["train", "--pe", #"learned{"max_length": 1000000000}"#, "--steps", "1", "--out", out], "1000000"),
            (["train", "--steps", "1", "--resume", "--out", out], "no run to continue"),
            (["train", "--steps", "1", "--out", run], "already holds a run"),
            (["eval", "--model", run, "--out", folder.path], "a folder"),
            (["sweep", "--seeds", "0,0", "--steps", "1", "--out", out], "seeds"),
            (["sweep", "--pes", "rope,", "--out", out], "empty scheme"),
            (["sweep", "--pes", #"rope,rope{"rope_theta": 10000}"#, "--steps", "1", "--out", out], "same run"),
        ]
        for (arguments, expected) in cases {
            let result = try cli.poslab(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments) should say \(expected): \(result.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(arguments) wrote \(out)")
        }
        // Writing never replaces what is not a regular file: a symbolic link is refused, its target untouched.
        let target = folder.appendingPathComponent("target.json"), link = folder.appendingPathComponent("link.json")
        try "keep".write(to: target, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        let linked = try cli.poslab(["eval", "--model", run, "--out", link.path])
        XCTAssertEqual(linked.status, 2, linked.error)
        XCTAssertTrue(linked.error.contains("symbolic link"), linked.error)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "keep")
        // A fine-tune that diverges is recorded like a training run that does: exit 1, eval.json says so.
        let diverged = folder.appendingPathComponent("diverged").path
        let tune = try cli.poslab(["finetune", "--model", run, "--learning-rate", "1e6", "--steps", "30", "--out", diverged])
        XCTAssertEqual(tune.status, 1, tune.error)
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: diverged + "/eval.json")))
            as? [String: Any])["status"] as? String
        XCTAssertEqual(status, "diverged")
    }
}

/// `poslab reproduce`: the list, an analytic claim, a smoke-scale claim, and bad input.
final class ReproduceCommandTests: CommandTestCase {
    func testReproduceListsRunsAndRecordsClaims() throws {
        let list = try cli.poslab(["reproduce", "--list"])
        XCTAssertEqual(list.status, 0, list.error)
        for name in ["alibi-text", "nope-t5-copy", "randomized-positions", "position-coupling", "predictive-position-coupling",
                     "sparsity", "hope", "roformer-decay"] { XCTAssertTrue(list.output.contains(name), name) }
        let out = folder.appendingPathComponent("reproduce").path
        let run = try cli.poslab(["reproduce", "roformer-decay", "randomized-positions", "--quick", "--out", out])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertTrue(run.output.contains("HOLDS") && run.output.contains("inconclusive (quick)"), run.output)
        let outcomes = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/reproduce.json")))
            as? [[String: Any]])
        XCTAssertEqual(outcomes.compactMap { $0["name"] as? String }, ["randomized-positions", "roformer-decay"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/randomized-positions/report.html"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/reproduce.html"))
        for (arguments, expected) in [(["reproduce"], "--all"), (["reproduce", "flat-earth", "--out", out], "flat-earth"),
                                      (["reproduce", "hope", "--seeds", "0,x", "--out", out], "--seeds")] {
            let result = try cli.poslab(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
        }
    }
}
