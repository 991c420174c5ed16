#if os(Linux)
/// glibc's mallopt(3); malloc.h is not part of the Glibc module map.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
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
    /// untrimmed, so that they are reused. Inference keeps glibc's defaults: a forward pass through
    /// many layers allocates buffers of many sizes once, and kept on the heap they fragmented it
    /// (a 134.6M-parameter model at 8,192 tokens peaked at 6.2 GiB resident instead of 3.6 GiB).
    /// Idempotent; takes effect for later allocations.
    public static func prepareForTraining() {
        _ = trainingAllocator
    }

    private static let trainingAllocator: Bool = {
        #if os(Linux)
        _ = glibcMallopt(-3, 1 << 30)      // M_MMAP_THRESHOLD (malloc.h)
        _ = glibcMallopt(-1, Int32.max)    // M_TRIM_THRESHOLD
        #endif
        return true
    }()

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
