import Foundation
import Models
import TensorCore

/// User data as a text-to-text task (T5's framing, Raffel et al. 2020): a JSON-lines file of
/// {"input": "…", "target": "…"} string pairs, one object per line (blank lines skipped; other
/// keys ignored; the target must not be empty), tokenized byte-level: the UTF-8 bytes of input
/// and target.
///
/// Byte layout (vocabulary 259): 0…255 the bytes, 256 separator, 257 prefix, 258 padding.
///
///     257, input bytes…, 256, target bytes…       (loss on the target bytes only)
///
/// `size` is the largest number of input + target bytes: `example(size:generator:)` draws uniformly
/// among the pairs that fit (sequence length at most size + 2); an error says when none fits.
/// Errors name the file and, for a bad line, its 1-based line number.
public struct JSONLinesTask: SequenceTask {
    public static let separator = 256, prefix = 257, padding = 258, vocabularySize = 259
    public typealias DataError = TextTask.DataError

    public struct Pair: Equatable, Sendable {
        public var input: [UInt8]
        public var target: [UInt8]
        /// Input + target bytes: the pair's `size`.
        public var size: Int { input.count + target.count }
    }

    /// The pairs, shortest first (ties in file order).
    public let pairs: [Pair]
    public let path: String

    public init(contentsOf url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DataError(path: url.path, reason: "cannot be read")
        }
        try self.init(bytes: [UInt8](data), path: url.path)
    }

    public init(bytes: [UInt8], path: String = "<jsonl>") throws {
        guard !bytes.isEmpty else { throw DataError(path: path, reason: "the file is empty") }
        var pairs: [Pair] = []
        let text = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...] // a byte-order mark
        for (index, line) in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let fail = { (reason: String) in DataError(path: path, reason: "line \(index + 1): \(reason)") }
            guard let text = String(validating: line, as: UTF8.self) else { throw fail("not valid UTF-8 text") }
            if text.allSatisfy(\.isWhitespace) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line)) } catch {
                throw fail("not valid JSON; expected {\"input\": \"…\", \"target\": \"…\"}")
            }
            guard let fields = object as? [String: Any] else { throw fail("expected a JSON object {\"input\": \"…\", \"target\": \"…\"}") }
            var strings: [String] = []
            for key in ["input", "target"] {
                guard let value = fields[key] else { throw fail("missing key \"\(key)\"") }
                guard let string = value as? String else { throw fail("\"\(key)\" must be a string") }
                strings.append(string)
            }
            guard !strings[1].isEmpty else { throw fail("\"target\" is empty (the loss counts target bytes only)") }
            pairs.append(Pair(input: Array(strings[0].utf8), target: Array(strings[1].utf8)))
        }
        guard !pairs.isEmpty else { throw DataError(path: path, reason: "contains no examples (only blank lines)") }
        self.pairs = pairs.enumerated().sorted { ($0.element.size, $0.offset) < ($1.element.size, $1.offset) }.map(\.element)
        self.path = path
    }

    public var name: String { "jsonl" }
    public var vocabularySize: Int { JSONLinesTask.vocabularySize }
    public var paddingToken: Int { JSONLinesTask.padding }
    public func sequenceLength(size: Int) -> Int { size + 2 }
    /// The size of the longest pair: every example fits in sequenceLength(size: longestSize).
    public var longestSize: Int { pairs.last?.size ?? 0 }

    public func example(size: Int, generator: inout SplitMix64) throws -> Example {
        try checkSize(size, "JSONLinesTask")
        // The pairs are sorted by size: those that fit are a prefix.
        var low = 0, high = pairs.count
        while low < high {
            let middle = (low + high) / 2
            if pairs[middle].size <= size { low = middle + 1 } else { high = middle }
        }
        try requireArgument(low > 0, "JSONLinesTask", "size", size,
                            "at least \(pairs[0].size), the input + target bytes of the shortest example in \(path)")
        return example(pairs[generator.nextInt(in: 0..<low)])
    }

    /// The tokens of one pair.
    public func example(_ pair: Pair) -> Example {
        Example.framed(prefix: JSONLinesTask.prefix, input: pair.input.map(Int.init), separator: JSONLinesTask.separator,
                       target: pair.target.map(Int.init))
    }
}
