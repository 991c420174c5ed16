import Foundation

/// The one error type for a bad setting anywhere in PositionLab: a layer's or optimiser's size, a
/// scheme's parameter, a task's option, a run's limit. It names the parameter, the value as written
/// and the allowed values or range; the command line turns it into a message and exit code 2.
/// Errors that are not settings keep their own types: a malformed file (`SafeTensors.FormatError`,
/// `Checkpoint.LoadError`, `TextTask.DataError`), a tensor operation given incompatible operands
/// (`TensorError`), a held lock.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let parameter: String
    public let value: String
    public let allowed: String
    /// What was being configured (a task, a layer), when the parameter's name alone is ambiguous.
    public let context: String?

    public init(parameter: String, value: String, allowed: String, context: String? = nil) {
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        self.context = context
    }

    /// The same, with its context first (as the message reads).
    public init(context: String, parameter: String, value: String, allowed: String) {
        self.init(parameter: parameter, value: value, allowed: allowed, context: context)
    }

    public var description: String { (context.map { $0 + ": " } ?? "") + "invalid \(parameter) = \(value); allowed: \(allowed)" }
}

extension ConfigurationError: LocalizedError {
    public var errorDescription: String? { description }
}

/// Throws a `ConfigurationError` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, _ parameter: String, _ value: @autoclosure () -> Any, _ allowed: String) throws {
    if !condition { throw ConfigurationError(parameter: parameter, value: "\(value())", allowed: allowed) }
}
