import NN
import PositionalEncodings
import TensorCore
import XCTest

/// Finite-difference checks of every trainable scheme and of the ops the schemes add.
/// Each checked map is linear in the perturbed tensor, so central differences with a large step
/// have no truncation error, and the Float32 forward is an exact enough reference; the losses are
/// accumulated in Double.
final class GradientTests: XCTestCase {
    /// L = Σ w ⊙ f() for fixed random w; compares dL/dx from backward with central differences.
    func check(_ name: String, _ x: Tensor, step: Float = 0.25, tolerance: Double = 2e-3, file: StaticString = #filePath,
               line: UInt = #line, _ f: () throws -> Tensor) throws {
        var generator = SplitMix64(seed: 99)
        x.requiresGradient = true
        x.zeroGradient()
        let output = try f()
        let weights = try Tensor(normal: output.shape, generator: &generator)
        try (output * weights).sum().backward()
        let analytic = try XCTUnwrap(x.gradient, name).scalars
        func loss() throws -> Double {
            let y = try GradientMode.withoutGradient { try f() }.scalars
            return zip(y, weights.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0
        for i in 0..<x.count {
            let saved = x.storage.pointer[i]
            x.storage.pointer[i] = saved + step; let plus = try loss()
            x.storage.pointer[i] = saved - step; let minus = try loss()
            x.storage.pointer[i] = saved
            let numeric = (plus - minus) / (2 * Double(step))
            worst = max(worst, abs(numeric - Double(analytic[i])) / max(1, abs(numeric)))
        }
        XCTAssertLessThan(worst, tolerance, "\(name): worst relative gradient error", file: file, line: line)
        XCTAssertTrue(analytic.contains { $0 != 0 }, "\(name): the gradient must not vanish", file: file, line: line)
    }

    func testLearnedTablesOfEveryTrainableScheme() throws {
        var generator = SplitMix64(seed: 1)
        let positions = try PositionIDs(values: [0, 1, 2, 3, 4, 2, 5, 9, 14, 20], batchSize: 2, length: 5)
        let queries = try Tensor(normal: [2, 2, 5, 4], generator: &generator)
        let learned = try LearnedAbsoluteEncoding(maximumLength: 24, modelDimension: 4, generator: &generator)
        try check("learned absolute", learned.table.weight) { try learned.inputEmbedding(positions: positions) }
        let relative = try RelativeBias(maximumDistance: 6, numberOfHeads: 2, headDimension: 4)
        try check("relative bias", relative.table) { try relative.scoreBias(queries: queries, queryPositions: positions, keyPositions: positions) }
        let t5 = try T5Bias(numberOfBuckets: 8, maximumDistance: 16, bidirectional: true, numberOfHeads: 2, generator: &generator)
        try check("t5", t5.table) { try t5.scoreBias(queries: queries, queryPositions: positions, keyPositions: positions) }
        let shaw = try ShawRelative(maximumDistance: 3, headDimension: 4, generator: &generator)
        try check("shaw table", shaw.table) { try shaw.scoreBias(queries: queries, queryPositions: positions, keyPositions: positions) }
        try check("shaw queries", queries) { try shaw.scoreBias(queries: queries, queryPositions: positions, keyPositions: positions) }
    }

    func testRotationBackwardForBothPairingsAndScalings() throws {
        var generator = SplitMix64(seed: 2)
        let positions = try PositionIDs(values: [0, 3, 5, 7, 2, 3, 4, 5], batchSize: 2, length: 4)
        for configuration in [try RotaryConfiguration(pairing: .interleaved),
                              try RotaryConfiguration(pairing: .halfSplit, partialRotaryFactor: 0.5),
                              try RotaryConfiguration(scaling: .yarn(YaRNParameters(factor: 4, originalMaximumLength: 8)))] {
            let rope = try RotaryEncoding(configuration: configuration, headDimension: 8)
            let x = try Tensor(normal: [2, 3, 4, 8], generator: &generator)
            try check("rotation \(configuration.pairing)", x) { try rope.rotate(x, positions: positions, sequenceLength: 4) }
        }
    }

    func testGatheringLastAxisBackward() throws {
        var generator = SplitMix64(seed: 3)
        let x = try Tensor(normal: [2, 3, 4, 5], generator: &generator)
        let shared = (0..<(4 * 6)).map { ($0 * 7) % 5 }
        try check("gather shared", x) { try x.gatheringLastAxis(shared, columns: 6) }
        let perBatch = (0..<(2 * 4 * 6)).map { ($0 * 3 + 1) % 5 }
        try check("gather per batch", x) { try x.gatheringLastAxis(perBatch, columns: 6, indexBatches: 2) }
        XCTAssertThrowsError(try x.gatheringLastAxis([9] + shared.dropFirst(), columns: 6))
        XCTAssertThrowsError(try x.gatheringLastAxis(perBatch, columns: 6, indexBatches: 4))
    }

    func testGatheringLastAxisMatchesANaiveLoop() throws {
        var generator = SplitMix64(seed: 4)
        let (lead, rows, width, columns) = (6, 50, 33, 70) // > 2 chunks: the parallel path
        let x = try Tensor(normal: [lead, rows, width], generator: &generator)
        let indices = (0..<(3 * rows * columns)).map { _ in generator.nextInt(in: 0..<width) }
        let y = try x.gatheringLastAxis(indices, columns: columns, indexBatches: 3).scalars
        let xs = x.scalars
        for l in 0..<lead { for i in 0..<rows { for j in 0..<columns {
            let index = indices[((l / 2) * rows + i) * columns + j]
            XCTAssertEqual(y[(l * rows + i) * columns + j], xs[(l * rows + i) * width + index])
        } } }
    }
}
