import Foundation
import Lab
import XCTest

/// Sweep files are checked before any product or run is made.
final class SweepLimitsTests: XCTestCase {
    func decode(_ json: String) throws -> SweepSpecification {
        try JSONDecoder().decode(SweepSpecification.self, from: Data(json.utf8))
    }

    func testOverflowingAndOversizedGridsAreClearErrors() {
        let cases: [(String, String)] = [
            // Found by FuzzSweepConfiguration: multiplier × length overflowed.
            (#"{"tasks": ["copy"], "pes": ["rope"], "evalMultipliers": [1000000000000000000, 2]}"#, "evalMultipliers"),
            (#"{"tasks": ["copy"], "pes": ["rope"], "trainLengths": [4611686018427387904]}"#, "trainLength"),
            (#"{"tasks": ["copy"], "pes": ["rope"], "seeds": [\#((0..<10_001).map(String.init).joined(separator: ","))]}"#,
             "at most 10000 runs"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try decode(json)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should name \(expected)")
            }
        }
    }
}
