import Foundation
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

    func testASteadyStateStepTakesEveryBufferFromThePool() throws {
        let task = try CopyTask(alphabetSize: 8)
        let model = try Transformer(configuration: TransformerConfiguration(vocabularySize: task.vocabularySize, modelDimension: 32,
                                                                            numberOfLayers: 2, numberOfHeads: 4), seed: 3)
        let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 100, batchSize: 8, seed: 3))
        var generator = SplitMix64(seed: 3)
        let batch = try task.batch(count: 8, sizes: 4...4, generator: &generator)
        var tokens = 0
        let step = { _ = try trainer.trainStep(nextBatch: { _ in batch }, tokens: &tokens, start: Date()) }
        for _ in 0..<3 { try step() }
        let before = TensorStorage.poolStatistics
        for _ in 0..<3 { try step() }
        let after = TensorStorage.poolStatistics
        XCTAssertEqual(after.freshAllocations, before.freshAllocations, "a steady-state step allocated afresh")
        XCTAssertGreaterThan(before.heldBytes, 0, "the pool holds what a step freed")
        XCTAssertEqual(after.heldBytes, before.heldBytes, "every buffer a step took went back to the pool")
        // A recycled buffer comes back zeroed when zeroes are asked for.
        let count = 12_347
        let address: UnsafeMutablePointer<Float>
        do {
            let first = TensorStorage(count: count, zeroed: false)
            first.pointer.update(repeating: 7, count: count)
            address = first.pointer
        }
        let second = TensorStorage(count: count)
        XCTAssertEqual(second.pointer, address, "a freed buffer is handed to the next storage of its size")
        XCTAssertTrue(second.buffer.allSatisfy { $0 == 0 })
        withExtendedLifetime(second) {}
        // A finished training loop returns what the pool held, and what is freed after it is not kept.
        try trainer.train(nextBatch: { _ in batch }) { _ in }
        XCTAssertEqual(TensorStorage.poolStatistics.heldBytes, 0)
        _ = TensorStorage(count: count)
        XCTAssertEqual(TensorStorage.poolStatistics.heldBytes, 0)
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

    func testEmbeddingScaleMultipliesTheInputEmbeddingOnly() throws {
        // An untied model with scale s and table W computes what one with scale 1 and table s·W does:
        // the factor multiplies the token embedding on the way in, not the output head.
        func model(_ scale: Float) throws -> Transformer {
            try Transformer(configuration: TransformerConfiguration(vocabularySize: 12, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2,
                                                                    tiedEmbeddings: false, positionalScheme: .sinusoidal(scale: 1),
                                                                    embeddingScale: scale), seed: 3)
        }
        let scaled = try model(4), plain = try model(1)
        for (x, y) in zip(scaled.parameters, plain.parameters) { XCTAssertEqual(x.scalars, y.scalars, "the scale draws no weights") }
        let ids = [1, 5, 7, 2, 11, 0]
        let before = try plain.logits(ids, batchSize: 2, length: 3).scalars
        XCTAssertNotEqual(try scaled.logits(ids, batchSize: 2, length: 3).scalars, before)
        let table = plain.tokenEmbedding.weight
        for i in 0..<table.count { table.storage.pointer[i] *= 4 }
        let expected = try plain.logits(ids, batchSize: 2, length: 3).scalars
        for (a, b) in zip(try scaled.logits(ids, batchSize: 2, length: 3).scalars, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertThrowsError(try model(0)) { XCTAssertTrue("\($0)".contains("embeddingScale"), "\($0)") }
        XCTAssertThrowsError(try model(.nan))
    }

    func testConfigurationWithoutEmbeddingScaleDecodesToTheOldModel() throws {
        let configuration = try TransformerConfiguration(vocabularySize: 10, modelDimension: 32, numberOfLayers: 2, numberOfHeads: 4,
                                                         positionalScheme: .sinusoidal(scale: 1))
        XCTAssertEqual(configuration.embeddingScale, 1)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as? [String: Any])
        XCTAssertEqual(object["embeddingScale"] as? Double, 1)
        object["embeddingScale"] = nil
        let old = try JSONDecoder().decode(TransformerConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(old, configuration)
        var scaled = configuration
        scaled.embeddingScale = Float(32).squareRoot()
        XCTAssertEqual(try JSONDecoder().decode(TransformerConfiguration.self, from: JSONEncoder().encode(scaled)), scaled)
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
