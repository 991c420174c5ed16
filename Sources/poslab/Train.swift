import ArgumentParser
import Foundation
import Models
import PositionalEncodings
import TensorCore
import Tasks

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a small decoder-only Transformer on the copy task and print its loss.")

    @Option(help: "Training steps.") var steps = 200
    @Option(help: "Sequences per batch.") var batchSize = 16
    @Option(help: "Longest input to copy (the sequence is twice this plus two).") var trainLength = 16
    @Option(help: "Model dimension C.") var modelDimension = 64
    @Option(help: "Positional scheme: \(PositionalScheme.names.joined(separator: ", ")).") var pe = "rope"
    @Option(help: "Transformer blocks.") var layers = 2
    @Option(help: "Attention heads H.") var heads = 4
    @Option(help: "Peak learning rate.") var learningRate: Float = 3e-3
    @Option(help: "Seed for initialisation and data.") var seed: UInt64 = 0
    @Option(help: "Print every N steps.") var logEvery = 20

    func run() throws {
        let task = try CopyTask(alphabetSize: 16)
            let model = try Transformer(configuration: TransformerConfiguration(
                vocabularySize: task.vocabularySize, modelDimension: modelDimension, numberOfLayers: layers, numberOfHeads: heads,
                positionalScheme: PositionalScheme.named(pe, trainingLength: CopyTask.sequenceLength(inputLength: trainLength))), seed: seed)
            let trainer = try Trainer(model: model, configuration: TrainingConfiguration(
                steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed))
            print("copy task, inputs of 1...\(trainLength) symbols; \(model.parameterCount) parameters; \(steps) steps")
            let lengths = 1...trainLength
            try trainer.train(nextBatch: { task.batch(size: batchSize, inputLengths: lengths, generator: &$0) }) { p in
                if p.step % logEvery == 0 || p.step == 1 || p.step == p.totalSteps {
                    print(String(format: "step %5d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %.0fs",
                                 p.step, p.totalSteps, p.loss, p.learningRate, p.gradientNorm, p.tokensPerSecond, p.remainingSeconds))
                }
            }
    }
}
