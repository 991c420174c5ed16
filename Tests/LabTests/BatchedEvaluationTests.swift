import Lab
import Models
import PositionalEncodings
import Tasks
import XCTest

/// Evaluation batches examples and text windows into forward passes of about `batchTokens`
/// tokens; the figures are those of one sequence per pass, up to float rounding.
final class BatchedEvaluationTests: XCTestCase {
    func testBatchedEvaluationMatchesOneSequencePerPass() throws {
        let corpus = Array(String(repeating: "in the beginning was the word, and the word was with god. ", count: 40).utf8)
        let text = LabTask.text(try TextTask(bytes: corpus))
        for scheme: PositionalScheme in [.alibi, .rope(try RotaryConfiguration())] {
            let configuration = try TransformerConfiguration(vocabularySize: 256, modelDimension: 32, numberOfLayers: 2,
                                                             numberOfHeads: 4, positionalScheme: scheme)
            let model = try Transformer(configuration: configuration, seed: 3)
            let lengths = [16, 96]
            let batched = try Evaluator.evaluate(model: model, task: text, lengths: lengths, samples: 20)
            let single = try Evaluator.evaluate(model: model, task: text, lengths: lengths, samples: 20, batchTokens: 1)
            for (a, b) in zip(batched, single) {
                XCTAssertEqual(a.count, b.count)
                XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5 * abs(b.loss))
                XCTAssertEqual(a.tokenAccuracy, b.tokenAccuracy, accuracy: 1e-9)
                XCTAssertEqual(a.slidingLoss ?? .nan, b.slidingLoss ?? .nan, accuracy: 1e-5 * abs(b.slidingLoss ?? 1))
            }
        }
    }
}
