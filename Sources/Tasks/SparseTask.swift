import Models
import TensorCore

/// k-sparse planted correlations (Golowich et al. 2025, "The Role of Sparsity for Length
/// Generalization in Transformers", arXiv 2502.16792): every predicted token depends on a small,
/// fixed number k of earlier tokens, however long the sequence; the paper shows that length
/// generalisation follows from this sparsity (and, without position coupling, from locality: the
/// k tokens lying within a bounded window), and that it degrades as k grows. A sweep over k
/// (and `locality`) at fixed training lengths measures that.
///
/// Construction (the seed document gives none, so the dependence is planted explicitly): a random
/// sequence of `size` symbols s₀…s₍q₋₁₎ (q = alphabetSize) in which k symbols are marked, each by a
/// marker token (2) just before it; the target is one symbol, the sum of the k marked symbols'
/// indices mod q. The target changes whenever one marked symbol changes and never when an
/// unmarked one does. `locality` = w puts the k marked symbols among the last w symbols (nil:
/// anywhere in the sequence).
///
///     sparse: x₁ … ^ xᵢ … ^ xⱼ … xₙ = (xᵢ + xⱼ) mod q      (k = 2)
///
/// Tokens: prefix 7, the n symbols with k markers, separator 1, the target symbol; sequence length
/// n + k + 3; the loss counts the target only.
public struct SparseTask: SequenceTask {
    public let k: Int
    /// k symbols are marked, so an example needs at least k.
    public var minimumSize: Int { k }
    public let locality: Int?
    public let alphabetSize: Int

    /// `k` ≥ 1 marked symbols; `locality` nil or ≥ k; `alphabetSize` 2…64.
    public init(k: Int = 2, locality: Int? = nil, alphabetSize: Int = 16) throws {
        try checkSparsity(k: k, locality: locality, "SparseTask")
        try TaskVocabulary.checkAlphabet(alphabetSize, "SparseTask")
        self.k = k
        self.locality = locality
        self.alphabetSize = alphabetSize
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "sparse" }
    public func sequenceLength(size: Int) -> Int { size + k + 3 }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        let marked = try markedPositions(k: k, locality: locality, size: size, "SparseTask", generator: &generator)
        let symbols = (0..<size).map { _ in generator.nextInt(in: 0..<alphabetSize) }
        return try example(symbols: symbols, marked: marked)
    }

    /// The example of given symbol indices (each in 0..<alphabetSize) with the symbols at `marked`
    /// (k distinct indices into `symbols`) marked.
    public func example(symbols: [Int], marked: [Int]) throws -> Example {
        try requireArgument(symbols.allSatisfy { (0..<alphabetSize).contains($0) }, "SparseTask", "symbols",
                            symbols, "indices in 0..<\(alphabetSize)")
        let input = try markedInput(symbols.map(TaskVocabulary.symbol), marked: marked, k: k, "SparseTask")
        return Example.framed(prefix: TaskVocabulary.prefix(.sparse), input: input,
                              target: [TaskVocabulary.symbol(answer(symbols: symbols, marked: marked))])
    }

    /// The target symbol's index: the sum of the marked symbols mod alphabetSize.
    public func answer(symbols: [Int], marked: [Int]) -> Int {
        marked.reduce(0) { ($0 + symbols[$1]) % alphabetSize }
    }
}

func checkSparsity(k: Int, locality: Int?, _ operation: String) throws {
    try requireArgument(k >= 1, operation, "k", k, "at least 1")
    if let locality {
        try requireArgument(locality >= k, operation, "locality", locality, "nil (anywhere) or at least k = \(k)")
    }
}

/// k distinct sorted indices among the last `locality` of `size` (all of them when nil or larger).
func markedPositions(k: Int, locality: Int?, size: Int, _ operation: String, generator: inout SplitMix64) throws -> [Int] {
    try checkSize(size, operation)
    try requireArgument(k <= size, operation, "k", k, "at most the sequence's size = \(size) tokens")
    let window = min(size, locality ?? size)
    return generator.distinct(k, from: window).map { $0 + size - window }.sorted()
}

/// The tokens with a marker before each of the k `marked` ones.
func markedInput(_ tokens: [Int], marked: [Int], k: Int, _ operation: String) throws -> [Int] {
    let set = Set(marked)
    try requireArgument(marked.count == k && set.count == k && marked.allSatisfy { (0..<tokens.count).contains($0) },
                        operation, "marked", marked, "\(k) distinct indices into the \(tokens.count) tokens")
    var input: [Int] = []
    input.reserveCapacity(tokens.count + k)
    for (i, token) in tokens.enumerated() {
        if set.contains(i) { input.append(TaskVocabulary.marker) }
        input.append(token)
    }
    return input
}
