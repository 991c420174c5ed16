import Foundation
import PositionalEncodings
import XCTest

/// The golden fixtures in `Fixtures/`, written by `scripts/make_fixtures.sh` from PyTorch and
/// Hugging Face transformers at pinned versions (each file records them). The folder is excluded
/// from the test target, so the files are read from the source tree next to this file.
enum ReferenceFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path,
                                                        NSLocalizedDescriptionKey: "missing fixture \(url.path); run scripts/make_fixtures.sh"])
        }
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }
}

/// The versions a fixture was made with.
struct FixtureVersions: Decodable, CustomStringConvertible {
    let torch: String
    let transformers: String
    var description: String { "torch \(torch), transformers \(transformers)" }
}

/// rope.json: one call of a transformers rope init function.
struct RoPEFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let ropeType: String
        let headDimension: Int
        let maximumPositionEmbeddings: Int
        let ropeParameters: [String: JSONValue]
        let sequenceLength: Int?
        let inverseFrequencies: [Double]
        let attentionFactor: Double

        enum CodingKeys: String, CodingKey {
            case name, ropeType = "rope_type", headDimension = "head_dim", maximumPositionEmbeddings = "max_position_embeddings"
            case ropeParameters = "rope_parameters", sequenceLength = "seq_len", inverseFrequencies = "inv_freq"
            case attentionFactor = "attention_factor"
        }
    }

    let versions: FixtureVersions
    let ropeInitFunctions: [String]
    let cases: [Case]

    enum CodingKeys: String, CodingKey { case versions, ropeInitFunctions = "rope_init_functions", cases }
}

/// rope_apply.json: q and k [B, H, T, D] rotated by the reference code.
struct RoPEApplyFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let pairing: String
        let ropeParameters: [String: JSONValue]
        let maximumPositionEmbeddings: Int
        let shape: [Int]
        let rotaryDimension: Int
        let positionIDs: [Int]
        let q, k: [Float]
        /// The reference's cos and sin tables [B, T, R/2] (one value per pair).
        let cos, sin: [Float]
        let qOut, kOut: [Float]

        enum CodingKeys: String, CodingKey {
            case name, pairing, ropeParameters = "rope_parameters", maximumPositionEmbeddings = "max_position_embeddings", shape
            case rotaryDimension = "rotary_dim", positionIDs = "position_ids", q, k, cos, sin, qOut = "q_out", kOut = "k_out"
        }
    }

    let versions: FixtureVersions
    let cases: [Case]
}

/// t5_buckets.json: buckets of relative positions (key − query) from −R through R.
struct T5BucketFixture: Decodable {
    struct Range: Decodable { let from: Int; let through: Int }
    struct Case: Decodable {
        let numberOfBuckets: Int
        let maximumDistance: Int
        let bidirectional: Bool
        let buckets: [Int]

        enum CodingKeys: String, CodingKey {
            case numberOfBuckets = "num_buckets", maximumDistance = "max_distance", bidirectional, buckets
        }
    }

    let versions: FixtureVersions
    let relativePositions: Range
    let cases: [Case]

    enum CodingKeys: String, CodingKey { case versions, relativePositions = "relative_positions", cases }
}

/// alibi.json: BLOOM's and MPT's slopes for a head count.
struct ALiBiFixture: Decodable {
    struct Case: Decodable { let heads: Int; let bloom: [Double]; let mpt: [Double] }
    let versions: FixtureVersions
    let cases: [Case]
}

/// sinusoidal.json: [positions, dim] tables in DistilBERT's and Marian's layouts.
struct SinusoidalFixture: Decodable {
    struct Case: Decodable {
        let dim: Int
        let positions: Int
        let distilbertInterleaved: [Float]
        let marianConcatenated: [Float]

        enum CodingKeys: String, CodingKey {
            case dim, positions, distilbertInterleaved = "distilbert_interleaved", marianConcatenated = "marian_concatenated"
        }
    }

    let versions: FixtureVersions
    let cases: [Case]
}

/// |actual − expected| ≤ relative·|expected| + absolute, element by element, naming the first
/// few failures.
func assertClose<A: BinaryFloatingPoint, E: BinaryFloatingPoint>(_ actual: [A], _ expected: [E], relative: Double, absolute: Double = 0,
                                                                 _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(message()): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var failures: [String] = []
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let (a, e) = (Double(a), Double(e))
        if !(abs(a - e) <= relative * abs(e) + absolute) { failures.append("[\(i)] \(a) vs \(e)") }
    }
    if !failures.isEmpty {
        XCTFail("\(message()): \(failures.count) of \(actual.count) differ: \(failures.prefix(6).joined(separator: ", "))", file: file, line: line)
    }
}
