import TensorCore

/// The one token layout every symbolic task shares, so that a mixture of tasks trains one model
/// (vocabularySize 90 for every task below):
///
/// | token   | meaning                                                              | rendered as |
/// |---------|----------------------------------------------------------------------|-------------|
/// | 0       | padding (never counted in the loss)                                  | `_`         |
/// | 1       | separator between input and target (T5's framing)                    | `=`         |
/// | 2       | marker: the next token is one of the k the target depends on         | `^`         |
/// | 3       | query: the key after it is the question (recall)                     | `?`         |
/// | 4       | plus, between the operands (addition)                                | `+`         |
/// | 5…15    | task prefixes: 5 copy, 6 reverse, 7 sparse, 8 parity, 9 recall, 10 addition, 11 incontext; 12…15 reserved | `copy:` … |
/// | 16…25   | digits 0…9 (addition; parity's bits are the digits 0 and 1)          | `0`…`9`     |
/// | 26…89   | symbols s₀…s₆₃ (copy, reverse, sparse, recall, incontext)            | `a`…`z`, `A`…`Z`, `#52`…`#63` |
///
/// A task with an alphabet of n symbols uses s₀…sₙ₋₁. Byte-level data (`JSONLinesTask`, `TextTask`)
/// has its own layout.
public enum TaskVocabulary {
    public static let padding = 0, separator = 1, marker = 2, query = 3, plus = 4
    public static let firstPrefix = 5, prefixSlots = 11
    public static let firstDigit = 16
    public static let firstSymbol = 26, symbolCount = 64
    /// The vocabulary size of every symbolic task.
    public static let size = firstSymbol + symbolCount

    /// The prefix token of each symbolic task, named as on the command line.
    public enum Prefix: Int, CaseIterable, Sendable {
        case copy = 5, reverse, sparse, parity, recall, addition, incontext
        public var name: String { "\(self)" }
    }

    public static func prefix(_ task: Prefix) -> Int { task.rawValue }
    /// The token of the decimal digit `d` (0…9).
    public static func digit(_ d: Int) -> Int { firstDigit + d }
    /// The token of symbol sᵢ (0 ≤ i < 64).
    public static func symbol(_ i: Int) -> Int { firstSymbol + i }

    /// The tokens, readable: "copy: a b c = a b c", digits as digits, markers as ^.
    public static func render(_ tokens: [Int]) -> String {
        tokens.map(render).joined(separator: " ")
    }

    public static func render(_ token: Int) -> String {
        switch token {
        case padding: return "_"
        case separator: return "="
        case marker: return "^"
        case query: return "?"
        case plus: return "+"
        case firstPrefix..<firstDigit: return Prefix(rawValue: token).map { "\($0.name):" } ?? "<prefix\(token)>"
        case firstDigit..<firstSymbol: return "\(token - firstDigit)"
        case firstSymbol..<size:
            let i = token - firstSymbol
            let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            return i < letters.count ? String(letters[i]) : "#\(i)"
        default: return "<\(token)>"
        }
    }

    /// Checks an alphabet size against the layout's 64 symbols.
    static func checkAlphabet(_ alphabetSize: Int, _ operation: String) throws {
        try requireArgument((2...symbolCount).contains(alphabetSize), operation, "alphabetSize", alphabetSize,
                    "2…\(symbolCount) (the shared layout's symbols)")
    }

    /// `count` random symbol tokens from the first `alphabetSize` symbols.
    static func randomSymbols(_ count: Int, alphabetSize: Int, generator: inout SplitMix64) -> [Int] {
        (0..<count).map { _ in symbol(generator.nextInt(in: 0..<alphabetSize)) }
    }
}

/// Throws unless a task's `size` is at least 1.
func checkSize(_ size: Int, _ operation: String) throws {
    try requireArgument(size >= 1, operation, "size", size, "at least 1")
}
