import Foundation
import Models
import Tasks
import TensorCore
import XCTest

final class JSONLinesTaskTests: XCTestCase {
    let sample = """
        {"input": "2+2", "target": "4"}
        {"input": "héllo", "target": "olléh", "note": "ignored"}

        {"target": "x", "input": ""}
        {"input": "the longest of the pairs", "target": "yes"}\r

        """

    func testPairsAreByteLevelAndFramed() throws {
        let task = try JSONLinesTask(bytes: Array(sample.utf8), path: "sample.jsonl")
        XCTAssertEqual(task.pairs.count, 4)
        XCTAssertEqual(task.pairs.map(\.size), [1, 4, 12, 27], "sorted by size; é is two bytes")
        XCTAssertEqual(task.pairs[2].input, Array("héllo".utf8))
        XCTAssertEqual(task.longestSize, 27)
        XCTAssertEqual(task.vocabularySize, 259)
        XCTAssertEqual(task.example(task.pairs[1]).tokens,
                       [JSONLinesTask.prefix] + Array("2+2".utf8).map(Int.init) + [JSONLinesTask.separator, Int(UInt8(ascii: "4"))])
        try checkGenerator(task, sizes: [4, 27], separator: JSONLinesTask.separator, exactLength: false)
        // A size keeps to the pairs that fit, drawing all of them.
        var generator = SplitMix64(seed: 3)
        var drawn = Set<[Int]>()
        for _ in 0..<200 {
            let example = try task.example(size: 12, generator: &generator)
            XCTAssertLessThanOrEqual(example.tokens.count, task.sequenceLength(size: 12))
            drawn.insert(example.tokens)
        }
        XCTAssertEqual(drawn.count, 3)
        assertInvalid("size", try task.example(size: 0, generator: &generator))
        let batch = try task.batch(count: 4, sizes: 27...27, generator: &generator)
        XCTAssertTrue(batch.inputs.contains(JSONLinesTask.padding) || Set(batch.lossMask).count == 2)
        XCTAssertTrue(zip(batch.inputs, batch.lossMask).allSatisfy { !$1 || $0 != JSONLinesTask.padding })
    }

    func testNoPairFitsIsAClearError() throws {
        let task = try JSONLinesTask(bytes: Array(#"{"input": "abc", "target": "de"}"#.utf8), path: "one.jsonl")
        var generator = SplitMix64(seed: 0)
        XCTAssertThrowsError(try task.example(size: 4, generator: &generator)) {
            XCTAssertTrue("\($0)".contains("invalid size = 4"), "\($0)")
            XCTAssertTrue("\($0)".contains("at least 5"), "\($0)")
        }
    }

    func assertDataError(_ text: [UInt8], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSONLinesTask(bytes: text, path: "data.jsonl"), file: file, line: line) {
            XCTAssertEqual("\($0)", expected, file: file, line: line)
        }
    }

    func testErrorsNameTheFileAndLine() throws {
        let good = #"{"input": "a", "target": "b"}"#
        assertDataError([], "data.jsonl: the file is empty")
        assertDataError(Array("\n  \n".utf8), "data.jsonl: contains no examples (only blank lines)")
        assertDataError(Array((good + "\n" + good + "\n{\"input\": \"a\", \"target\": }\n").utf8),
                        "data.jsonl: line 3: not valid JSON; expected {\"input\": \"…\", \"target\": \"…\"}")
        assertDataError(Array((good + "\n\n" + #"{"target": "b"}"#).utf8), "data.jsonl: line 3: missing key \"input\"")
        assertDataError(Array(#"{"input": "a", "output": "b"}"#.utf8), "data.jsonl: line 1: missing key \"target\"")
        assertDataError(Array((good + "\n" + #"{"input": 3, "target": "b"}"#).utf8), "data.jsonl: line 2: \"input\" must be a string")
        assertDataError(Array(#"{"input": "a", "target": null}"#.utf8), "data.jsonl: line 1: \"target\" must be a string")
        assertDataError(Array(#"{"input": "a", "target": ""}"#.utf8), "data.jsonl: line 1: \"target\" is empty (the loss counts target bytes only)")
        assertDataError(Array(#"["a", "b"]"#.utf8), "data.jsonl: line 1: expected a JSON object {\"input\": \"…\", \"target\": \"…\"}")
        assertDataError(Array((good + "\n" + good + "\n").utf8) + [0x7B, 0xFF, 0xFE, 0x7D], "data.jsonl: line 3: not valid UTF-8 text")
        XCTAssertEqual(try JSONLinesTask(bytes: [0xEF, 0xBB, 0xBF] + Array(good.utf8)).pairs.count, 1, "a byte-order mark is skipped")
        XCTAssertThrowsError(try JSONLinesTask(contentsOf: URL(fileURLWithPath: "/nonexistent/x.jsonl"))) {
            XCTAssertEqual("\($0)", "/nonexistent/x.jsonl: cannot be read")
        }
    }

    func testReadsAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pairs-\(ProcessInfo.processInfo.processIdentifier).jsonl")
        try Data(sample.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let task = try JSONLinesTask(contentsOf: url)
        XCTAssertEqual(task.path, url.path)
        XCTAssertEqual(task.pairs.count, 4)
    }
}
