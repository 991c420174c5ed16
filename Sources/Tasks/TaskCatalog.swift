import Foundation
import TensorCore

/// The settings a task may take from the command line; each task reads the ones it has.
public struct TaskOptions: Codable, Equatable, Sendable {
    /// Symbols (copy 16, reverse 16, sparse 16, recall 32, incontext 64 when nil).
    public var alphabetSize: Int?
    /// Marked tokens of sparse and parity.
    public var k: Int
    /// Window of the k marked tokens, from the end (sparse, parity; nil: anywhere).
    public var locality: Int?
    /// Symbols per key (recall).
    public var keyLength: Int
    public var digitOrder: DigitOrder
    /// Random offset of the coupled position IDs (addition).
    public var maximumOffset: Int
    public var padOperands: Bool
    /// Where "+" and "=" sit among the coupled IDs (addition; `.fixed` in runs made before 2026-11-29).
    public var additionMarkers: AdditionMarkers
    /// The JSON-lines file of the jsonl task.
    public var data: URL?
    /// Mixture weights, one per task of a "+" name (nil: uniform).
    public var weights: [Double]?
    /// The sparse task's target function (`.sum` when absent from a file).
    public var sparseTarget: SparseTarget
    /// A byte-level BPE tokenizer.json for the text task (models imported from transformers); nil:
    /// bytes are tokens.
    public var tokenizer: URL?

    public init(alphabetSize: Int? = nil, k: Int = 2, locality: Int? = nil, keyLength: Int = 2,
                digitOrder: DigitOrder = .reversedResult, maximumOffset: Int = 0, padOperands: Bool = false,
                additionMarkers: AdditionMarkers = .coupled, data: URL? = nil, weights: [Double]? = nil,
                sparseTarget: SparseTarget = .sum, tokenizer: URL? = nil) {
        self.alphabetSize = alphabetSize; self.k = k; self.locality = locality; self.keyLength = keyLength
        self.digitOrder = digitOrder; self.maximumOffset = maximumOffset; self.padOperands = padOperands
        self.additionMarkers = additionMarkers
        self.data = data; self.weights = weights; self.sparseTarget = sparseTarget; self.tokenizer = tokenizer
    }

    /// Every key may be absent (its default applies), so a sweep file names only what it sets.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(alphabetSize: try c.decodeIfPresent(Int.self, forKey: .alphabetSize), k: try c.decodeIfPresent(Int.self, forKey: .k) ?? 2,
                  locality: try c.decodeIfPresent(Int.self, forKey: .locality), keyLength: try c.decodeIfPresent(Int.self, forKey: .keyLength) ?? 2,
                  digitOrder: try c.decodeIfPresent(DigitOrder.self, forKey: .digitOrder) ?? .reversedResult,
                  maximumOffset: try c.decodeIfPresent(Int.self, forKey: .maximumOffset) ?? 0,
                  padOperands: try c.decodeIfPresent(Bool.self, forKey: .padOperands) ?? false,
                  additionMarkers: try c.decodeIfPresent(AdditionMarkers.self, forKey: .additionMarkers) ?? .coupled,
                  data: try c.decodeIfPresent(String.self, forKey: .data).map { URL(fileURLWithPath: $0) },
                  weights: try c.decodeIfPresent([Double].self, forKey: .weights),
                  sparseTarget: try c.decodeIfPresent(SparseTarget.self, forKey: .sparseTarget) ?? .sum,
                  tokenizer: try c.decodeIfPresent(String.self, forKey: .tokenizer).map { URL(fileURLWithPath: $0) })
    }

    public func encode(to encoder: Encoder) throws { try encode(to: encoder, includingAdditionMarkers: true) }

    /// Without `additionMarkers` when `includingAdditionMarkers` is false: a run's config.json
    /// records them only for an addition run with coupled markers, so that every run made before
    /// they existed (addition with fixed markers, and every other task) keeps its identity.
    public func encode(to encoder: Encoder, includingAdditionMarkers: Bool) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(alphabetSize, forKey: .alphabetSize); try c.encode(k, forKey: .k)
        try c.encodeIfPresent(locality, forKey: .locality); try c.encode(keyLength, forKey: .keyLength)
        try c.encode(digitOrder, forKey: .digitOrder); try c.encode(maximumOffset, forKey: .maximumOffset)
        try c.encode(padOperands, forKey: .padOperands)
        if includingAdditionMarkers { try c.encode(additionMarkers, forKey: .additionMarkers) }
        try c.encodeIfPresent(data?.path, forKey: .data)
        try c.encodeIfPresent(weights, forKey: .weights); try c.encode(sparseTarget, forKey: .sparseTarget)
        try c.encodeIfPresent(tokenizer?.path, forKey: .tokenizer)
    }

    enum CodingKeys: String, CodingKey {
        case alphabetSize, k, locality, keyLength, digitOrder, maximumOffset, padOperands, additionMarkers, data, weights,
             sparseTarget, tokenizer
    }
}

/// Every task by its command-line name.
public enum TaskCatalog {
    /// The task names `named` accepts, alone or joined by "+" into a mixture.
    public static let names = ["copy", "reverse", "sparse", "parity", "recall", "addition", "incontext", "jsonl"]

    /// The task called `name`: one of `names`, or several joined by "+" ("copy+sparse"), a
    /// `TaskMixture` weighted by `options.weights` (uniform when nil).
    public static func named(_ name: String, options: TaskOptions = TaskOptions()) throws -> any SequenceTask {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map { String($0) }
        if parts.count == 1 { return try single(name, options) }
        let tasks = try parts.map { try single($0, options) }
        return try TaskMixture(tasks, weights: options.weights)
    }

    private static func single(_ name: String, _ o: TaskOptions) throws -> any SequenceTask {
        switch name {
        case "copy": return try CopyTask(alphabetSize: o.alphabetSize ?? 16)
        case "reverse": return try ReverseTask(alphabetSize: o.alphabetSize ?? 16)
        case "sparse":
            return try SparseTask(k: o.k, locality: o.locality, alphabetSize: o.alphabetSize ?? SparseTask.defaultAlphabet(k: o.k, target: o.sparseTarget),
                                  target: o.sparseTarget)
        case "parity": return try ParityTask(k: o.k, locality: o.locality)
        case "recall": return try RecallTask(alphabetSize: o.alphabetSize ?? 32, keyLength: o.keyLength)
        case "addition":
            return try AdditionTask(digitOrder: o.digitOrder, maximumOffset: o.maximumOffset, padOperands: o.padOperands,
                                    markers: o.additionMarkers)
        case "incontext": return try InContextCopyTask(alphabetSize: o.alphabetSize ?? TaskVocabulary.symbolCount)
        case "jsonl":
            guard let data = o.data else {
                throw ConfigurationError(parameter: "data", value: "none",
                                                  allowed: "a JSON-lines file of {\"input\", \"target\"} pairs for the jsonl task")
            }
            return try JSONLinesTask(contentsOf: data)
        default:
            throw ConfigurationError(parameter: "task", value: "\"\(name)\"",
                                              allowed: names.joined(separator: ", ") + ", or names joined by + (e.g. copy+sparse)")
        }
    }
}
