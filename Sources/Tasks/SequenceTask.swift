import Models
import TensorCore

/// A seeded generator of text-to-text examples: prefix, input, separator, target (T5's framing,
/// Raffel et al. 2020); the loss counts target tokens only. `size` is the task's length parameter
/// (the number of input symbols, digits, pairs…); `sequenceLength(size:)` is the resulting token
/// count, which training and evaluation ranges are stated in. Every symbolic task uses the one
/// token layout of `TaskVocabulary`, so that a `TaskMixture` of them trains one model.
public protocol SequenceTask: Sendable {
    /// The name used on the command line and in results ("copy", "reverse", "sparse", …).
    var name: String { get }
    var vocabularySize: Int { get }
    /// The token that pads batches (never counted in the loss); `TaskVocabulary.padding` by default.
    var paddingToken: Int { get }
    /// The smallest valid `size` (sparse and parity need at least k symbols); 1 by default.
    var minimumSize: Int { get }
    /// Tokens in an example of `size` (the longest, when it varies).
    func sequenceLength(size: Int) -> Int
    /// The largest `size` whose examples fit in `tokens` tokens (0 when none does).
    func size(fittingIn tokens: Int) -> Int
    /// One example. Examples of a task with coupled positions carry them in `positions`.
    func example(size: Int, generator: inout SplitMix64) throws -> Example
    /// The task as evaluation draws it: without training-only randomness (addition's random
    /// position offset); the task itself by default.
    var evaluationTask: any SequenceTask { get }
}

extension SequenceTask {
    public var paddingToken: Int { TaskVocabulary.padding }

    public var evaluationTask: any SequenceTask { self }

    public var minimumSize: Int { 1 }

    public func size(fittingIn tokens: Int) -> Int {
        var size = 0
        while sequenceLength(size: size + 1) <= tokens { size += 1 }
        return size
    }

    /// `count` examples with sizes drawn from `sizes` as `sampling` says.
    public func examples(count: Int, sizes: ClosedRange<Int>, sampling: SizeSampling = .uniform,
                         generator: inout SplitMix64) throws -> [Example] {
        try (0..<count).map { _ in try example(size: sampling.size(in: sizes, generator: &generator), generator: &generator) }
    }

    /// A training batch of examples with sizes drawn from `sizes` as `sampling` says (by default
    /// mostly the largest size: see `SizeSampling.standard`).
    public func batch(count: Int, sizes: ClosedRange<Int>, sampling: SizeSampling = .standard,
                      generator: inout SplitMix64) throws -> TokenBatch {
        makeBatch(try examples(count: count, sizes: sizes, sampling: sampling, generator: &generator), padding: paddingToken)
    }
}

/// How training draws example sizes from a range 1…N.
///
/// Uniform sizes leave the training length itself thinly trained: an example of the largest size
/// N comes once in N draws, and the last target positions (of copy, say) occur in no shorter
/// example, so at 2000 steps most schemes did not even fit copy at its training length (exact
/// match 0.00–0.55 at N = 11 symbols). `standard` draws N with probability 3/4 and otherwise a
/// uniform size, so that every size is still trained.
public enum SizeSampling: Equatable, Sendable {
    /// Uniformly over the range (one draw).
    case uniform
    /// The largest size with probability `largestFraction` (one draw), else uniformly (a second draw).
    case favouringLargest(largestFraction: Double)

    /// What training batches use: the largest size 3/4 of the time, else uniform.
    public static let standard = SizeSampling.favouringLargest(largestFraction: 0.75)

    public func size(in sizes: ClosedRange<Int>, generator: inout SplitMix64) -> Int {
        switch self {
        case .uniform:
            return generator.nextInt(in: sizes.lowerBound..<(sizes.upperBound + 1))
        case let .favouringLargest(fraction):
            if generator.nextDouble() < fraction { return sizes.upperBound }
            return generator.nextInt(in: sizes.lowerBound..<(sizes.upperBound + 1))
        }
    }
}

/// One example: the token sequence and, per token, whether predicting it counts in the loss.
public struct Example: Equatable, Sendable {
    public var tokens: [Int]
    /// lossMask[i] is true when tokens[i] is a target token (predicted from tokens[..<i]).
    public var lossMask: [Bool]
    /// Task-given position IDs, one per token (Position Coupling), or nil for 0..n−1.
    public var positions: [Int]?
    /// Predictive Position Coupling (Golowich et al. 2025): positionTargets[i] is the coupled position
    /// ID of token i + 1, which a position head learns to predict from tokens[...i]; the last entry
    /// continues the last ID by one (as `makeBatch` pads). Nil for tasks without coupled positions.
    public var positionTargets: [Int]?

