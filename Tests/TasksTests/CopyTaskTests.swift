import Models
import Tasks
import TensorCore
import XCTest

final class CopyTaskTests: XCTestCase {
    func testExampleLayoutAndLossMask() throws {
        let task = try CopyTask(alphabetSize: 5)
        var generator = SplitMix64(seed: 1)
        let example = task.example(inputLength: 4, generator: &generator)
        XCTAssertEqual(example.tokens.count, CopyTask.sequenceLength(inputLength: 4))
        XCTAssertEqual(example.tokens[0], CopyTask.prefix)
        XCTAssertEqual(example.tokens[5], CopyTask.separator)
        XCTAssertEqual(Array(example.tokens[1...4]), Array(example.tokens[6...9]))
        XCTAssertTrue(example.tokens[1...].allSatisfy { $0 == CopyTask.separator || ($0 >= CopyTask.firstSymbol && $0 < CopyTask.firstSymbol + 5) })
        XCTAssertEqual(example.lossMask, [false, false, false, false, false, false, true, true, true, true])
        XCTAssertNil(example.positions)
        XCTAssertEqual(task.vocabularySize, TaskVocabulary.size)
        XCTAssertEqual([CopyTask.padding, CopyTask.separator, CopyTask.prefix, CopyTask.firstSymbol],
                       [TaskVocabulary.padding, TaskVocabulary.separator, TaskVocabulary.prefix(.copy), TaskVocabulary.firstSymbol])
    }

    func testTrainingBatchesPutMostExamplesAtTheLargestSize() throws {
        var generator = SplitMix64(seed: 9)
        let draws = 4000
        let uniform = (0..<draws).map { _ in SizeSampling.uniform.size(in: 1...8, generator: &generator) }
        let standard = (0..<draws).map { _ in SizeSampling.standard.size(in: 1...8, generator: &generator) }
        XCTAssertEqual(Set(uniform), Set(1...8))
        XCTAssertEqual(Set(standard), Set(1...8), "every size is still trained")
        func share(_ sizes: [Int], _ size: Int) -> Double { Double(sizes.filter { $0 == size }.count) / Double(draws) }
        XCTAssertEqual(share(uniform, 8), 1.0 / 8, accuracy: 0.03)
        XCTAssertEqual(share(standard, 8), 0.75 + 0.25 / 8, accuracy: 0.03)
        XCTAssertEqual(share(standard, 3), 0.25 / 8, accuracy: 0.02)
        XCTAssertEqual(SizeSampling.favouringLargest(largestFraction: 1).size(in: 2...6, generator: &generator), 6)
        // The protocol's batch samples with `standard`, its examples uniformly.
        let task = try CopyTask(alphabetSize: 4)
        var a = SplitMix64(seed: 2), b = SplitMix64(seed: 2)
        let batch = try task.batch(count: 64, sizes: 1...6, generator: &a)
        let examples = try task.examples(count: 64, sizes: 1...6, sampling: .standard, generator: &b)
        XCTAssertEqual(batch.inputs, makeBatch(examples, padding: task.paddingToken).inputs)
        XCTAssertGreaterThan(examples.filter { $0.tokens.count == CopyTask.sequenceLength(inputLength: 6) }.count, 40)
    }

    func testBatchesShiftTargetsPadAndAreSeeded() throws {
        let task = try CopyTask(alphabetSize: 7)
        var a = SplitMix64(seed: 5), b = SplitMix64(seed: 5), c = SplitMix64(seed: 6)
        let batch = try task.batch(count: 8, sizes: 1...6, generator: &a)
        XCTAssertEqual(batch.inputs, try task.batch(count: 8, sizes: 1...6, generator: &b).inputs)
        XCTAssertNotEqual(batch.inputs, try task.batch(count: 8, sizes: 1...6, generator: &c).inputs)
        XCTAssertEqual(batch.inputs.count, batch.batchSize * batch.length)
        XCTAssertLessThanOrEqual(batch.length, CopyTask.sequenceLength(inputLength: 6) - 1)
        XCTAssertNil(batch.positions)
        for row in 0..<batch.batchSize {
            for t in 0..<batch.length {
                let i = row * batch.length + t
                if batch.lossMask[i] {
                    XCTAssertGreaterThanOrEqual(batch.targets[i], CopyTask.firstSymbol)
                    XCTAssertNotEqual(batch.inputs[i], CopyTask.padding)
                }
                if t + 1 < batch.length, batch.inputs[i + 1] != CopyTask.padding { XCTAssertEqual(batch.targets[i], batch.inputs[i + 1]) }
            }
        }
        // Every example's input length lies in the range: selected targets per row between 1 and 6.
        for row in 0..<batch.batchSize {
            let selected = batch.lossMask[(row * batch.length)..<((row + 1) * batch.length)].filter { $0 }.count
            XCTAssertTrue((1...6).contains(selected))
        }
        assertInvalid("alphabetSize", try CopyTask(alphabetSize: 1))
        assertInvalid("alphabetSize", try CopyTask(alphabetSize: 65))
    }

    func testCopyReverseAndInContextCopyGenerators() throws {
        for task: any SequenceTask in [try CopyTask(), try ReverseTask(alphabetSize: 4), try InContextCopyTask()] {
            try checkGenerator(task, sizes: [1, 2, 7, 40])
        }
        XCTAssertEqual(try InContextCopyTask().alphabetSize, 64)
        assertInvalid("alphabetSize", try ReverseTask(alphabetSize: 0))
        assertInvalid("alphabetSize", try InContextCopyTask(alphabetSize: 100))
    }

    func testTargetsAreTheInputCopiedOrReversed() throws {
        var generator = SplitMix64(seed: 9)
        for size in [1, 3, 12] {
            let reverse = try ReverseTask().example(size: size, generator: &generator)
            XCTAssertEqual(reverse.tokens[0], TaskVocabulary.prefix(.reverse))
            let (input, target) = parts(reverse)
            XCTAssertEqual(target, input.reversed())
            XCTAssertEqual(input.count, size)
            let copy = try InContextCopyTask().example(size: size, generator: &generator)
            XCTAssertEqual(copy.tokens[0], TaskVocabulary.prefix(.incontext))
            XCTAssertEqual(parts(copy).target, parts(copy).input)
        }
        // Reversal really reorders: a long example is not a palindrome.
        let long = try ReverseTask().example(size: 50, generator: &generator)
        XCTAssertNotEqual(parts(long).target, parts(long).input)
        // The in-context probe uses the large alphabet: 64 symbols show up in a long string.
        let text = try InContextCopyTask().example(size: 2000, generator: &generator)
        XCTAssertEqual(Set(parts(text).input).count, 64)
        XCTAssertEqual(TaskVocabulary.render(Array(try CopyTask().example(size: 2, generator: &generator).tokens.prefix(1))), "copy:")
    }
}
