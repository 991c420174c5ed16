import Foundation
import Models
import Tasks
import TensorCore
import XCTest

final class SparseTaskTests: XCTestCase {
    /// The marked symbol indices of a sparse or parity input: the token after each marker.
    func markedTokens(_ input: [Int]) -> (unmarked: [Int], marked: [Int], markedIndices: [Int]) {
        var plain: [Int] = [], marked: [Int] = [], indices: [Int] = [], afterMarker = false
        for token in input {
            if token == TaskVocabulary.marker { afterMarker = true; continue }
            if afterMarker { marked.append(token); indices.append(plain.count) }
            plain.append(token)
            afterMarker = false
        }
        return (plain, marked, indices)
    }

    func testGenerators() throws {
        for k in [1, 2, 5] {
            try checkGenerator(try SparseTask(k: k, alphabetSize: SparseTask.defaultAlphabet(k: k, target: .sum)), sizes: [k, k + 1, 30])
            try checkGenerator(try SparseTask(k: k, target: .sumModulo), sizes: [k, k + 1, 30])
            try checkGenerator(try ParityTask(k: k, locality: k + 2), sizes: [k, 9, 64])
        }
    }

    func testSparseTargetIsTheSumOfTheMarkedSymbols() throws {
        var generator = SplitMix64(seed: 11)
        for target in SparseTarget.allCases {
            for (k, q) in [(1, 16), (3, 5), (4, 16), (9, 8)] {
                let task = try SparseTask(k: k, alphabetSize: q, target: target)
                for size in [k, 10, 50] {
                    let example = try task.example(size: size, generator: &generator)
                    XCTAssertEqual(example.tokens[0], TaskVocabulary.prefix(.sparse))
                    let (input, answer) = parts(example)
                    let (symbols, marked, _) = markedTokens(input)
                    XCTAssertEqual(symbols.count, size)
                    XCTAssertEqual(marked.count, k)
                    XCTAssertEqual(input.filter { $0 == TaskVocabulary.marker }.count, k)
                    XCTAssertTrue(symbols.allSatisfy { (TaskVocabulary.symbol(0)..<TaskVocabulary.symbol(q)).contains($0) })
                    let sum = marked.map { $0 - TaskVocabulary.firstSymbol }.reduce(0, +)
                    XCTAssertEqual(answer, [TaskVocabulary.symbol(target == .sum ? sum : sum % q)])
                }
            }
        }
        // The sum reaches k(q − 1), the last symbol when that is 63; one more does not fit.
        XCTAssertEqual(parts(try SparseTask(k: 3, alphabetSize: 22).example(symbols: [21, 0, 21, 21], marked: [0, 2, 3])).target,
                       [TaskVocabulary.symbol(63)])
        assertInvalid("alphabetSize", try SparseTask(k: 3, alphabetSize: 23))
        XCTAssertNoThrow(try SparseTask(k: 3, alphabetSize: 64, target: .sumModulo))
    }

    func testTheDefaultAlphabetFitsTheSums() throws {
        XCTAssertEqual((1...9).map { SparseTask.defaultAlphabet(k: $0, target: .sum) }, [Int](repeating: 8, count: 9))
        XCTAssertEqual(SparseTask.defaultAlphabet(k: 10, target: .sum), 7)
        XCTAssertEqual(SparseTask.defaultAlphabet(k: 63, target: .sum), 2)
        XCTAssertEqual(SparseTask.defaultAlphabet(k: 2, target: .sumModulo), 16)
        for k in [1, 4, 10, 63] { XCTAssertNoThrow(try TaskCatalog.named("sparse", options: TaskOptions(k: k))) }
        let sum = try XCTUnwrap(try TaskCatalog.named("sparse", options: TaskOptions(k: 3)) as? SparseTask)
        XCTAssertEqual([sum.alphabetSize, sum.target == .sum ? 1 : 0], [8, 1])
        let modulo = try XCTUnwrap(try TaskCatalog.named("sparse", options: TaskOptions(k: 3, sparseTarget: .sumModulo)) as? SparseTask)
        XCTAssertEqual([modulo.alphabetSize, modulo.target == .sumModulo ? 1 : 0], [16, 1])
    }

