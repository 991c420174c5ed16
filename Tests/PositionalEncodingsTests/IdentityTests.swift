import Foundation
import NN
import PositionalEncodings
import TensorCore
import XCTest

/// Each scheme on the identity it promises.
final class IdentityTests: XCTestCase {
    /// ⟨R(m)q, R(n)k⟩ depends on m − n only, for both pairings, partial rotation and scalings.
    func testRoPEScoresDependOnlyOnRelativePosition() throws {
        let configurations: [RotaryConfiguration] = [
            try RotaryConfiguration(),
            try RotaryConfiguration(pairing: .interleaved),
            try RotaryConfiguration(pairing: .halfSplit, partialRotaryFactor: 0.5),
            try RotaryConfiguration(pairing: .interleaved, partialRotaryFactor: 0.25, scaling: .linear(factor: 4)),
            try RotaryConfiguration(base: 500_000, scaling: .yarn(YaRNParameters(factor: 4, originalMaximumLength: 64))),
            try RotaryConfiguration(scaling: .llama3(Llama3Parameters(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaximumLength: 32))),
        ]
        var generator = SplitMix64(seed: 11)
        let d = 16
        let q = try Tensor(normal: [1, 1, 1, d], generator: &generator), k = try Tensor(normal: [1, 1, 1, d], generator: &generator)
        for configuration in configurations {
            let rope = try RotaryEncoding(configuration: configuration, headDimension: d)
            func score(_ m: Int, _ n: Int) throws -> Float {
                let rq = try rope.rotate(q, positions: .sequential(batchSize: 1, length: 1, offset: m), sequenceLength: 1)
                let rk = try rope.rotate(k, positions: .sequential(batchSize: 1, length: 1, offset: n), sequenceLength: 1)
                return try rq.matmul(rk, transposeOther: true).item()
            }
            for (m, n) in [(5, 2), (17, 3), (40, 40), (3, 9)] {
                let reference = try score(m, n)
                for shift in [1, 7, 100, 1000] {
                    XCTAssertEqual(try score(m + shift, n + shift), reference, accuracy: 2e-3 * max(1, abs(reference)),
                                   "\(configuration.pairing) \(configuration.scaling) m=\(m) n=\(n) shift=\(shift)")
                }
            }
        }
    }

    func testRotationPreservesNormsAndPassesUnrotatedDimensions() throws {
        var generator = SplitMix64(seed: 12)
        let d = 12
        let x = try Tensor(normal: [2, 3, 5, d], generator: &generator)
        let rope = try RotaryEncoding(configuration: RotaryConfiguration(pairing: .halfSplit, partialRotaryFactor: 2.0 / 3.0), headDimension: d)
        XCTAssertEqual(rope.rotaryDimension, 8)
        let positions = try PositionIDs(values: [0, 3, 9, 27, 81, 2, 4, 8, 16, 32], batchSize: 2, length: 5)
        let y = try rope.rotate(x, positions: positions, sequenceLength: 5)
        let (xs, ys) = (x.scalars, y.scalars)
        for row in 0..<(2 * 3 * 5) {
            let a = xs[(row * d)..<((row + 1) * d)], b = ys[(row * d)..<((row + 1) * d)]
            XCTAssertEqual(a.map { $0 * $0 }.reduce(0, +), b.map { $0 * $0 }.reduce(0, +), accuracy: 1e-4)
            XCTAssertEqual(Array(a.suffix(4)), Array(b.suffix(4)), "dimensions past R pass through")
        }
        // Position 0 is the identity rotation.
        let first = try rope.rotate(x, positions: .sequential(batchSize: 2, length: 5), sequenceLength: 5).scalars
        XCTAssertEqual(Array(first[0..<d]), Array(xs[0..<d]))
    }

    func testALiBiBiasIsMinusSlopeTimesDistance() throws {
        let alibi = try ALiBi(numberOfHeads: 6)
        let positions = PositionIDs.sequential(batchSize: 1, length: 7, offset: 3)
        let queries = try Tensor(zeros: [1, 6, 7, 4])
        let bias = try alibi.scoreBias(queries: queries, queryPositions: positions, keyPositions: positions)
        XCTAssertEqual(bias.shape, [1, 6, 7, 7])
        let values = bias.scalars
        for h in 0..<6 {
            for i in 0..<7 { for j in 0..<7 {
                XCTAssertEqual(values[(h * 7 + i) * 7 + j], -alibi.slopes[h] * Float(i - j), accuracy: 1e-6)
            } }
        }
        XCTAssertEqual(ALiBi.slopes(numberOfHeads: 8), (1...8).map { pow(2, -Double($0)) })
    }

    func testNoPEIsTheIdentity() throws {
        let nope = NoPositionalEncoding()
        XCTAssertEqual(nope.injectionPoint, .none)
        XCTAssertTrue(nope.namedParameters.isEmpty)
        XCTAssertThrowsError(try nope.inputEmbedding(positions: .sequential(batchSize: 1, length: 2)))
    }

