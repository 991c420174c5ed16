import Foundation
import PositionalEncodings
import TensorCore
import XCTest

final class DuplicateKeysTests: XCTestCase {
    func first(_ text: String) -> String? { DuplicateKeys.first(in: Data(text.utf8)) }

    func testRepeatedKeysAreFoundWithTheirPath() {
        XCTAssertEqual(first(#"{"rope_theta": 100, "rope_theta": 200}"#), "rope_theta")
        XCTAssertEqual(first(#"{"a": {"b": 1, "c": {"d": 2, "d": 3}}}"#), "a.c.d")
        XCTAssertEqual(first(#"{"pes": ["rope", {"name": "t5"}, {"name": "rope", "x": 1, "x": 2}]}"#), "pes[2].x")
        XCTAssertEqual(first(#"{"ab": 1, "a\u0062": 2}"#), "ab", "escapes are decoded before keys are compared")
        XCTAssertEqual(first(#"{"k": [[1, 2], {"k": 1}], "k": 0}"#), "k")
    }

    func testDistinctKeysAndLookalikesPass() {
        XCTAssertNil(first(#"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#), "the same key in different objects")
        XCTAssertNil(first(#"{"a": "{\"a\": 1, \"a\": 2}", "b": "x,\"a\":"}"#), "braces, commas and quotes inside strings")
        XCTAssertNil(first(#"["a", "a", {"a": 1}]"#), "repeated values are not keys")
        XCTAssertNil(first(#"{"a\\": 1, "a": 2}"#))
        XCTAssertNil(first(""))
    }

    func testUserJSONWithARepeatedKeyIsRefused() {
        XCTAssertThrowsError(try SchemeSpecification(parsing: #"rope{"rope_theta": 100, "rope_theta": 200}"#)) {
            XCTAssertTrue("\($0)".contains("the key rope_theta given twice"), "\($0)")
        }
        XCTAssertThrowsError(try JSONValue.object(parsing: #"{"rope_type": "linear", "factor": 2, "factor": 4}"#)) {
            XCTAssertTrue($0 is ConfigurationError && "\($0)".contains("factor given twice"), "\($0)")
        }
        XCTAssertNoThrow(try SchemeSpecification(parsing: #"rope{"rope_theta": 100}"#))
    }
}
