import Foundation
import Models
import XCTest

/// One writer per folder: a second lock is refused naming the holder; a lock whose holder died is
/// taken over.
final class FolderLockTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("folder-lock-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testASecondLockIsRefusedUntilTheFirstIsReleased() throws {
        let first = try FolderLock(folder, what: "training run")
        XCTAssertThrowsError(try FolderLock(folder, what: "sweep")) { error in
            let text = "\(error)"
            XCTAssertTrue(error is FolderLocked, text)
            XCTAssertTrue(text.contains(folder.path) && text.contains("training run written by process \(getpid())"), text)
        }
        first.release()
        XCTAssertNoThrow(try FolderLock(folder, what: "sweep"))
        XCTAssertEqual(try FolderLock.holding(folder, what: "run") { 7 }, 7)
        XCTAssertNoThrow(try FolderLock(folder, what: "run"), "holding releases the lock")
    }

    func testALockHeldByAnotherProcessIsRefusedAndTakenOverWhenItDies() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/bin/sh")  // flock(1) holds the lock itself, then becomes sleep
        holder.arguments = ["-c", "exec 9>>\"$0\" && flock 9 && exec sleep 60", folder.appendingPathComponent(FolderLock.fileName).path]
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        // Wait until the other process holds the lock.
        let deadline = Date().addingTimeInterval(20)
        var refused = false
        while Date() < deadline, !refused {
            do { try FolderLock(folder, what: "run").release(); usleep(10_000) } catch is FolderLocked { refused = true }
        }
        XCTAssertTrue(refused, "the lock of a live process is refused")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let lock = try FolderLock(folder, what: "run")
        let recorded = try String(contentsOf: folder.appendingPathComponent(FolderLock.fileName), encoding: .utf8)
        XCTAssertTrue(recorded.contains("process \(getpid())"), recorded)
        lock.release()
    }
}
