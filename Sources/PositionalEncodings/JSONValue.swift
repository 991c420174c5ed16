import Foundation
import TensorCore

/// A JSON value, for reading and writing transformers-style parameter dictionaries as they are.
public enum JSONValue: Codable, Hashable, Sendable {
    case number(Double)
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .number(n): try c.encode(n)
        case let .string(s): try c.encode(s)
        case let .bool(b): try c.encode(b)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    /// Parses a JSON object from text, e.g. a pasted `rope_parameters` dictionary.
    public static func object(parsing text: String) throws -> [String: JSONValue] {
        try DuplicateKeys.check(Data(text.utf8), in: "rope parameters")
        guard case let .object(o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            throw ConfigurationError(parameter: "rope parameters", value: text, allowed: "a JSON object such as {\"rope_type\": \"linear\", \"factor\": 2}")
        }
        return o
    }
}

/// Typed reads from a parameter dictionary, with errors that name the key.
struct ParameterReader {
    let values: [String: JSONValue]
    let context: String

    func number(_ key: String) throws -> Double? {
        switch values[key] {
        case nil, .null?: return nil
        case let .number(n)?: return n
        case let other?: throw ConfigurationError(parameter: "\(context).\(key)", value: other.compactText, allowed: "a number")
        }
    }

    func requiredNumber(_ key: String) throws -> Double {
        guard let n = try number(key) else {
            throw ConfigurationError(parameter: "\(context).\(key)", value: "missing", allowed: "a number (required for \(context))")
        }
        return n
    }

    func bool(_ key: String) throws -> Bool? {
        switch values[key] {
        case nil, .null?: return nil
        case let .bool(b)?: return b
        case let other?: throw ConfigurationError(parameter: "\(context).\(key)", value: other.compactText, allowed: "true or false")
        }
    }

    func numbers(_ key: String) throws -> [Double] {
        guard case let .array(items)? = values[key] else {
            throw ConfigurationError(parameter: "\(context).\(key)", value: values[key]?.compactText ?? "missing", allowed: "a list of numbers (required for \(context))")
        }
        return try items.map {
            guard case let .number(n) = $0 else { throw ConfigurationError(parameter: "\(context).\(key)", value: $0.compactText, allowed: "numbers only") }
            return n
        }
    }
}
