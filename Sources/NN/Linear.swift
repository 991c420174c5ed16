import TensorCore

/// y = x·Wᵀ + b. Shapes: x [..., inputs], W [outputs, inputs] (PyTorch's layout, so checkpoints
/// map one to one; BLAS reads it transposed without a copy), b [outputs], y [..., outputs].
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    /// Weights from N(0, standardDeviation²) (GPT-2's initialisation uses 0.02), bias zero.
    public init(inputs: Int, outputs: Int, bias: Bool = true, standardDeviation: Float = 0.02, generator: inout SplitMix64) throws {
        try require(inputs > 0, "inputs", inputs, "a positive count")
        try require(outputs > 0, "outputs", outputs, "a positive count")
        weight = try Tensor(normal: [outputs, inputs], standardDeviation: standardDeviation, generator: &generator, requiresGradient: true)
        self.bias = bias ? try Tensor(zeros: [outputs], requiresGradient: true) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.linear(weight: weight, bias: bias)
    }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// A table of learned vectors looked up by index. Shapes: table [V, C]; ids [B, T] give [B, T, C].
public final class Embedding: Layer {
    public let weight: Tensor

    public init(count: Int, dimension: Int, standardDeviation: Float = 0.02, generator: inout SplitMix64) throws {
        try require(count > 0, "count", count, "a positive count")
        try require(dimension > 0, "dimension", dimension, "a positive dimension")
        weight = try Tensor(normal: [count, dimension], standardDeviation: standardDeviation, generator: &generator, requiresGradient: true)
    }

    public func callAsFunction(_ ids: [Int], shape: [Int]) throws -> Tensor {
        try weight.gatherRows(ids, indexShape: shape)
    }

    public var namedParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }
}
