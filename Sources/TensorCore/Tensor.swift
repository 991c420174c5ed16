/// TensorCore: Float32 tensors, row-major and contiguous, with reverse-mode automatic differentiation.
///
/// Shape legend, used in every doc comment of this module and those above it:
/// - B: batch size
/// - T: sequence length (time)
/// - C: channels, the model dimension
/// - H: attention heads
/// - D: head dimension (C = H · D)
/// - V: vocabulary size
///
/// A tensor whose `requiresGradient` is true is a leaf of the graph (a parameter); a tensor made
/// by an operation while gradients are enabled records the operation, its inputs and its backward
/// kernel, and `backward()` replays those records in reverse topological order (the tape).
public final class Tensor {
    /// The extent of each axis, outermost first.
    public let shape: [Int]
    /// The values, row-major. Shared by views (`reshaped`).
    public let storage: TensorStorage
    /// Whether `backward()` should accumulate a gradient into this leaf.
    public var requiresGradient: Bool
    /// The recorded operation that made this tensor, when it is part of a graph.
    var node: GraphNode?
    /// Accumulated gradient, allocated on first use.
    var gradientStorage: TensorStorage?

    public init(shape: [Int], storage: TensorStorage, requiresGradient: Bool = false) {
        precondition(shape.reduce(1, *) == storage.count, "internal: storage does not match shape")
        self.shape = shape
        self.storage = storage
        self.requiresGradient = requiresGradient
    }

    /// A tensor of zeros.
    public convenience init(zeros shape: [Int], requiresGradient: Bool = false) throws {
        try Tensor.validate(shape: shape, operation: "Tensor(zeros:)")
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)), requiresGradient: requiresGradient)
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int], requiresGradient: Bool = false) throws {
        try Tensor.validate(shape: shape, operation: "Tensor(repeating:)")
        let storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
        storage.pointer.initialize(repeating: value, count: storage.count)
        self.init(shape: shape, storage: storage, requiresGradient: requiresGradient)
    }

    /// A tensor holding `scalars` (row-major) with the given shape.
    public convenience init(_ scalars: [Float], shape: [Int], requiresGradient: Bool = false) throws {
        try Tensor.validate(shape: shape, operation: "Tensor(_:shape:)")
        guard scalars.count == shape.reduce(1, *) else {
            throw TensorError.shapeMismatch(operation: "Tensor(_:shape:)", shapes: [shape, [scalars.count]],
                                            detail: "the shape holds \(shape.reduce(1, *)) values but \(scalars.count) were given")
        }
        let storage = scalars.withUnsafeBufferPointer { TensorStorage(copying: $0) }
        self.init(shape: shape, storage: storage, requiresGradient: requiresGradient)
    }

    /// A scalar (rank 0) tensor.
    public convenience init(scalar: Float) {
        let storage = TensorStorage(count: 1, zeroed: false)
        storage.pointer.pointee = scalar
        self.init(shape: [], storage: storage)
    }

    /// Normal values with the given standard deviation, drawn from `generator`.
    public convenience init(normal shape: [Int], standardDeviation: Float = 1, generator: inout SplitMix64,
                            requiresGradient: Bool = false) throws {
        try Tensor.validate(shape: shape, operation: "Tensor(normal:)")
        let storage = TensorStorage(count: shape.reduce(1, *), zeroed: !Initialization.draws)
        if Initialization.draws { for i in 0..<storage.count { storage.pointer[i] = generator.nextNormal() * standardDeviation } }
        self.init(shape: shape, storage: storage, requiresGradient: requiresGradient)
    }

    /// Uniform values in [lower, upper), drawn from `generator`.
    public convenience init(uniform shape: [Int], lower: Float, upper: Float, generator: inout SplitMix64,
                            requiresGradient: Bool = false) throws {
        try Tensor.validate(shape: shape, operation: "Tensor(uniform:)")
        let storage = TensorStorage(count: shape.reduce(1, *), zeroed: !Initialization.draws)
        if Initialization.draws { for i in 0..<storage.count { storage.pointer[i] = lower + (upper - lower) * generator.nextUniform() } }
        self.init(shape: shape, storage: storage, requiresGradient: requiresGradient)
    }

    static func validate(shape: [Int], operation: String) throws {
        if let bad = shape.first(where: { $0 < 0 }) {
            throw TensorError.invalidArgument(operation: operation, parameter: "shape", value: "\(shape)",
                                              allowed: "non-negative extents (found \(bad))")
        }
    }

    // MARK: Accessors

    /// The number of values.
    public var count: Int { storage.count }
    /// The number of axes.
    public var rank: Int { shape.count }
    /// The values, row-major, as an array (a copy).
    public var scalars: [Float] { storage.array }
    /// The single value of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else {
            throw TensorError.shapeMismatch(operation: "item", shapes: [shape], detail: "item() needs exactly one element")
        }
        return storage.pointer[0]
    }

    /// The accumulated gradient, with this tensor's shape; nil before any backward pass reached it.
    public var gradient: Tensor? {
        gradientStorage.map { Tensor(shape: shape, storage: $0) }
    }

    /// Whether gradients flow through this tensor: a leaf that requires them or a recorded result.
    public var isTracked: Bool { requiresGradient || node != nil }

    /// Drops the accumulated gradient (the next backward pass starts from zero).
    public func zeroGradient() { gradientStorage = nil }

    /// The gradient buffer, allocated (zeroed) on first use; backward kernels accumulate into it.
    func gradientPointer() -> UnsafeMutablePointer<Float> {
        if let existing = gradientStorage { return existing.pointer }
        let fresh = TensorStorage(count: count)
        gradientStorage = fresh
        return fresh.pointer
    }

    /// Where a backward kernel puts this tensor's gradient. When it is the first gradient to arrive,
    /// a fresh buffer that the kernel must overwrite entirely (`accumulate` false: no zeroing pass
    /// beforehand); otherwise the gradient already there, to add to (`accumulate` true). Kernels
    /// that can write either way take this; the others take `gradientPointer()`.
    func gradientDestination() -> (pointer: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if let existing = gradientStorage { return (existing.pointer, true) }
        let fresh = TensorStorage(count: count, zeroed: false)
        gradientStorage = fresh
        return (fresh.pointer, false)
    }

    /// A new leaf with a copy of the values and no graph.
    public func detached() -> Tensor {
        Tensor(shape: shape, storage: TensorStorage(copying: storage))
    }

    /// Overwrites the values with `other`'s (same count), for loading weights; not recorded.
    public func assign(from other: Tensor) throws {
        guard other.count == count else {
            throw TensorError.shapeMismatch(operation: "assign", shapes: [shape, other.shape], detail: "element counts differ")
        }
        storage.pointer.update(from: other.storage.pointer, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
