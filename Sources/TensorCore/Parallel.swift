import CKernels
import Foundation

/// Splits work over the machine's cores. Chunk boundaries depend only on the work size and the
/// core count, never on timing, so that reductions combine partial results in the same order
/// on every run of one machine: results are reproducible bit for bit.
public enum Parallel {
    /// The cores to use: the active processors, or fewer when this process may run on fewer (its CPU
    /// affinity, as `taskset`, Slurm or a container's cpuset sets it; the CPU quota of the cgroup v2
    /// at /sys/fs/cgroup, a container's own under Docker on cgroup v2, as `docker --cpus` sets it,
    /// rounded down) or a Slurm task was given fewer (`SLURM_CPUS_PER_TASK`). The worker
    /// pool polls for work on the others, which must be this process's to spend.
    public static let coreCount = coreCount(active: ProcessInfo.processInfo.activeProcessorCount,
                                            allowed: Int(ck_cpus_allowed()),
                                            quota: cgroupCPUQuota(try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max",
                                                                              encoding: .utf8)),
                                            environment: ProcessInfo.processInfo.environment)

    /// `allowed` and `quota` below 1 mean unknown, as does nil.
    public static func coreCount(active: Int, allowed: Int? = nil, quota: Int? = nil,
                                 environment: [String: String]) -> Int {
        let granted = environment["SLURM_CPUS_PER_TASK"].flatMap { Int($0) }.flatMap { $0 >= 1 ? $0 : nil }
        let limits = [granted, allowed, quota].compactMap { $0.flatMap { $0 >= 1 ? $0 : nil } }
        return max(1, limits.reduce(active) { min($0, $1) })
    }

    /// Whole CPUs of a cgroup v2 `cpu.max` ("quota period", or "max period" for none), at least 1;
    /// nil when there is no quota or the text is not that.
    public static func cgroupCPUQuota(_ text: String?) -> Int? {
        guard let fields = text?.split(whereSeparator: { $0 == " " || $0 == "\n" }), fields.count == 2,
              let quota = Int(fields[0]), let period = Int(fields[1]), quota > 0, period > 0 else { return nil }
        return max(1, quota / period)
    }

    /// Below this many elements a loop runs on the calling thread: dispatching costs more.
    public static let minimumElementsPerChunk = 1 << 14

    /// The chunks that `forEachChunk` uses for `count` items.
    public static func chunkCount(for count: Int, minimumPerChunk: Int = minimumElementsPerChunk) -> Int {
        guard count >= 2 * minimumPerChunk, coreCount > 1 else { return 1 }
        return min(coreCount, count / minimumPerChunk)
    }

    /// The chunks that a reduction splits `count` items into, each keeping its own partial result that
    /// the caller combines in chunk order: from the size alone, never the core count, so that a sum has
    /// the same bits on one core and on 64. One chunk below `2 · minimumPerChunk` items; else chunks of
    /// about a quarter of `minimumPerChunk` (a few per core, so that a pass is shared out evenly on few
    /// cores), at most `maximumReductionChunks`.
    public static func reductionChunkCount(for count: Int, minimumPerChunk: Int = minimumElementsPerChunk) -> Int {
        guard count >= 2 * minimumPerChunk else { return 1 }
        return min(maximumReductionChunks, count / max(1, minimumPerChunk / 4))
    }

    /// The most chunks `reductionChunkCount` gives.
    public static let maximumReductionChunks = 64

    /// Calls `body` once per chunk of `0..<count`, concurrently when the work is large.
    @inlinable
    public static func forEachChunk(count: Int, minimumPerChunk: Int = minimumElementsPerChunk,
                                    _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        forEachChunk(count: count, chunks: chunkCount(for: count, minimumPerChunk: minimumPerChunk), body)
    }

    /// Calls `body` once per chunk of `0..<count`, `chunks` chunks of (nearly) equal size, concurrently
    /// when there are several; a chunk that would start past the end is not called.
    @inlinable
    public static func forEachChunk(count: Int, chunks: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
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

    /// Calls `body` for each of `0..<iterations` concurrently, on the calling thread and a pool of
    /// `coreCount - 1` workers (CKernels' `ck_parallel_run`), which poll for the next region for a
    /// moment before they sleep: a step's regions follow each other within microseconds. A region
    /// started while another runs (a nested call, or another thread's), or in `sharingCores` beside
    /// another thread, runs on its caller, iteration by iteration.
    ///
    /// The one place where the engine vouches for what the compiler cannot check: every kernel's
    /// `body` writes only the memory its own iteration owns (disjoint rows, chunks or heads of an
    /// output, found by index arithmetic on raw pointers) and only reads memory no iteration
    /// writes. Each such kernel has a naive, single-threaded twin that a test compares it with.
    @inlinable
    public static func perform(iterations: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { run(iterations: iterations, DisjointWrites($0)) }
    }

    @usableFromInline
    static func run(iterations: Int, _ work: DisjointWrites) {
        var work = work
        withUnsafeMutablePointer(to: &work) { pointer in
            ck_parallel_run(iterations, Int32(coreCount - 1), { context, iteration in
                context!.assumingMemoryBound(to: DisjointWrites.self).pointee.body(iteration)
            }, pointer)
        }
    }

    /// Runs `body` as one of several jobs sharing the cores (a sweep's runs): while another
    /// thread is in `sharingCores` too, the regions `body` starts run on this thread alone (the same
    /// chunks, in order, so the same results); once it is the only one, they use every core again.
    public static func sharingCores<Result>(_ body: () throws -> Result) rethrows -> Result {
        ck_parallel_set_sharing(1)
        defer { ck_parallel_set_sharing(0) }
        return try body()
    }
}

/// A kernel body that `Parallel.perform` may call from several threads (see there).
@usableFromInline
struct DisjointWrites: @unchecked Sendable {
    @usableFromInline let body: (Int) -> Void
    @usableFromInline init(_ body: @escaping (Int) -> Void) { self.body = body }
}
