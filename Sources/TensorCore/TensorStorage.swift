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
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    public convenience init(copying values: UnsafeBufferPointer<Float>) {
        self.init(count: values.count, zeroed: false)
        if let base = values.baseAddress, values.count > 0 { pointer.update(from: base, count: values.count) }
    }

    public convenience init(copying other: TensorStorage) {
        self.init(count: other.count, zeroed: false)
        pointer.update(from: other.pointer, count: other.count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// A training step frees and reallocates the same large buffers every step. glibc serves
    /// buffers above its mmap threshold with fresh mappings and trims freed heap memory back to
    /// the system, so each step paid page faults and kernel zeroing for every activation (15% of
    /// a step in `perf`). Training (`Trainer`) therefore keeps large buffers on the heap and
    /// untrimmed, so that they are reused. Idempotent; takes effect for later allocations, and
    /// wins over `prepareForInference` whenever it is called.
    public static func prepareForTraining() {
        _ = trainingAllocator
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
        _ = glibcMallopt(-3, 1 << 30)      // M_MMAP_THRESHOLD (malloc.h)
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

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
