import Models
import TensorCore

/// Sparse parity: `size` random bits of which k are marked; the target is the XOR of the marked
/// bits. The synthetic task with which Golowich et al. 2025 ("The Role of Sparsity for Length
/// Generalization in Transformers", arXiv 2502.16792) show length generalisation improving as the
/// sparsity k decreases; parity of k bits is the hardest function of k inputs to learn (every
/// marked bit matters, no subset of them says anything about the target).
///
/// Construction as `SparseTask` with the alphabet {0, 1} written as the digit tokens: a marker
/// token (2) before each of the k marked bits; `locality` = w puts them among the last w bits
/// (nil: anywhere).
///
///     parity: 1 0 ^ 1 1 0 ^ 0 1 = 1      (k = 2: 1 XOR 0)
///
/// Tokens: prefix 8, the n bits with k markers, separator 1, the target bit; sequence length
/// n + k + 3; the loss counts the target bit only.
public struct ParityTask: SequenceTask {
    public let k: Int
    /// k symbols are marked, so an example needs at least k.
    public var minimumSize: Int { k }
    public let locality: Int?

    /// `k` ≥ 1 marked bits; `locality` nil or ≥ k.
    public init(k: Int = 2, locality: Int? = nil) throws {
        try checkSparsity(k: k, locality: locality, "ParityTask")
        self.k = k
        self.locality = locality
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "parity" }
    public func sequenceLength(size: Int) -> Int { size + k + 3 }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        let marked = try markedPositions(k: k, locality: locality, size: size, "ParityTask", generator: &generator)
        let bits = (0..<size).map { _ in generator.nextInt(in: 0..<2) }
        return try example(bits: bits, marked: marked)
    }

    /// The example of given bits (0 or 1) with the bits at `marked` (k distinct indices) marked.
    public func example(bits: [Int], marked: [Int]) throws -> Example {
        try requireArgument(bits.allSatisfy { $0 == 0 || $0 == 1 }, "ParityTask", "bits", bits, "0 or 1")
        let input = try markedInput(bits.map(TaskVocabulary.digit), marked: marked, k: k, "ParityTask")
        return Example.framed(prefix: TaskVocabulary.prefix(.parity), input: input,
                              target: [TaskVocabulary.digit(parity(bits: bits, marked: marked))])
    }

    /// The XOR of the marked bits.
    public func parity(bits: [Int], marked: [Int]) -> Int { marked.reduce(0) { $0 ^ bits[$1] } }
}
