import Foundation
import Models
import TensorCore

/// Byte-level language modelling on a text: every byte is a token (vocabulary 256), every
/// position counts in the loss. Training windows are drawn from the first part of the text and
/// the last `heldOutFraction` is kept apart for evaluation, or whole books are held out
/// (`init(books:heldOutBooks:)`; the default corpus, the King James Bible, in KingJamesBible.swift).
public struct TextTask: Sendable {
    public static let vocabularySize = 256
    public let training: [UInt8]
    public let heldOut: [UInt8]

    public struct DataError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
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
        training = Array(bytes[..<split])
        heldOut = Array(bytes[split...])
    }

    /// A text split by the caller (e.g. by whole books, `init(books:heldOutBooks:)`).
    public init(training: [UInt8], heldOut: [UInt8], path: String = "<text>") throws {
        guard !training.isEmpty else { throw DataError(path: path, reason: "the training text is empty") }
        guard String(validating: training, as: UTF8.self) != nil, String(validating: heldOut, as: UTF8.self) != nil else {
            throw DataError(path: path, reason: "not valid UTF-8 text")
        }
        self.training = training
        self.heldOut = heldOut
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
                                              allowed: "less than the training text's \(training.count - 1) bytes")
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
