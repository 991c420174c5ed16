import Models
import NN
import PositionalEncodings
import Tasks
import TensorCore
import XCTest

final class TrainingTests: XCTestCase {
    func train(seed: UInt64, steps: Int, scheme: PositionalScheme = .rope(try! RotaryConfiguration())) throws -> (Transformer, [Float]) {
        let task = try CopyTask(alphabetSize: 8)
        let model = try Transformer(configuration: TransformerConfiguration(vocabularySize: task.vocabularySize, modelDimension: 32,
                                                                            numberOfLayers: 2, numberOfHeads: 4, positionalScheme: scheme), seed: seed)
        let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: steps, batchSize: 16, learningRate: 3e-3,
                                                                                     gradientAccumulation: 2, seed: seed))
        var losses: [Float] = []
        try trainer.train(nextBatch: { try task.batch(count: 16, sizes: 1...5, generator: &$0) }) { losses.append($0.loss) }
        return (model, losses)
    }

    func testSameSeedSameBits() throws {
        let (a, lossesA) = try train(seed: 4, steps: 5)
        let (b, lossesB) = try train(seed: 4, steps: 5)
        XCTAssertEqual(lossesA, lossesB)
        for (x, y) in zip(a.parameters, b.parameters) { XCTAssertEqual(x.scalars, y.scalars) }
        let (_, lossesC) = try train(seed: 5, steps: 5)
        XCTAssertNotEqual(lossesA, lossesC)
    }

    func testLossFallsWellBelowUniform() throws {
        let (_, losses) = try train(seed: 1, steps: 150)
        let uniform = log(Float(8))
        XCTAssertLessThan(losses.suffix(10).reduce(0, +) / 10, uniform - 0.5, "\(losses.suffix(10))")
    }

    func testInvalidConfigurationsAreRejected() {
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 10, modelDimension: 30, numberOfLayers: 1, numberOfHeads: 4)) {
            XCTAssertTrue("\($0)".contains("numberOfHeads"))
        }
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 10, modelDimension: 32, numberOfLayers: 1, numberOfHeads: 0))
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 0, modelDimension: 32, numberOfLayers: 1, numberOfHeads: 4))
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 10, modelDimension: 24, numberOfLayers: 1, numberOfHeads: 2,
                                                          positionalScheme: .rope(try! RotaryConfiguration(partialRotaryFactor: 0.25)))) {
            XCTAssertTrue("\($0)".contains("partial_rotary_factor"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingConfiguration(steps: 10, batchSize: 0))
        XCTAssertThrowsError(try TrainingConfiguration(steps: 10, batchSize: 4, learningRate: -1))
    }

    func testConfigurationRoundTripsThroughJSON() throws {
        let configuration = try TransformerConfiguration(vocabularySize: 10, modelDimension: 32, numberOfLayers: 2, numberOfHeads: 4,
                                                         positionalScheme: .t5(numberOfBuckets: 16, maximumDistance: 64, bidirectional: false))
        let decoded = try JSONDecoder().decode(TransformerConfiguration.self, from: JSONEncoder().encode(configuration))
        XCTAssertEqual(decoded, configuration)
        var text = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"numberOfHeads\":4", with: "\"numberOfHeads\":5")
        XCTAssertThrowsError(try JSONDecoder().decode(TransformerConfiguration.self, from: Data(text.utf8)))
    }
}
