import Foundation
import Models
import Tasks
import TensorCore
import XCTest

final class MixtureTests: XCTestCase {
    func testTheSharedLayout() {
        XCTAssertEqual(TaskVocabulary.size, 90)
        XCTAssertEqual(TaskVocabulary.Prefix.allCases.map(\.name), ["copy", "reverse", "sparse", "parity", "recall", "addition", "incontext"])
        let prefixes = TaskVocabulary.Prefix.allCases.map(\.rawValue)
        XCTAssertTrue(prefixes.allSatisfy { (TaskVocabulary.firstPrefix..<(TaskVocabulary.firstPrefix + TaskVocabulary.prefixSlots)).contains($0) })
        XCTAssertEqual(TaskVocabulary.firstPrefix + TaskVocabulary.prefixSlots, TaskVocabulary.firstDigit)
        XCTAssertEqual(TaskVocabulary.digit(9) + 1, TaskVocabulary.firstSymbol)
        XCTAssertEqual(TaskVocabulary.render([5, 26, 51, 52, 89, 1, 2, 3, 4, 16, 0]), "copy: a z A #63 = ^ ? + 0 _")
    }

    func testMixtureSamplingFollowsTheWeights() throws {
        let mixture = try TaskMixture([try CopyTask(), try SparseTask(k: 2), try AdditionTask()], weights: [1, 2, 5])
        XCTAssertEqual(mixture.name, "copy+sparse+addition")
        XCTAssertEqual(mixture.vocabularySize, TaskVocabulary.size)
        XCTAssertEqual(mixture.weights, [0.125, 0.25, 0.625])
        XCTAssertEqual(mixture.sequenceLength(size: 10), 34)
        var generator = SplitMix64(seed: 7)
        var counts: [Int: Int] = [:]
        for _ in 0..<4000 { counts[try mixture.example(size: 6, generator: &generator).tokens[0], default: 0] += 1 }
        let prefixes = [TaskVocabulary.prefix(.copy), TaskVocabulary.prefix(.sparse), TaskVocabulary.prefix(.addition)]
        XCTAssertEqual(Set(counts.keys), Set(prefixes))
        for (prefix, weight) in zip(prefixes, mixture.weights) {
            XCTAssertEqual(Double(counts[prefix]!) / 4000, weight, accuracy: 0.03)
        }
        // Zero weight: never drawn. Uniform by default.
        let noCopy = try TaskMixture([try CopyTask(), try ReverseTask()], weights: [0, 3])
        XCTAssertTrue(try (0..<200).allSatisfy { _ in try noCopy.example(size: 3, generator: &generator).tokens[0] == TaskVocabulary.prefix(.reverse) })
        XCTAssertEqual(try TaskMixture([try CopyTask(), try ReverseTask()]).weights, [0.5, 0.5])
        try checkGenerator(try TaskMixture([try CopyTask(), try ParityTask(k: 1), try RecallTask()]), sizes: [1, 5], exactLength: false, draws: 100)
    }

