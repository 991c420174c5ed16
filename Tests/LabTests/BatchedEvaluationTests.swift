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

/// `token_accuracy_by_index`: the accuracy of each answer token across examples, consistent with
/// the token accuracy it breaks down, and drawn in the sweep report.
final class AccuracyAlongTheAnswerTests: XCTestCase {
    func testByIndexBreaksDownTheTokenAccuracy() throws {
        let copy = LabTask.sequence(try CopyTask())
        let configuration = try TransformerConfiguration(vocabularySize: copy.vocabularySize, modelDimension: 16, numberOfLayers: 1,
                                                         numberOfHeads: 2, positionalScheme: .rope(try RotaryConfiguration()))
        let model = try Transformer(configuration: configuration, seed: 5)
        for result in try Evaluator.evaluate(model: model, task: copy, lengths: [12, 30], samples: 40) {
            let byIndex = try XCTUnwrap(result.tokenAccuracyByIndex)
            // Copy answers at one length all have one length: the mean over indices is the token accuracy.
            XCTAssertEqual(byIndex.count, (result.length - 2) / 2)
            XCTAssertEqual(byIndex.reduce(0, +) / Double(byIndex.count), result.tokenAccuracy, accuracy: 1e-12)
            XCTAssertTrue(byIndex.allSatisfy { (0...1).contains($0) })
            XCTAssertGreaterThan(Set(byIndex).count, 1, "an untrained model is not uniformly right or wrong along the answer")
        }
        let text = LabTask.text(try TextTask(bytes: Array(String(repeating: "abc ", count: 200).utf8)))
        XCTAssertNil(try Evaluator.evaluate(model: try Transformer(configuration: TransformerConfiguration(
            vocabularySize: 256, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2, positionalScheme: .alibi), seed: 1),
            task: text, lengths: [16], samples: 4)[0].tokenAccuracyByIndex)
    }
}
