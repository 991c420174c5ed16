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

/// An error in a layer's or optimiser's configuration, naming the parameter and its allowed values.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let parameter: String
    public let value: String
    public let allowed: String

    public init(parameter: String, value: String, allowed: String) {
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
    }

    public var description: String { "invalid \(parameter) = \(value); allowed: \(allowed)" }
}

/// Throws a `ConfigurationError` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, _ parameter: String, _ value: @autoclosure () -> Any, _ allowed: String) throws {
    if !condition { throw ConfigurationError(parameter: parameter, value: "\(value())", allowed: allowed) }
}