    func testMixtureErrors() throws {
        assertInvalid("tasks", try TaskMixture([]))
        assertInvalid("weights", try TaskMixture([try CopyTask()], weights: [1, 2]))
        assertInvalid("weights", try TaskMixture([try CopyTask(), try ReverseTask()], weights: [0, 0]))
        assertInvalid("weights", try TaskMixture([try CopyTask(), try ReverseTask()], weights: [-1, 2]))
        let jsonl = try JSONLinesTask(bytes: Array(#"{"input": "a", "target": "b"}"#.utf8))
        assertInvalid("tasks", try TaskMixture([try CopyTask(), jsonl]))
    }

    func testTheCatalogNamesEveryTask() throws {
        for name in TaskCatalog.names where name != "jsonl" {
            let task = try TaskCatalog.named(name)
            XCTAssertEqual(task.name, name)
            XCTAssertEqual(task.vocabularySize, TaskVocabulary.size)
            var generator = SplitMix64(seed: 1)
            XCTAssertEqual(try task.example(size: 3, generator: &generator).tokens[0], TaskVocabulary.Prefix.allCases.first { $0.name == name }!.rawValue)
        }
        let mixture = try TaskCatalog.named("copy+sparse+addition", options: TaskOptions(k: 3, weights: [1, 1, 2]))
        XCTAssertEqual(mixture.name, "copy+sparse+addition")
        XCTAssertEqual((mixture as? TaskMixture)?.weights, [0.25, 0.25, 0.5])
        XCTAssertEqual(((mixture as? TaskMixture)?.tasks[1] as? SparseTask)?.k, 3)
        XCTAssertEqual((try TaskCatalog.named("incontext") as? InContextCopyTask)?.alphabetSize, 64)
        XCTAssertEqual((try TaskCatalog.named("addition", options: TaskOptions(digitOrder: .mostSignificantFirst, maximumOffset: 9)) as? AdditionTask)?.maximumOffset, 9)
        XCTAssertThrowsError(try TaskCatalog.named("sorting")) {
            XCTAssertTrue("\($0)".contains("invalid task = \"sorting\""), "\($0)")
            XCTAssertTrue("\($0)".contains("copy, reverse, sparse, parity, recall, addition, incontext, jsonl"), "\($0)")
        }
        XCTAssertThrowsError(try TaskCatalog.named("copy+")) { XCTAssertTrue("\($0)".contains("invalid task = \"\""), "\($0)") }
        assertInvalid("data", try TaskCatalog.named("jsonl"))
        assertInvalid("k", try TaskCatalog.named("parity", options: TaskOptions(k: 0)))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(ProcessInfo.processInfo.processIdentifier).jsonl")
        try Data(#"{"input": "ab", "target": "c"}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        XCTAssertEqual(try TaskCatalog.named("jsonl", options: TaskOptions(data: file)).vocabularySize, 259)
    }

    func testBatchesCarryCoupledPositionsAndTheirTargets() throws {
        let addition = try AdditionTask(maximumOffset: 4), copy = try CopyTask()
        var generator = SplitMix64(seed: 2)
        let examples = [try addition.example(size: 3, generator: &generator), try copy.example(size: 2, generator: &generator),
                        try addition.example(size: 1, generator: &generator)]
        let batch = makeBatch(examples, padding: TaskVocabulary.padding)
        let length = examples.map(\.tokens.count).max()! - 1
        XCTAssertEqual(batch.length, length)
        let positions = try XCTUnwrap(batch.positions)
        let targets = try XCTUnwrap(makePositionTargets(examples))
        XCTAssertEqual(positions.count, 3 * length)
        XCTAssertEqual(targets.count, 3 * length)
        for (row, example) in examples.enumerated() {
            let n = example.tokens.count
            let own = example.positions ?? Array(0..<n), next = coupledPositionTargets(example) ?? Array(1...n)
            for t in 0..<length {
                let i = row * length + t
                if t < n - 1 {
                    XCTAssertEqual(positions[i], own[t])
                    XCTAssertEqual(targets[i], next[t])
                    XCTAssertEqual(targets[i], own[t + 1], "the target is the ID of the token the row predicts")
                    XCTAssertEqual(batch.lossMask[i], example.lossMask[t + 1])
                } else {
                    XCTAssertEqual(positions[i], positions[i - 1] + 1, "padding continues the positions")
                    XCTAssertEqual(targets[i], targets[i - 1] + 1)
                    XCTAssertFalse(batch.lossMask[i])
                    XCTAssertEqual(batch.inputs[i], TaskVocabulary.padding)
                }
            }
        }
        let ids = try XCTUnwrap(batch.positionIDs())
        XCTAssertEqual(ids.values, positions)
        // Without coupled positions: none in the batch, no targets.
        XCTAssertNil(makeBatch([examples[1]], padding: 0).positions)
        XCTAssertNil(makePositionTargets([examples[1]]))
        // The protocol's batch pads with the task's padding token.
        let batched = try addition.batch(count: 5, sizes: 1...4, generator: &generator)
        XCTAssertEqual(batched.batchSize, 5)
        XCTAssertNotNil(batched.positions)
    }
}
