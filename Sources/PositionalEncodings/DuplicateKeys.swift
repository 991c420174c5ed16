import Foundation
import TensorCore

/// JSON parsers, Foundation's among them, keep one value of a key that an object repeats and drop
/// the other without a word: `{"rope_theta": 100, "rope_theta": 200}` would train with one of the
/// two. Every JSON text a user writes (a scheme's settings, rope parameters, config.json, a sweep
/// file) is scanned for such keys first, so that a repeated key is an error, not a silent choice.
public enum DuplicateKeys {
    /// The first key that appears twice in one object of `data`, as a path (`pes[1].rope_theta`);
    /// nil when every object's keys are distinct. Text that is not JSON gives nil or an arbitrary
    /// path: the parser that runs next says what is wrong with it.
    public static func first(in data: Data) -> String? {
        let bytes = [UInt8](data)
        struct Frame { var keys: Set<String>?; var label: String; var index = 0; var expectingKey = true }
        var stack: [Frame] = []
        var pendingLabel = ""
        var i = 0
        func path(_ key: String? = nil) -> String {
            let parts = stack.dropFirst().map(\.label) + (key.map { [$0] } ?? [])
            return parts.reduce("") { $0.isEmpty || $1.hasPrefix("[") ? $0 + $1 : $0 + "." + $1 }
        }
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if var top = stack.last, top.keys != nil, top.expectingKey {
                    let raw = Data(bytes[start..<min(i + 1, bytes.count)])
                    let key = (try? JSONSerialization.jsonObject(with: raw, options: .fragmentsAllowed) as? String)
                        ?? String(decoding: raw, as: UTF8.self)
                    if top.keys!.contains(key) { return path(key) }
                    top.keys!.insert(key)
                    top.expectingKey = false
                    stack[stack.count - 1] = top
                    pendingLabel = key
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let label: String
                if let top = stack.last { label = top.keys == nil ? "[\(top.index)]" : pendingLabel } else { label = "" }
                stack.append(Frame(keys: byte == UInt8(ascii: "{") ? [] : nil, label: label))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
            case UInt8(ascii: ","):
                if !stack.isEmpty {
                    stack[stack.count - 1].index += 1
                    stack[stack.count - 1].expectingKey = true
                }
            default: break
            }
            i += 1
        }
        return nil
    }

    /// Throws a `ConfigurationError` naming the first repeated key of `data` (in `what`).
    public static func check(_ data: Data, in what: String) throws {
        if let key = first(in: data) {
            throw ConfigurationError(parameter: what, value: "the key \(key) given twice",
                                     allowed: "each key once per object (a JSON parser would silently keep only one)")
        }
    }
}
