import Dispatch
import Foundation

/// Splits work over the machine's cores. Chunk boundaries depend only on the work size and the
/// core count, never on timing, so that reductions combine partial results in the same order
/// on every run of one machine: results are reproducible bit for bit.
public enum Parallel {
    /// The cores to use: the active processors, or fewer when a Slurm task was given fewer
    /// (`SLURM_CPUS_PER_TASK`).
    public static let coreCount = coreCount(active: ProcessInfo.processInfo.activeProcessorCount,
                                            environment: ProcessInfo.processInfo.environment)

    public static func coreCount(active: Int, environment: [String: String]) -> Int {
        let granted = environment["SLURM_CPUS_PER_TASK"].flatMap { Int($0) }.flatMap { $0 >= 1 ? $0 : nil }
        return max(1, min(active, granted ?? active))
    }

    /// Below this many elements a loop runs on the calling thread: dispatching costs more.
    public static let minimumElementsPerChunk = 1 << 14

    /// The chunks that `forEachChunk` uses for `count` items.
    public static func chunkCount(for count: Int, minimumPerChunk: Int = minimumElementsPerChunk) -> Int {
        guard count >= 2 * minimumPerChunk, coreCount > 1 else { return 1 }
        return min(coreCount, count / minimumPerChunk)
    }

    /// Calls `body` once per chunk of `0..<count`, concurrently when the work is large.
    @inlinable
    public static func forEachChunk(count: Int, minimumPerChunk: Int = minimumElementsPerChunk,
                                    _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = chunkCount(for: count, minimumPerChunk: minimumPerChunk)
        if chunks <= 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let size = (count + chunks - 1) / chunks
        perform(iterations: chunks) { chunk in
            let start = chunk * size
            let end = min(count, start + size)
            if start < end { body(chunk, start..<end) }
        }
    }

    /// Calls `body` for each row in `0..<rows`, spreading rows over cores when
    /// `rows * elementsPerRow` is large.
    @inlinable
    public static func forEachRow(rows: Int, elementsPerRow: Int, _ body: (Range<Int>) -> Void) {
        let minimumRows = max(1, minimumElementsPerChunk / max(1, elementsPerRow))
        forEachChunk(count: rows, minimumPerChunk: minimumRows) { _, range in body(range) }
    }

    /// Calls `body` for each of `0..<iterations` concurrently (Dispatch's `concurrentPerform`).
    ///
    /// The one place where the engine vouches for what the compiler cannot check: every kernel's
    /// `body` writes only the memory its own iteration owns (disjoint rows, chunks or heads of an
    /// output, found by index arithmetic on raw pointers) and only reads memory no iteration
    /// writes. Each such kernel has a naive, single-threaded twin that a test compares it with.
    @inlinable
    public static func perform(iterations: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let shared = DisjointWrites(body)
            DispatchQueue.concurrentPerform(iterations: iterations) { shared.body($0) }
        }
    }
}

/// A kernel body that `Parallel.perform` may call from several threads (see there).
@usableFromInline
struct DisjointWrites: @unchecked Sendable {
    @usableFromInline let body: (Int) -> Void
    @usableFromInline init(_ body: @escaping (Int) -> Void) { self.body = body }
}
