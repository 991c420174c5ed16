import Foundation
import NN
import TensorCore

/// A positional scheme as a user writes it: a short name and any of its settings, from the command
/// line to a run's `config.json`. Text form: the name alone (`rope`), or the name followed by a
/// JSON object of settings (`rope{"rope_type": "yarn", "factor": 4}`, `t5{"buckets": 16}`). In JSON
/// files it is that string, or an object `{"name": "rope", "rope_theta": 500, …}`.
///
/// Settings by scheme (every one optional; an unknown key is an error that lists the allowed ones):
///
/// | scheme | keys |
/// |---|---|
/// | `nope`, `alibi` | none |
/// | `sinusoidal` | `scale` (the table's factor, E = X + scale·P; default 1/√C, see `defaultSinusoidalScale`) |
/// | `learned` | `max_length` (rows of the table; default: the longest position a run uses) |
/// | `relative`, `shaw` | `max_distance` (the clip distance K) |
/// | `t5` | `buckets`, `max_distance`, `bidirectional` |
/// | `rope` | `rope_theta`, `pairing` (`halfSplit` or `interleaved`), `partial_rotary_factor`, `max_position_embeddings`, and a transformers `rope_parameters` dictionary's keys (`rope_type`, `factor`, `original_max_position_embeddings`, …) |
/// | `hope` | as `rope`, and one cut: `train_length` (default: the run's), `keep` (pairs) or `fraction` |
///
/// `resolved(trainingLength:maximumLength:)` turns a specification into a `PositionalScheme` with
/// the run's defaults filled in; `init(_:)` writes a scheme back with every setting explicit, so
/// the two round-trip and a recorded run says exactly what it trained with.
public struct SchemeSpecification: Codable, Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let settings: [String: JSONValue]

    /// The keys every rotary scheme reads besides those of its `rope_type`.
    static let rotaryKeys: Set<String> = ["rope_theta", "pairing", "partial_rotary_factor", "max_position_embeddings",
                                          "rope_type", "type"]
    /// The keys of each transformers `rope_type` (as `RoPEScaling(parameters:)` reads them).
    static let ropeTypeKeys: [String: Set<String>] = [
        "default": [], "linear": ["factor"], "ntk": ["factor"], "dynamic": ["factor", "original_max_position_embeddings"],
        "yarn": ["factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim",
                 "attention_factor", "truncate"],
        "llama3": ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
        "longrope": ["short_factor", "long_factor", "original_max_position_embeddings", "factor", "attention_factor"],
        "proportional": ["factor"],
    ]
    static let hopeCutKeys: Set<String> = ["train_length", "keep", "fraction"]

    /// The keys `name` accepts (for rotary schemes, given the `rope_type` in `settings`).
    static func allowedKeys(name: String, settings: [String: JSONValue]) -> Set<String> {
        switch name {
        case "sinusoidal": return ["scale"]
        case "learned": return ["max_length"]
        case "relative", "shaw": return ["max_distance"]
        case "t5": return ["buckets", "max_distance", "bidirectional"]
        case "rope", "hope":
            var type = "default"
            if case let .string(s)? = settings["rope_type"] ?? settings["type"] { type = s }
            let own = ropeTypeKeys[type] ?? []
            return rotaryKeys.union(own).union(name == "hope" ? hopeCutKeys : [])
        default: return []
        }
    }

    /// Checks the name and every key; a value's type and range are checked by `resolved`.
    public init(name: String, settings: [String: JSONValue] = [:]) throws {
        let canonical = Self.canonicalName(name)
        guard let canonical else {
            throw ConfigurationError(parameter: "positional scheme", value: name,
                                     allowed: PositionalScheme.names.joined(separator: ", "))
        }
        // The rope_type first: it decides which other keys are allowed.
        for key in ["rope_type", "type"] {
            guard let value = settings[key] else { continue }
            guard case let .string(type) = value, Self.ropeTypeKeys[type] != nil else {
                throw ConfigurationError(parameter: "\(canonical).\(key)", value: value.compactText,
                                         allowed: RoPEScaling.ropeTypes.map { "\"\($0)\"" }.joined(separator: ", "))
            }
        }
        let allowed = Self.allowedKeys(name: canonical, settings: settings)
        for key in settings.keys.sorted() where !allowed.contains(key) {
            throw ConfigurationError(parameter: "\(canonical) setting", value: key,
                                     allowed: allowed.isEmpty ? "none (\(canonical) has no settings)"
                                        : allowed.sorted().joined(separator: ", "))
        }
        if canonical == "hope", settings.keys.filter(Self.hopeCutKeys.contains).count > 1 {
            throw ConfigurationError(parameter: "hope cut", value: settings.keys.filter(Self.hopeCutKeys.contains).sorted()
                .joined(separator: " and "), allowed: "one of train_length, keep, fraction")
        }
        self.name = canonical
        self.settings = settings
    }

    /// RoPE with its defaults.
    public static let rope = SchemeSpecification(checkedName: "rope", settings: [:])

    /// For names and settings known to be valid.
    init(checkedName: String, settings: [String: JSONValue]) {
        self.name = checkedName
        self.settings = settings
    }

    static func canonicalName(_ name: String) -> String? {
        switch name.lowercased() {
        case "nope", "none": return "nope"
        case "sinusoidal", "sin": return "sinusoidal"
        case "learned", "learned-absolute", "absolute": return "learned"
        case "relative", "relative-bias": return "relative"
        case let other where PositionalScheme.names.contains(other): return other
        default: return nil
        }
    }

    /// Parses the text form: `NAME` or `NAME{JSON object}`.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let brace = trimmed.firstIndex(of: "{") else { try self.init(name: trimmed); return }
        let name = String(trimmed[..<brace]).trimmingCharacters(in: .whitespaces)
        let json = String(trimmed[brace...])
        try DuplicateKeys.check(Data(json.utf8), in: "settings of \(name.isEmpty ? "the scheme" : name)")
        guard case let .object(settings)? = try? JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) else {
            throw ConfigurationError(parameter: "settings of \(name.isEmpty ? "the scheme" : name)", value: json,
                                     allowed: "a JSON object after the name, e.g. rope{\"rope_theta\": 500}")
        }
        try self.init(name: name, settings: settings)
    }

    /// The text form; settings as compact JSON with sorted keys.
    public var description: String {
        settings.isEmpty ? name : name + JSONValue.object(settings).compactText
    }

    /// These settings with `extra` added; a key set in both to different values is an error.
    public func merging(_ extra: [String: JSONValue]) throws -> SchemeSpecification {
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) {
            if let own = settings[key], own != value {
                throw ConfigurationError(parameter: "\(name).\(key)", value: "\(own.compactText) and \(value.compactText)",
                                         allowed: "one value: the setting is given twice")
            }
        }
        return try SchemeSpecification(name: name, settings: settings.merging(extra) { _, new in new })
    }

    /// A rotary scheme with `extra`'s settings instead of its own where they overlap; a new
    /// `rope_type` drops every key of the old one (`factor`, `original_max_position_embeddings`, …).
    /// How a trained run's recorded scheme takes a new scaling (eval, finetune).
    public func replacing(_ extra: [String: JSONValue]) throws -> SchemeSpecification {
        var own = settings
        if extra["rope_type"] != nil || extra["type"] != nil {
            for key in Self.ropeTypeKeys.values.reduce(into: Set(["rope_type", "type"]), { $0.formUnion($1) }) {
                own.removeValue(forKey: key)
            }
        }
        if !Set(extra.keys).isDisjoint(with: Self.hopeCutKeys) { Self.hopeCutKeys.forEach { own.removeValue(forKey: $0) } }
        return try SchemeSpecification(name: name, settings: own.merging(extra) { _, new in new })
    }

    /// A short readable label: the name, and the settings that differ from `defaults` (the same
    /// scheme's settings with nothing given, resolved for the same run).
    public func label(defaults: SchemeSpecification?) -> String {
        let changed = settings.filter { defaults?.settings[$0.key] != $0.value }
        guard !changed.isEmpty else { return name }
        // A rope_type's own keys read best after it: yarn ×4 (original_max_position_embeddings=64).
        let parts = changed.sorted { $0.key < $1.key }.map { key, value in "\(key)=\(value.compactText)" }
        return "\(name)(\(parts.joined(separator: ", ")))"
    }

    // MARK: Codable: a string (the text form) or an object with "name".

    public init(from decoder: Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            try self.init(parsing: text)
            return
        }
        var object = try [String: JSONValue](from: decoder)
        guard case let .string(name)? = object.removeValue(forKey: "name") else {
            throw ConfigurationError(parameter: "positional scheme", value: JSONValue.object(object).compactText,
                                     allowed: "a name, or an object with \"name\" and the scheme's settings")
        }
        try self.init(name: name, settings: object)
    }

    public func encode(to encoder: Encoder) throws {
        try settings.merging(["name": .string(name)]) { old, _ in old }.encode(to: encoder)
    }
}

