import Foundation
import TensorCore

/// How the next token is chosen from the logits.
public struct SamplingConfiguration: Codable, Equatable, Sendable {
    /// 0 means greedy (arg max); otherwise logits are divided by it before sampling.
    public var temperature: Float
    /// Sample among the k most likely tokens only (nil: all).
    public var topK: Int?
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int? = nil, seed: UInt64 = 0) throws {
        guard temperature >= 0, temperature.isFinite else {
            throw ConfigurationError(context: "SamplingConfiguration", parameter: "temperature", value: "\(temperature)",
                                              allowed: "0 (greedy) or a positive finite value")
        }
        if let topK, topK < 1 {
            throw ConfigurationError(context: "SamplingConfiguration", parameter: "topK", value: "\(topK)", allowed: "a positive count")
        }
        self.temperature = temperature; self.topK = topK; self.seed = seed
    }

    /// The token chosen from one row of logits [V].
    public func choose(_ logits: ArraySlice<Float>, generator: inout SplitMix64) -> Int {
        let base = logits.startIndex
        if temperature == 0 { return argMax(logits) }
        var order = Array(logits.indices)
        if let topK, topK < order.count {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            order = Array(order.prefix(topK))
        }
        let top = order.map { logits[$0] }.max() ?? 0
        let weights = order.map { Double(expf((logits[$0] - top) / temperature)) }
        var u = Double(generator.next() >> 11) / Double(1 << 53) * weights.reduce(0, +)
        for (index, weight) in zip(order, weights) {
            u -= weight
            if u < 0 { return index - base }
        }
        return order.last! - base
    }
}

extension Transformer {
    /// Continues `prompt` by `count` tokens, one at a time through a KV cache: the prompt is
    /// prefilled in one call, then each new token costs one query against the cached keys.
    /// Returns the new tokens only. `stop` ends generation early when it is produced.
    public func generate(prompt: [Int], count: Int, sampling: SamplingConfiguration, stop: Int? = nil) throws -> [Int] {
        // The decoding loop of Predictive Position Coupling with plain positions 0, 1, 2, …
        let request = ContinuationRequest(prompt: prompt, generatedPositions: .sequential)
        return try continueRows([request], count: count, sampling: sampling, stop: stop)[0].tokens
    }

    /// As `generate(prompt:count:sampling:stop:)`, with the position ID of every token given:
    /// `positions` holds the prompt's IDs, then at least `count` for the new tokens (a model trained
    /// on randomized positions decodes on positions drawn as in training).
    public func generate(prompt: [Int], positions: [Int], count: Int, sampling: SamplingConfiguration,
                         stop: Int? = nil) throws -> [Int] {
        guard positions.count >= prompt.count + count else {
            throw ConfigurationError(parameter: "positions", value: "\(positions.count) IDs",
                                     allowed: "one for each of the \(prompt.count) prompt tokens and \(count) new ones")
        }
        let request = ContinuationRequest(prompt: prompt, promptPositions: Array(positions[..<prompt.count]),
                                          generatedPositions: .given(Array(positions[prompt.count...])))
        return try continueRows([request], count: count, sampling: sampling, stop: stop)[0].tokens
    }
}

/// The index (from 0) of the largest value, the first among equals.
func argMax(_ values: ArraySlice<Float>) -> Int {
    var best = values.startIndex
    for i in values.indices where values[i] > values[best] { best = i }
    return best - values.startIndex
}
