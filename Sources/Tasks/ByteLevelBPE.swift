import Foundation
import PositionalEncodings
import TensorCore

/// Byte-level BPE (Radford et al. 2019; Sennrich et al. 2016) as Hugging Face `tokenizers` writes
/// it in tokenizer.json — the tokenizers of GPT-2, Llama 3, Qwen 2, SmolLM. Encoding, as
/// `tokenizers` does it with `add_special_tokens=False`:
///
/// 1. added tokens (`added_tokens`, special or not) are cut out of the text first and map to their IDs;
/// 2. the normalizer (none, or NFC) is applied to the rest;
/// 3. the pre-tokenizer splits it into words: ByteLevel with GPT-2's pattern, or a Split by a
///    pattern (Llama 3's and Qwen's) before a ByteLevel without one; each word's UTF-8 bytes are
///    written in GPT-2's byte alphabet (`ByteLevelAlphabet`);
/// 4. each word is merged pair by pair, always the pair with the lowest rank in `merges`, until
///    no ranked pair is left (with `ignore_merges`, a word already in the vocabulary is taken whole).
///
/// Decoding maps IDs to their strings and the byte alphabet back to bytes. Anything else in the
/// file (another model type such as SentencePiece's Unigram, another normalizer or pre-tokenizer)
/// is refused with a message naming it: never a silently different tokenization.
public struct ByteLevelBPE: Sendable {
    public let vocabulary: [String: Int]
    public let tokens: [Int: String]
    let ranks: [Pair: Int]
    let addedTokens: [(content: [UInt8], id: Int)]
    let addedByFirstByte: [UInt8: [Int]]
    let pattern: NSRegularExpression?
    let normalizeNFC: Bool
    let ignoreMerges: Bool
    let addPrefixSpace: Bool
    /// add_prefix_space of a ByteLevel after a Split: it prefixes every word, not the text.
    let prefixEachWord: Bool

    struct Pair: Hashable, Sendable { let left: String, right: String }

    /// IDs 0..<count, the size of the model's embedding table at least.
    public var vocabularySize: Int { (tokens.keys.max() ?? -1) + 1 }

