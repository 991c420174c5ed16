import Foundation
import Models
import PositionalEncodings
import TensorCore
import Tasks

/// What a trained model does with position, measured on evaluation examples (analysis.json):
/// (a) attention mass against relative distance, per layer and head, averaged over queries
///     (recency, and the U-shape the HoPE paper reports);
/// (b) for rotary schemes, per frequency pair, the mean magnitude of the query and key components
///     (the HoPE paper's "activated" components), with the pairs whose full period fits in the
///     training length marked;
/// (c) sparsity and locality: per prediction, how many earlier tokens hold 90% of the attention
///     mass (the effective k of Golowich et al.) and how far back they lie;
/// (d) RoFormer's long-term-decay bound of the model's rotary spectrum.
public struct AnalysisReport: Codable, Sendable {
    public struct Layer: Codable, Sendable {
        /// [head][distance]: mean attention probability at query − key = distance.
        public var attentionByDistance: [[Double]]
        /// Mean over heads and predictions of the effective k (tokens holding 90% of the mass).
        public var effectiveK: Double
        /// Histogram of the effective k: counts for k = 1, 2, … (the last bin holds the rest).
        public var effectiveKHistogram: [Int]
        /// Mean mass-weighted distance back of the tokens that hold 90% of the mass.
        public var meanDistance: Double
        /// Rotary schemes: per frequency pair, mean |(q_a, q_b)| and |(k_a, k_b)|.
        public var queryPairMagnitudes: [Double]?
        public var keyPairMagnitudes: [Double]?
    }

    public var task: String
    public var pe: String
    public var trainLength: Int
    public var length: Int
    public var layers: [Layer]
    /// Rotary schemes: θ_i (0 for HoPE's position-independent pairs) and the pairs whose wavelength
    /// 2π/θ_i fits within the training length.
    public var inverseFrequencies: [Double]?
    public var fullPeriodPairs: [Int]?
    public var decayBound: [Double]?
}

public enum Analyzer {
    /// The longest sequence analysed: the analysis holds every head's T × T attention probabilities.
    public static let maximumLength = 4_096

    public static let fileName = "analysis.json"

    public static func analyze(model: Transformer, run: RunSpecification, length: Int, samples: Int = 16) throws -> AnalysisReport {
        let task = try run.makeTask()
        // A run trained on randomized positions is analysed on positions drawn as in training (as it is evaluated).
        try run.positions.atEvaluation.checkEvaluation(lengths: [length])
        var generator = SplitMix64(seed: 0xA7A1 ^ UInt64(length))
        var batch: TokenBatch
        switch task {
        case let .sequence(sequenceTask):
            let size = max(sequenceTask.minimumSize, sequenceTask.size(fittingIn: length))
            batch = makeBatchForAnalysis(try (0..<samples).map { _ in try sequenceTask.example(size: size, generator: &generator) })
        case let .text(text):
            guard text.heldOut.count > length else { throw ConfigurationError(parameter: "length", value: "\(length)", allowed: "less than the \(text.heldOut.count) held-out \(text.unit)") }
            let count = min(samples, text.heldOut.count / (length + 1))
            let inputs = (0..<count).flatMap { i in text.heldOut[(i * length)..<((i + 1) * length)].map(Int.init) }
            batch = TokenBatch(inputs: inputs, targets: inputs, lossMask: inputs.map { _ in true }, batchSize: count, length: length)
        }
        var ids = Evaluator.EvaluationPositions(assignment: run.positions.atEvaluation,
                                                generator: SplitMix64(seed: 0x5EED_A7A1 ^ UInt64(length)))
        try ids.assign(to: &batch)
        let rotary = model.positionalEncodings.first as? RotaryEncoding
        let pairing = rotary?.configuration.pairing ?? .halfSplit
        let rotaryDimension = rotary?.rotaryDimension ?? 0
        var layers: [AnalysisReport.Layer] = []
        for block in model.blocks {
            block.attention.recorder = { queries, keys, probabilities in
                layers.append(summarize(queries: queries, keys: keys, probabilities: probabilities, lossMask: batch.lossMask,
                                        rotaryDimension: rotaryDimension, pairing: pairing))
            }
        }
        defer { for block in model.blocks { block.attention.recorder = nil } }
        _ = try GradientMode.withoutGradient {
            try model.logits(batch.inputs, batchSize: batch.batchSize, length: batch.length, positions: batch.positionIDs())
        }
        var report = AnalysisReport(task: run.task, pe: run.label, trainLength: run.trainLength, length: batch.length, layers: layers)
        if let rotary {
            let theta = try rotary.frequencies(sequenceLength: batch.length).inverseFrequencies
            report.inverseFrequencies = theta
            report.fullPeriodPairs = theta.indices.filter { theta[$0] > 0 && 2 * Double.pi / theta[$0] <= Double(run.trainLength) }
            report.decayBound = DecayCurve.bound(inverseFrequencies: theta, maximumDistance: batch.length)
        }
        return report
    }