extension SchemeSpecification {
    /// The sinusoidal table's default amplitude for model dimension C: 1/√C, the scale of token
    /// embeddings initialised at std 0.02 (GPT-2's); 1 when C is not known.
    ///
    /// At amplitude 1 the table is ~35× the embeddings, and a sinusoidal model does not even fit
    /// copy at its training length (exact match 0.00). Vaswani et al. (2017, §3.4) multiply the
    /// embeddings by √C instead; that fits sinusoidal copy just as well, but it also multiplies the
    /// residual stream of every other scheme by √C against blocks whose outputs start at std
    /// 0.02/√(2·layers), and NoPE then fails copy (exact match 0.00 where it reaches 0.9).
    /// Dividing the table gives the same token-to-position ratio and leaves the other schemes alone
    /// (docs/baselines-notebook.md has the measurements). `sinusoidal{"scale": 1}` is Vaswani's table.
    public static func defaultSinusoidalScale(modelDimension: Int?) -> Double {
        modelDimension.map { 1 / Double($0).squareRoot() } ?? 1
    }

    /// The scheme with this run's defaults: `trainingLength` sets HoPE's default cut and RoPE's
    /// `max_position_embeddings` (the length the model was trained at, which dynamic NTK, YaRN,
    /// llama3 and LongRoPE read as L₀); `maximumLength` sizes a learned table by default; the model
    /// dimension sets the sinusoidal table's default amplitude.
    public func resolved(trainingLength: Int, maximumLength: Int, modelDimension: Int? = nil) throws -> PositionalScheme {
        let r = SettingReader(scheme: name, values: settings)
        switch name {
        case "nope": return .none
        case "alibi": return .alibi
        case "sinusoidal":
            let scale = try r.number("scale") ?? Self.defaultSinusoidalScale(modelDimension: modelDimension)
            try require(scale.isFinite && abs(scale) <= 1e6, "sinusoidal.scale", scale, "a finite number")
            return .sinusoidal(scale: Float(scale))
        case "learned":
            let length = try r.count("max_length", atLeast: 1) ?? maximumLength
            return .learnedAbsolute(maximumLength: length)
        case "relative": return .relativeBias(maximumDistance: try r.count("max_distance", atLeast: 1) ?? 16)
        case "shaw": return .shaw(maximumDistance: try r.count("max_distance", atLeast: 1) ?? 16)
        case "t5":
            let buckets = try r.count("buckets", atLeast: 2) ?? 32
            let distance = try r.count("max_distance", atLeast: 1) ?? 128
            let bidirectional = try r.bool("bidirectional") ?? false
            try T5Bias.validate(numberOfBuckets: buckets, maximumDistance: distance, bidirectional: bidirectional)
            return .t5(numberOfBuckets: buckets, maximumDistance: distance, bidirectional: bidirectional)
        case "rope", "hope":
            var parameters = settings
            for key in ["pairing", "train_length", "keep", "fraction"] { parameters.removeValue(forKey: key) }
            var pairing = RotaryPairing.halfSplit
            if let text = try r.string("pairing") {
                guard let value = RotaryPairing(rawValue: text) else {
                    throw ConfigurationError(parameter: "\(name).pairing", value: text,
                                             allowed: RotaryPairing.allCases.map(\.rawValue).joined(separator: ", "))
                }
                pairing = value
            }
            let maximum = try r.count("max_position_embeddings", atLeast: 1) ?? trainingLength
            parameters.removeValue(forKey: "max_position_embeddings")
            let configuration = try RotaryConfiguration(ropeParameters: parameters, pairing: pairing,
                                                        maximumPositionEmbeddings: maximum)
            guard name == "hope" else { return .rope(configuration) }
            let cut: HoPECut
            if let keep = try r.count("keep", atLeast: 0) { cut = .count(keep) }
            else if let fraction = try r.number("fraction") {
                try require(fraction >= 0 && fraction <= 1, "hope.fraction", fraction, "0 ≤ fraction ≤ 1")
                cut = .fraction(fraction)
            } else { cut = .trainingLength(try r.count("train_length", atLeast: 1) ?? trainingLength) }
            return .hope(configuration, cut: cut)
        default:
            throw ConfigurationError(parameter: "positional scheme", value: name, allowed: PositionalScheme.names.joined(separator: ", "))
        }
    }