    func testRelativeSchemesDependOnlyOnDistance() throws {
        var generator = SplitMix64(seed: 5)
        let schemes: [any PositionalEncoding] = [
            try RelativeBias(maximumDistance: 4, numberOfHeads: 2, headDimension: 4),
            try T5Bias(numberOfBuckets: 8, maximumDistance: 20, numberOfHeads: 2, generator: &generator),
            try ShawRelative(maximumDistance: 4, headDimension: 4, generator: &generator),
        ]
        let queries = try Tensor(normal: [1, 2, 6, 4], generator: &generator)
        for scheme in schemes {
            for (name, parameter) in scheme.namedParameters {
                try parameter.assign(from: Tensor(normal: parameter.shape, generator: &generator))
                _ = name
            }
            let a = try scheme.scoreBias(queries: queries, queryPositions: .sequential(batchSize: 1, length: 6),
                                         keyPositions: .sequential(batchSize: 1, length: 6)).scalars
            let b = try scheme.scoreBias(queries: queries, queryPositions: .sequential(batchSize: 1, length: 6, offset: 50),
                                         keyPositions: .sequential(batchSize: 1, length: 6, offset: 50)).scalars
            XCTAssertEqual(a, b, "\(type(of: scheme)) must see distances only")
        }
    }

    func testRandomizedPositionsMakePerRowBiases() throws {
        var generator = SplitMix64(seed: 6)
        let positions = try PositionAssignment.randomized(maximumPosition: 100).positions(batchSize: 3, length: 10, generator: &generator)
        for b in 0..<3 {
            let row = Array(positions.row(b))
            XCTAssertEqual(row, row.sorted())
            XCTAssertEqual(Set(row).count, 10)
            XCTAssertTrue(row.allSatisfy { $0 >= 0 && $0 < 100 })
        }
        let alibi = try ALiBi(numberOfHeads: 2)
        let bias = try alibi.scoreBias(queries: Tensor(zeros: [3, 2, 10, 4]), queryPositions: positions, keyPositions: positions)
        XCTAssertEqual(bias.shape, [3, 2, 10, 10])
        let values = bias.scalars
        for b in 0..<3 {
            let row = Array(positions.row(b))
            XCTAssertEqual(values[((b * 2 + 1) * 10 + 9) * 10 + 0], -alibi.slopes[1] * Float(row[9] - row[0]), accuracy: 1e-4)
        }
    }

    func testPositionAssignments() throws {
        var generator = SplitMix64(seed: 8)
        let offset = try PositionAssignment.randomOffset(maximumOffset: 50).positions(batchSize: 4, length: 5, generator: &generator)
        for b in 0..<4 {
            let row = Array(offset.row(b))
            XCTAssertEqual(row, Array(row[0]..<(row[0] + 5)))
            XCTAssertLessThanOrEqual(row[0], 50)
        }
        XCTAssertTrue(offset.relativeStructureIsShared)
        XCTAssertThrowsError(try PositionAssignment.coupled.positions(batchSize: 1, length: 3, generator: &generator))
        let coupled = try PositionAssignment.coupled.positions(batchSize: 1, length: 3, taskPositions: [2, 1, 2], generator: &generator)
        XCTAssertEqual(coupled.values, [2, 1, 2])
        XCTAssertThrowsError(try PositionAssignment.randomized(maximumPosition: 3).positions(batchSize: 1, length: 5, generator: &generator))
        var again = SplitMix64(seed: 8)
        XCTAssertEqual(try PositionAssignment.randomOffset(maximumOffset: 50).positions(batchSize: 4, length: 5, generator: &again), offset)
    }

    func testLearnedAbsoluteRejectsPositionsBeyondItsTable() throws {
        var generator = SplitMix64(seed: 1)
        let learned = try LearnedAbsoluteEncoding(maximumLength: 8, modelDimension: 4, generator: &generator)
        XCTAssertNoThrow(try learned.inputEmbedding(positions: .sequential(batchSize: 1, length: 8)))
        XCTAssertThrowsError(try learned.inputEmbedding(positions: .sequential(batchSize: 1, length: 9))) { error in
            XCTAssertTrue("\(error)".contains("8"), "\(error)")
        }
    }

    func testHoPECutsAndDecay() throws {
        // D = 64, base 10000: wavelengths 2π·10000^(2i/64); those ≤ 512 are kept.
        let kept = try HoPE.keptPairs(cut: .trainingLength(512), rotaryDimension: 64, base: 10_000)
        let expected = (0..<32).filter { 2 * Double.pi * pow(10_000, Double(2 * $0) / 64) <= 512 }
        XCTAssertEqual(kept, expected)
        XCTAssertEqual(kept, Array(0..<kept.count), "the kept pairs are the highest frequencies")
        XCTAssertEqual(try HoPE.keptPairs(cut: .count(5), rotaryDimension: 64, base: 10_000), Array(0..<5))
        XCTAssertEqual(try HoPE.keptPairs(cut: .fraction(0.25), rotaryDimension: 64, base: 10_000), Array(0..<8))
        let hope = try HoPE.encoding(configuration: RotaryConfiguration(), headDimension: 64, cut: .trainingLength(512))
        let theta = try hope.frequencies(sequenceLength: nil).inverseFrequencies
        XCTAssertEqual(theta.filter { $0 == 0 }.count, 32 - kept.count)
        // No long-term decay: the zeroed pairs contribute a constant floor at every distance.
        let rope = try RotaryEncoding(configuration: RotaryConfiguration(), headDimension: 64).frequencies(sequenceLength: nil).inverseFrequencies
        let hopeCurve = DecayCurve.bound(inverseFrequencies: theta, maximumDistance: 4000)
        let ropeCurve = DecayCurve.bound(inverseFrequencies: rope, maximumDistance: 4000)
        XCTAssertEqual(hopeCurve[0], 16.5, accuracy: 1e-9) // Σ_{j=1}^{32} j / 32
        XCTAssertGreaterThan(hopeCurve[4000], ropeCurve[4000])
        let zeroed = Double(32 - kept.count)
        XCTAssertGreaterThan(hopeCurve.suffix(1000).min()!, zeroed * (zeroed + 1) / 2 / 32 * 0.5)
    }
}
