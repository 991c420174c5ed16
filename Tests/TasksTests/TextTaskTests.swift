import Models
import Tasks
import TensorCore
import XCTest

final class TextTaskTests: XCTestCase {
    func testWindowsShiftByOneAndHoldOutTheEnd() throws {
        let text = Array("In the beginning was the word, and the word was with the text.".utf8)
        let task = try TextTask(bytes: text, heldOutFraction: 0.25)
        XCTAssertEqual((task.training + task.heldOut).map { UInt8($0) }, text)
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

final class KingJamesBibleTests: XCTestCase {
    let bible = """
        Ge1:1 In the beginning God created the heaven and the earth.
        Ge1:2 And the earth was without form, and void.
        1Sm1:1 Now there was a certain man.
        Rev22:21 The grace of our Lord Jesus Christ be with you all. Amen.

        """

    func testBooksSplitAndHoldOutTheLastOnes() throws {
        let books = try TextTask.books(ofBible: Array(bible.utf8))
        XCTAssertEqual(books.map(\.name), ["Ge", "1Sm", "Rev"])
        XCTAssertEqual(String(decoding: books[0].text, as: UTF8.self),
                       "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n")
        let task = try TextTask(books: books, heldOutBooks: 1)
        XCTAssertEqual(String(decoding: task.training.map { UInt8($0) }, as: UTF8.self),
                       "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n\nNow there was a certain man.\n")
        XCTAssertEqual(String(decoding: task.heldOut.map { UInt8($0) }, as: UTF8.self), "The grace of our Lord Jesus Christ be with you all. Amen.\n")
        XCTAssertTrue(try TextTask(books: books, heldOutBooks: 0).heldOut.isEmpty)
        assertInvalid("heldOutBooks", try TextTask(books: books, heldOutBooks: 3))
        assertInvalid("heldOutBooks", try TextTask(books: books, heldOutBooks: -1))
        XCTAssertThrowsError(try TextTask.books(ofBible: Array("Ge1:1 ok\nno reference here\n".utf8), path: "kjv.txt")) {
            XCTAssertTrue("\($0)".hasPrefix("kjv.txt: line 2: expected a verse"), "\($0)")
        }
        XCTAssertThrowsError(try TextTask.books(ofBible: [], path: "kjv.txt")) { XCTAssertEqual("\($0)", "kjv.txt: the file is empty") }
    }

    func testDefaultCorpusIsFoundOrWritten() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corpus-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let chosen = folder.appendingPathComponent("mine.txt")
        try Data(bible.utf8).write(to: chosen)
        XCTAssertEqual(try TextTask.defaultCorpus(environment: ["POSITIONLAB_CORPUS": chosen.path]).path, chosen.path)
        XCTAssertThrowsError(try TextTask.defaultCorpus(environment: ["POSITIONLAB_CORPUS": folder.path + "/none.txt"])) {
            XCTAssertTrue("\($0)".contains("none.txt: POSITIONLAB_CORPUS names no file"), "\($0)")
        }
        let cache = folder.appendingPathComponent("cache")
        XCTAssertThrowsError(try TextTask.defaultCorpus(environment: ["XDG_CACHE_HOME": cache.path], generate: false)) {
            XCTAssertTrue("\($0)".contains("scripts/install-corpus.sh"), "\($0)")
        }
        guard TextTask.bibleProgram() != nil else { throw XCTSkip("Debian's bible-kjv is not installed") }
        let url = try TextTask.defaultCorpus(environment: ["XDG_CACHE_HOME": cache.path])
        XCTAssertEqual(url.path, cache.path + "/positionlab/kjv.txt")
        let books = try TextTask.books(ofBibleAt: url)
        XCTAssertEqual(books.count, 66)
        XCTAssertEqual(books.first?.name, "Ge")
        XCTAssertEqual(Array(books.suffix(8).map(\.name)), ["Jas", "1Pet", "2Pet", "1Jn", "2Jn", "3Jn", "Jude", "Rev"])
        let task = try TextTask(bibleAt: url)
        XCTAssertTrue(String(decoding: task.training.prefix(60).map { UInt8($0) }, as: UTF8.self).hasPrefix("In the beginning God created the heaven and the earth.\n"))
        XCTAssertTrue(String(decoding: task.heldOut.suffix(60).map { UInt8($0) }, as: UTF8.self).hasSuffix("The grace of our Lord Jesus Christ be with you all. Amen.\n"))
        XCTAssertEqual(Double(task.heldOut.count) / Double(task.training.count + task.heldOut.count), 0.027, accuracy: 0.003)
        // Found, not rewritten, the second time.
        XCTAssertEqual(try TextTask.defaultCorpus(environment: ["XDG_CACHE_HOME": cache.path], generate: false), url)
    }
}
