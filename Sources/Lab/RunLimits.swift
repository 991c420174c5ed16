import Foundation
import Models
import NN
import TensorCore

/// The explicit limits every run is checked against before any work starts (sizes that reach an
/// allocation, a loop bound or an integer conversion), and the memory a run would need. A value
/// beyond a limit is a `ConfigurationError` naming the setting, the value and the allowed range;
/// a run whose estimated memory exceeds the machine's is refused with both figures.
public enum RunLimits {
    /// Training and evaluation lengths, in tokens (2^20).
    public static let maximumLength = 1 << 20
    /// The largest position ID a run may give a token, offsets and randomized ranges included (2^22).
    public static let maximumPosition = 1 << 22
    public static let maximumSteps = 100_000_000
    public static let maximumBatchSize = 65_536
    public static let maximumEvalSamples = 1_000_000
    public static let maximumEvalLengths = 64
    public static let maximumLayers = 1_024
    public static let maximumModelDimension = 65_536
    public static let maximumHeads = 4_096
    /// Runs in one sweep (tasks × schemes × seeds × training lengths × model dimensions).
    public static let maximumSweepRuns = 10_000

    /// Checks a training length (first: the default evaluation lengths are multiples of it).
    static func check(trainLength: Int) throws {
        try require((4...maximumLength).contains(trainLength), "trainLength", trainLength, "tokens from 4 to \(maximumLength)")
    }

    /// Checks the other sizes of a run, before anything is built from them.
    static func check(trainLength: Int, evalLengths: [Int], extraPosition: Int, steps: Int, batchSize: Int, evalSamples: Int,
                      checkpointEvery: Int, layers: Int, modelDimension: Int, heads: Int) throws {
        func within(_ value: Int, _ range: ClosedRange<Int>, _ parameter: String, _ unit: String) throws {
            try require(range.contains(value), parameter, value,
                        "\(unit) from \(range.lowerBound) to \(range.upperBound)")
        }
        try within(steps, 1...maximumSteps, "steps", "a count")
        try within(batchSize, 1...maximumBatchSize, "batchSize", "a count")
        try within(evalSamples, 1...maximumEvalSamples, "evalSamples", "a count")
        try within(checkpointEvery, 1...maximumSteps, "checkpointEvery", "steps")
        try within(layers, 1...maximumLayers, "layers", "a count")
        try within(modelDimension, 1...maximumModelDimension, "modelDimension", "a dimension")
        try within(heads, 1...maximumHeads, "heads", "a count")
        try require(!evalLengths.isEmpty && evalLengths.count <= maximumEvalLengths, "evalLengths", evalLengths,
                    "1 to \(maximumEvalLengths) lengths")
        for length in evalLengths { try within(length, 2...maximumLength, "evalLengths", "lengths in tokens") }
        let longest = max(trainLength, evalLengths.max() ?? 0)
        try require(extraPosition >= 0 && extraPosition <= maximumPosition - longest, "positions", extraPosition,
                    "an offset or range that keeps every position ID below \(maximumPosition) with sequences of \(longest) tokens")
    }

    /// A lower bound of the memory training needs, in bytes: weights, gradients and AdamW's two
    /// moments (4 floats per parameter) and the activations a step keeps for the backward pass
    /// (per token and layer: the residual stream, norms, queries, keys, values, attention output,
    /// the feed-forward hidden layer; and the logits). Attention scores are not counted (the
    /// blocked path keeps none), so the estimate errs low: a refused run certainly does not fit.
    public static func trainingBytes(_ c: TransformerConfiguration, batchSize: Int, length: Int, tableRows: Int) -> Double {
        let C = Double(c.modelDimension), F = Double(c.feedForwardDimension), V = Double(c.vocabularySize)
        let L = Double(c.numberOfLayers)
        let kv = Double(c.numberOfKeyValueHeads * c.headDimension)
        let feedForwardMatrices: Double = c.feedForward == .swiGLU ? 3 : 2
        let perLayer = 2 * C * C + 2 * C * kv + feedForwardMatrices * C * F + 4 * C + F
        let parameters = V * C * (c.tiedEmbeddings ? 1 : 2) + L * perLayer + Double(tableRows) * C
        let tokens = Double(batchSize) * Double(length)
        let activations = tokens * (L * (8 * C + 2 * kv + feedForwardMatrices * F) + 2 * V)
        return 4 * (4 * parameters + activations)
    }

    /// Refuses work whose `bytes` exceed `available` (the machine's physical memory), saying `what`
    /// needs them and what to make smaller.
    public static func checkMemory(_ bytes: Double, available: UInt64 = ProcessInfo.processInfo.physicalMemory,
                                   what: String, advice: String = "fewer layers, a smaller model dimension, batch or length")
        throws {
        guard bytes > Double(available) else { return }
        func gib(_ b: Double) -> String { String(format: "%.1f GiB", b / Double(1 << 30)) }
        throw ConfigurationError(parameter: "memory", value: "at least \(gib(bytes)) for \(what)",
                                 allowed: "at most this machine's \(gib(Double(available))): \(advice)")
    }
}
