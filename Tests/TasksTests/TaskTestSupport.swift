import Models
import Tasks
import TensorCore
import XCTest

/// The checks every generator passes: lengths, seeds, where the loss applies, the vocabulary.
/// `exactLength`: every example of `size` has sequenceLength(size:) tokens (else at most that, and,
/// with `reachesLongest`, one of `draws` seeds reaches it).
func checkGenerator(_ task: any SequenceTask, sizes: [Int], separator: Int = TaskVocabulary.separator,
                    exactLength: Bool = true, reachesLongest: Bool = true, draws: UInt64 = 40,
                    file: StaticString = #filePath, line: UInt = #line) throws {
    for size in sizes {
        var longest = 0
        for seed in 0..<draws {
            var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
            let example = try task.example(size: size, generator: &a)
            XCTAssertEqual(example, try task.example(size: size, generator: &b), "same seed, same example", file: file, line: line)
            XCTAssertEqual(a, b, file: file, line: line)
            let n = example.tokens.count
            longest = max(longest, n)
            if exactLength { XCTAssertEqual(n, task.sequenceLength(size: size), "\(task.name) size \(size)", file: file, line: line) }
            XCTAssertLessThanOrEqual(n, task.sequenceLength(size: size), file: file, line: line)
            XCTAssertEqual(example.lossMask.count, n, file: file, line: line)
            XCTAssertTrue(example.tokens.allSatisfy { (0..<task.vocabularySize).contains($0) && $0 != task.paddingToken },
                          "\(example.tokens)", file: file, line: line)
            // Exactly one separator; the loss counts exactly the tokens after it, at least one.
            let separators = example.tokens.indices.filter { example.tokens[$0] == separator }
            XCTAssertEqual(separators.count, 1, "\(example.tokens)", file: file, line: line)
            if let s = separators.first {
                XCTAssertEqual(example.lossMask, example.tokens.indices.map { $0 > s }, file: file, line: line)
                XCTAssertLessThan(s, n - 1, file: file, line: line)
            }
            if let positions = example.positions { XCTAssertEqual(positions.count, n, file: file, line: line) }
        }
        if reachesLongest { XCTAssertEqual(longest, task.sequenceLength(size: size), "the longest draw of \(task.name) at size \(size)", file: file, line: line) }
        // Different seeds give different examples (a run of draws, which cannot all coincide).
        var g1 = SplitMix64(seed: 1), g2 = SplitMix64(seed: 2)
        let first = try (0..<8).map { _ in try task.example(size: size, generator: &g1) }
        let second = try (0..<8).map { _ in try task.example(size: size, generator: &g2) }
        XCTAssertNotEqual(first, second, file: file, line: line)
        XCTAssertEqual(task.size(fittingIn: task.sequenceLength(size: size)), size, file: file, line: line)
    }
    var generator = SplitMix64(seed: 0)
    for bad in [0, -3] {
        XCTAssertThrowsError(try task.example(size: bad, generator: &generator), file: file, line: line) {
            XCTAssertTrue("\($0)".contains("size"), "\($0)", file: file, line: line)
        }
    }
}

/// The error names the parameter.
func assertInvalid<T>(_ parameter: String, _ expression: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        XCTAssertTrue("\(error)".contains("invalid \(parameter) ="), "\(error)", file: file, line: line)
    }
}

/// The input tokens (between prefix and separator) and the target tokens of an example.
func parts(_ example: Example, separator: Int = TaskVocabulary.separator) -> (input: [Int], target: [Int]) {
    let s = example.tokens.firstIndex(of: separator)!
    return (Array(example.tokens[1..<s]), Array(example.tokens[(s + 1)...]))
}