    /// Examples stacked for analysis: predictions that count are those of the loss mask.
    static func makeBatchForAnalysis(_ examples: [Example]) -> TokenBatch { makeBatch(examples, padding: 0) }

    public static func summarize(queries: Tensor, keys: Tensor, probabilities: Tensor, lossMask: [Bool], rotaryDimension: Int,
                          pairing: RotaryPairing) -> AnalysisReport.Layer {
        let (b, h, t, tk) = (probabilities.shape[0], probabilities.shape[1], probabilities.shape[2], probabilities.shape[3])
        let p = probabilities.storage.pointer
        var byDistance = [[Double]](repeating: [Double](repeating: 0, count: tk), count: h)
        var queriesAt = [Double](repeating: 0, count: tk)
        var kSum = 0.0, distanceSum = 0.0, predictions = 0
        var histogram = [Int](repeating: 0, count: 17)
        var row = [(Float, Int)]()
        for batch in 0..<b {
            for head in 0..<h {
                for i in 0..<t {
                    let base = ((batch * h + head) * t + i) * tk, shift = tk - t, query = i + shift
                    for j in 0...query { byDistance[head][query - j] += Double(p[base + j]) }
                    if head == 0 { for d in 0...query { queriesAt[d] += 1 } }
                    // Effective k and locality on the predictions the task scores.
                    guard lossMask[batch * t + i] else { continue }
                    row = (0...query).map { (p[base + $0], query - $0) }
                    row.sort { $0.0 > $1.0 }
                    var mass: Float = 0, k = 0, weighted = 0.0
                    for (probability, distance) in row where mass < 0.9 {
                        mass += probability; k += 1; weighted += Double(probability) * Double(distance)
                    }
                    kSum += Double(k); distanceSum += weighted / Double(max(mass, 1e-9)); predictions += 1
                    histogram[min(k, histogram.count) - 1] += 1
                }
            }
        }
        for head in 0..<h { for d in 0..<tk where queriesAt[d] > 0 { byDistance[head][d] /= queriesAt[d] } }
        var layer = AnalysisReport.Layer(attentionByDistance: byDistance, effectiveK: predictions > 0 ? kSum / Double(predictions) : 0,
                                         effectiveKHistogram: histogram, meanDistance: predictions > 0 ? distanceSum / Double(predictions) : 0)
        if rotaryDimension > 0 {
            layer.queryPairMagnitudes = pairMagnitudes(queries, rotaryDimension: rotaryDimension, pairing: pairing)
            layer.keyPairMagnitudes = pairMagnitudes(keys, rotaryDimension: rotaryDimension, pairing: pairing)
        }
        return layer
    }

    /// Mean over batch, heads and tokens of |(x_a, x_b)| for each rotary pair (a, b). x: [B, H, T, D].
    static func pairMagnitudes(_ x: Tensor, rotaryDimension: Int, pairing: RotaryPairing) -> [Double] {
        let d = x.shape[3], rows = x.count / d, half = rotaryDimension / 2
        var sums = [Double](repeating: 0, count: half)
        let v = x.storage.pointer
        for r in 0..<rows {
            for i in 0..<half {
                let (a, b) = pairing == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                let x1 = Double(v[r * d + a]), x2 = Double(v[r * d + b])
                sums[i] += (x1 * x1 + x2 * x2).squareRoot()
            }
        }
        return sums.map { $0 / Double(max(rows, 1)) }
    }
}
