import Foundation
import TensorCore

/// The default corpus of byte-level language modelling: the King James Bible, as Debian's
/// `bible-kjv` package ships it (`/usr/bin/bible` and its compressed text `/usr/lib/bible.data`).
/// `bible -f Gen1:1-Rev22:21` prints the whole text, one verse a line after its reference
/// ("Ge1:1 In the beginning God created the heaven and the earth."), 31,102 lines, 66 books,
/// 4.4 MB of ASCII; that dump is the corpus file. `defaultCorpus()` finds it or writes it;
/// `scripts/install-corpus.sh` installs the package and writes it from the shell.
///
/// Evaluation holds out whole books, the last ones of the Bible (8 by default: James, 1–2 Peter,
/// 1–3 John, Jude and Revelation, 2.7% of the text), so held-out text is never a continuation of a
/// training passage. The text a model sees is each verse without its reference, one a line, and a
/// blank line between books.
extension TextTask {
    /// A book of a corpus: its name (the reference's abbreviation, "Ge", "1Sm", "Rev") and text.
    public struct Book: Equatable, Sendable {
        public var name: String
        public var text: [UInt8]
        public init(name: String, text: [UInt8]) { self.name = name; self.text = text }
    }

    public static let defaultHeldOutBooks = 8

    /// Training text from all books but the last `heldOutBooks`, held-out text from those.
    public init(books: [Book], heldOutBooks: Int = TextTask.defaultHeldOutBooks, path: String = "<books>") throws {
        try requireArgument((0..<books.count).contains(heldOutBooks), "TextTask", "heldOutBooks", heldOutBooks,
                            "0…\(books.count - 1) (fewer than the \(books.count) books)")
        let split = books.count - heldOutBooks
        let join = { (part: ArraySlice<Book>) in Array(part.map(\.text).joined(separator: [UInt8(ascii: "\n")])) }
        try self.init(training: join(books[..<split]), heldOut: join(books[split...]), path: path)
    }

    /// The Bible at `url` (the `bible -f` dump), the last `heldOutBooks` books held out.
    public init(bibleAt url: URL, heldOutBooks: Int = TextTask.defaultHeldOutBooks) throws {
        try self.init(books: TextTask.books(ofBibleAt: url), heldOutBooks: heldOutBooks, path: url.path)
    }

    /// The default corpus, found or written by `defaultCorpus()`, the last `heldOutBooks` books held out.
    public static func kingJamesBible(heldOutBooks: Int = TextTask.defaultHeldOutBooks) throws -> TextTask {
        try TextTask(bibleAt: defaultCorpus(), heldOutBooks: heldOutBooks)
    }

    /// The books of a `bible -f` dump: lines "‹book›‹chapter›:‹verse› ‹text›", in order.
    public static func books(ofBibleAt url: URL) throws -> [Book] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw DataError(path: url.path, reason: "cannot be read") }
        return try books(ofBible: [UInt8](data), path: url.path)
    }

    public static func books(ofBible bytes: [UInt8], path: String = "<bible>") throws -> [Book] {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw DataError(path: path, reason: "not valid UTF-8 text") }
        var books: [Book] = []
        for (index, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let space = line.firstIndex(of: UInt8(ascii: " ")) ?? line.endIndex
            let reference = line[line.startIndex..<space]
            let chapterAndVerse = reference.reversed().prefix { $0 == UInt8(ascii: ":") || (48...57).contains($0) }
            let name = String(decoding: reference.dropLast(chapterAndVerse.count), as: UTF8.self)
            guard chapterAndVerse.contains(UInt8(ascii: ":")), !name.isEmpty, space < line.endIndex else {
                throw DataError(path: path, reason: "line \(index + 1): expected a verse \"Ge1:1 In the beginning…\" (the output of bible -f)")
            }
            let verse = Array(line[(space + 1)...]) + [UInt8(ascii: "\n")]
            if books.last?.name == name { books[books.count - 1].text += verse } else { books.append(Book(name: name, text: verse)) }
        }
        guard !books.isEmpty else { throw DataError(path: path, reason: "the file is empty") }
        return books
    }

    /// The King James Bible's text file: $POSITIONLAB_CORPUS if set (it must exist), else the first
    /// of `$XDG_CACHE_HOME/positionlab/kjv.txt` (~/.cache when unset) and `data/kjv.txt` (from the
    /// current directory) that exists; else, when `generate` and Debian's `bible` program is
    /// installed, the cache file, written now by `writeBible(to:)`. Otherwise an error saying how
    /// to install it (`scripts/install-corpus.sh`).
    public static func defaultCorpus(environment: [String: String] = ProcessInfo.processInfo.environment,
                                     generate: Bool = true) throws -> URL {
        if let chosen = environment["POSITIONLAB_CORPUS"], !chosen.isEmpty {
            guard FileManager.default.fileExists(atPath: chosen) else {
                throw DataError(path: chosen, reason: "POSITIONLAB_CORPUS names no file")
            }
            return URL(fileURLWithPath: chosen)
        }
        let cacheHome = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache")
        let cached = URL(fileURLWithPath: cacheHome + "/positionlab/kjv.txt")
        for candidate in [cached, URL(fileURLWithPath: "data/kjv.txt")] where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        if generate, let program = bibleProgram() {
            try writeBible(to: cached, program: program)
            return cached
        }
        throw DataError(path: cached.path, reason: "no King James Bible text: run scripts/install-corpus.sh (installs Debian's "
                        + "bible-kjv and writes this file), or set POSITIONLAB_CORPUS to a `bible -f` dump")
    }

    /// The `bible` program of Debian's bible-kjv, if installed.
    public static func bibleProgram() -> String? {
        ["/usr/bin/bible", "/usr/games/bible", "/usr/local/bin/bible"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Writes the whole King James Bible, `bible -f Gen1:1-Rev22:21`, to `url` (atomically,
    /// creating folders), after checking that it holds 66 books.
    public static func writeBible(to url: URL, program: String = "/usr/bin/bible") throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["-f", "Gen1:1-Rev22:21"]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw DataError(path: program, reason: "cannot run: \(error)") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw DataError(path: program, reason: "exited with status \(process.terminationStatus)") }
        let count = try books(ofBible: [UInt8](data), path: program).count
        guard count == 66 else { throw DataError(path: program, reason: "printed \(count) books, not the Bible's 66") }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url, options: .atomic)
    }
}
