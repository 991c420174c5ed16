import Models
import NN
import PositionalEncodings
import TensorCore
import XCTest

/// nGPT (Loshchilov et al. 2024): what stays on the unit sphere, and that it trains and decodes.
final class NormalizedTransformerTests: XCTestCase {
    func configuration(_ scheme: PositionalScheme = .rope(try! RotaryConfiguration())) throws -> TransformerConfiguration {
        try TransformerConfiguration(vocabularySize: 11, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, feedForwardDimension: 24,
                                     feedForward: .swiGLU, normalizationPlacement: .normalized, tiedEmbeddings: false, positionalScheme: scheme)
    }

    func norms(_ matrix: Tensor, rows: Bool) -> [Float] {
        let (r, k) = (matrix.shape[0], matrix.shape[1]), v = matrix.scalars
        return rows ? (0..<r).map { i in (0..<k).map { v[i * k + $0] * v[i * k + $0] }.reduce(0, +).squareRoot() }
                    : (0..<k).map { j in (0..<r).map { v[$0 * k + j] * v[$0 * k + j] }.reduce(0, +).squareRoot() }
    }

    func testHiddenStatesAndWeightsStayOnTheSphereThroughTraining() throws {
        let model = try Transformer(configuration: configuration(), seed: 1)
        let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 40, batchSize: 4, learningRate: 1e-2, seed: 1))
        var generator = SplitMix64(seed: 2)
        let ids = (0..<40).map { _ in generator.nextInt(in: 0..<11) }
        let batch = TokenBatch(inputs: ids, targets: ids.map { ($0 * 7 + 3) % 11 }, lossMask: ids.map { _ in true }, batchSize: 4, length: 10)
        var losses: [Float] = []
        try trainer.train(nextBatch: { _ in batch }) { losses.append($0.loss) }
        XCTAssertLessThan(losses.last!, losses.first! * 0.7, "nGPT learns a fixed mapping (2.44 → 1.34 in 40 steps when written)")
        // Every vector along the model dimension is a unit vector after the updates.
        let block = model.blocks[1]
        for matrix in [model.tokenEmbedding.weight, model.outputHead!.weight, block.attention.queryProjection.weight,
                       block.attention.keyProjection.weight, block.attention.valueProjection.weight, block.feedForward.expansion.weight] {
            for norm in norms(matrix, rows: true) { XCTAssertEqual(norm, 1, accuracy: 1e-4) }
        }
        for matrix in [block.attention.outputProjection.weight, block.feedForward.contraction.weight] {
            for norm in norms(matrix, rows: false) { XCTAssertEqual(norm, 1, accuracy: 1e-4) }
        }
        let hidden = try GradientMode.withoutGradient { try model.finalHiddenStates(Array(ids.prefix(10)), batchSize: 1, length: 10) }
        for norm in norms(try hidden.reshaped([10, 16]), rows: true) { XCTAssertEqual(norm, 1, accuracy: 1e-4) }
        XCTAssertTrue(model.namedParameters.contains { $0.name == "blocks.0.attention_rate" })
        XCTAssertTrue(model.namedParameters.contains { $0.name == "logit_scale" })
        XCTAssertFalse(model.namedParameters.contains { $0.name.contains("norm") }, "nGPT has no norm gains")
    }

    func testIncrementalDecodingAndBlockedAttentionMatch() throws {
        for scheme in [PositionalScheme.rope(try RotaryConfiguration()), .alibi, .none] {
            let model = try Transformer(configuration: configuration(scheme), seed: 3)
            let ids = [1, 4, 2, 8, 5, 7, 3, 9, 6]
            try GradientMode.withoutGradient {
                model.attentionImplementation = .materialized
                let full = try model.logits(ids, batchSize: 1, length: ids.count).scalars
                model.attentionImplementation = .blocked
                let blocked = try model.logits(ids, batchSize: 1, length: ids.count).scalars
                let cache = KeyValueCache(model: model)
                let incremental = try ids.flatMap { try model.logits([$0], batchSize: 1, length: 1, cache: cache).scalars }
                for (a, b) in zip(full, blocked) { XCTAssertEqual(a, b, accuracy: 1e-4) }
                for (a, b) in zip(full, incremental) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            }
        }
    }

    func testInvalidNormalizedConfigurationsAreRejected() {
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                          normalizationPlacement: .normalized)) { XCTAssertTrue("\($0)".contains("feedForward")) }
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                          feedForward: .swiGLU, normalizationPlacement: .normalized,
                                                          attentionScoring: .cosine(temperature: 0.1, learned: false))) {
            XCTAssertTrue("\($0)".contains("attentionScoring"))
        }
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                          attentionScoring: .normalized)) { XCTAssertTrue("\($0)".contains("attentionScoring")) }
    }
}
