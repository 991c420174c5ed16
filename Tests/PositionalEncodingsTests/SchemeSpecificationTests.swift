import Foundation
import NN
import TensorCore
import PositionalEncodings
import XCTest

/// A scheme with its settings, from text to a resolved `PositionalScheme` and back.
final class SchemeSpecificationTests: XCTestCase {
    func resolve(_ text: String, trainingLength: Int = 24, maximumLength: Int = 200) throws -> PositionalScheme {
        try SchemeSpecification(parsing: text).resolved(trainingLength: trainingLength, maximumLength: maximumLength)
    }

    func testEverySchemeWithItsSettingsResolves() throws {
        XCTAssertEqual(try resolve("nope"), .none)
        XCTAssertEqual(try resolve("alibi"), .alibi)
        XCTAssertEqual(try resolve("sinusoidal"), .sinusoidal(scale: 1))
        XCTAssertEqual(try resolve(#"sinusoidal{"scale": 0.125}"#), .sinusoidal(scale: 0.125))
        XCTAssertEqual(try resolve("learned"), .learnedAbsolute(maximumLength: 200))
        XCTAssertEqual(try resolve(#"learned{"max_length": 64}"#), .learnedAbsolute(maximumLength: 64))
        XCTAssertEqual(try resolve(#"relative{"max_distance": 8}"#), .relativeBias(maximumDistance: 8))
        XCTAssertEqual(try resolve(#"shaw{"max_distance": 4}"#), .shaw(maximumDistance: 4))
        XCTAssertEqual(try resolve("t5"), .t5(numberOfBuckets: 32, maximumDistance: 128, bidirectional: false))
        XCTAssertEqual(try resolve(#"t5{"buckets": 16, "max_distance": 64, "bidirectional": true}"#),
                       .t5(numberOfBuckets: 16, maximumDistance: 64, bidirectional: true))
        XCTAssertEqual(try resolve("rope"), .rope(try RotaryConfiguration(maximumPositionEmbeddings: 24)))
        XCTAssertEqual(try resolve(#"rope{"rope_theta": 500, "pairing": "interleaved", "partial_rotary_factor": 0.5}"#),
                       .rope(try RotaryConfiguration(base: 500, pairing: .interleaved, partialRotaryFactor: 0.5,
                                                     maximumPositionEmbeddings: 24)))
        let yarn = #"{"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 64}"#
        XCTAssertEqual(try resolve("rope" + yarn),
                       .rope(try RotaryConfiguration(ropeParameters: JSONValue.object(parsing: yarn), maximumPositionEmbeddings: 24)))
        XCTAssertEqual(try resolve("hope"), .hope(try RotaryConfiguration(maximumPositionEmbeddings: 24), cut: .trainingLength(24)))
        XCTAssertEqual(try resolve(#"hope{"keep": 3}"#), .hope(try RotaryConfiguration(maximumPositionEmbeddings: 24), cut: .count(3)))
        XCTAssertEqual(try resolve(#"hope{"fraction": 0.25}"#),
                       .hope(try RotaryConfiguration(maximumPositionEmbeddings: 24), cut: .fraction(0.25)))
        XCTAssertEqual(try resolve(#"hope{"train_length": 100}"#),
                       .hope(try RotaryConfiguration(maximumPositionEmbeddings: 24), cut: .trainingLength(100)))
    }

    /// Written back with every setting, a scheme resolves to itself whatever the run's defaults.
    func testExplicitSettingsRoundTrip() throws {
        let texts = ["nope", "alibi", #"sinusoidal{"scale": 0.5}"#, "learned", "relative", "shaw", #"t5{"bidirectional": true}"#,
                     "rope", #"rope{"rope_type": "linear", "factor": 2}"#, #"rope{"rope_type": "dynamic", "factor": 2}"#,
                     #"rope{"rope_type": "yarn", "factor": 8, "beta_fast": 16}"#,
                     #"rope{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4}"#,
                     #"rope{"rope_type": "longrope", "short_factor": [1, 1, 1, 1], "long_factor": [1, 2, 3, 4]}"#,
                     #"rope{"rope_type": "proportional", "factor": 2, "partial_rotary_factor": 0.5}"#,
                     "hope", #"hope{"keep": 2}"#, #"hope{"fraction": 0.5, "rope_theta": 1000}"#]
        for text in texts {
            let scheme = try resolve(text)
            let explicit = SchemeSpecification(scheme)
            XCTAssertEqual(try explicit.resolved(trainingLength: 7, maximumLength: 9), scheme, text)
            // Through JSON (an object) and through the text form.
            let decoded = try JSONDecoder().decode(SchemeSpecification.self, from: JSONEncoder().encode(explicit))
            XCTAssertEqual(decoded, explicit, text)
            XCTAssertEqual(try SchemeSpecification(parsing: explicit.description), explicit, text)
        }
        // A plain name decodes from a JSON string, as sweep files and older config.json files write it.
        XCTAssertEqual(try JSONDecoder().decode([SchemeSpecification].self, from: Data(#"["rope", "t5{\"buckets\": 8}"]"#.utf8)),
                       [try SchemeSpecification(name: "rope"), try SchemeSpecification(name: "t5", settings: ["buckets": .number(8)])])
    }

    func testBadSpecificationsNameWhatIsWrong() {
        let cases: [(String, [String])] = [
            ("warp", ["positional scheme", "warp", "rope"]),
            (#"rope{"factr": 2}"#, ["rope setting", "factr", "rope_theta"]),
            (#"rope{"rope_type": "linear", "beta_fast": 2}"#, ["beta_fast", "factor"]),
            (#"rope{"rope_type": "magic"}"#, ["rope_type", "magic", "yarn"]),
            (#"alibi{"slope": 1}"#, ["alibi setting", "slope", "none"]),
            (#"t5{"buckets": 2.5}"#, ["t5.buckets", "2.5", "whole number"]),
            (#"t5{"buckets": "many"}"#, ["t5.buckets", "a number"]),
            (#"learned{"max_length": 0}"#, ["learned.max_length", "0"]),
            (#"hope{"keep": 2, "fraction": 0.5}"#, ["hope cut", "fraction and keep"]),
            (#"hope{"keep": 99}"#, ["99"]),
            (#"rope{"pairing": "diagonal"}"#, ["pairing", "diagonal", "interleaved"]),
            (#"rope{"rope_type": "yarn"}"#, ["factor"]),
            (#"rope{"rope_type": "yarn""#, ["settings of rope", "JSON object"]),
            (#"sinusoidal{"scale": 1e300}"#, ["sinusoidal.scale"]),
            // Found by scripts/fuzz.sh (FuzzSchemeSpecification): a length beyond Int trapped in conversion.
            (#"rope{"rope_type": "longrope", "short_factor": [1,1,1,1], "long_factor": [2,2,2,2], "original_max_position_embeddings": 4e60}"#,
             ["longrope.original_max_position_embeddings", "4294967296"]),
            (#"rope{"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 1e300}"#,
             ["yarn.original_max_position_embeddings"]),
        ]
        for (text, expected) in cases {
            var generator = SplitMix64(seed: 0)
            XCTAssertThrowsError(try SchemeSpecification(parsing: text).resolved(trainingLength: 24, maximumLength: 100)
                .makeEncoding(modelDimension: 16, numberOfHeads: 2, generator: &generator)) { error in
                for part in expected { XCTAssertTrue("\(error)".contains(part), "\(text): \(error) should name \(part)") }
            }
        }
    }

    func testLabelsShowOnlyWhatDiffersFromTheDefaults() throws {
        let defaults = SchemeSpecification(try resolve("rope"))
        XCTAssertEqual(SchemeSpecification(try resolve("rope")).label(defaults: defaults), "rope")
        XCTAssertEqual(SchemeSpecification(try resolve(#"rope{"rope_theta": 500}"#)).label(defaults: defaults), "rope(rope_theta=500)")
        let t5 = SchemeSpecification(try resolve("t5"))
        XCTAssertEqual(SchemeSpecification(try resolve(#"t5{"buckets": 8}"#)).label(defaults: t5), "t5(buckets=8)")
    }

    func testOnlyRotarySchemesSwapAcrossNames() throws {
        let rope = try SchemeSpecification(name: "rope"), hope = try SchemeSpecification(name: "hope")
        XCTAssertTrue(rope.canSwap(to: hope))
        XCTAssertTrue(hope.canSwap(to: try SchemeSpecification(parsing: #"rope{"rope_type": "linear", "factor": 2}"#)))
        XCTAssertFalse(try SchemeSpecification(name: "alibi").canSwap(to: rope))
        XCTAssertFalse(rope.canSwap(to: try SchemeSpecification(name: "nope")))
        XCTAssertTrue(try SchemeSpecification(name: "sinusoidal").canSwap(to: try SchemeSpecification(parsing: #"sinusoidal{"scale": 2}"#)))
    }

    func testMergingRefusesConflictsAndReplacingSwapsTheScaling() throws {
        let yarn = SchemeSpecification(try resolve(#"rope{"rope_type": "yarn", "factor": 4, "rope_theta": 500}"#))
        XCTAssertThrowsError(try yarn.merging(["rope_theta": .number(300)])) { XCTAssertTrue("\($0)".contains("given twice"), "\($0)") }
        XCTAssertEqual(try yarn.merging(["rope_theta": .number(500)]), yarn)
        let linear = try yarn.replacing(["rope_type": .string("linear"), "factor": .number(2)])
        XCTAssertEqual(try linear.resolved(trainingLength: 24, maximumLength: 99),
                       .rope(try RotaryConfiguration(base: 500, scaling: .linear(factor: 2), maximumPositionEmbeddings: 24)))
        let hope = SchemeSpecification(try resolve(#"hope{"keep": 2}"#))
        XCTAssertEqual(try hope.replacing(["fraction": .number(0.5)]).settings["keep"], nil)
    }
}
