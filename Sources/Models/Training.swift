import Foundation
import NN
import TensorCore

/// How to train: optimiser, schedule, clipping, accumulation. Validated on creation.
public struct TrainingConfiguration: Codable, Equatable, Sendable {
    public var steps: Int
    public var batchSize: Int
    public var schedule: LearningRateSchedule
    public var optimizer: AdamWConfiguration
    public var maximumGradientNorm: Float
    /// Micro-batches whose gradients add up before each update.
    public var gradientAccumulation: Int
    public var seed: UInt64
    /// The weight λ of the position loss in token loss + λ · position loss, for models with a
    /// Predictive Position Coupling head (Golowich et al. 2025, who add the two losses: λ = 1, the
    /// default); 0 leaves the head untrained. Ignored by models without the head.
    public var positionLossWeight: Float

    public init(steps: Int, batchSize: Int, learningRate: Float = 3e-3, warmupSteps: Int? = nil,
                optimizer: AdamWConfiguration? = nil, maximumGradientNorm: Float = 1,
                gradientAccumulation: Int = 1, seed: UInt64 = 0, positionLossWeight: Float = 1) throws {
        try require(batchSize > 0, "batchSize", batchSize, "a positive count")
        try require(maximumGradientNorm > 0, "maximumGradientNorm", maximumGradientNorm, "a positive value")
        try require(gradientAccumulation > 0, "gradientAccumulation", gradientAccumulation, "a positive count")
        try Self.checkPositionLossWeight(positionLossWeight)
        self.steps = steps
        self.batchSize = batchSize
        schedule = try LearningRateSchedule(peak: learningRate, warmupSteps: warmupSteps ?? min(steps, max(1, steps / 20)), totalSteps: steps)
        self.optimizer = try optimizer ?? AdamWConfiguration()
        self.maximumGradientNorm = maximumGradientNorm
        self.gradientAccumulation = gradientAccumulation
        self.seed = seed
        self.positionLossWeight = positionLossWeight
    }

    /// Decoding re-validates; files written before `positionLossWeight` existed load with weight 1.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        schedule = try c.decode(LearningRateSchedule.self, forKey: .schedule)
        optimizer = try c.decode(AdamWConfiguration.self, forKey: .optimizer)
        maximumGradientNorm = try c.decode(Float.self, forKey: .maximumGradientNorm)
        gradientAccumulation = try c.decode(Int.self, forKey: .gradientAccumulation)
        seed = try c.decode(UInt64.self, forKey: .seed)
        positionLossWeight = try c.decodeIfPresent(Float.self, forKey: .positionLossWeight) ?? 1
        try require(batchSize > 0, "batchSize", batchSize, "a positive count")
        try require(maximumGradientNorm > 0, "maximumGradientNorm", maximumGradientNorm, "a positive value")
        try require(gradientAccumulation > 0, "gradientAccumulation", gradientAccumulation, "a positive count")
        try Self.checkPositionLossWeight(positionLossWeight)
    }

    private static func checkPositionLossWeight(_ weight: Float) throws {
        try require(weight >= 0 && weight.isFinite, "positionLossWeight", weight, "a non-negative finite weight")
    }
}

/// One step's figures, handed to the caller (the library never prints).
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// The objective minimised: token loss, plus the weighted position loss for a PPC model.
    public var loss: Float
    /// The token cross-entropy alone (equal to `loss` without a position head).
    public var tokenLoss: Float
    /// The position head's cross-entropy (Predictive Position Coupling), unweighted; nil without the head.
    public var positionLoss: Float?
    public var learningRate: Float
    public var gradientNorm: Float
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double

    /// Estimated seconds left at the average pace so far.
    public var remainingSeconds: Double { step > 0 ? elapsedSeconds / Double(step) * Double(totalSteps - step) : 0 }
}

/// Trains a Transformer with AdamW, warm-up and cosine decay, global-norm clipping and
/// gradient accumulation, on batches drawn from `nextBatch` with the run's own generator.
public final class Trainer {
    public let model: Transformer
    public let configuration: TrainingConfiguration
    public let optimizer: AdamW
    public internal(set) var step = 0
    public var dataGenerator: SplitMix64

    public init(model: Transformer, configuration: TrainingConfiguration) throws {
        TensorStorage.prepareForTraining()  // buffers reused step after step (see there)
        self.model = model
        self.configuration = configuration
        optimizer = try AdamW(parameters: model.parameters, configuration: configuration.optimizer)
        dataGenerator = SplitMix64(seed: configuration.seed ^ 0xDA7A_5EED)
    }

    /// Runs the remaining steps, calling `onStep` after each update.
    public func train(nextBatch: (inout SplitMix64) throws -> TokenBatch, onStep: (TrainingProgress) throws -> Void) throws {
        let start = Date()
        var tokens = 0
        TensorStorage.beginTrainingLoop()
        defer { TensorStorage.endTrainingLoop() }
        while step < configuration.steps {
            let progress = try trainStep(nextBatch: nextBatch, tokens: &tokens, start: start)
            try onStep(progress)
        }
    }

    /// One update: accumulate gradients over micro-batches, clip, step.
    public func trainStep(nextBatch: (inout SplitMix64) throws -> TokenBatch, tokens: inout Int, start: Date) throws -> TrainingProgress {
        model.zeroGradients()
        var lossSum: Float = 0, tokenLossSum: Float = 0, positionLossSum: Float = 0, positionLossCount = 0
        let micro = configuration.gradientAccumulation, weight = configuration.positionLossWeight
        for _ in 0..<micro {
            let batch = try nextBatch(&dataGenerator)
            let parts = try model.lossComponents(batch)
            let loss = try Transformer.objective(parts, positionLossWeight: weight)
            try loss.scaled(by: 1 / Float(micro)).backward()
            lossSum += try loss.item()
            tokenLossSum += try parts.token.item()
            if let position = parts.position { positionLossSum += try position.item(); positionLossCount += 1 }
            tokens += batch.batchSize * batch.length
        }
        let norm = try clipGradientNorm(model.parameters, maxNorm: configuration.maximumGradientNorm)
        let rate = configuration.schedule.rate(at: step)
        try optimizer.step(learningRate: rate)
        model.normalizeWeights()  // nGPT's projection back onto the sphere; a no-op otherwise
        step += 1
        let elapsed = Date().timeIntervalSince(start)
        return TrainingProgress(step: step, totalSteps: configuration.steps, loss: lossSum / Float(micro),
                                tokenLoss: tokenLossSum / Float(micro),
                                positionLoss: positionLossCount > 0 ? positionLossSum / Float(positionLossCount) : nil, learningRate: rate,
                                gradientNorm: norm, tokensPerSecond: Double(tokens) / max(elapsed, 1e-9), elapsedSeconds: elapsed)
    }
}