    /// A scheme written back with every setting explicit.
    public init(_ scheme: PositionalScheme) {
        func n(_ value: Double) -> JSONValue { .number(value) }
        func rotary(_ c: RotaryConfiguration) -> [String: JSONValue] {
            var d = c.scaling.parameters
            d["rope_theta"] = n(c.base)
            d["pairing"] = .string(c.pairing.rawValue)
            if case .proportional = c.scaling {} else { d["partial_rotary_factor"] = n(c.partialRotaryFactor) }
            if let m = c.maximumPositionEmbeddings { d["max_position_embeddings"] = n(Double(m)) }
            return d
        }
        let settings: [String: JSONValue]
        switch scheme {
        case .none, .alibi: settings = [:]
        case let .sinusoidal(scale): settings = ["scale": n(Double(scale))]
        case let .learnedAbsolute(length): settings = ["max_length": n(Double(length))]
        case let .relativeBias(distance), let .shaw(distance): settings = ["max_distance": n(Double(distance))]
        case let .t5(buckets, distance, bidirectional):
            settings = ["buckets": n(Double(buckets)), "max_distance": n(Double(distance)), "bidirectional": .bool(bidirectional)]
        case let .rope(c): settings = rotary(c)
        case let .hope(c, cut):
            var d = rotary(c)
            switch cut {
            case let .trainingLength(length): d["train_length"] = n(Double(length))
            case let .count(count): d["keep"] = n(Double(count))
            case let .fraction(fraction): d["fraction"] = n(fraction)
            }
            settings = d
        }
        // Every key written here is one `allowedKeys` lists.
        self.init(checkedName: scheme.name, settings: settings)
    }

