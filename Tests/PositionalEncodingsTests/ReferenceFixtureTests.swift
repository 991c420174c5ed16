import Foundation
import PositionalEncodings
import TensorCore
import XCTest

/// PositionLab against golden values from the reference implementations (PyTorch and Hugging Face
/// transformers; see `scripts/make_fixtures.py` and the versions recorded in each fixture).
final class ReferenceFixtureTests: XCTestCase {
    // MARK: RoPE frequencies (rope.json)

    /// Every rope type of transformers' `ROPE_INIT_FUNCTIONS` (and "default"): the pasted
    /// `rope_parameters` dictionary, the model's `max_position_embeddings` and the current length
    /// give the same inverse frequencies (computed there in float32, so to 1e-5 relative) and the
    /// same attention factor (a Python double there).
    func testRoPEFrequenciesMatchTransformers() throws {
        let fixture = try ReferenceFixtures.load("rope.json", as: RoPEFixture.self)
        let covered = Set(fixture.cases.map(\.ropeType))
        for type in fixture.ropeInitFunctions + ["default"] {
            XCTAssertTrue(RoPEScaling.ropeTypes.contains(type), "PositionLab lacks transformers' rope type \(type) (\(fixture.versions))")
            XCTAssertTrue(covered.contains(type), "rope.json has no case of \(type)")
        }
        for c in fixture.cases {
            let label = "\(c.name) (seq_len \(c.sequenceLength.map(String.init) ?? "none"); \(fixture.versions))"
            do {
                let configuration = try RotaryConfiguration(ropeParameters: c.ropeParameters, maximumPositionEmbeddings: c.maximumPositionEmbeddings)
                let rope = try RotaryEncoding(configuration: configuration, headDimension: c.headDimension)
                let f = try rope.frequencies(sequenceLength: c.sequenceLength)
                assertClose(f.inverseFrequencies, c.inverseFrequencies, relative: 1e-5, absolute: 1e-30, "\(label): inverse frequencies")
                XCTAssertEqual(f.attentionFactor, c.attentionFactor, accuracy: 1e-12 * c.attentionFactor, "\(label): attention factor")
                // The dictionary survives PositionLab's own round trip.
                XCTAssertEqual(try RoPEScaling(parameters: configuration.scaling.parameters), configuration.scaling, label)
            } catch {
                XCTFail("\(label): \(error)")
            }
        }
    }

