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

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
