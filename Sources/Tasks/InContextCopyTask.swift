import Models
import TensorCore

/// The in-context copy probe of HoPE (Chen et al. 2024, "HoPE: A Novel Positional Encoding Without
/// Long-Term Decay for Enhanced Context Awareness and Extrapolation", arXiv 2410.21216): a long
/// random string over a large alphabet is repeated after the separator, so every target token must
/// be retrieved from exactly one earlier position, however far back; a probe of whether attention
/// still reaches distant tokens (long-term decay) and of extrapolation beyond the training length.
/// Tokens follow `TaskVocabulary`: prefix 11, the n symbols, separator 1, the n symbols again;
/// `size` = n; the loss counts the copied symbols. Sequence length 2n + 2. With 64 symbols a
/// string rarely repeats a long substring, so the copy cannot lean on local n-gram statistics.
public struct InContextCopyTask: SequenceTask {
    public let alphabetSize: Int

    /// `alphabetSize`: 2…64 symbols (64 by default).
    public init(alphabetSize: Int = TaskVocabulary.symbolCount) throws {
        try TaskVocabulary.checkAlphabet(alphabetSize, "InContextCopyTask")
        self.alphabetSize = alphabetSize
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "incontext" }
    public func sequenceLength(size: Int) -> Int { 2 * size + 2 }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "InContextCopyTask")
        let input = TaskVocabulary.randomSymbols(size, alphabetSize: alphabetSize, generator: &generator)
        return Example.framed(prefix: TaskVocabulary.prefix(.incontext), input: input, target: input)
    }
}