    /// transformers' "proportional" RoPE (factor 1) is HoPE's fraction cut over the whole head.
    func testProportionalRoPEIsHoPEFractionCut() throws {
        let fixture = try ReferenceFixtures.load("rope.json", as: RoPEFixture.self)
        let cases = fixture.cases.filter { $0.ropeType == "proportional" && ($0.ropeParameters["factor"] ?? .number(1)) == .number(1) }
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            guard case let .number(fraction) = c.ropeParameters["partial_rotary_factor"] ?? .number(1),
                  case let .number(base)? = c.ropeParameters["rope_theta"] else { return XCTFail("\(c.name): parameters") }
            let hope = try HoPE.encoding(configuration: RotaryConfiguration(base: base), headDimension: c.headDimension, cut: .fraction(fraction))
            assertClose(try hope.frequencies(sequenceLength: nil).inverseFrequencies, c.inverseFrequencies, relative: 1e-5, absolute: 1e-30,
                        "HoPE .fraction(\(fraction)) vs \(c.name) (\(fixture.versions))")
        }
    }

    // MARK: Rotation (rope_apply.json)

    /// The rotation kernel with the reference's own cos/sin tables, and RotaryEncoding end to end,
    /// reproduce Llama's and GPT-NeoX's `apply_rotary_pos_emb` (half-split pairs (i, i + R/2)) and
    /// GPT-J's `rotate_every_two` (interleaved pairs (2i, 2i + 1)), partial rotation included.
    func testRotationMatchesTransformersForBothPairings() throws {
        let fixture = try ReferenceFixtures.load("rope_apply.json", as: RoPEApplyFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.pairing)), ["halfSplit", "interleaved"])
        for c in fixture.cases {
            let label = "\(c.name) (\(fixture.versions))"
            let pairing = try XCTUnwrap(RotaryPairing(rawValue: c.pairing), label)
            let (b, t) = (c.shape[0], c.shape[2])
            let positions = try PositionIDs(values: c.positionIDs, batchSize: b, length: t)
            let configuration = try RotaryConfiguration(ropeParameters: c.ropeParameters, pairing: pairing,
                                                        maximumPositionEmbeddings: c.maximumPositionEmbeddings)
            let rope = try RotaryEncoding(configuration: configuration, headDimension: c.shape[3])
            XCTAssertEqual(rope.rotaryDimension, c.rotaryDimension, label)
            let tables = try rope.tables(positions: positions, sequenceLength: c.positionIDs.max()! + 1)
            // Angles up to 100 rad: torch forms them in float32, PositionLab in Double.
            assertClose(tables.cos, c.cos, relative: 0, absolute: 2e-5, "\(label): cos table")
            assertClose(tables.sin, c.sin, relative: 0, absolute: 2e-5, "\(label): sin table")
            for (name, input, expected) in [("q", c.q, c.qOut), ("k", c.k, c.kOut)] {
                let x = try Tensor(input, shape: c.shape)
                let kernel = try x.rotatedPairs(cos: c.cos, sin: c.sin, rotaryDimension: c.rotaryDimension, pairing: pairing)
                assertClose(kernel.scalars, expected, relative: 0, absolute: 2e-6, "\(label): rotatedPairs(\(name)) with the reference tables")
                let rotated = try rope.rotate(x, positions: positions, sequenceLength: c.positionIDs.max()! + 1)
                assertClose(rotated.scalars, expected, relative: 0, absolute: 1e-4, "\(label): RotaryEncoding.rotate(\(name))")
            }
        }
    }

    // MARK: T5 buckets (t5_buckets.json)

    /// `T5Bias.bucket` equals `T5Attention._relative_position_bucket` exactly for every relative
    /// position (key − query) in −400…400, causal and bidirectional.
    func testT5BucketsMatchTransformersExactly() throws {
        let fixture = try ReferenceFixtures.load("t5_buckets.json", as: T5BucketFixture.self)
        let relative = Array(fixture.relativePositions.from...fixture.relativePositions.through)
        for c in fixture.cases {
            XCTAssertEqual(c.buckets.count, relative.count)
            let ours = relative.map {
                T5Bias.bucket(relativePosition: $0, bidirectional: c.bidirectional, numberOfBuckets: c.numberOfBuckets, maximumDistance: c.maximumDistance)
            }
            let mismatches = zip(relative, zip(ours, c.buckets)).filter { $0.1.0 != $0.1.1 }
            XCTAssertTrue(mismatches.isEmpty, "T5 buckets \(c.numberOfBuckets)/\(c.maximumDistance) bidirectional=\(c.bidirectional) "
                          + "(\(fixture.versions)): \(mismatches.prefix(6).map { "n=\($0.0): \($0.1.0) vs \($0.1.1)" })")
        }
    }

    /// The bias table is gathered at those buckets: key − query = −(query − key).
    func testT5BiasUsesKeyMinusQuery() throws {
        var generator = SplitMix64(seed: 3)
        let t5 = try T5Bias(numberOfBuckets: 8, maximumDistance: 20, bidirectional: true, numberOfHeads: 1, generator: &generator)
        let positions = PositionIDs.sequential(batchSize: 1, length: 6)
        let bias = try t5.scoreBias(queries: Tensor(zeros: [1, 1, 6, 4]), queryPositions: positions, keyPositions: positions).scalars
        let table = t5.table.scalars
        for i in 0..<6 { for j in 0..<6 {
            let bucket = T5Bias.bucket(relativePosition: j - i, bidirectional: true, numberOfBuckets: 8, maximumDistance: 20)
            XCTAssertEqual(bias[i * 6 + j], table[bucket], "query \(i), key \(j)")
        } }
    }

    // MARK: ALiBi (alibi.json)

    /// The slopes equal BLOOM's `_get_alibi_slopes` (via `build_alibi_tensor`) and MPT's
    /// `build_mpt_alibi_tensor` for head counts 1…16, 20, 24, 32, 40, 48, 64 and 112; the two
    /// references agree with each other up to their float32 rounding.
    func testALiBiSlopesMatchBLOOMAndMPT() throws {
        let fixture = try ReferenceFixtures.load("alibi.json", as: ALiBiFixture.self)
        XCTAssertTrue(Set([6, 8, 12, 16, 24, 32]).isSubset(of: fixture.cases.map(\.heads)))
        for c in fixture.cases {
            let ours = ALiBi.slopes(numberOfHeads: c.heads)
            assertClose(ours, c.bloom, relative: 2e-6, "ALiBi \(c.heads) heads vs BLOOM (\(fixture.versions))")
            assertClose(ours, c.mpt, relative: 2e-6, "ALiBi \(c.heads) heads vs MPT (\(fixture.versions))")
            assertClose(try ALiBi(numberOfHeads: c.heads).slopes, c.bloom, relative: 2e-6, "ALiBi(numberOfHeads: \(c.heads)).slopes")
        }
    }

    // MARK: Sinusoidal (sinusoidal.json)

    /// SinusoidalEncoding's layout is interleaved (P[p, 2i] = sin, P[p, 2i+1] = cos), the layout of
    /// DistilBERT's `create_sinusoidal_embeddings` (and Vaswani et al.), which it equals directly.
    /// Marian's `MarianSinusoidalPositionalEmbedding` has the same frequencies but concatenates the
    /// sines (columns [0, C/2)) and the cosines (columns [C/2, C)): its column j < C/2 is our 2j and
    /// its column C/2 + j our 2j + 1, which is how it is compared.
    func testSinusoidalTablesMatchDistilBERTAndMarian() throws {
        let fixture = try ReferenceFixtures.load("sinusoidal.json", as: SinusoidalFixture.self)
        for c in fixture.cases {
            let label = "sinusoidal C=\(c.dim) (\(fixture.versions))"
            let encoding = try SinusoidalEncoding(modelDimension: c.dim)
            let table = (0..<c.positions).flatMap { encoding.row(position: $0) }
            assertClose(table, c.distilbertInterleaved, relative: 0, absolute: 1e-6, "\(label) vs DistilBERT (interleaved)")
            let embedding = try encoding.inputEmbedding(positions: .sequential(batchSize: 1, length: c.positions)).scalars
            assertClose(embedding, c.distilbertInterleaved, relative: 0, absolute: 1e-6, "\(label) inputEmbedding vs DistilBERT")
            let half = c.dim / 2
            let concatenated = (0..<c.positions).flatMap { p -> [Float] in
                let row = encoding.row(position: p)
                return (0..<half).map { row[2 * $0] } + (0..<half).map { row[2 * $0 + 1] }
            }
            assertClose(concatenated, c.marianConcatenated, relative: 0, absolute: 1e-6, "\(label) vs Marian (concatenated)")
        }
    }
}
