import Foundation
import Models
import NN
import PositionalEncodings
import Tasks
import TensorCore
import XCTest

/// Predictive Position Coupling (Golowich et al. 2025): the position head, its loss, its
/// configuration, and generation that feeds the model its own predicted position IDs.
final class PositionPredictionTests: XCTestCase {
    func model(classes: Int = 12, scheme: PositionalScheme = .rope(try! RotaryConfiguration()), seed: UInt64 = 3) throws -> Transformer {
        try Transformer(configuration: TransformerConfiguration(vocabularySize: 13, modelDimension: 16, numberOfLayers: 2,
                                                                numberOfHeads: 2, positionalScheme: scheme, positionPrediction: classes), seed: seed)
    }

    /// A batch whose position targets are each input's coupled ID + 1 and whose last row is padded.
    func batch() throws -> TokenBatch {
        let inputs = [3, 4, 5, 6, 7, 8, 9, 1, 2, 0, 0, 0]
        let positions = [0, 1, 2, 5, 4, 3, 0, 7, 8, 9, 10, 11]
        return TokenBatch(inputs: inputs, targets: inputs.map { ($0 + 1) % 13 }, lossMask: [true, true, true, true, true, true, false, true, true, false, false, false],
                          positions: positions, positionTargets: [1, 2, 5, 4, 3, 2, 7, 8, 6, 10, 11, 12],
                          positionLossMask: [true, true, true, true, true, true, true, true, true, false, false, false], batchSize: 2, length: 6)
    }

    func testHeadIsNamedBuiltOnlyWhenAskedAndLeavesOtherWeightsAlone() throws {
        let with = try model(), without = try Transformer(configuration: TransformerConfiguration(
            vocabularySize: 13, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, positionalScheme: .rope(RotaryConfiguration())), seed: 3)
        XCTAssertNil(without.positionHead)
        let head = try XCTUnwrap(with.namedParameters.first { $0.name == "position_head.weight" })
        XCTAssertEqual(head.tensor.shape, [12, 16])
        let values = head.tensor.scalars, mean = values.reduce(0, +) / Float(values.count)
        let spread = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
        XCTAssertEqual(spread, 0.02, accuracy: 0.006, "N(0, 0.02²)")
        XCTAssertEqual(with.namedParameters.count, without.namedParameters.count + 1)
        for ((name, a), (_, b)) in zip(with.namedParameters, without.namedParameters) { XCTAssertEqual(a.scalars, b.scalars, name) }
        let ids = [1, 2, 3, 4]
        let output = try with.outputs(ids, batchSize: 1, length: 4)
        XCTAssertEqual(output.positionLogits?.shape, [1, 4, 12])
        XCTAssertEqual(output.logits.scalars, try with.logits(ids, batchSize: 1, length: 4).scalars)
        XCTAssertEqual(output.logits.scalars, try without.logits(ids, batchSize: 1, length: 4).scalars, "the head changes no token logit")
        XCTAssertNil(try without.outputs(ids, batchSize: 1, length: 4).positionLogits)
    }

    /// d(loss)/d(position head weight) by backpropagation equals central finite differences, and
    /// the loss is token loss + weight × position loss.
    func testPositionLossGradientMatchesFiniteDifferences() throws {
        let model = try model(), batch = try batch()
        let parts = try model.lossComponents(batch)
        let position = try XCTUnwrap(parts.position)
        XCTAssertEqual(try model.loss(batch).item(), try parts.token.item() + position.item(), accuracy: 1e-5)
        XCTAssertEqual(try model.loss(batch, positionLossWeight: 0.5).item(), try parts.token.item() + 0.5 * position.item(), accuracy: 1e-5)
        XCTAssertEqual(try position.item(), log(12), accuracy: 0.2, "near uniform at initialisation")
        model.zeroGradients()
        try model.loss(batch).backward()
        let weight = try XCTUnwrap(model.positionHead?.weight)
        let analytic = try XCTUnwrap(weight.gradient).scalars
        let epsilon: Float = 1e-2
        for index in [0, 17, 40, 191] {
            let original = weight.storage.pointer[index]
            weight.storage.pointer[index] = original + epsilon
            let up = try GradientMode.withoutGradient { try model.loss(batch).item() }
            weight.storage.pointer[index] = original - epsilon
            let down = try GradientMode.withoutGradient { try model.loss(batch).item() }
            weight.storage.pointer[index] = original
            XCTAssertEqual(analytic[index], (up - down) / (2 * epsilon), accuracy: 2e-3, "weight \(index)")
        }
        XCTAssertGreaterThan(analytic.map(abs).max() ?? 0, 1e-4, "the head receives gradient")
    }

