import Models
import Tasks
import TensorCore
import XCTest

final class RecallTaskTests: XCTestCase {
    func testGenerators() throws {
        try checkGenerator(try RecallTask(), sizes: [1, 2, 10, 100])
        try checkGenerator(try RecallTask(alphabetSize: 6, keyLength: 1), sizes: [1, 6])
        try checkGenerator(try RecallTask(alphabetSize: 64, keyLength: 3), sizes: [5])
    }

    /// The pairs and the query of an example.
    func decode(_ example: Example, keyLength: Int) -> (keys: [[Int]], values: [Int], query: [Int], target: [Int]) {
        let (input, target) = parts(example)
        let q = input.firstIndex(of: TaskVocabulary.query)!
        let pairs = Array(input[..<q]), width = keyLength + 1
        let keys = stride(from: 0, to: pairs.count, by: width).map { Array(pairs[$0..<($0 + keyLength)]) }
        let values = stride(from: keyLength, to: pairs.count, by: width).map { pairs[$0] }
        return (keys, values, Array(input[(q + 1)...]), target)
    }

    func testTheTargetIsTheQueriedKeysValue() throws {
        var generator = SplitMix64(seed: 21)
        for (alphabet, keyLength) in [(32, 2), (8, 1), (3, 4)] {
            let task = try RecallTask(alphabetSize: alphabet, keyLength: keyLength)
            for size in [1, 3, min(40, task.capacity)] {
                let example = try task.example(size: size, generator: &generator)
                XCTAssertEqual(example.tokens[0], TaskVocabulary.prefix(.recall))
                let (keys, values, query, target) = decode(example, keyLength: keyLength)
                XCTAssertEqual(keys.count, size)
                XCTAssertEqual(values.count, size)
                XCTAssertEqual(Set(keys).count, size, "keys are distinct")
                XCTAssertEqual(query.count, keyLength)
                let index = try XCTUnwrap(keys.firstIndex(of: query))
                XCTAssertEqual(target, [values[index]])
                XCTAssertTrue((keys.joined() + values).allSatisfy { (TaskVocabulary.symbol(0)..<TaskVocabulary.symbol(alphabet)).contains($0) })
            }
        }
    }

    func testTheNeedleLiesAtAnyDepth() throws {
        let task = try RecallTask(alphabetSize: 16, keyLength: 2)
        var generator = SplitMix64(seed: 5)
        var depths = Set<Int>()
        for _ in 0..<400 {
            let (keys, _, query, _) = decode(try task.example(size: 10, generator: &generator), keyLength: 2)
            depths.insert(keys.firstIndex(of: query)!)
        }
        XCTAssertEqual(depths, Set(0..<10), "every pair is queried at some point")
        for depth in [0, 4, 9] {
            let example = try task.example(size: 10, queriedPair: depth, generator: &generator)
            let (keys, values, query, target) = decode(example, keyLength: 2)
            XCTAssertEqual(keys[depth], query)
            XCTAssertEqual(target, [values[depth]])
        }
        // A full table: every key once.
        let full = try RecallTask(alphabetSize: 3, keyLength: 2)
        XCTAssertEqual(full.capacity, 9)
        XCTAssertEqual(Set(decode(try full.example(size: 9, generator: &generator), keyLength: 2).keys).count, 9)
    }

    func testInvalidSettingsAreClearErrors() throws {
        assertInvalid("alphabetSize", try RecallTask(alphabetSize: 1))
        assertInvalid("keyLength", try RecallTask(keyLength: 0))
        var generator = SplitMix64(seed: 0)
        assertInvalid("size", try RecallTask(alphabetSize: 4, keyLength: 1).example(size: 5, generator: &generator))
        assertInvalid("queriedPair", try RecallTask().example(size: 5, queriedPair: 5, generator: &generator))
    }
}
