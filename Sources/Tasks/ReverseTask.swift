import Models
import TensorCore

/// The reverse task: "reverse: x₁ … xₙ = xₙ … x₁", the "Reverse String" task of Delétang et al.
/// 2023 ("Neural Networks and the Chomsky Hierarchy"), used for length generalisation by Ruoss et
/// al. 2023 (randomized positional encodings): target token i reads input token n + 1 − i, at a
/// distance that varies along the target, unlike copy's constant n + 1.
/// Tokens follow `TaskVocabulary`: prefix 6, the n symbols, separator 1, the symbols reversed;
/// `size` = n; the loss counts the n reversed symbols. Sequence length 2n + 2.
public struct ReverseTask: SequenceTask {
    public let alphabetSize: Int

    /// `alphabetSize`: 2…64 symbols.
    public init(alphabetSize: Int = 16) throws {
        try TaskVocabulary.checkAlphabet(alphabetSize, "ReverseTask")
        self.alphabetSize = alphabetSize
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "reverse" }
    public func sequenceLength(size: Int) -> Int { 2 * size + 2 }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "ReverseTask")
        let input = TaskVocabulary.randomSymbols(size, alphabetSize: alphabetSize, generator: &generator)
        return Example.framed(prefix: TaskVocabulary.prefix(.reverse), input: input, target: input.reversed())
    }
}
