import Models
import TensorCore

/// The copy task: "copy: x₁ … xₙ = x₁ … xₙ" over an alphabet of symbols, the basic probe of length
/// generalisation ("Duplicate String" in Delétang et al. 2023, "Neural Networks and the Chomsky
/// Hierarchy"; Jelassi et al. 2024, "Repeat After Me"): target token i reads input token i, n + 1 back.
/// Tokens follow `TaskVocabulary`: prefix 5, the n symbols, separator 1, the n symbols again;
/// `size` = n; the loss counts the copied n symbols. Sequence length 2n + 2.
public struct CopyTask: SequenceTask {
    public static let padding = TaskVocabulary.padding, prefix = TaskVocabulary.prefix(.copy)
    public static let separator = TaskVocabulary.separator, firstSymbol = TaskVocabulary.firstSymbol
    public let alphabetSize: Int

    /// `alphabetSize`: 2…64 symbols.
    public init(alphabetSize: Int = 16) throws {
        try TaskVocabulary.checkAlphabet(alphabetSize, "CopyTask")
        self.alphabetSize = alphabetSize
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "copy" }
    public func sequenceLength(size: Int) -> Int { CopyTask.sequenceLength(inputLength: size) }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "CopyTask")
        return example(inputLength: size, generator: &generator)
    }

    /// The total sequence length of an example whose input has `n` symbols.
    public static func sequenceLength(inputLength n: Int) -> Int { 2 * n + 2 }

    /// An example with an input of `inputLength` random symbols.
    public func example(inputLength: Int, generator: inout SplitMix64) -> Example {
        let input = TaskVocabulary.randomSymbols(inputLength, alphabetSize: alphabetSize, generator: &generator)
        return Example.framed(prefix: CopyTask.prefix, input: input, target: input)
    }
}
