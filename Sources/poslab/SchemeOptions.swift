import ArgumentParser
import Foundation
import PositionalEncodings

/// How a scheme is written on the command line, for every command's help.
let schemeHelp = "A positional scheme: a name (\(PositionalScheme.names.joined(separator: ", "))), optionally followed by a JSON "
    + "object of its settings, e.g. 'rope{\"rope_theta\": 500}', 't5{\"buckets\": 16, \"max_distance\": 64}', "
    + "'hope{\"keep\": 4}', 'sinusoidal{\"scale\": 0.1}', 'learned{\"max_length\": 512}', 'relative{\"max_distance\": 8}'."

let ropeHelp = "A transformers rope_parameters dictionary (plus rope_theta, pairing, partial_rotary_factor, "
    + "max_position_embeddings) for the rope and hope schemes, e.g. "
    + "'{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 64}'."

/// A trained run's recorded scheme with `--rope`'s settings in place of its own (a new rope_type
/// replaces the old one's keys); the scheme itself without `--rope`.
func replacingRope(_ scheme: SchemeSpecification, rope: String?) throws -> SchemeSpecification {
    guard let rope else { return scheme }
    guard scheme.name == "rope" || scheme.name == "hope" else {
        throw ValidationError("--rope sets rope and hope schemes; the run's scheme, \(scheme.name), has no rotary settings")
    }
    return try scheme.replacing(JSONValue.object(parsing: rope))
}

/// `text` as a scheme; `rope` (a JSON object) is merged into rope and hope schemes' settings.
func parseScheme(_ text: String, rope: String?) throws -> SchemeSpecification {
    try applyRope(SchemeSpecification(parsing: text), rope: rope)
}

/// `--rope`'s dictionary merged into a rope or hope scheme; an error for any other scheme.
func applyRope(_ scheme: SchemeSpecification, rope: String?) throws -> SchemeSpecification {
    guard let rope else { return scheme }
    guard scheme.name == "rope" || scheme.name == "hope" else {
        throw ValidationError("--rope sets rope and hope schemes; \(scheme.name) has no rotary settings")
    }
    return try scheme.merging(JSONValue.object(parsing: rope))
}

/// A comma-separated list of schemes; commas inside a scheme's JSON settings do not split it.
func parseSchemeList(_ text: String, rope: String?) throws -> [SchemeSpecification] {
    var items: [String] = [], current = "", depth = 0, quoted = false, escaped = false
    for character in text {
        if quoted {
            if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { quoted = false }
        } else if character == "\"" { quoted = true }
        else if character == "{" || character == "[" { depth += 1 }
        else if character == "}" || character == "]" { depth -= 1 }
        if character == ",", depth == 0, !quoted { items.append(current); current = "" } else { current.append(character) }
    }
    items.append(current)
    guard depth == 0, !quoted else { throw ValidationError("unbalanced braces or quotes in the scheme list \"\(text)\"") }
    let schemes = try items.map { item -> SchemeSpecification in
        guard !item.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("an empty scheme in the list \"\(text)\"")
        }
        let scheme = try SchemeSpecification(parsing: item)
        return scheme.name == "rope" || scheme.name == "hope" ? try applyRope(scheme, rope: rope) : scheme
    }
    if rope != nil, !schemes.contains(where: { $0.name == "rope" || $0.name == "hope" }) {
        throw ValidationError("--rope sets rope and hope schemes, and the list \"\(text)\" has none")
    }
    return schemes
}