    /// GPT-2's pre-tokenization pattern (ByteLevel with use_regex).
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    public init(contentsOf url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TextTask.DataError(path: url.path, reason: "cannot be read")
        }
        try self.init(json: data, path: url.path)
    }

    public init(json data: Data, path: String = "tokenizer.json") throws {
        func fail(_ reason: String) -> TextTask.DataError { TextTask.DataError(path: path, reason: reason) }
        try DuplicateKeys.check(data, in: path)
        guard case let .object(root)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw fail("is not a JSON object (a tokenizer.json of Hugging Face tokenizers)")
        }
        guard case let .object(model)? = root["model"] else { throw fail("has no \"model\" object") }
        guard case let .string(type)? = model["type"], type == "BPE" else {
            let type = model["type"]?.compactText ?? "none"
            throw fail("model type \(type) is not supported; supported: BPE (byte-level, as GPT-2, Llama 3, Qwen and SmolLM use)"
                       + (type.contains("Unigram") ? "; SentencePiece Unigram models are not supported" : ""))
        }
        if case .bool(true)? = model["byte_fallback"] {
            throw fail("byte_fallback BPE (SentencePiece-style, Llama 2) is not supported; supported: byte-level BPE")
        }
        guard case let .object(vocab)? = model["vocab"] else { throw fail("model.vocab is not an object") }
        var vocabulary: [String: Int] = [:], tokens: [Int: String] = [:]
        for (token, value) in vocab {
            guard case let .number(n) = value, n >= 0, n < 1e8, n == n.rounded() else {
                throw fail("model.vocab[\"\(token)\"] = \(value.compactText) is not an ID (a whole number from 0 to 99999999)")
            }
            if let other = tokens[Int(n)] {
                // Decoding would have to pick one of the two: a broken vocabulary, refused rather than guessed.
                let (first, second) = other < token ? (other, token) : (token, other)
                throw fail("model.vocab gives the id \(Int(n)) to both \"\(first)\" and \"\(second)\"; each id names one token")
            }
            vocabulary[token] = Int(n); tokens[Int(n)] = token
        }
        var ranks: [Pair: Int] = [:]
        if case let .array(merges)? = model["merges"] {
            for (rank, merge) in merges.enumerated() {
                let parts: [String]
                switch merge {
                case let .string(s): parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                case let .array(a): parts = a.compactMap { if case let .string(s) = $0 { return s }; return nil }
                default: parts = []
                }
                guard parts.count == 2 else { throw fail("model.merges[\(rank)] is \(merge.compactText), not a pair") }
                let pair = Pair(left: parts[0], right: parts[1])
                guard vocabulary[parts[0] + parts[1]] != nil else {
                    throw fail("model.merges[\(rank)] = \(merge.compactText) makes \"\(parts[0] + parts[1])\", which is not in model.vocab")
                }
                if ranks[pair] == nil { ranks[pair] = rank }
            }
        } else { throw fail("model.merges is missing") }
        var added: [(String, Int)] = []
        if case let .array(list)? = root["added_tokens"] {
            for entry in list {
                guard case let .object(o) = entry, case let .string(content)? = o["content"], !content.isEmpty,
                      case let .number(number)? = o["id"] else {
                    throw fail("an added_tokens entry lacks a non-empty content or an id")
                }
                guard number >= 0, number < 1e8, number == number.rounded() else {
                    throw fail("added token \"\(content)\" has id \(number); allowed: a whole number from 0 to 99999999")
                }
                let id = Int(number)
                if let other = tokens[id], other != content {
                    throw fail("added token \"\(content)\" has the id \(id) of \"\(other)\"; each id names one token")
                }
                added.append((content, id))
                tokens[id] = content
                vocabulary[content] = id
            }
        }
        // Longest first, so that "<|endoftext|>" wins over a shorter token it contains; matched as
        // UTF-8 bytes (as tokenizers does), never as grapheme clusters.
        let byLength = added.map { (content: Array($0.0.utf8), id: $0.1) }.sorted { $0.content.count > $1.content.count }
        addedTokens = byLength
        addedByFirstByte = Dictionary(grouping: byLength.indices) { byLength[$0].content[0] }
        switch root["normalizer"] {
        case nil, .null?: normalizeNFC = false
        case let .object(o)? where o["type"] == .string("NFC"): normalizeNFC = true
        case let other?: throw fail("normalizer \(other.compactText) is not supported; supported: none, NFC")
        }
        // Pre-tokenizer: ByteLevel (its own pattern or none), or Sequence [Split(pattern), ByteLevel(no pattern)].
        func byteLevel(_ o: [String: JSONValue]) -> (pattern: String?, prefix: Bool) {
            let regex = o["use_regex"] != .bool(false)
            return (regex ? Self.gpt2Pattern : nil, o["add_prefix_space"] == .bool(true))
        }
        var patternText: String?
        var prefix = false, split = false
        switch root["pre_tokenizer"] {
        case let .object(o)? where o["type"] == .string("ByteLevel"):
            (patternText, prefix) = byteLevel(o)
        case let .object(o)? where o["type"] == .string("Sequence"):
            guard case let .array(steps)? = o["pretokenizers"] else { throw fail("pre_tokenizer Sequence without pretokenizers") }
            var sawByteLevel = false
            for step in steps {
                guard case let .object(s) = step else { throw fail("pre_tokenizer step \(step.compactText)") }
                if s["type"] == .string("Split"), case let .object(p)? = s["pattern"], case let .string(regex)? = p["Regex"],
                   s["behavior"] == .string("Isolated"), s["invert"] != .bool(true), patternText == nil {
                    patternText = regex
                    split = true
                } else if s["type"] == .string("ByteLevel"), !sawByteLevel {
                    let (own, addPrefix) = byteLevel(s)
                    if let own, patternText == nil { patternText = own } else if own != nil {
                        throw fail("pre_tokenizer: a ByteLevel with its own pattern after a Split is not supported")
                    }
                    prefix = addPrefix
                    sawByteLevel = true
                } else {
                    throw fail("pre_tokenizer step \(step.compactText) is not supported; supported: Split (a Regex, Isolated) then ByteLevel")
                }
            }
            guard sawByteLevel else { throw fail("pre_tokenizer has no ByteLevel step: not a byte-level BPE") }
        case let other:
            throw fail("pre_tokenizer \(other?.compactText ?? "none") is not supported; supported: ByteLevel, or a Split then ByteLevel")
        }
        do {
            pattern = try patternText.map { try NSRegularExpression(pattern: $0) }
        } catch {
            throw fail("pre_tokenizer pattern \(patternText ?? "") is not a regular expression this platform reads")
        }
        addPrefixSpace = prefix
        prefixEachWord = split
        ignoreMerges = model["ignore_merges"] == .bool(true)
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.ranks = ranks
    }

    // MARK: Encoding

    /// The token IDs of `text`, without special tokens added around it (added tokens written in
    /// the text are recognised).
    public func encode(_ text: String) throws -> [Int] {
        var ids: [Int] = []
        var cache: [String: [Int]] = [:]
        for (piece, addedID) in splitAddedTokens(text) {
            if let addedID { ids.append(addedID); continue }
            var normalized = normalizeNFC ? piece.precomposedStringWithCanonicalMapping : piece
            // ByteLevel's add_prefix_space applies to what reaches it: the whole piece on its own, each
            // word of a Split before it.
            if addPrefixSpace, !prefixEachWord, !normalized.hasPrefix(" ") { normalized = " " + normalized }
            for word in preTokenize(normalized) {
                if let known = cache[word] { ids += known; continue }
                let encoded = try encodeWord(word)
                cache[word] = encoded
                ids += encoded
            }
        }
        return ids
    }

    /// The text cut at every added token: (text, nil) pieces and (token, id) pieces, in order.
    /// Tokens are found by their UTF-8 bytes, so a combining mark after one does not hide it.
    func splitAddedTokens(_ text: String) -> [(String, Int?)] {
        guard !addedTokens.isEmpty else { return [(text, nil)] }
        let bytes = Array(text.utf8)
        var pieces: [(String, Int?)] = []
        var plainStart = 0, i = 0
        while i < bytes.count {
            let match = addedByFirstByte[bytes[i]]?.lazy.map { addedTokens[$0] }.first { token in
                token.content.count <= bytes.count - i && bytes[i..<(i + token.content.count)].elementsEqual(token.content)
            }
            guard let match else { i += 1; continue }
            if plainStart < i { pieces.append((String(decoding: bytes[plainStart..<i], as: UTF8.self), nil)) }
            pieces.append((String(decoding: match.content, as: UTF8.self), match.id))
            i += match.content.count
            plainStart = i
        }
        if plainStart < bytes.count { pieces.append((String(decoding: bytes[plainStart...], as: UTF8.self), nil)) }
        return pieces
    }

    /// Words by the pattern (every character belongs to one: unmatched stretches are words too),
    /// each written in the byte alphabet.
    func preTokenize(_ text: String) -> [String] {
        var words: [String] = []
        let characters = ByteLevelAlphabet.characters
        func add(_ piece: Substring) {
            guard !piece.isEmpty else { return }
            let bytes = addPrefixSpace && prefixEachWord && piece.first != " " ? [UInt8(ascii: " ")] + Array(piece.utf8) : Array(piece.utf8)
            words.append(String(String.UnicodeScalarView(bytes.map { characters[Int($0)].unicodeScalars.first! })))
        }
        guard let pattern else { add(Substring(text)); return words }
        let whole = NSRange(text.startIndex..., in: text)
        var last = text.startIndex
        for match in pattern.matches(in: text, range: whole) {
            guard let range = Range(match.range, in: text), !range.isEmpty else { continue }
            add(text[last..<range.lowerBound])
            add(text[range])
            last = range.upperBound
        }
        add(text[last...])
        return words
    }

    /// One pre-tokenized word: its characters merged by rank, then looked up.
    func encodeWord(_ word: String) throws -> [Int] {
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        var symbols = word.map { String($0) }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[Pair(left: symbols[i], right: symbols[i + 1])], rank < (best?.rank ?? Int.max) { best = (rank, i) }
            }
            guard let (_, i) = best else { break }
            // Merge every occurrence of the best pair, left to right, as tokenizers does.
            let pair = (symbols[i], symbols[i + 1])
            var merged: [String] = []
            var j = 0
            while j < symbols.count {
                if j < symbols.count - 1, symbols[j] == pair.0, symbols[j + 1] == pair.1 {
                    merged.append(pair.0 + pair.1); j += 2
                } else {
                    merged.append(symbols[j]); j += 1
                }
            }
            symbols = merged
        }
        return try symbols.map { symbol in
            guard let id = vocabulary[symbol] else {
                throw ConfigurationError(context: "ByteLevelBPE", parameter: "text", value: symbol,
                                         allowed: "symbols of the vocabulary (this tokenizer.json lacks a byte of its alphabet)")
            }
            return id
        }
    }

    // MARK: Decoding

    /// The text of `ids`: added tokens as written, the rest through the byte alphabet; bytes that
    /// do not form UTF-8 are replaced (U+FFFD), as tokenizers does.
    public func decode(_ ids: [Int]) throws -> String {
        var bytes: [UInt8] = []
        let added = Set(addedTokens.map(\.id))
        for id in ids {
            guard let token = tokens[id] else {
                throw ConfigurationError(context: "ByteLevelBPE.decode", parameter: "id", value: "\(id)",
                                         allowed: "0..<\(vocabularySize), the tokenizer's IDs")
            }
            if added.contains(id) { bytes += Array(token.utf8); continue }
            for character in token { bytes += ByteLevelAlphabet.bytes[character].map { [$0] } ?? Array(String(character).utf8) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// GPT-2's reversible map from bytes to printable characters (byte-level BPE's alphabet): the
/// printable Latin-1 bytes stand for themselves, the other 68 bytes take the characters from
/// U+0100 on, in byte order.
public enum ByteLevelAlphabet {
    public static let characters: [Character] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var table = [Character](repeating: " ", count: 256)
        var next = 256
        for byte in 0..<256 {
            if printable.contains(byte) {
                table[byte] = Character(Unicode.Scalar(UInt8(byte)))
            } else {
                table[byte] = Character(Unicode.Scalar(UInt32(next))!)
                next += 1
            }
        }
        return table
    }()

    /// The byte each alphabet character stands for.
    public static let bytes: [Character: UInt8] = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, UInt8($0)) })
}

/// Text to token IDs and back: the bytes themselves (the lab's byte-level runs) or a tokenizer.
public protocol TextCodec: Sendable {
    func encode(_ text: String) throws -> [Int]
    func decode(_ ids: [Int]) throws -> String
}

extension ByteLevelBPE: TextCodec {}

/// Byte-level text: token i is byte i (vocabulary 256).
public struct ByteCodec: TextCodec {
    public init() {}
    public func encode(_ text: String) -> [Int] { text.utf8.map(Int.init) }
    public func decode(_ ids: [Int]) throws -> String {
        guard let bad = ids.first(where: { !(0..<256).contains($0) }) else { return String(decoding: ids.map(UInt8.init), as: UTF8.self) }
        throw ConfigurationError(context: "ByteCodec.decode", parameter: "id", value: "\(bad)", allowed: "0..<256 (bytes)")
    }
}
