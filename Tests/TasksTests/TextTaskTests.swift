import Models
import Tasks
import TensorCore
import XCTest

final class TextTaskTests: XCTestCase {
    func testWindowsShiftByOneAndHoldOutTheEnd() throws {
        let text = Array("In the beginning was the word, and the word was with the text.".utf8)
        let task = try TextTask(bytes: text, heldOutFraction: 0.25)
        XCTAssertEqual(task.training + task.heldOut, text)
        XCTAssertEqual(task.heldOut.count, text.count / 4)
        var generator = SplitMix64(seed: 3)
        let batch = try task.batch(size: 4, length: 10, generator: &generator)
        for row in 0..<4 {
            let inputs = batch.inputs[(row * 10)..<(row * 10 + 10)], targets = batch.targets[(row * 10)..<(row * 10 + 10)]
            XCTAssertEqual(Array(inputs.dropFirst()), Array(targets.dropLast()))
        }
        XCTAssertTrue(batch.lossMask.allSatisfy { $0 })
    }

    func testBadTextIsAClearError() {
        XCTAssertThrowsError(try TextTask(bytes: [], path: "empty.txt")) { XCTAssertTrue("\($0)".contains("empty.txt: the file is empty")) }
        XCTAssertThrowsError(try TextTask(bytes: [0x66, 0xFF, 0xFE], path: "bin")) { XCTAssertTrue("\($0)".contains("UTF-8")) }
        var generator = SplitMix64(seed: 0)
        XCTAssertThrowsError(try TextTask(bytes: Array("short".utf8), heldOutFraction: 0).batch(size: 1, length: 10, generator: &generator)) {
            XCTAssertTrue("\($0)".contains("length"))
        }
    }
}