    public init(tokens: [Int], lossMask: [Bool], positions: [Int]? = nil, positionTargets: [Int]? = nil) {
        self.tokens = tokens
        self.lossMask = lossMask
        self.positions = positions
        self.positionTargets = positionTargets
    }

    /// prefix, input, separator, target; the loss on the target only; `positions` (one per token)
    /// also give `positionTargets`.
    public static func framed(prefix: Int, input: [Int], separator: Int = TaskVocabulary.separator, target: [Int],
                              positions: [Int]? = nil) -> Example {
        let tokens = [prefix] + input + [separator] + target
        let mask = [Bool](repeating: false, count: input.count + 2) + [Bool](repeating: true, count: target.count)
        return Example(tokens: tokens, lossMask: mask, positions: positions, positionTargets: positions.map(nextPositions))
    }
}

/// The position ID of each token's successor, the last continued by one: the targets of a
/// Predictive Position Coupling head, for any example with coupled positions (nil otherwise).
public func coupledPositionTargets(_ example: Example) -> [Int]? {
    example.positionTargets ?? example.positions.map(nextPositions)
}

func nextPositions(_ positions: [Int]) -> [Int] {
    guard let last = positions.last else { return [] }
    return Array(positions.dropFirst()) + [last + 1]
}

/// Stacks examples into a next-token batch: inputs are tokens[..<n−1], targets tokens[1...],
/// padded to the longest example; padding never counts in the loss. When any example carries
/// positions, the batch does too (padding continues each row's last position), with the Predictive
/// Position Coupling targets of `makePositionTargets` (Golowich et al. 2025). positionLossMask marks
/// every non-padding input (the prompt included), where the position head is trained.
public func makeBatch(_ examples: [Example], padding: Int) -> TokenBatch {
    let length = batchLength(examples)
    var inputs = [Int](repeating: padding, count: examples.count * length)
    var targets = inputs
    var mask = [Bool](repeating: false, count: inputs.count)
    var real = mask
    for (row, example) in examples.enumerated() {
        let n = example.tokens.count
        for i in 0..<max(0, n - 1) {
            inputs[row * length + i] = example.tokens[i]
            targets[row * length + i] = example.tokens[i + 1]
            mask[row * length + i] = example.lossMask[i + 1]
            real[row * length + i] = true
        }
    }
    let positions = examples.contains { $0.positions != nil }
        ? rows(examples, length: length) { $0.positions ?? Array(0..<$0.tokens.count) } : nil
    return TokenBatch(inputs: inputs, targets: targets, lossMask: mask, positions: positions,
                      positionTargets: makePositionTargets(examples), positionLossMask: real,
                      batchSize: examples.count, length: length)
}

/// The Predictive Position Coupling targets of a batch made by `makeBatch` from the same examples
/// (which stores them as `TokenBatch.positionTargets`): [B, T] row-major, entry (b, t) the position
/// ID of the token after input t (the ID of target t); examples without coupled positions count
/// 1, 2, …; padding continues each row. Nil when no example carries positions.
public func makePositionTargets(_ examples: [Example]) -> [Int]? {
    guard examples.contains(where: { $0.positions != nil }) else { return nil }
    return rows(examples, length: batchLength(examples)) { coupledPositionTargets($0) ?? Array(1...max(1, $0.tokens.count)) }
}

private func batchLength(_ examples: [Example]) -> Int { max(1, (examples.map(\.tokens.count).max() ?? 1) - 1) }

/// Per row, the first n−1 values of `values(example)`, then the last one continued by one per step.
private func rows(_ examples: [Example], length: Int, _ values: (Example) -> [Int]) -> [Int] {
    var result = [Int](repeating: 0, count: examples.count * length)
    for (row, example) in examples.enumerated() {
        let own = values(example), n = example.tokens.count
        var last = 0
        for i in 0..<length {
            if i < n - 1 { last = own[i] } else { last += 1 }
            result[row * length + i] = last
        }
    }
    return result
}

/// Throws a ConfigurationError naming the parameter unless `condition` holds.
func requireArgument(_ condition: Bool, _ operation: String, _ parameter: String, _ value: Any, _ allowed: String) throws {
    guard condition else {
        throw ConfigurationError(context: operation, parameter: parameter, value: "\(value)", allowed: allowed)
    }
}

extension SplitMix64 {
    /// `count` distinct values of 0..<n in random order (rejection sampling; fine for count ≤ n).
    mutating func distinct(_ count: Int, from n: Int) -> [Int] {
        var seen = Set<Int>(), values: [Int] = []
        values.reserveCapacity(count)
        while values.count < count {
            let v = nextInt(in: 0..<n)
            if seen.insert(v).inserted { values.append(v) }
        }
        return values
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}
