import Foundation
import XCTest

/// `poslab export`, transformers folders as --model, and `poslab passkey`, end to end.
final class InteropCommandTests: CommandTestCase {
    func poslab(_ arguments: [String]) throws -> PosLabCLI.Run { try cli.poslab(arguments) }
    let tiny = ["--model-dimension", "16", "--layers", "1", "--heads", "2", "--steps", "5", "--batch-size", "4",
                "--eval-samples", "2", "--log-every", "1000"]

    func testExportThenEvaluateTheExportedFolder() throws {
        let run = folder.appendingPathComponent("run").path, exported = folder.appendingPathComponent("hf").path
        XCTAssertEqual(try poslab(["train", "--task", "copy", "--train-length", "12", "--eval-lengths", "12,24"] + tiny + ["--out", run]).status, 0)
        let export = try poslab(["export", "--model", run, "--out", exported])
        XCTAssertEqual(export.status, 0, export.error)
        XCTAssertTrue(export.output.contains("GPTNeoXForCausalLM"), export.output)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: exported)),
                       ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "positionlab_run.json"])
        let evaluated = try poslab(["eval", "--model", exported, "--lengths", "12,24", "--samples", "2"])
        XCTAssertEqual(evaluated.status, 0, evaluated.error)
        XCTAssertTrue(evaluated.output.contains("perplexity"), evaluated.output)
        let again = try poslab(["export", "--model", run, "--out", exported])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.error.contains("already exists"), again.error)

        let alibi = folder.appendingPathComponent("alibi").path, refused = folder.appendingPathComponent("alibi-hf").path
        XCTAssertEqual(try poslab(["train", "--task", "copy", "--pe", "alibi", "--train-length", "12"] + tiny + ["--out", alibi]).status, 0)
        let noArchitecture = try poslab(["export", "--model", alibi, "--out", refused])
        XCTAssertEqual(noArchitecture.status, 2)
        XCTAssertTrue(noArchitecture.error.contains("BLOOM"), noArchitecture.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".") }, [],
                       "no partial folder left behind")

        // A transformers folder made elsewhere needs its tokenizer to be evaluated as text.
        try FileManager.default.removeItem(atPath: exported + "/positionlab_run.json")
        try FileManager.default.removeItem(atPath: exported + "/tokenizer.json")
        let foreign = try poslab(["eval", "--model", exported])
        XCTAssertEqual(foreign.status, 2)
        XCTAssertTrue(foreign.error.contains("without tokenizer.json"), foreign.error)
    }

    func testPasskeyOnATextRun() throws {
        let run = folder.appendingPathComponent("text").path
        XCTAssertEqual(try poslab(["train", "--task", "text", "--train-length", "32", "--eval-lengths", "32"] + tiny + ["--out", run]).status, 0)
        let out = folder.appendingPathComponent("passkey.json").path
        let passkey = try poslab(["passkey", "--model", run, "--lengths", "300", "--depths", "0,1", "--samples", "2",
                                  "--pes", "hope", "--out", out])
        XCTAssertEqual(passkey.status, 0, passkey.error)
        XCTAssertTrue(passkey.output.contains("100%"), passkey.output)
        let page = try String(contentsOfFile: folder.appendingPathComponent("passkey.html").path, encoding: .utf8)
        XCTAssertEqual(page.components(separatedBy: "<svg").count - 1, 2, "one heatmap per scheme")
        let short = try poslab(["passkey", "--model", run, "--lengths", "50"])
        XCTAssertEqual(short.status, 2)
        XCTAssertTrue(short.error.contains("at least"), short.error)
        let none = try poslab(["passkey", "--model", run])
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.error.contains("--lengths"), none.error)
        let twice = try poslab(["passkey", "--model", run, "--lengths", "300", "--depths", "0.5,0.5"])
        XCTAssertEqual(twice.status, 2)
        XCTAssertTrue(twice.error.contains("0.5 twice"), twice.error)
        let depth = try poslab(["passkey", "--model", run, "--lengths", "300", "--depths", "0,1.5"])
        XCTAssertEqual(depth.status, 2)
        XCTAssertTrue(depth.error.contains("1.5"), depth.error)
    }
}
