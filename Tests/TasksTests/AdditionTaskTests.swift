import Models
import Tasks
import TensorCore
import XCTest

final class AdditionTaskTests: XCTestCase {
    struct Decoded { var a: [Int], b: [Int], c: [Int]; var aIDs: [Int], bIDs: [Int], cIDs: [Int] }

    /// Operands and sum as written (digit values), with their position IDs.
    func decode(_ example: Example) -> Decoded {
        let (input, target) = parts(example)
        let plus = input.firstIndex(of: TaskVocabulary.plus)!
        let ids = example.positions!
        let digit = { (t: Int) in t - TaskVocabulary.firstDigit }
        return Decoded(a: input[..<plus].map(digit), b: input[(plus + 1)...].map(digit), c: target.map(digit),
                       aIDs: Array(ids[1...plus]), bIDs: Array(ids[(plus + 2)..<(input.count + 1)]), cIDs: Array(ids[(input.count + 2)...]))
    }

    func value(_ digits: [Int], leastSignificantFirst: Bool) -> Int {
        (leastSignificantFirst ? digits.reversed() : digits).reduce(0) { $0 * 10 + $1 }
    }

    func testGenerators() throws {
        for order in DigitOrder.allCases {
            try checkGenerator(try AdditionTask(digitOrder: order, maximumOffset: 5), sizes: [1, 2, 4], exactLength: false, draws: 400)
            try checkGenerator(try AdditionTask(digitOrder: order, padOperands: true), sizes: [1, 3, 30])
        }
        try checkGenerator(try AdditionTask(), sizes: [40], exactLength: false, reachesLongest: false)
    }

    func testTheTargetIsTheSumInEveryDigitOrder() throws {
        var generator = SplitMix64(seed: 3)
        for order in DigitOrder.allCases {
            let task = try AdditionTask(digitOrder: order)
            let operandsLSF = order == .leastSignificantFirst, sumLSF = order != .mostSignificantFirst
            var lengths = Set<[Int]>()
            for size in [1, 2, 5, 9] {
                for _ in 0..<50 {
                    let example = try task.example(size: size, generator: &generator)
                    XCTAssertEqual(example.tokens[0], TaskVocabulary.prefix(.addition))
                    let d = decode(example)
                    XCTAssertEqual(max(d.a.count, d.b.count), size, "size is the longer operand's digits")
                    XCTAssertTrue((1...size).contains(min(d.a.count, d.b.count)))
                    for operand in [d.a, d.b] where operand.count > 1 {
                        XCTAssertNotEqual(operandsLSF ? operand.last : operand.first, 0, "no leading zero")
                    }
                    let a = value(d.a, leastSignificantFirst: operandsLSF), b = value(d.b, leastSignificantFirst: operandsLSF)
                    XCTAssertEqual(value(d.c, leastSignificantFirst: sumLSF), a + b, "\(TaskVocabulary.render(example.tokens))")
                    XCTAssertEqual(d.c.count, String(a + b).count)
                    if size == 5 { lengths.insert([d.a.count, d.b.count]) }
                }
            }
            XCTAssertTrue(lengths.contains { $0[0] < $0[1] } && lengths.contains { $0[0] > $0[1] }, "either operand may be the longer")
        }
        // Long operands: digit arrays, no overflow.
        let long = try AdditionTask(digitOrder: .leastSignificantFirst).example(a: [Int](repeating: 9, count: 60), b: [1])
        XCTAssertEqual(decode(long).c, [Int](repeating: 0, count: 60) + [1])
    }