    func testTaskOptionsDecodeFilesWithoutTheSparseTarget() throws {
        let old = try JSONDecoder().decode(TaskOptions.self, from: Data(#"{"k": 3, "alphabetSize": 4}"#.utf8))
        XCTAssertEqual(old, TaskOptions(alphabetSize: 4, k: 3))
        XCTAssertEqual(old.sparseTarget, .sum)
        let modulo = TaskOptions(k: 2, sparseTarget: .sumModulo)
        XCTAssertEqual(try JSONDecoder().decode(TaskOptions.self, from: JSONEncoder().encode(modulo)), modulo)
        XCTAssertEqual(try JSONDecoder().decode(TaskOptions.self, from: Data(#"{"sparseTarget": "sumModulo"}"#.utf8)).sparseTarget, .sumModulo)
    }

    func testTheTargetDependsOnExactlyTheMarkedSymbols() throws {
        for target in SparseTarget.allCases {
            for k in 1...4 {
                let task = try SparseTask(k: k, alphabetSize: 7, target: target)
                var generator = SplitMix64(seed: UInt64(4 + k))
                for _ in 0..<10 {
                    let example = try task.example(size: 25, generator: &generator)
                    let (symbolTokens, _, marked) = markedTokens(parts(example).input)
                    XCTAssertEqual(marked.count, k)
                    let symbols = symbolTokens.map { $0 - TaskVocabulary.firstSymbol }
                    XCTAssertEqual(try task.example(symbols: symbols, marked: marked), example, "rebuilt from its content")
                    let answer = parts(example).target
                    for i in 0..<symbols.count {
                        for change in 1..<7 {
                            var changed = symbols
                            changed[i] = (changed[i] + change) % 7
                            let other = parts(try task.example(symbols: changed, marked: marked)).target
                            // Changing any one marked symbol changes both the sum and the sum mod q.
                            if marked.contains(i) { XCTAssertNotEqual(other, answer, "a marked symbol changes the \(target)") }
                            else { XCTAssertEqual(other, answer, "an unmarked symbol never matters") }
                        }
                    }
                }
            }
        }
    }

    func testLocalityKeepsTheMarkedTokensNearTheEnd() throws {
        var generator = SplitMix64(seed: 8)
        var earliest = Int.max
        for task: any SequenceTask in [try SparseTask(k: 2, locality: 5), try ParityTask(k: 2, locality: 5)] {
            for _ in 0..<200 {
                let marked = markedTokens(parts(try task.example(size: 40, generator: &generator)).input).markedIndices
                XCTAssertTrue(marked.allSatisfy { $0 >= 35 }, "\(marked)")
                earliest = min(earliest, marked.min()!)
            }
        }
        XCTAssertEqual(earliest, 35, "the whole window is used")
        // Without locality, marks land anywhere, the first symbol included.
        let anywhere = try SparseTask(k: 2)
        let firsts = try (0..<300).map { _ in markedTokens(parts(try anywhere.example(size: 40, generator: &generator)).input).markedIndices.min()! }
        XCTAssertEqual(firsts.min(), 0)
        // A window larger than the sequence is the whole sequence.
        XCTAssertEqual(try SparseTask(k: 2, locality: 100).example(size: 3, generator: &generator).tokens.count, 8)
    }

    func testParityTargetIsTheXorOfTheMarkedBits() throws {
        var generator = SplitMix64(seed: 12)
        var seen = Set<Int>()
        for k in [1, 2, 3, 6] {
            let task = try ParityTask(k: k)
            for size in [k, 20] {
                for _ in 0..<10 {
                    let example = try task.example(size: size, generator: &generator)
                    XCTAssertEqual(example.tokens[0], TaskVocabulary.prefix(.parity))
                    let (input, target) = parts(example)
                    let (bits, marked, indices) = markedTokens(input)
                    XCTAssertEqual(bits.count, size)
                    XCTAssertTrue(bits.allSatisfy { $0 == TaskVocabulary.digit(0) || $0 == TaskVocabulary.digit(1) })
                    let xor = marked.map { $0 - TaskVocabulary.firstDigit }.reduce(0, ^)
                    XCTAssertEqual(target, [TaskVocabulary.digit(xor)])
                    seen.insert(xor)
                    // Flipping one unmarked bit keeps the parity; flipping a marked one flips it.
                    let values = bits.map { $0 - TaskVocabulary.firstDigit }
                    for i in 0..<size {
                        var flipped = values
                        flipped[i] ^= 1
                        XCTAssertEqual(task.parity(bits: flipped, marked: indices), indices.contains(i) ? 1 - xor : xor)
                    }
                }
            }
        }
        XCTAssertEqual(seen, [0, 1])
    }

    func testInvalidSettingsAreClearErrors() throws {
        assertInvalid("k", try SparseTask(k: 0))
        assertInvalid("locality", try SparseTask(k: 3, locality: 2))
        assertInvalid("alphabetSize", try SparseTask(alphabetSize: 1))
        assertInvalid("k", try ParityTask(k: -1))
        assertInvalid("locality", try ParityTask(k: 2, locality: 0))
        var generator = SplitMix64(seed: 0)
        assertInvalid("k", try SparseTask(k: 4).example(size: 3, generator: &generator))
        assertInvalid("k", try ParityTask(k: 4).example(size: 2, generator: &generator))
        assertInvalid("marked", try SparseTask(k: 2).example(symbols: [1, 2, 3], marked: [1, 1]))
        assertInvalid("marked", try SparseTask(k: 1).example(symbols: [1, 2, 3], marked: [3]))
        assertInvalid("symbols", try SparseTask(k: 1, alphabetSize: 4).example(symbols: [1, 4], marked: [0]))
        assertInvalid("bits", try ParityTask(k: 1).example(bits: [2], marked: [0]))
    }
}
