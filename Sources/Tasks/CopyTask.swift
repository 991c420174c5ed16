import Models
import TensorCore

/// Tasks: seeded generators of text-to-text examples, framed as T5 frames tasks
/// (Raffel et al. 2020): prefix, input, separator, target; the loss counts target tokens only.
///
/// One example: the token sequence and, per token, whether predicting it counts in the loss.
public struct Example: Equatable, Sendable {
    public var tokens: [Int]
    /// lossMask[i] is true when tokens[i] is a target token (predicted from tokens[..<i]).
    public var lossMask: [Bool]
    /// Task-given position IDs, one per token (Position Coupling), or nil for 0..n−1.
    public var positions: [Int]?

    public init(tokens: [Int], lossMask: [Bool], positions: [Int]? = nil) {
        self.tokens = tokens
        self.lossMask = lossMask
        self.positions = positions
    }
}

/// The copy task: "copy: x₁ … xₙ = x₁ … xₙ" over an alphabet of symbols.
/// Token layout: 0 padding, 1 the task prefix, 2 the separator, 3… the symbols.
public struct CopyTask: SequenceTask {
    public static let padding = 0, prefix = 1, separator = 2, firstSymbol = 3
    public let alphabetSize: Int

    public init(alphabetSize: Int = 16) throws {
        guard alphabetSize >= 2 else {
            throw TensorError.invalidArgument(operation: "CopyTask", parameter: "alphabetSize", value: "\(alphabetSize)", allowed: "at least 2")
        }
        self.alphabetSize = alphabetSize
    }

    public var vocabularySize: Int { CopyTask.firstSymbol + alphabetSize }
    public var name: String { "copy" }
    public func sequenceLength(size: Int) -> Int { CopyTask.sequenceLength(inputLength: size) }
    public func example(size: Int, generator: inout SplitMix64) throws -> Example { example(inputLength: size, generator: &generator) }

    /// The total sequence length of an example whose input has `n` symbols.
    public static func sequenceLength(inputLength n: Int) -> Int { 2 * n + 2 }

    /// An example with an input of `inputLength` random symbols.
    public func example(inputLength: Int, generator: inout SplitMix64) -> Example {
        let input = (0..<inputLength).map { _ in CopyTask.firstSymbol + generator.nextInt(in: 0..<alphabetSize) }
        let tokens = [CopyTask.prefix] + input + [CopyTask.separator] + input
        let mask = [Bool](repeating: false, count: inputLength + 2) + [Bool](repeating: true, count: inputLength)
        return Example(tokens: tokens, lossMask: mask)
    }

    /// A batch of examples with input lengths drawn uniformly from `inputLengths`.
    public func batch(size: Int, inputLengths: ClosedRange<Int>, generator: inout SplitMix64) -> TokenBatch {
        let examples = (0..<size).map { _ in example(inputLength: generator.nextInt(in: inputLengths.lowerBound..<(inputLengths.upperBound + 1)), generator: &generator) }
        return makeBatch(examples, padding: CopyTask.padding)
    }
}

/// Stacks examples into a next-token batch: inputs are tokens[..<n−1], targets tokens[1...],
/// padded to the longest example; padding never counts in the loss. When any example carries
/// positions, the batch does too (padding continues each row's last position).
public func makeBatch(_ examples: [Example], padding: Int) -> TokenBatch {
    let length = max(1, (examples.map(\.tokens.count).max() ?? 1) - 1)
    var inputs = [Int](repeating: padding, count: examples.count * length)
    var targets = inputs
    var mask = [Bool](repeating: false, count: inputs.count)
    let coupled = examples.contains { $0.positions != nil }
    var positions = coupled ? [Int](repeating: 0, count: inputs.count) : []
    for (row, example) in examples.enumerated() {
        let n = example.tokens.count
        for i in 0..<max(0, n - 1) {
            inputs[row * length + i] = example.tokens[i]
            targets[row * length + i] = example.tokens[i + 1]
            mask[row * length + i] = example.lossMask[i + 1]
        }
        if coupled {
            let own = example.positions ?? Array(0..<n)
            var last = 0
            for i in 0..<length {
                if i < n - 1 { last = own[i] } else { last += 1 }
                positions[row * length + i] = last
            }
        }
    }
    return TokenBatch(inputs: inputs, targets: targets, lossMask: mask, positions: coupled ? positions : nil,
                      batchSize: examples.count, length: length)
}