    /// Whether weights trained under `self` can be evaluated under `other`: the rotary schemes (RoPE
    /// and its scalings, HoPE) have no weights and swap freely among themselves; any other scheme
    /// only keeps its own name (and then its parameters must keep their shapes).
    public func canSwap(to other: SchemeSpecification) -> Bool {
        let rotary: Set<String> = ["rope", "hope"]
        return (rotary.contains(name) && rotary.contains(other.name)) || name == other.name
    }
}

/// Typed reads of a scheme's settings, with errors that name the key, the value and the range.
struct SettingReader {
    let scheme: String
    let values: [String: JSONValue]
    /// The largest table size, distance or count a setting may take: a learned table of a million
    /// rows at C = 256 already needs 4 GB with its gradient and AdamW's moments.
    static let largestCount = 1_000_000

    /// Numbers and booleans are read as a rope_parameters dictionary's are, with the same messages.
    var reader: ParameterReader { ParameterReader(values: values, context: scheme) }

    func number(_ key: String) throws -> Double? { try reader.number(key) }

    func count(_ key: String, atLeast minimum: Int) throws -> Int? {
        guard let v = try number(key) else { return nil }
        guard v == v.rounded(), v >= Double(minimum), v <= Double(Self.largestCount), let whole = Int(exactly: v) else {
            throw ConfigurationError(parameter: "\(scheme).\(key)", value: JSONValue.number(v).compactText,
                                     allowed: "a whole number from \(minimum) to \(Self.largestCount)")
        }
        return whole
    }

    func bool(_ key: String) throws -> Bool? { try reader.bool(key) }

    func string(_ key: String) throws -> String? {
        switch values[key] {
        case nil, .null?: return nil
        case let .string(s)?: return s
        case let other?: throw ConfigurationError(parameter: "\(scheme).\(key)", value: other.compactText, allowed: "a string")
        }
    }
}

extension JSONValue {
    /// Compact JSON with sorted keys; whole numbers without a fraction.
    public var compactText: String {
        switch self {
        case let .number(v):
            if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
            return "\(v)"
        case let .string(s):
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.compactText).joined(separator: ",") + "]"
        case let .object(o):
            return "{" + o.keys.sorted().map { "\"\($0)\":\(o[$0]!.compactText)" }.joined(separator: ",") + "}"
        }
    }
}
