import PositionalEncodings
import TensorCore
import XCTest

/// Bad settings are errors that name the parameter and what is allowed.
final class ErrorTests: XCTestCase {
    func expectError(_ parameter: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(parameter), "\(error) should name \(parameter)", file: file, line: line)
        }
    }

    func testRotaryErrors() {
        expectError("partial_rotary_factor") { _ = try RotaryEncoding(configuration: RotaryConfiguration(), headDimension: 15) }
        expectError("partial_rotary_factor") { _ = try RotaryEncoding(configuration: RotaryConfiguration(partialRotaryFactor: 0.3), headDimension: 10) }
        expectError("partial_rotary_factor") { _ = try RotaryConfiguration(partialRotaryFactor: 0) }
        expectError("base") { _ = try RotaryConfiguration(base: -1) }
        expectError("rope_type") { _ = try RoPEScaling(parameters: ["rope_type": .string("magic")]) }
        expectError("linear.factor") { _ = try RoPEScaling(parameters: ["rope_type": .string("linear")]) }
        expectError("linear.factor") { _ = try RoPEScaling(parameters: ["rope_type": .string("linear"), "factor": .number(-2)]) }
        expectError("yarn.factor") { _ = try RoPEScaling(parameters: ["rope_type": .string("yarn"), "factor": .number(0)]) }
        expectError("llama3.low_freq_factor") { _ = try RoPEScaling(parameters: ["rope_type": .string("llama3"), "factor": .number(8)]) }
        expectError("longrope.short_factor") { _ = try RoPEScaling(parameters: ["rope_type": .string("longrope")]) }
        expectError("original_max_position_embeddings") {
            _ = try RotaryEncoding(configuration: RotaryConfiguration(scaling: .dynamic(factor: 2, originalMaximumLength: nil)), headDimension: 8)
        }
        expectError("longrope.short_factor/long_factor") {
            _ = try RotaryEncoding(configuration: RotaryConfiguration(scaling: .longRoPE(LongRoPEParameters(
                shortFactor: [1], longFactor: [1], originalMaximumLength: 4, factor: nil, attentionFactor: nil))), headDimension: 8)
        }
        expectError("rope parameters") { _ = try JSONValue.object(parsing: "[1, 2]") }
        expectError("proportional.partial_rotary_factor") {
            _ = try RoPEScaling(parameters: ["rope_type": .string("proportional"), "partial_rotary_factor": .number(1.5)])
        }
        expectError("llama3.original_max_position_embeddings") { // neither in the dictionary nor the model's
            _ = try RotaryEncoding(configuration: RotaryConfiguration(scaling: .llama3(Llama3Parameters(
                factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4))), headDimension: 8)
        }
        // Queries in either layout: the time axis must hold the positions' length.
        let rope = try! RotaryEncoding(configuration: RotaryConfiguration(), headDimension: 8)
        let positions = PositionIDs.sequential(batchSize: 1, length: 5)
        let x = try! Tensor(zeros: [1, 2, 5, 8])
        XCTAssertNoThrow(try rope.rotate(x, positions: positions, sequenceLength: 5, layout: .headsThenTime))
        expectError("[B, T, H, D]") { _ = try rope.rotate(x, positions: positions, sequenceLength: 5, layout: .timeThenHeads) }
        XCTAssertNoThrow(try rope.rotate(try! Tensor(zeros: [1, 5, 2, 8]), positions: positions, sequenceLength: 5,
                                         layout: .timeThenHeads))
    }

    func testOtherSchemeErrors() {
        var generator = SplitMix64(seed: 0)
        expectError("numberOfHeads") { _ = try ALiBi(numberOfHeads: 0) }
        expectError("numberOfBuckets") { _ = try T5Bias(numberOfBuckets: 1, numberOfHeads: 2, generator: &generator) }
        expectError("maximumDistance") { _ = try T5Bias(numberOfBuckets: 32, maximumDistance: 8, numberOfHeads: 2, generator: &generator) }
        expectError("maximumLength") { _ = try LearnedAbsoluteEncoding(maximumLength: 0, modelDimension: 4, generator: &generator) }
        expectError("modelDimension") { _ = try SinusoidalEncoding(modelDimension: 7) }
        expectError("positional scheme") { _ = try PositionalScheme.named("rotary-magic", trainingLength: 8) }
        expectError("hope kept pairs") { _ = try HoPE.keptPairs(cut: .count(40), rotaryDimension: 64, base: 10_000) }
    }

    func testRoPEScalingRoundTripsThroughTransformersDictionaries() throws {
        let dictionaries: [[String: JSONValue]] = [
            ["rope_type": .string("default")],
            ["rope_type": .string("linear"), "factor": .number(2)],
            ["type": .string("dynamic"), "factor": .number(2), "original_max_position_embeddings": .number(4096)],
            ["rope_type": .string("yarn"), "factor": .number(4), "original_max_position_embeddings": .number(2048), "beta_fast": .number(16),
             "mscale": .number(0.707), "mscale_all_dim": .number(1), "truncate": .bool(false)],
            ["rope_type": .string("llama3"), "factor": .number(8), "low_freq_factor": .number(1), "high_freq_factor": .number(4),
             "original_max_position_embeddings": .number(8192)],
            ["rope_type": .string("longrope"), "short_factor": .array([.number(1), .number(1.5)]), "long_factor": .array([.number(2), .number(3)]),
             "original_max_position_embeddings": .number(4096)],
            ["rope_type": .string("llama3"), "factor": .number(8), "low_freq_factor": .number(1), "high_freq_factor": .number(4)],
            ["rope_type": .string("proportional"), "partial_rotary_factor": .number(0.25), "factor": .number(2)],
        ]
        for dictionary in dictionaries {
            let scaling = try RoPEScaling(parameters: dictionary)
            XCTAssertEqual(try RoPEScaling(parameters: scaling.parameters), scaling)
            let data = try JSONEncoder().encode(scaling)
            XCTAssertEqual(try JSONDecoder().decode(RoPEScaling.self, from: data), scaling)
        }
        let scheme = PositionalScheme.hope(try RotaryConfiguration(scaling: .linear(factor: 2)), cut: .trainingLength(64))
        XCTAssertEqual(try JSONDecoder().decode(PositionalScheme.self, from: JSONEncoder().encode(scheme)), scheme)
    }
}