    func testPaddedOperandsAndTheDocumentedExample() throws {
        let task = try AdditionTask()
        let example = try task.example(a: [3, 5, 6], b: [9, 4])
        XCTAssertEqual(TaskVocabulary.render(example.tokens), "addition: 6 5 3 + 4 9 = 2 0 7")
        XCTAssertEqual(example.positions, [0, 4, 3, 2, 1, 3, 2, 1, 2, 3, 4])
        XCTAssertEqual(example.positionTargets, [4, 3, 2, 1, 3, 2, 1, 2, 3, 4, 5])
        XCTAssertEqual(example.lossMask, [Bool](repeating: false, count: 8) + [true, true, true])
        let padded = try task.example(a: [3, 5, 6], b: [9, 4], offset: 10, width: 4)
        XCTAssertEqual(TaskVocabulary.render(padded.tokens), "addition: 0 6 5 3 + 0 0 4 9 = 2 0 7 0 0")
        XCTAssertEqual(padded.positions, [0, 15, 14, 13, 12, 11, 15, 14, 13, 12, 11, 12, 13, 14, 15, 16])
        // The layout of runs made before 2026-11-29: markers at 1 and 2, digits from 3.
        let fixed = try AdditionTask(markers: .fixed).example(a: [3, 5, 6], b: [9, 4], offset: 10, width: 4)
        XCTAssertEqual(fixed.tokens, padded.tokens)
        XCTAssertEqual(fixed.positions, [0, 16, 15, 14, 13, 1, 16, 15, 14, 13, 2, 13, 14, 15, 16, 17])
        assertInvalid("a", try task.example(a: [], b: [1]))
        assertInvalid("b", try task.example(a: [1], b: [10]))
        assertInvalid("width", try task.example(a: [1, 2, 3], b: [1], width: 2))
        assertInvalid("maximumOffset", try AdditionTask(maximumOffset: -1))
    }

    func testCoupledPositionsShareIDsAcrossEqualSignificance() throws {
        var generator = SplitMix64(seed: 17)
        for (order, markers) in DigitOrder.allCases.flatMap({ o in AdditionMarkers.allCases.map { (o, $0) } }) {
            let task = try AdditionTask(digitOrder: order, maximumOffset: 20, markers: markers)
            var offsets = Set<Int>()
            for size in [1, 3, 8] {
                for _ in 0..<100 {
                    let example = try task.example(size: size, generator: &generator)
                    let d = decode(example), ids = example.positions!
                    // Significance of each written digit; equal significance, equal ID, in a, b and c.
                    let sig = { (count: Int, lsf: Bool) in lsf ? Array(0..<count) : Array((0..<count).reversed()) }
                    let operandsLSF = order == .leastSignificantFirst, sumLSF = order != .mostSignificantFirst
                    let first = markers == .fixed ? 3 : 2
                    let offset = d.cIDs.min()! - first
                    offsets.insert(offset)
                    XCTAssertEqual(ids[0], AdditionTask.prefixPosition)
                    let plus = ids[d.a.count + 1], separator = ids[d.a.count + d.b.count + 2]
                    switch markers {
                    case .fixed: XCTAssertEqual([plus, separator], [1, 2])
                    case .coupled:
                        // One significance before the sum's first written digit, which is thus
                        // predicted, like every other, from the ID one significance below its own.
                        let before = sumLSF ? first + offset - 1 : first + offset + size + 1
                        XCTAssertEqual([plus, separator], [before, before])
                        if sumLSF { XCTAssertEqual(separator + 1, d.cIDs[0]) }
                    }
                    XCTAssertEqual(d.aIDs, sig(d.a.count, operandsLSF).map { $0 + first + offset })
                    XCTAssertEqual(d.bIDs, sig(d.b.count, operandsLSF).map { $0 + first + offset })
                    XCTAssertEqual(d.cIDs, sig(d.c.count, sumLSF).map { $0 + first + offset })
                    XCTAssertLessThanOrEqual(ids.max()!, task.maximumPositionID(size: size))
                    // Predictive Position Coupling: each token's target is the next token's ID.
                    XCTAssertEqual(example.positionTargets, Array(ids.dropFirst()) + [ids.last! + 1])
                    XCTAssertEqual(coupledPositionTargets(example), example.positionTargets)
                }
            }
            XCTAssertEqual(offsets, Set(0...20), "offsets drawn from 0…maximumOffset")
        }
        var g = SplitMix64(seed: 1)
        XCTAssertEqual(Set(try (0..<50).map { _ in try AdditionTask().example(size: 4, generator: &g).positions!.max()! }).max(), 6,
                       "no offset by default: units at 2, the carry digit of 4-digit sums at 6")
    }
}
