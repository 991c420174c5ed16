import TensorCore

/// LayerNorm over the last axis with learned scale and (optional) shift. Shapes: [..., C] → [..., C].
public final class LayerNorm: Layer {
    public let scale: Tensor
    public let shift: Tensor?
    public let epsilon: Float

    public init(dimension: Int, bias: Bool = true, epsilon: Float = 1e-5) throws {
        try require(dimension > 0, "dimension", dimension, "a positive dimension")
        try require(epsilon > 0, "epsilon", epsilon, "a positive value")
        scale = try Tensor(repeating: 1, shape: [dimension], requiresGradient: true)
        shift = bias ? try Tensor(zeros: [dimension], requiresGradient: true) : nil
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.layerNorm(gamma: scale, beta: shift, epsilon: epsilon) }

    public var namedParameters: [(name: String, tensor: Tensor)] {
        [("weight", scale)] + (shift.map { [("bias", $0)] } ?? [])
    }
}

/// RMSNorm over the last axis with a learned scale. Shapes: [..., C] → [..., C].
public final class RMSNorm: Layer {
    public let scale: Tensor
    public let epsilon: Float

    public init(dimension: Int, epsilon: Float = 1e-6) throws {
        try require(dimension > 0, "dimension", dimension, "a positive dimension")
        try require(epsilon > 0, "epsilon", epsilon, "a positive value")
        scale = try Tensor(repeating: 1, shape: [dimension], requiresGradient: true)
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.rmsNorm(gamma: scale, epsilon: epsilon) }

    public var namedParameters: [(name: String, tensor: Tensor)] { [("weight", scale)] }
}
