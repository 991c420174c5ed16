import TensorCore

/// The position ID of every token of a batch: [B, T] row-major. Every scheme reads positions from
/// here, so every way of assigning them (offsets for the KV cache, random offsets, randomized
/// positions, coupled positions) works with every scheme.
public struct PositionIDs: Equatable, Sendable {
    public var values: [Int]
    public let batchSize: Int
    public let length: Int

    public init(values: [Int], batchSize: Int, length: Int) throws {
        guard values.count == batchSize * length else {
            throw TensorError.shapeMismatch(operation: "PositionIDs", shapes: [[batchSize, length], [values.count]], detail: "need B·T values")
        }
        if let negative = values.first(where: { $0 < 0 }) {
            throw TensorError.indexOutOfRange(operation: "PositionIDs", index: negative, validRange: 0..<Int.max)
        }
        self.values = values
        self.batchSize = batchSize
        self.length = length
    }

    /// offset, offset+1, …, offset+T−1 in every row (offset > 0 continues a KV cache).
    public static func sequential(batchSize: Int, length: Int, offset: Int = 0) -> PositionIDs {
        let row = (0..<length).map { $0 + offset }
        return try! PositionIDs(values: Array([[Int]](repeating: row, count: batchSize).joined()), batchSize: batchSize, length: length)
    }

    /// Row `b` of the positions.
    public func row(_ b: Int) -> ArraySlice<Int> { values[(b * length)..<((b + 1) * length)] }

    /// Whether every row holds the same positions up to a constant shift (so that relative
    /// distances, and any bias built on them, are the same for every row).
    public var relativeStructureIsShared: Bool {
        guard batchSize > 1, length > 0 else { return true }
        let first = values[0]
        for b in 1..<batchSize {
            let shift = values[b * length] - first
            for t in 0..<length where values[b * length + t] - values[t] != shift { return false }
        }
        return true
    }

    /// Whether every row's shift relative to row 0 is the same here and in `other`.
    func offsetsMatch(_ other: PositionIDs) -> Bool {
        guard batchSize == other.batchSize, length > 0, other.length > 0 else { return true }
        for b in 0..<batchSize where values[b * length] - values[0] != other.values[b * other.length] - other.values[0] { return false }
        return true
    }
}

/// How training assigns position IDs to a batch (one pipeline for every scheme).
public enum PositionAssignment: Codable, Equatable, Sendable {
    /// 0..T−1.
    case sequential
    /// k..k+T−1 with k drawn per sequence from 0...maximumOffset: the model sees large positions in training.
    case randomOffset(maximumOffset: Int)
    /// A sorted random subset of T distinct positions from [0, maximumPosition) (Ruoss et al. 2023,
    /// "Randomized Positional Encodings Boost Length Generalization of Transformers").
    case randomized(maximumPosition: Int)
    /// Position IDs given by the task, coupled to its structure (Cho et al. 2024, "Position Coupling").
    case coupled

    /// Positions for a batch of `batchSize` sequences of `length` tokens. `taskPositions` ([B, T])
    /// is required by `.coupled` and ignored otherwise.
    public func positions(batchSize: Int, length: Int, taskPositions: [Int]? = nil,
                          generator: inout SplitMix64) throws -> PositionIDs {
        switch self {
        case .sequential:
            return .sequential(batchSize: batchSize, length: length)
        case let .randomOffset(maximumOffset):
            guard maximumOffset >= 0 else {
                throw ConfigurationError(context: "PositionAssignment.randomOffset", parameter: "maximumOffset",
                                                  value: "\(maximumOffset)", allowed: "a non-negative offset")
            }
            var values: [Int] = []
            values.reserveCapacity(batchSize * length)
            for _ in 0..<batchSize {
                let k = generator.nextInt(in: 0..<(maximumOffset + 1))
                values += (0..<length).map { $0 + k }
            }
            return try PositionIDs(values: values, batchSize: batchSize, length: length)
        case let .randomized(maximumPosition):
            guard maximumPosition >= length else {
                throw ConfigurationError(context: "PositionAssignment.randomized", parameter: "maximumPosition",
                                                  value: "\(maximumPosition)", allowed: "at least the sequence length \(length)")
            }
            var values: [Int] = []
            values.reserveCapacity(batchSize * length)
            for _ in 0..<batchSize { values += sortedSample(length, from: maximumPosition, generator: &generator) }
            return try PositionIDs(values: values, batchSize: batchSize, length: length)
        case .coupled:
            guard let taskPositions else {
                throw ConfigurationError(context: "PositionAssignment.coupled", parameter: "taskPositions",
                                                  value: "none", allowed: "the task's coupled position IDs [B, T]")
            }
            return try PositionIDs(values: taskPositions, batchSize: batchSize, length: length)
        }
    }
}

/// k distinct values from 0..<n in increasing order (Floyd's algorithm: O(k) draws for any n).
func sortedSample(_ k: Int, from n: Int, generator: inout SplitMix64) -> [Int] {
    var chosen = Set<Int>()
    chosen.reserveCapacity(k)
    for j in (n - k)..<n {
        let t = generator.nextInt(in: 0..<(j + 1))
        if !chosen.insert(t).inserted { chosen.insert(j) }
    }
    return chosen.sorted()
}
