import Models
import TensorCore

/// Associative recall, or needle retrieval (Ba et al. 2016, "Using Fast Weights to Attend to the
/// Recent Past"; Arora et al. 2023, "Zoology", multi-query associative recall; the "needle in a
/// haystack" probes of long-context models): `size` key–value pairs, then a query key; the target
/// is the value stored with that key. The queried pair lies at any distance from the query (uniform
/// over the pairs, or chosen with `example(size:queriedPair:generator:)` for depth sweeps), so the
/// task asks for content-based retrieval across the whole context.
///
/// A key is `keyLength` symbols, a value one symbol, from an alphabet of `alphabetSize` symbols
/// (keys distinct within an example, so at most alphabetSize^keyLength pairs; values may repeat).
///
///     recall: k₁ k₁' v₁ k₂ k₂' v₂ … kₙ kₙ' vₙ ? kᵢ kᵢ' = vᵢ      (keyLength 2)
///
/// Tokens: prefix 9, n·(keyLength + 1) pair tokens, the query token 3, the key, separator 1, the
/// value; sequence length n·(keyLength + 1) + keyLength + 4; the loss counts the value only.
public struct RecallTask: SequenceTask {
    public let alphabetSize: Int
    public let keyLength: Int

    /// `alphabetSize` 2…64; `keyLength` 1…8 symbols per key.
    public init(alphabetSize: Int = 32, keyLength: Int = 2) throws {
        try TaskVocabulary.checkAlphabet(alphabetSize, "RecallTask")
        try requireArgument((1...8).contains(keyLength), "RecallTask", "keyLength", keyLength, "1…8 symbols")
        self.alphabetSize = alphabetSize
        self.keyLength = keyLength
    }

    public var vocabularySize: Int { TaskVocabulary.size }
    public var name: String { "recall" }
    public func sequenceLength(size: Int) -> Int { size * (keyLength + 1) + keyLength + 4 }

    /// The number of distinct keys, alphabetSize^keyLength (capped at 2⁴⁰): the largest `size`.
    public var capacity: Int {
        (0..<keyLength).reduce(1) { product, _ in min(product * alphabetSize, 1 << 40) }
    }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "RecallTask")
        return try example(size: size, queriedPair: generator.nextInt(in: 0..<size), generator: &generator)
    }

    /// An example whose query asks for pair `queriedPair` (0-based; size − 1 is the last pair, next
    /// to the query).
    public func example(size: Int, queriedPair: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "RecallTask")
        try requireArgument(size <= capacity, "RecallTask", "size", size,
                            "at most \(capacity) pairs (distinct keys of \(keyLength) symbols over \(alphabetSize))")
        try requireArgument((0..<size).contains(queriedPair), "RecallTask", "queriedPair", queriedPair, "0..<\(size)")
        let keys = generator.distinct(size, from: capacity).map(keySymbols)
        let values = (0..<size).map { _ in generator.nextInt(in: 0..<alphabetSize) }
        return example(keys: keys, values: values, queriedPair: queriedPair)
    }

    /// The example of given pairs (symbol indices) and queried pair.
    func example(keys: [[Int]], values: [Int], queriedPair: Int) -> Example {
        var input: [Int] = []
        input.reserveCapacity(keys.count * (keyLength + 1) + keyLength + 1)
        for (key, value) in zip(keys, values) { input += (key + [value]).map(TaskVocabulary.symbol) }
        input += [TaskVocabulary.query] + keys[queriedPair].map(TaskVocabulary.symbol)
        return Example.framed(prefix: TaskVocabulary.prefix(.recall), input: input,
                              target: [TaskVocabulary.symbol(values[queriedPair])])
    }

    /// Key number `index` as its keyLength symbol indices (base alphabetSize, most significant first).
    func keySymbols(_ index: Int) -> [Int] {
        var digits = [Int](repeating: 0, count: keyLength), rest = index
        for i in stride(from: keyLength - 1, through: 0, by: -1) {
            digits[i] = rest % alphabetSize
            rest /= alphabetSize
        }
        return digits
    }
}