    /// The loss computes both heads on the rows their masks score only (half of the token rows
    /// here); its value and every parameter's gradient are those of the heads on every row with
    /// the masks, as `outputs` gives them.
    func testHeadsOnScoredRowsGiveTheLossAndGradientsOfEveryRow() throws {
        let model = try model(), batch = try batch()
        func gradients(_ loss: () throws -> Tensor) throws -> (Float, [[Float]]) {
            model.zeroGradients()
            let value = try loss()
            try value.backward()
            return (try value.item(), try model.namedParameters.map { try XCTUnwrap($0.tensor.gradient, $0.name).scalars })
        }
        let (scored, scoredGradients) = try gradients { try model.loss(batch) }
        let (every, everyGradients) = try gradients {
            let output = try model.outputs(batch.inputs, batchSize: 2, length: 6, positions: try batch.positionIDs())
            let token = try output.logits.crossEntropy(targets: batch.targets, mask: batch.lossMask)
            let position = try XCTUnwrap(output.positionLogits).crossEntropy(targets: try XCTUnwrap(batch.positionTargets),
                                                                             mask: batch.positionLossMask)
            return try token + position
        }
        XCTAssertEqual(scored, every, accuracy: 1e-6)
        // A bad target is named by its row in the batch (row 7 is the seventh selected row).
        var bad = batch
        bad.targets[7] = 99
        XCTAssertThrowsError(try model.loss(bad)) { XCTAssertTrue("\($0)".contains("row 7"), "\($0)") }
        for ((name, _), (a, b)) in zip(model.namedParameters, zip(scoredGradients, everyGradients)) {
            let scale = max(b.map(abs).max() ?? 0, 1e-3)
            XCTAssertGreaterThan(b.map(abs).max() ?? 0, 0, "\(name) receives gradient")
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * scale, name) }
        }
    }

    func testPositionLossFallsOverTrainingSteps() throws {
        let model = try model(), batch = try batch()
        let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 40, batchSize: 2, learningRate: 1e-2))
        var progress: [TrainingProgress] = []
        try trainer.train(nextBatch: { _ in batch }) { progress.append($0) }
        let first = try XCTUnwrap(progress.first?.positionLoss), last = try XCTUnwrap(progress.last?.positionLoss)
        XCTAssertLessThan(last, first / 4, "\(first) → \(last)")
        for p in progress { XCTAssertEqual(p.loss, p.tokenLoss + p.positionLoss!, accuracy: 1e-4) }
    }

    func testPaddingAndMissingTargetsFollowTheDocumentedRules() throws {
        let model = try model()
        var batch = try batch()
        // Padding entries (outside positionLossMask) may hold any value, even beyond P.
        batch.positionTargets![11] = 999
        let padded = try XCTUnwrap(model.lossComponents(batch).position).item()
        batch.positionTargets![11] = 12
        XCTAssertEqual(padded, try model.lossComponents(batch).position!.item())
        // Coupled positions without targets: refused, naming positionTargets.
        batch.positionTargets = nil
        XCTAssertThrowsError(try model.loss(batch)) { XCTAssertTrue("\($0)".contains("positionTargets"), "\($0)") }
        // Sequential positions without targets: the next ID is t + 1.
        batch.positions = nil
        batch.positionLossMask = nil
        let derived = try XCTUnwrap(model.lossComponents(batch).position).item()
        batch.positionTargets = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]
        XCTAssertEqual(derived, try model.lossComponents(batch).position!.item())
    }

    func testInvalidSettingsThrowNamingTheParameter() throws {
        for classes in [1, 0, -3] {
            XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                              positionPrediction: classes)) {
                XCTAssertTrue("\($0)".contains("positionPrediction"), "\($0)")
            }
        }
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                          positionalScheme: .learnedAbsolute(maximumLength: 8), positionPrediction: 9)) {
            XCTAssertTrue("\($0)".contains("positionPrediction") && "\($0)".contains("learned"), "\($0)")
        }
        XCTAssertNoThrow(try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2,
                                                      positionalScheme: .learnedAbsolute(maximumLength: 8), positionPrediction: 8))
        var batch = try batch()
        batch.positionTargets![3] = 12
        XCTAssertThrowsError(try model().loss(batch)) {
            XCTAssertTrue("\($0)".contains("positionPrediction") && "\($0)".contains("12"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingConfiguration(steps: 1, batchSize: 1, positionLossWeight: -1)) {
            XCTAssertTrue("\($0)".contains("positionLossWeight"), "\($0)")
        }
        let plain = try Transformer(configuration: TransformerConfiguration(vocabularySize: 13, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2), seed: 0)
        XCTAssertThrowsError(try plain.greedyContinuation(prompt: [1, 2], promptPositions: nil, count: 2)) {
            XCTAssertTrue("\($0)".contains("positionPrediction"), "\($0)")
        }
        XCTAssertThrowsError(try model().greedyContinuation(prompt: [1, 2], promptPositions: [0], count: 2)) {
            XCTAssertTrue("\($0)".contains("promptPositions"), "\($0)")
        }
        XCTAssertThrowsError(try model().greedyContinuation(prompt: [1, 2], promptPositions: nil, count: 3, generatedPositions: .given([4]))) {
            XCTAssertTrue("\($0)".contains("generatedPositions"), "\($0)")
        }
    }

    func testConfigurationRoundTripsAndOldFilesStillLoad() throws {
        let configuration = try model().configuration
        let data = try JSONEncoder().encode(configuration)
        XCTAssertEqual(try JSONDecoder().decode(TransformerConfiguration.self, from: data), configuration)
        XCTAssertEqual(configuration.positionPrediction, 12)
        let old = Data(#"{"vocabularySize": 7, "modelDimension": 8, "numberOfLayers": 1, "numberOfHeads": 2}"#.utf8)
        XCTAssertNil(try JSONDecoder().decode(TransformerConfiguration.self, from: old).positionPrediction)
        let edited = String(decoding: data, as: UTF8.self).replacingOccurrences(of: #""positionPrediction":12"#, with: #""positionPrediction":1"#)
        XCTAssertThrowsError(try JSONDecoder().decode(TransformerConfiguration.self, from: Data(edited.utf8))) {
            XCTAssertTrue("\($0)".contains("positionPrediction"), "\($0)")
        }
        let training = try TrainingConfiguration(steps: 3, batchSize: 2, positionLossWeight: 0.25)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(training)), training)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(training)) as? [String: Any])
        object["positionLossWeight"] = nil
        let legacy = try JSONDecoder().decode(TrainingConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(legacy.positionLossWeight, 1)
    }

    /// Decoding through the KV cache with predicted positions gives, at every step, the arg max
    /// token and position of a full forward over everything so far at the positions used.
    func testCachedPredictedPositionDecodingEqualsFullRecomputation() throws {
        for (name, scheme) in [("rope", PositionalScheme.rope(try RotaryConfiguration())), ("learned", .learnedAbsolute(maximumLength: 12)),
                               ("t5", .t5(numberOfBuckets: 8, maximumDistance: 10, bidirectional: false)), ("nope", .none)] {
            let model = try model(scheme: scheme, seed: 11)
            let prompt = [3, 1, 4, 1, 5], promptPositions = [0, 4, 3, 1, 2]
            let continuation = try model.generateWithPredictedPositions(prompt: prompt, promptPositions: promptPositions, count: 8,
                                                                        sampling: SamplingConfiguration())
            XCTAssertEqual(continuation.positions, continuation.predictedPositions, name)
            XCTAssertEqual(continuation, try model.greedyContinuation(prompt: prompt, promptPositions: promptPositions, count: 8), name)
            var tokens = prompt, positions = promptPositions
            for (token, position) in zip(continuation.tokens, continuation.positions) {
                let output = try GradientMode.withoutGradient {
                    try model.outputs(tokens, batchSize: 1, length: tokens.count,
                                      positions: PositionIDs(values: positions, batchSize: 1, length: tokens.count))
                }
                XCTAssertEqual(token, argMax(Array(output.logits.scalars.suffix(13))), "\(name) token at \(tokens.count)")
                XCTAssertEqual(position, argMax(Array(try XCTUnwrap(output.positionLogits).scalars.suffix(12))), "\(name) position at \(tokens.count)")
                tokens.append(token)
                positions.append(position)
            }
        }
    }

    func testBatchedContinuationsMatchOneAtATime() throws {
        let model = try model(seed: 5)
        let requests = [ContinuationRequest(prompt: [1, 2, 3], promptPositions: [0, 2, 1]),
                        ContinuationRequest(prompt: [4, 5], promptPositions: [3, 3], generatedPositions: .given([6, 7, 8, 9])),
                        ContinuationRequest(prompt: [6, 7, 8], generatedPositions: .sequential),
                        ContinuationRequest(prompt: [9, 9, 2], promptPositions: [5, 1, 1])]
        let batched = try model.greedyContinuations(requests, count: 4, maximumBatchSize: 2)
        for (request, result) in zip(requests, batched) {
            let single = try model.greedyContinuation(prompt: request.prompt, promptPositions: request.promptPositions, count: 4,
                                                      generatedPositions: request.generatedPositions)
            XCTAssertEqual(result, single)
        }
        XCTAssertEqual(batched[1].positions, [6, 7, 8, 9])
        XCTAssertEqual(batched[2].positions, [3, 4, 5, 6])
        let stop = batched[0].tokens[1], end = batched[0].tokens.firstIndex(of: stop)! + 1
        let stopped = try model.greedyContinuation(prompt: [1, 2, 3], promptPositions: [0, 2, 1], count: 4, stop: stop)
        XCTAssertEqual(stopped.tokens, Array(batched[0].tokens.prefix(end)))
        XCTAssertEqual(stopped.positions, Array(batched[0].positions.prefix(end)))
    }

    func testBatchesCarryTargetsAndCheckpointsCarryTheHead() throws {
        let task = try AdditionTask(maximumOffset: 2)
        var generator = SplitMix64(seed: 4)
        let examples = try task.examples(count: 3, sizes: 1...3, generator: &generator)
        let batch = makeBatch(examples, padding: TaskVocabulary.padding)
        XCTAssertEqual(batch.positionTargets, makePositionTargets(examples))
        let counted = try XCTUnwrap(batch.positionLossMask)
        for (row, example) in examples.enumerated() {
            for t in 0..<batch.length { XCTAssertEqual(counted[row * batch.length + t], t < example.tokens.count - 1) }
        }
        let model = try model(classes: 10, scheme: .learnedAbsolute(maximumLength: 16))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ppc-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Trainer(model: model, configuration: TrainingConfiguration(steps: 1, batchSize: 1)).saveCheckpoint(to: url)
        XCTAssertNotNil(try SafeTensors.read(url).tensors["position_head.weight"])
        let loaded = try Transformer.load(from: url)
        XCTAssertEqual(loaded.configuration.positionPrediction, 10)
        XCTAssertEqual(loaded.positionHead?.weight.scalars, model.positionHead?.weight.scalars)
    }

    /// 3-digit addition with Position Coupling and random offsets: after a short run, the position
    /// head predicts the coupled IDs of held-out examples far above chance, and greedy decoding can
    /// run on its own predicted IDs.
    func testPositionHeadLearnsAdditionPositions() throws {
        let training = try AdditionTask(maximumOffset: 3), classes = 12
        let model = try Transformer(configuration: TransformerConfiguration(
            vocabularySize: training.vocabularySize, modelDimension: 32, numberOfLayers: 2, numberOfHeads: 4,
            positionalScheme: .learnedAbsolute(maximumLength: 32), positionPrediction: classes), seed: 1)
        let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 300, batchSize: 32, learningRate: 1e-2, seed: 1))
        try trainer.train(nextBatch: { try training.batch(count: 32, sizes: 1...3, generator: &$0) }) { _ in }

        var generator = SplitMix64(seed: 12345)
        let heldOut = try training.examples(count: 200, sizes: 1...3, generator: &generator)
        let batch = makeBatch(heldOut, padding: TaskVocabulary.padding)
        let logits = try GradientMode.withoutGradient {
            try XCTUnwrap(model.outputs(batch.inputs, batchSize: batch.batchSize, length: batch.length, positions: batch.positionIDs()).positionLogits).scalars
        }
        let targets = try XCTUnwrap(batch.positionTargets), counted = try XCTUnwrap(batch.positionLossMask)
        var (right, total, answerRight, answerTotal) = (0, 0, 0, 0)
        var frequency = [Int](repeating: 0, count: classes)
        for i in targets.indices where counted[i] {
            let correct = argMax(Array(logits[(i * classes)..<((i + 1) * classes)])) == targets[i]
            right += correct ? 1 : 0; total += 1; frequency[targets[i]] += 1
            if batch.lossMask[i] { answerRight += correct ? 1 : 0; answerTotal += 1 }
        }
        let accuracy = Double(right) / Double(total), answerAccuracy = Double(answerRight) / Double(answerTotal)
        let majority = Double(frequency.max()!) / Double(total)
        XCTAssertGreaterThan(accuracy, max(2 * majority, 0.6), "all inputs (majority class \(majority))")
        XCTAssertGreaterThan(answerAccuracy, 0.9, "the sum's digits, the IDs generation needs")
        // Generation on predicted IDs: the prompt ends at the separator.
        let requests = heldOut.prefix(50).map { example in
            let cut = example.lossMask.firstIndex(of: true)!
            return ContinuationRequest(prompt: Array(example.tokens[..<cut]), promptPositions: Array(example.positions![..<cut]))
        }
        let continuations = try model.greedyContinuations(requests, count: 4)
        var positionsRight = 0
        for (example, continuation) in zip(heldOut, continuations) {
            let cut = example.lossMask.firstIndex(of: true)!, truth = Array(example.positions![cut...])
            positionsRight += Array(continuation.positions.prefix(truth.count)) == truth ? 1 : 0
        }
        XCTAssertGreaterThan(positionsRight, 35, "examples whose answer got exactly the true IDs, of 50")
    }
}

private func argMax(_ values: [Float]) -> Int {
    values.indices.max { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) }!
}
