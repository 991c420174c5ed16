import Foundation
import Models
import TensorCore

/// Language modelling on a text: every position counts in the loss. Training windows are drawn
/// from the first part of the text and the last `heldOutFraction` is kept apart for evaluation, or
/// whole books are held out (`init(books:heldOutBooks:)`; the default corpus, the King James
/// Bible, in KingJamesBible.swift). Tokens are the text's bytes (vocabulary 256, the lab's own
/// runs), or a tokenizer's IDs (`tokenized(with:)`: models imported from transformers).
public struct TextTask: Sendable {
    /// The vocabulary of byte-level text: token i is byte i.
    public static let byteVocabularySize = 256
    /// Token IDs 0..<vocabularySize.
    public let vocabularySize: Int
    public let training: [Int32]
    public let heldOut: [Int32]
    /// What a token is, for messages: "bytes" or "tokens".
    public let unit: String

    public struct DataError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    public init(bytes: [UInt8], heldOutFraction: Double = 0.1, path: String = "<text>") throws {
        guard !bytes.isEmpty else { throw DataError(path: path, reason: "the file is empty") }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw DataError(path: path, reason: "not valid UTF-8 text")
        }
        guard heldOutFraction >= 0, heldOutFraction < 1 else {
            throw ConfigurationError(context: "TextTask", parameter: "heldOutFraction", value: "\(heldOutFraction)", allowed: "0 ≤ f < 1")
        }
        let split = bytes.count - Int(Double(bytes.count) * heldOutFraction)
        self.init(tokens: bytes[..<split].map(Int32.init), heldOut: bytes[split...].map(Int32.init),
                  vocabularySize: TextTask.byteVocabularySize, unit: "bytes")
    }

    /// A text split by the caller (e.g. by whole books, `init(books:heldOutBooks:)`).
    public init(training: [UInt8], heldOut: [UInt8], path: String = "<text>") throws {
        guard !training.isEmpty else { throw DataError(path: path, reason: "the training text is empty") }
        guard String(validating: training, as: UTF8.self) != nil, String(validating: heldOut, as: UTF8.self) != nil else {
            throw DataError(path: path, reason: "not valid UTF-8 text")
        }
        self.init(tokens: training.map(Int32.init), heldOut: heldOut.map(Int32.init), vocabularySize: TextTask.byteVocabularySize,
                  unit: "bytes")
    }

    init(tokens training: [Int32], heldOut: [Int32], vocabularySize: Int, unit: String) {
        self.training = training; self.heldOut = heldOut; self.vocabularySize = vocabularySize; self.unit = unit
    }

    /// This byte-level text in `tokenizer`'s IDs (training and held-out parts tokenized apart).
    public func tokenized(with tokenizer: ByteLevelBPE) throws -> TextTask {
        guard unit == "bytes" else { return self }
        // The byte split may fall inside a character: move it to the next character boundary.
        let bytes = (training + heldOut).map { UInt8($0) }
        var split = training.count
        while split < bytes.count, bytes[split] & 0xC0 == 0x80 { split += 1 }
        func text(_ part: ArraySlice<UInt8>) -> String { String(decoding: part, as: UTF8.self) }
        return TextTask(tokens: try tokenizer.encode(text(bytes[..<split])).map(Int32.init),
                        heldOut: try tokenizer.encode(text(bytes[split...])).map(Int32.init),
                        vocabularySize: tokenizer.vocabularySize, unit: "tokens")
    }

    public init(contentsOf url: URL, heldOutFraction: Double = 0.1) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DataError(path: url.path, reason: "cannot be read")
        }
        try self.init(bytes: [UInt8](data), heldOutFraction: heldOutFraction, path: url.path)
    }

    /// `size` random windows of `length` + 1 training bytes: inputs the first `length`, targets shifted by one.
    public func batch(size: Int, length: Int, generator: inout SplitMix64) throws -> TokenBatch {
        guard training.count > length + 1 else {
            throw ConfigurationError(context: "TextTask.batch", parameter: "length", value: "\(length)",
                                              allowed: "less than the training text's \(training.count - 1) \(unit)")
        }
        var inputs: [Int] = [], targets: [Int] = []
        inputs.reserveCapacity(size * length); targets.reserveCapacity(size * length)
        for _ in 0..<size {
            let start = generator.nextInt(in: 0..<(training.count - length))
            for i in start..<(start + length) { inputs.append(Int(training[i])); targets.append(Int(training[i + 1])) }
        }
        return TokenBatch(inputs: inputs, targets: targets, lossMask: [Bool](repeating: true, count: inputs.count), batchSize: size, length: length)
    }
}
