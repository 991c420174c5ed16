import Foundation
import Lab
import XCTest

/// A resume keeps the log's lines up to the checkpoint's step, drops only a torn last line, and
/// stops (deleting nothing) at any other line it cannot read.
final class TrainingLogTests: XCTestCase {
    func log(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString).jsonl")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func line(_ step: Int, loss: String = "1.5") -> String { "{\"step\": \(step), \"loss\": \(loss)}" }

    func testAResumeKeepsStepsUpToTheCheckpointAndDropsATornLastLine() throws {
        let url = try log([line(1), line(2), line(3, loss: "null"), line(4)].joined(separator: "\n") + "\n{\"step\": 5, \"lo")
        _ = try TrainingLog(url: url, keepingStepsUpTo: 3)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), [line(1), line(2), line(3, loss: "null")].joined(separator: "\n") + "\n")
    }

    func testALineThatIsNotAnEntryStopsTheResumeAndIsKept() throws {
        let original = [line(1), "-nan garbage", line(3)].joined(separator: "\n") + "\n"
        let url = try log(original)
        XCTAssertThrowsError(try TrainingLog(url: url, keepingStepsUpTo: 3)) { error in
            XCTAssertTrue("\(error)".contains("line 2"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), original, "nothing deleted")
    }
}
