import Foundation
import XCTest
import Lab
import Models
import PositionalEncodings
import Tasks

final class PasskeyTests: XCTestCase {
    func testPromptHasTheLengthAndTheKeyAtItsDepth() throws {
        let codec = ByteCodec()
        for depth in [0.0, 0.5, 1.0] {
            let prompt = try Passkey.prompt(length: 400, depth: depth, key: "48213", codec: codec)
            XCTAssertEqual(prompt.count, 400)
            let text = try codec.decode(prompt)
            XCTAssertTrue(text.hasPrefix(Passkey.intro) && text.hasSuffix(Passkey.question))
            let at = text.range(of: Passkey.needle("48213"))!.lowerBound
            let fillerStart = Passkey.intro.utf8.count, fillerCount = 400 - fillerStart - Passkey.needle("48213").utf8.count
                - Passkey.question.utf8.count
            XCTAssertEqual(text.utf8.distance(from: text.startIndex, to: at), fillerStart + Int((depth * Double(fillerCount)).rounded()))
        }
        XCTAssertTrue(Passkey.retrieved(Array(" 48213.".utf8).map(Int.init), key: "48213", codec: codec))
        XCTAssertFalse(Passkey.retrieved(Array(" 48231.".utf8).map(Int.init), key: "48213", codec: codec))
        XCTAssertFalse(Passkey.retrieved([], key: "48213", codec: codec))
        XCTAssertThrowsError(try Passkey.prompt(length: 100, depth: 0.5, key: "12345", codec: codec)) {
            XCTAssertTrue("\($0)".contains("at least \(try! Passkey.minimumLength(codec: codec))"), "\($0)")
        }
    }

    func testEvaluationChecksLengthsFirstAndScoresEveryCell() throws {
        let configuration = try TransformerConfiguration(vocabularySize: 256, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2,
                                                         positionalScheme: .learnedAbsolute(maximumLength: 320))
        let model = try Transformer(configuration: configuration, seed: 1)
        let codec = ByteCodec()
        XCTAssertThrowsError(try Passkey.evaluate(model: model, codec: codec, label: "x", lengths: [300, 318], depths: [0], samples: 1)) {
            XCTAssertTrue("\($0)".contains("318") && "\($0)".contains("position table ends at 319"), "\($0)")
        }
        XCTAssertThrowsError(try Passkey.evaluate(model: model, codec: codec, label: "x", lengths: [100_000_000], depths: [0], samples: 1)) {
            XCTAssertTrue("\($0)".contains("at most 65536"), "\($0)")
        }
        var seen: [Passkey.Cell] = []
        let results = try Passkey.evaluate(model: model, codec: codec, label: "x", lengths: [280, 300], depths: [0, 1], samples: 2) {
            seen.append($0)
        }
        XCTAssertEqual(results.cells, seen)
        XCTAssertEqual(results.cells.map(\.length), [280, 280, 300, 300])
        XCTAssertEqual(results.cells.map(\.depth), [0, 1, 0, 1])
        XCTAssertTrue(results.cells.allSatisfy { $0.accuracy == 0 }, "an untrained model retrieves no key")
        XCTAssertTrue(Passkey.page(title: "t", reports: [results]).contains("<svg"))
    }
}
