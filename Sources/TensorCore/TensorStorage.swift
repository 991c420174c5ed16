import Foundation

#if os(Linux)
/// glibc's mallopt(3) and malloc_trim(3); malloc.h is not part of the Glibc module map.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// A contiguous, 64-byte aligned buffer of Float32 values owned by one or more tensors.
///
/// Storage is a class so that views (reshape) share it and so that backward closures can
/// capture the values they need without capturing (and retaining a cycle through) the tensor.
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` values, set to zero when `zeroed` is true (otherwise uninitialised:
    /// only for kernels that write every element).
    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let (pooled, poisoned) = StoragePool.shared.take(count: max(count, 1))
        let raw = pooled ?? UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed || poisoned { pointer.initialize(repeating: zeroed ? 0 : .nan, count: max(count, 1)) }
    }

    public convenience init(copying values: UnsafeBufferPointer<Float>) {
        self.init(count: values.count, zeroed: false)
        if let base = values.baseAddress, values.count > 0 { pointer.update(from: base, count: values.count) }
    }

    public convenience init(copying other: TensorStorage) {
        self.init(count: other.count, zeroed: false)
        pointer.update(from: other.pointer, count: other.count)
    }

    deinit {
        let raw = UnsafeMutableRawPointer(pointer)
        if !StoragePool.shared.give(raw, count: max(count, 1)) { raw.deallocate() }
    }

    /// A training step frees and reallocates the same buffers every step. glibc serves
    /// buffers above its mmap threshold with fresh mappings and trims freed heap memory back to
    /// the system, so each step paid page faults and kernel zeroing for every activation (15% of
    /// a step in `perf`). Training (`Trainer`) therefore keeps large buffers on the heap and
    /// untrimmed, so that they are reused, and buffers are recycled by size (`StoragePool`, on
    /// until the last training loop ends), so that a steady-state step takes every buffer from it. Idempotent;
    /// takes effect for later allocations, and wins over `prepareForInference` whenever it is called.
    public static func prepareForTraining() {
        _ = trainingAllocator
        StoragePool.shared.enable()
    }

    /// A forward pass through many layers allocates buffers of many sizes once. Under glibc's
    /// defaults the mmap threshold rises to the largest buffer freed so far (up to 32 MiB), so that
    /// activations of a few MiB to 32 MiB land on the heap and fragment it: a 134.6M-parameter
    /// model at 8,192 tokens kept 0.5–1.3 GiB of freed memory resident and peaked at 3.6–4.2 GiB
    /// (`poslab bench forward`), against 2.4 GiB with the threshold fixed at 8 MiB (every buffer
    /// of a sequence's activations mapped and returned on release; smaller ones reused on the
    /// heap). A 1 MiB threshold saved 0.3 GiB more but cost 20% at 2,048 tokens in page faults.
    /// The reference model at 16,384 tokens (`poslab bench memory`) peaks at 150 MiB, not 280.
    /// Called when a model is made (`Transformer.init`); a no-op once training has chosen its own.
    public static func prepareForInference() {
        _ = inferenceAllocator
    }

    /// Returns the heap's free pages to the system (glibc's malloc_trim), for example after a
    /// checkpoint's tensors were decoded through temporary buffers.
    public static func releaseFreeMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }

    private static let trainingAllocator: Bool = {
        #if os(Linux)
        _ = inferenceAllocator  // so that a later model's `prepareForInference` changes nothing
        // M_MMAP_THRESHOLD (malloc.h); a glibc that refuses 1 GiB gets its own largest dynamic value.
        if glibcMallopt(-3, 1 << 30) == 0 { _ = glibcMallopt(-3, 32 << 20) }
        _ = glibcMallopt(-1, Int32.max)    // M_TRIM_THRESHOLD
        #endif
        return true
    }()

    private static let inferenceAllocator: Bool = {
        #if os(Linux)
        _ = glibcMallopt(-3, 8 << 20)      // M_MMAP_THRESHOLD, fixed (no longer adjusted by glibc)
        #endif
        return true
    }()

    /// Bytes the buffer pool holds for reuse, and storages allocated afresh since training began
    /// because the pool had none of their size (a steady-state training step adds none).
    public static var poolStatistics: (heldBytes: Int, freshAllocations: Int) { StoragePool.shared.statistics }

    /// Brackets a training loop (`Trainer.train`): the pool is on while any loop runs; when the
    /// last ends it is switched off and emptied, so that what follows (evaluation, the next run of
    /// a sweep) neither lives beside the loop's buffers nor fills the pool with its own.
    public static func beginTrainingLoop() { StoragePool.shared.begin() }
    public static func endTrainingLoop() { StoragePool.shared.end() }

    /// Runs `body` with every buffer allocated without zeroing filled with NaN first (for tests: a
    /// kernel that leaves a value of such a buffer unwritten then shows it as a NaN, where a buffer
    /// fresh from the allocator would most often hold zeros or a freed tensor's values).
    public static func withUninitializedBuffersPoisoned<Result>(_ body: () throws -> Result) rethrows -> Result {
        StoragePool.shared.setPoison(true)
        defer { StoragePool.shared.setPoison(false) }
        return try body()
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Freed storage kept by exact element count and handed to the next storage of that count, once
/// training has begun (`TensorStorage.prepareForTraining`): a training step allocates the same
/// buffers step after step, so after the first step it takes every buffer from here. Under glibc
/// alone, resident memory of `poslab bench train --configurations small --memory-steps 1000` rose
/// by 9 to 125 MiB between the 10th and the 1,000th step from run to run (buffers freed on one
/// thread's arena and wanted on another's). At most `capacity` bytes are kept (an eighth of
/// physical memory, at most 1 GiB); beyond it buffers go back to the allocator. When the last
/// running training loop ends (`Trainer.train`), the pool is switched off and emptied, so that
/// evaluation after training (buffers of other sizes) lives under the allocator alone.
/// Buffers are 64-byte aligned and carry no values over: `TensorStorage` zeroes them when asked.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()

    private let lock = NSLock()
    private var enabled = false, poison = false
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var keptBytes = 0, missed = 0, activeLoops = 0
    let capacity = min(1 << 30, Int(ProcessInfo.processInfo.physicalMemory / 8))

    func enable() {
        lock.lock(); enabled = true; lock.unlock()
    }

    /// A kept buffer of `count` values (nil when none or when the pool is off), and whether
    /// unzeroed buffers are to be filled with NaN (`TensorStorage.withUninitializedBuffersPoisoned`).
    func take(count: Int) -> (UnsafeMutableRawPointer?, poison: Bool) {
        lock.lock(); defer { lock.unlock() }
        guard enabled else { return (nil, poison) }
        guard let raw = free[count]?.popLast() else {
            missed += 1
            return (nil, poison)
        }
        keptBytes -= count * MemoryLayout<Float>.stride
        return (raw, poison)
    }

    func setPoison(_ on: Bool) {
        lock.lock(); poison = on; lock.unlock()
    }

    /// Keeps `raw` for a later storage of `count` values; false when it must be deallocated instead.
    func give(_ raw: UnsafeMutableRawPointer, count: Int) -> Bool {
        let bytes = count * MemoryLayout<Float>.stride
        lock.lock(); defer { lock.unlock() }
        guard enabled, keptBytes + bytes <= capacity else { return false }
        free[count, default: []].append(raw)
        keptBytes += bytes
        return true
    }

    /// A training loop starts: the pool is on until the last one running ends.
    func begin() {
        lock.lock(); enabled = true; activeLoops += 1; lock.unlock()
    }

    /// A training loop ends; when it was the last, the pool is switched off and every buffer held
    /// is deallocated (buffers in use go back to the allocator when freed).
    func end() {
        lock.lock(); defer { lock.unlock() }
        activeLoops = max(0, activeLoops - 1)
        guard activeLoops == 0 else { return }
        enabled = false
        for raw in free.values.joined() { raw.deallocate() }
        free = [:]
        keptBytes = 0
    }

    /// Bytes held for reuse, and storages allocated afresh because the pool had none of their count.
    var statistics: (heldBytes: Int, freshAllocations: Int) {
        lock.lock(); defer { lock.unlock() }
        return (keptBytes, missed)
    }
}
