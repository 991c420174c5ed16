import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a folder that a process writes (a run, a sweep): `flock` on the folder's
/// `.lock` file, which records who holds it. A second holder, in this process or another, gets
/// `FolderLocked` naming the first. The kernel releases the lock when its holder exits, however it
/// exits, so a lock left by a killed process is simply taken over by the next one.
public final class FolderLock {
    public static let fileName = ".lock"

    public let folder: URL
    private var descriptor: Int32

    /// Takes the lock of `folder`, creating the folder if needed; `what` ("run", "sweep") names it
    /// in the lock file and in the error another process gets. `fileName` chooses another lock of
    /// the same folder (a sweep's results.csv has its own); with `wait`, a held lock is waited
    /// for instead of refused.
    public init(_ folder: URL, what: String, fileName: String = FolderLock.fileName, wait: Bool = false) throws {
        self.folder = folder
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw LockError(folder: folder.path, reason: "cannot create this folder (\(reason)); choose one this user can write")
        }
        let path = folder.appendingPathComponent(fileName).path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw LockError(folder: folder.path, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var status: Int32
        repeat { status = flock(descriptor, wait ? LOCK_EX : LOCK_EX | LOCK_NB) } while status != 0 && wait && errno == EINTR
        guard status == 0 else {
            let code = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            if code == EWOULDBLOCK {
                throw FolderLocked(folder: folder.path, holder: holder.isEmpty ? "another process" : holder)
            }
            throw LockError(folder: folder.path, reason: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        let stamp = ISO8601DateFormatter().string(from: Date())
        let holder = "\(what) written by process \(getpid()) on \(ProcessInfo.processInfo.hostName) since \(stamp)\n"
        _ = ftruncate(descriptor, 0)
        _ = holder.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit { release() }

    /// Releases the lock (also done when the lock is deinitialised or the process exits). The lock
    /// file stays: removing it would let two processes lock two different files of one name.
    public func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    /// Runs `body` holding the lock of `folder`.
    public static func holding<T>(_ folder: URL, what: String, _ body: () throws -> T) throws -> T {
        let lock = try FolderLock(folder, what: what)
        defer { lock.release() }
        return try body()
    }
}

/// A folder another process (or another job of this one) is writing.
public struct FolderLocked: Error, CustomStringConvertible {
    public let folder: String
    public let holder: String

    public var description: String {
        "\(folder) is in use: \(holder); wait for it to finish (or stop it, then resume)"
    }
}

/// A lock file that cannot be created or locked (a read-only folder, a file system without locks).
public struct LockError: Error, CustomStringConvertible {
    public let folder: String
    public let reason: String

    public var description: String { "\(folder): \(reason)" }
}
