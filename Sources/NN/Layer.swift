import TensorCore

/// NN: layers and optimisers on top of TensorCore. Shape legend: B batch, T sequence, C model
/// dimension, H heads, D head dimension, V vocabulary.
///
/// A layer owns trainable tensors and lists them by dotted name (the names used in checkpoints).
public protocol Layer: AnyObject {
    /// Every trainable tensor of this layer and its sub-layers, by dotted name.
    var namedParameters: [(name: String, tensor: Tensor)] { get }
}

extension Layer {
    public var parameters: [Tensor] { namedParameters.map(\.tensor) }

    /// The total number of trainable values.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Clears every parameter's accumulated gradient.
    public func zeroGradients() { parameters.forEach { $0.zeroGradient() } }
}

/// Prefixes a sub-layer's parameter names with `prefix.`.
public func prefixed(_ prefix: String, _ parameters: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
    parameters.map { (prefix + "." + $0.name, $0.tensor) }
}
