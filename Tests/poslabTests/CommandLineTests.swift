import Foundation
import XCTest

enum CommandLineTestError: Error, CustomStringConvertible {
    case notBuilt([String])
    var description: String {
        switch self {
        case .notBuilt(let paths): return "poslab is not built (looked at \(paths)); run `swift build -c release --product poslab` first"
        }
    }
}

/// Runs the built `poslab` binary as a user would.
struct PosLabCLI {
    struct Run { let status: Int32; let output: String; let error: String }

    /// The built `poslab` executable.
    func binary() throws -> URL {
        // On Linux the test runner is the `.xctest` executable itself, in the build products folder next to `poslab`;
        // `swift test` without a prior product build leaves no `poslab` there, so fall back to the release folder.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [runner.deletingLastPathComponent().appendingPathComponent("poslab"),
                          packageRoot.appendingPathComponent(".build/release/poslab")]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw CommandLineTestError.notBuilt(candidates.map(\.path))
        }
        return binary
    }

    func poslab(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let binary = try binary()
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self), error: String(decoding: error, as: UTF8.self))
    }

    func json(_ run: Run) throws -> [String: Any] {
        XCTAssertEqual(run.status, 0, run.error)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], run.output)
    }

}

/// A test case with the CLI and a fresh temporary folder per test, removed afterwards.
class CommandTestCase: XCTestCase {
    let cli = PosLabCLI()
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }
}

/// End-to-end tests of `poslab positions`, `poslab train` and bad input.
final class CommandLineTests: XCTestCase {
    let cli = PosLabCLI()
    func poslab(_ arguments: [String]) throws -> PosLabCLI.Run { try cli.poslab(arguments) }
    func json(_ run: PosLabCLI.Run) throws -> [String: Any] { try cli.json(run) }

    func testPositionsRopeWithYaRN() throws {
        let result = try json(poslab(["positions", "rope", "--head-dim", "16", "--rope",
                                      #"{"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 2048}"#, "--json"]))
        let inverse = try XCTUnwrap(result["inv_freq"] as? [Double])
        XCTAssertEqual(inverse.count, 8)
        XCTAssertEqual(inverse[0], 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(result["attention_factor"] as? Double), 0.1 * log(4) + 1, accuracy: 1e-12)
    }

    func testPositionsDynamicDependsOnSequenceLength() throws {
        let base = ["positions", "rope", "--head-dim", "8", "--rope", #"{"rope_type": "dynamic", "factor": 2}"#,
                    "--max-position-embeddings", "64", "--json"]
        let short = try XCTUnwrap(json(poslab(base + ["--sequence-length", "32"]))["inv_freq"] as? [Double])
        let long = try XCTUnwrap(json(poslab(base + ["--sequence-length", "256"]))["inv_freq"] as? [Double])
        XCTAssertEqual(short[1], 0.1, accuracy: 1e-12)
        XCTAssertLessThan(long[1], short[1])
    }

    func testPositionsHopeAlibiT5Decay() throws {
        let hope = try json(poslab(["positions", "hope", "--head-dim", "16", "--train-length", "64", "--json"]))
        XCTAssertEqual(hope["rotated_pairs"] as? [Int], [0, 1, 2])
        XCTAssertEqual((hope["inv_freq"] as? [Double])?.suffix(5), [0, 0, 0, 0, 0])
        let alibi = try json(poslab(["positions", "alibi", "--heads", "8", "--json"]))
        XCTAssertEqual(alibi["slopes"] as? [Double], (1...8).map { pow(2, -Double($0)) })
        let t5 = try json(poslab(["positions", "t5", "--buckets", "32", "--max-distance", "128", "--max-relative", "3", "--json"]))
        XCTAssertEqual(t5["relative_position"] as? [Int], [-3, -2, -1, 0, 1, 2, 3])
        XCTAssertEqual(t5["bucket"] as? [Int], [3, 2, 1, 0, 0, 0, 0])
        let decay = try json(poslab(["positions", "decay", "--head-dim", "8", "--max-distance", "5", "--json"]))
        XCTAssertEqual(decay["distance"] as? [Int], [0, 1, 2, 3, 4, 5])
        XCTAssertEqual((decay["bound"] as? [Double])?.first ?? 0, 2.5, accuracy: 1e-12)
    }

    /// One step learns nothing: the quickstart's table flags every run as not having learned its task
    /// at its training length (so that its figures beyond it are not read as extrapolation).
    func testQuickstartFlagsRunsThatDidNotLearnAtTheirTrainingLength() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-quickstart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let run = try poslab(["quickstart", "--steps", "1", "--pes", "nope", "--out", out.path])
        XCTAssertEqual(run.status, 0, run.error)
        let rows = run.output.split(separator: "\n").filter { line in
            let words = line.split(separator: " ")
            return words.count > 2 && ["copy", "sparse"].contains(words[0]) && words[1] == "nope"
        }
        XCTAssertEqual(rows.count, 2, run.output)
        XCTAssertTrue(rows.allSatisfy { $0.contains("nope !") }, run.output)
        XCTAssertTrue(run.output.contains("did not learn the task there"), run.output)
    }

    func testPositionsTableOutput() throws {
        let run = try poslab(["positions", "alibi", "--heads", "3"])
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(run.output.contains("slope"))
    }

    func testBadInputExitsWithTwoAndNamesTheParameter() throws {
        let cases: [([String], String)] = [
            (["positions", "rope", "--head-dim", "15"], "partial_rotary_factor"),
            (["positions", "rope", "--head-dim", "16", "--rope", #"{"rope_type": "warp"}"#], "rope_type"),
            (["positions", "rope", "--head-dim", "16", "--rope", #"{"rope_type": "yarn"}"#], "yarn.factor"),
            (["positions", "rope", "--head-dim", "16", "--rope", #"{"rope_type": "linear", "factor": -1}"#], "linear.factor"),
            (["positions", "rope", "--head-dim", "16", "--base", "0"], "base"),
            (["positions", "rope", "--head-dim", "16", "--rope", "not json"], "rope parameters"),
            (["positions", "alibi", "--heads", "0"], "--heads"),
            (["positions", "t5", "--buckets", "1"], "numberOfBuckets"),
            (["train", "--pe", "warp"], "positional scheme"),
            (["train", "--heads", "3", "--steps", "1"], "numberOfHeads"),
            (["train", "--learning-rate=-1", "--steps", "1"], "learningRate"),
            (["positions", "rope"], "--head-dim"),
            // A negative value written as its own word reaches the option's check (not "missing value").
            (["train", "--steps", "-5"], "steps = -5"),
            (["train", "--learning-rate", "-0.5", "--steps", "1"], "learningRate"),
            (["train", "--eval-lengths", "-32,64", "--steps", "1"], "-32"),
        ]
        for (arguments, parameter) in cases {
            let run = try poslab(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments): \(run.error)")
            XCTAssertTrue(run.error.contains(parameter), "\(arguments) should name \(parameter): \(run.error)")
        }
    }

    func testTrainPrintsFallingLoss() throws {
        let run = try poslab(["train", "--steps", "60", "--log-every", "10", "--train-length", "6", "--seed", "3"])
        XCTAssertEqual(run.status, 0, run.error)
        let losses = run.output.split(separator: "\n").compactMap { line -> Double? in
            guard let range = line.range(of: "loss ") else { return nil }
            return Double(line[range.upperBound...].prefix(while: { !$0.isWhitespace }))
        }
        XCTAssertGreaterThanOrEqual(losses.count, 3, run.output)
        XCTAssertLessThan(losses.last!, losses.first! - 0.3, run.output)
    }
}
