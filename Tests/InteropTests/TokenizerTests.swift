import Foundation
import XCTest
import Interop
import Tasks

/// Byte-level BPE against Hugging Face `tokenizers` 0.23.3: tokenizers trained on the King James
/// Bible (GPT-2's pre-tokenizer; Llama 3's pattern with NFC and ignore_merges), a fixture corpus
/// with Unicode, whitespace runs, CRLF and added tokens (scripts/make_tokenizer_fixtures.py).
final class ByteLevelBPETests: XCTestCase {
    struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String }

    func testEncodingMatchesTokenizersTokenForToken() throws {
        for name in ["gpt2-style", "llama3-style"] {
            let folder = InteropFixtures.directory.appendingPathComponent("tokenizers/\(name)")
            let tokenizer = try ByteLevelBPE(contentsOf: folder.appendingPathComponent("tokenizer.json"))
            XCTAssertEqual(tokenizer.vocabularySize, 800, name)
            let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: folder.appendingPathComponent("cases.json")))
            XCTAssertEqual(cases.count, 21)
            for c in cases {
                XCTAssertEqual(try tokenizer.encode(c.text), c.ids, "\(name): \(c.text.debugDescription)")
                XCTAssertEqual(try tokenizer.decode(c.ids), c.decoded, "\(name): \(c.text.debugDescription)")
            }
        }
    }

    /// The tokenizer `poslab export` writes for byte-level runs: token i is byte i.
    func testExportedByteTokenizerIsTheIdentityOnBytes() throws {
        let files = try TokenizerFiles.files(.bytes, maximumLength: 64)
        let tokenizer = try ByteLevelBPE(json: files["tokenizer.json"]!)
        let text = "In the beginning — ünïcode  and\ttabs\n"
        XCTAssertEqual(try tokenizer.encode(text), Array(text.utf8).map(Int.init))
        XCTAssertEqual(try tokenizer.decode(Array(text.utf8).map(Int.init)), text)
    }

    func testUnsupportedTokenizersAreNamed() throws {
        func message(_ json: String) -> String {
            do { _ = try ByteLevelBPE(json: Data(json.utf8), path: "t.json"); return "read" } catch { return "\(error)" }
        }
        let unigram = message(#"{"model": {"type": "Unigram", "vocab": []}}"#)
        XCTAssertTrue(unigram.contains("Unigram") && unigram.contains("SentencePiece"), unigram)
        let fallback = message(#"{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}"#)
        XCTAssertTrue(fallback.contains("byte_fallback"), fallback)
        let normalizer = message(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "Lowercase"},"#
                                 + #" "pre_tokenizer": {"type": "ByteLevel"}}"#)
        XCTAssertTrue(normalizer.contains("normalizer") && normalizer.contains("Lowercase"), normalizer)
        let whitespace = message(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}"#)
        XCTAssertTrue(whitespace.contains("pre_tokenizer"), whitespace)
        XCTAssertTrue(message("[1, 2]").contains("not a JSON object"))
        XCTAssertTrue(message(#"{"model": {"type": "BPE", "vocab": {}, "merges": [], "merges": []}}"#).contains("merges"))
        let twice = message(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}"#)
        XCTAssertTrue(twice.contains("gives the id 0 to both \"a\" and \"b\""), twice)
        let added = message(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},"#
                            + #" "added_tokens": [{"id": 0, "content": "<s>"}]}"#)
        XCTAssertTrue(added.contains("added token \"<s>\" has the id 0 of \"a\""), added)
        let decodeError: String
        do {
            _ = try ByteLevelBPE(json: TokenizerFiles.files(.bytes, maximumLength: 8)["tokenizer.json"]!).decode([300])
            decodeError = "decoded"
        } catch { decodeError = "\(error)" }
        XCTAssertTrue(decodeError.contains("300"), decodeError)
    }
}
