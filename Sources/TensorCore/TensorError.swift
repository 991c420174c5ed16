/// An error from a tensor operation: it names the operation and the shapes or values involved,
/// so that bad input never ends in a bare trap or a silently wrong result.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Operand shapes that the operation cannot combine.
    case shapeMismatch(operation: String, shapes: [[Int]], detail: String)
    /// An index (a token id, a position, an axis) outside its valid range.
    case indexOutOfRange(operation: String, index: Int, validRange: Range<Int>)
    /// A parameter value outside its allowed set (a negative rate, zero heads, an empty list).
    case invalidArgument(operation: String, parameter: String, value: String, allowed: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, shapes, detail):
            let list = shapes.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }
            return "\(operation): incompatible shapes \(list.joined(separator: " and ")): \(detail)"
        case let .indexOutOfRange(operation, index, validRange):
            return "\(operation): index \(index) is outside \(validRange.lowerBound)..<\(validRange.upperBound)"
        case let .invalidArgument(operation, parameter, value, allowed):
            return "\(operation): invalid \(parameter) = \(value); allowed: \(allowed)"
        }
    }
}

extension TensorError: LocalizedError {
    public var errorDescription: String? { description }
}

import Foundation
