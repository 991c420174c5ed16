import Models
import TensorCore

/// A seeded generator of text-to-text examples: prefix, input, separator, target (T5's framing);
/// the loss counts target tokens only. `size` is the task's length parameter (the number of input
/// symbols, digits, pairs…); `sequenceLength(size:)` is the resulting token count, which training
/// and evaluation ranges are stated in.
public protocol SequenceTask: Sendable {
    /// The name used on the command line and in results ("copy", "reverse", "sparse", …).
    var name: String { get }
    var vocabularySize: Int { get }
    /// Tokens in an example of `size` (the longest, when it varies).
    func sequenceLength(size: Int) -> Int
    /// The largest `size` whose examples fit in `tokens` tokens (0 when none does).
    func size(fittingIn tokens: Int) -> Int
    /// One example. Examples of a task with coupled positions carry them in `positions`.
    func example(size: Int, generator: inout SplitMix64) throws -> Example
}

extension SequenceTask {
    public func size(fittingIn tokens: Int) -> Int {
        var size = 0
        while sequenceLength(size: size + 1) <= tokens { size += 1 }
        return size
    }

    /// A batch of examples with sizes drawn uniformly from `sizes`.
    public func batch(count: Int, sizes: ClosedRange<Int>, generator: inout SplitMix64) throws -> TokenBatch {
        let examples = try (0..<count).map { _ in
            try example(size: generator.nextInt(in: sizes.lowerBound..<(sizes.upperBound + 1)), generator: &generator)
        }
        return makeBatch(examples, padding: 0)
    }
}
