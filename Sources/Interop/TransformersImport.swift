import Foundation
import Models
import NN
import PositionalEncodings
import TensorCore

/// A transformers folder opened as a PositionLab model: config.json of a supported family
/// (`TransformersFamily`) and its weights in model.safetensors or in shards listed by
/// model.safetensors.index.json, in Float32, Float16, BFloat16 or Float64 (converted to Float32 on
/// load). Biases a checkpoint does not have (Llama without attention_bias) load as zeros. Every
/// tensor is checked by name and shape before the model is returned, and a tensor the model has no
/// place for is refused (`checkEveryTensorUsed`); there is no partial model.
public struct TransformersImport {
    public let family: TransformersFamily
    public let model: Transformer
    /// config.json as read.
    public let configuration: [String: JSONValue]
    /// The longest context the model was made for (`max_position_embeddings`, GPT-2's `n_positions`).
    public let maximumPositions: Int

    public static let configurationFile = "config.json", weightsFile = "model.safetensors", indexFile = "model.safetensors.index.json"

    /// Whether `folder` holds a transformers config.json (one with a `model_type`), as opposed
    /// to a PositionLab run folder, whose config.json is a run specification.
    public static func isTransformersFolder(_ folder: URL) -> Bool {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent(configurationFile)),
              case let .object(o)? = try? JSONDecoder().decode(JSONValue.self, from: data) else { return false }
        return o["model_type"] != nil
    }

    public init(folder: URL) throws {
        let path = folder.path
        let configURL = folder.appendingPathComponent(Self.configurationFile)
        guard let data = try? Data(contentsOf: configURL) else {
            throw Checkpoint.LoadError(path: configURL.path, reason: "cannot be read (a transformers folder holds config.json)")
        }
        let (family, config, configuration, maximumPositions) = try Self.configuration(json: data, path: configURL.path)
        // Weights are indexed, and the model's size checked against them and against this machine's
        // memory, before the model is allocated.
        let tensors = try Self.readWeights(folder)
        try Self.checkBeforeAllocating(configuration, family: family, tensors: tensors, path: path)
        // Every parameter is copied from the checkpoint (a bias it lacks is set to zero): nothing drawn stays.
        let model = try Initialization.skippingDraws { try Transformer(configuration: configuration, seed: 0) }
        try Self.load(family, tensors: tensors, into: model, path: path)
        TensorStorage.releaseFreeMemory()  // the decoding's temporary buffers
        self.family = family
        self.model = model
        self.configuration = config
        self.maximumPositions = maximumPositions
    }

    // MARK: config.json

    /// A transformers config.json read as a PositionLab model configuration: the family, the
    /// dictionary as read, the configuration and the model's context length. Checked whole (an
    /// unsupported architecture or setting is named) before any weight is read.
    public static func configuration(json data: Data, path: String)
        throws -> (TransformersFamily, [String: JSONValue], TransformerConfiguration, Int) {
        try DuplicateKeys.check(data, in: path)
        guard case let .object(config)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw Checkpoint.LoadError(path: path, reason: "is not a JSON object")
        }
        let reader = ConfigReader(values: config, path: path)
        let family = try TransformersFamily(modelType: try reader.string("model_type"), path: path)
        do {
            let (configuration, maximumPositions) = try modelConfiguration(family, reader)
            return (family, config, configuration, maximumPositions)
        } catch let error as ConfigurationError {
            // The model's own check (heads dividing the width, …), said of this file.
            throw Checkpoint.LoadError(path: path, reason: "describes no model PositionLab can build: \(error)")
        }
    }

    static func modelConfiguration(_ family: TransformersFamily, _ r: ConfigReader) throws -> (TransformerConfiguration, Int) {
        let vocabulary = try r.count("vocab_size")
        let tied = try r.bool("tie_word_embeddings") ?? (family == .gpt2)
        switch family {
        case .llama:
            let (c, h) = (try r.count("hidden_size"), try r.count("num_attention_heads"))
            if let d = try r.optionalCount("head_dim"), d * h != c {
                throw r.unsupported("head_dim", "\(d)", "hidden_size / num_attention_heads = \(c / max(h, 1))")
            }
            if try r.bool("mlp_bias") == true { throw r.unsupported("mlp_bias", "true", "false (SwiGLU without biases)") }
            let act = try r.string("hidden_act", default: "silu")
            guard act == "silu" else { throw r.unsupported("hidden_act", act, "silu (SwiGLU)") }
            let maximum = try r.optionalCount("max_position_embeddings") ?? 2048
            let rotary = try Self.rotary(r, family: .llama, maximumPositions: maximum)
            guard rotary.partialRotaryFactor == 1 || { if case .proportional = rotary.scaling { return true }; return false }() else {
                throw r.unsupported("rope_parameters.partial_rotary_factor", "\(rotary.partialRotaryFactor)", "1 (Llama rotates whole heads)")
            }
            return (try TransformerConfiguration(
                vocabularySize: vocabulary, modelDimension: c, numberOfLayers: try r.count("num_hidden_layers"), numberOfHeads: h,
                numberOfKeyValueHeads: try r.optionalCount("num_key_value_heads") ?? h,
                feedForwardDimension: try r.count("intermediate_size"), feedForward: .swiGLU, activation: .silu,
                normalization: .rmsNorm, tiedEmbeddings: tied, positionalScheme: .rope(rotary),
                normalizationEpsilon: Float(try r.number("rms_norm_eps") ?? 1e-6)), maximum)
        case .gptNeoX:
            // Attention and MLP side by side (Pythia) or one after the other; missing biases load as zeros.
            let parallel = try r.bool("use_parallel_residual") ?? true
            let maximum = try r.optionalCount("max_position_embeddings") ?? 2048
            let rotary = try Self.rotary(r, family: .gptNeoX, maximumPositions: maximum)
            let c = try r.count("hidden_size")
            return (try TransformerConfiguration(
                vocabularySize: vocabulary, modelDimension: c, numberOfLayers: try r.count("num_hidden_layers"),
                numberOfHeads: try r.count("num_attention_heads"), feedForwardDimension: try r.count("intermediate_size"),
                feedForward: .mlp, activation: try TransformersFamily.activation(named: try r.string("hidden_act", default: "gelu"), path: r.path),
                normalization: .layerNorm, normalizationPlacement: parallel ? .parallel : .preNorm, tiedEmbeddings: tied,
                positionalScheme: .rope(rotary), normalizationEpsilon: Float(try r.number("layer_norm_eps") ?? 1e-5)), maximum)
        case .gpt2:
            for (key, expected) in [("scale_attn_weights", true), ("scale_attn_by_inverse_layer_idx", false)] {
                if let value = try r.bool(key), value != expected { throw r.unsupported(key, "\(value)", "\(expected)") }
            }
            if try r.bool("add_cross_attention") == true { throw r.unsupported("add_cross_attention", "true", "false (a decoder-only model)") }
            let c = try r.count("n_embd")
            let positions = try r.count("n_positions")
            return (try TransformerConfiguration(
                vocabularySize: vocabulary, modelDimension: c, numberOfLayers: try r.count("n_layer"), numberOfHeads: try r.count("n_head"),
                feedForwardDimension: try r.optionalCount("n_inner") ?? 4 * c, feedForward: .mlp,
                activation: try TransformersFamily.activation(named: try r.string("activation_function", default: "gelu_new"), path: r.path),
                normalization: .layerNorm, tiedEmbeddings: tied, positionalScheme: .learnedAbsolute(maximumLength: positions),
                normalizationEpsilon: Float(try r.number("layer_norm_epsilon") ?? 1e-5)), positions)
        }
    }

    /// The rotary configuration as transformers 5.24 reads config.json (`convert_rope_params_to_dict`):
    /// a non-empty `rope_scaling` replaces `rope_parameters` whole; `rope_theta` and
    /// `partial_rotary_factor` beside them fill in what the dictionary lacks (GPT-NeoX reads
    /// `rotary_emb_base` and `rotary_pct` there instead, 0.25 by default); half-split pairing.
    static func rotary(_ r: ConfigReader, family: TransformersFamily, maximumPositions: Int) throws -> RotaryConfiguration {
        func object(_ key: String) throws -> [String: JSONValue]? {
            switch r.values[key] {
            case let .object(o)?: return o.isEmpty ? nil : o
            case nil, .null?: return nil
            case let other?: throw r.unsupported(key, other.compactText, "a JSON object")
            }
        }
        let scaling = try object("rope_scaling")
        let source = scaling == nil ? "rope_parameters" : "rope_scaling"
        var parameters = try scaling ?? object("rope_parameters") ?? [:]
        // PositionLab's own key for --rope; transformers takes the length from the config itself.
        parameters["max_position_embeddings"] = nil
        let (thetaKey, partialKey) = family == .gptNeoX ? ("rotary_emb_base", "rotary_pct") : ("rope_theta", "partial_rotary_factor")
        if parameters["rope_theta"] == nil { parameters["rope_theta"] = .number(try r.number(thetaKey) ?? 10_000) }
        if parameters["partial_rotary_factor"] == nil, let partial = try r.number(partialKey) ?? (family == .gptNeoX ? 0.25 : nil) {
            parameters["partial_rotary_factor"] = .number(partial)
        }
        if parameters["rope_type"] == nil, let type = parameters["type"] { parameters["rope_type"] = type }
        parameters["type"] = nil
        if parameters["rope_type"] == nil { parameters["rope_type"] = .string("default") }
        do {
            return try RotaryConfiguration(ropeParameters: parameters, pairing: .halfSplit, maximumPositionEmbeddings: maximumPositions)
        } catch let error as ConfigurationError {
            throw Checkpoint.LoadError(path: r.path, reason: "\(source) (with the keys beside it): \(error)")
        }
    }

    // MARK: Weights

    /// Every tensor of model.safetensors, or of the shards model.safetensors.index.json lists:
    /// files memory-mapped, headers checked, each tensor decoded only when it is copied.
    static func readWeights(_ folder: URL) throws -> WeightSource {
        let manager = FileManager.default
        let single = folder.appendingPathComponent(weightsFile), index = folder.appendingPathComponent(indexFile)
        if manager.fileExists(atPath: index.path) {
            guard let data = try? Data(contentsOf: index) else {
                throw Checkpoint.LoadError(path: index.path, reason: "cannot be read")
            }
            if let key = DuplicateKeys.first(in: data) {
                throw Checkpoint.LoadError(path: index.path, reason: "names \(key) twice (each tensor is in one shard)")
            }
            guard case let .object(o)? = try? JSONDecoder().decode(JSONValue.self, from: data),
                  case let .object(map)? = o["weight_map"] else {
                throw Checkpoint.LoadError(path: index.path, reason: "is not a safetensors index (a JSON object with a weight_map)")
            }
            var shards: [String: [String]] = [:]
            for (name, value) in map {
                guard case let .string(file) = value, !file.contains("/"), !file.hasPrefix(".") else {
                    throw Checkpoint.LoadError(path: index.path, reason: "weight_map[\"\(name)\"] is \(value.compactText), not a file name in the folder")
                }
                shards[file, default: []].append(name)
            }
            var files: [String: SafeTensors.Index] = [:]
            for (file, names) in shards.sorted(by: { $0.key < $1.key }) {
                let url = folder.appendingPathComponent(file)
                guard manager.fileExists(atPath: url.path) else {
                    throw Checkpoint.LoadError(path: index.path, reason: "lists shard \(file), which is missing (it holds \(names.sorted().first!))")
                }
                let shard = try SafeTensors.Index(mapping: url)
                for name in names {
                    guard shard.shape(of: name) != nil else {
                        throw Checkpoint.LoadError(path: url.path, reason: "has no tensor \"\(name)\", which the index places there")
                    }
                    files[name] = shard
                }
            }
            return WeightSource(files: files)
        }
        guard manager.fileExists(atPath: single.path) else {
            throw Checkpoint.LoadError(path: folder.path, reason: "holds neither \(weightsFile) nor \(indexFile)")
        }
        let file = try SafeTensors.Index(mapping: single)
        return WeightSource(files: Dictionary(uniqueKeysWithValues: file.names.map { ($0, file) }))
    }

    /// The token embedding's shape in the checkpoint against config.json's vocab_size × hidden size,
    /// and the Float32 model against physical memory: a config.json that claims a huge model is
    /// refused with the figures, not met with a failed allocation.
    static func checkBeforeAllocating(_ c: TransformerConfiguration, family: TransformersFamily, tensors: WeightSource,
                                      path: String) throws {
        let embedding: String
        switch family {
        case .llama: embedding = "model.embed_tokens.weight"
        case .gptNeoX: embedding = tensors.contains("gpt_neox.embed_in.weight") ? "gpt_neox.embed_in.weight" : "embed_in.weight"
        case .gpt2: embedding = tensors.contains("transformer.wte.weight") ? "transformer.wte.weight" : "wte.weight"
        }
        _ = try TensorReader(tensors: tensors, path: path).shapeChecked(embedding, shape: [c.vocabularySize, c.modelDimension])
        let perLayer = 4.0 * Double(c.modelDimension) * Double(c.modelDimension)
            + 3.0 * Double(c.modelDimension) * Double(c.feedForwardDimension)
        let parameters = Double(c.vocabularySize) * Double(c.modelDimension) * (c.tiedEmbeddings ? 1 : 2)
            + Double(c.numberOfLayers) * perLayer
        let bytes = 4 * parameters, available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes < 0.8 * available else {
            throw Checkpoint.LoadError(path: path, reason: String(format: "describes a model of %.3g parameters (%.1f GiB in Float32); "
                + "this machine has %.1f GiB", parameters, bytes / 1_073_741_824, available / 1_073_741_824))
        }
    }

    /// Copies the checkpoint's tensors into `model` by the family's layout.
    static func load(_ family: TransformersFamily, tensors: WeightSource, into model: Transformer, path: String) throws {
        let r = TensorReader(tensors: tensors, path: path)
        let c = model.configuration
        let (h, d) = (c.numberOfHeads, c.headDimension)
        switch family {
        case .llama:
            try r.copy("model.embed_tokens.weight", into: model.tokenEmbedding.weight)
            for (i, block) in model.blocks.enumerated() {
                let p = "model.layers.\(i)."
                let a = block.attention
                try r.copy(p + "input_layernorm.weight", into: block.attentionNorm.scaleParameter)
                try r.copyLinear(p + "self_attn.q_proj", into: a.queryProjection, optionalBias: true)
                try r.copyLinear(p + "self_attn.k_proj", into: a.keyProjection, optionalBias: true)
                try r.copyLinear(p + "self_attn.v_proj", into: a.valueProjection, optionalBias: true)
                try r.copyLinear(p + "self_attn.o_proj", into: a.outputProjection, optionalBias: true)
                try r.copy(p + "post_attention_layernorm.weight", into: block.feedForwardNorm.scaleParameter)
                try r.copyLinear(p + "mlp.gate_proj", into: block.feedForward.expansion)
                try r.copyLinear(p + "mlp.up_proj", into: block.feedForward.gate!)
                try r.copyLinear(p + "mlp.down_proj", into: block.feedForward.contraction)
            }
            try r.copy("model.norm.weight", into: model.finalNorm!.scaleParameter)
            if let head = model.outputHead { try r.copy("lm_head.weight", into: head.weight) }
        case .gptNeoX:
            let prefix = tensors.contains("gpt_neox.embed_in.weight") ? "gpt_neox." : ""
            try r.copy(prefix + "embed_in.weight", into: model.tokenEmbedding.weight)
            for (i, block) in model.blocks.enumerated() {
                let p = prefix + "layers.\(i)."
                let a = block.attention
                try r.copyNorm(p + "input_layernorm", into: block.attentionNorm)
                try r.copyNorm(p + "post_attention_layernorm", into: block.feedForwardNorm)
                let weight = try r.tensor(p + "attention.query_key_value.weight", shape: [3 * h * d, c.modelDimension]).scalars
                let bias = try r.optionalTensor(p + "attention.query_key_value.bias", shape: [3 * h * d])?.scalars
                for (part, linear) in [a.queryProjection, a.keyProjection, a.valueProjection].enumerated() {
                    var rows: [Float] = [], biases: [Float] = []
                    for head in 0..<h {
                        let start = (head * 3 + part) * d
                        rows += weight[(start * c.modelDimension)..<((start + d) * c.modelDimension)]
                        biases += bias.map { Array($0[start..<(start + d)]) } ?? [Float](repeating: 0, count: d)
                    }
                    try linear.weight.assign(from: Tensor(rows, shape: [h * d, c.modelDimension]))
                    try linear.bias?.assign(from: Tensor(biases, shape: [h * d]))
                }
                try r.copyLinear(p + "attention.dense", into: a.outputProjection, optionalBias: true)
                try r.copyLinear(p + "mlp.dense_h_to_4h", into: block.feedForward.expansion)
                try r.copyLinear(p + "mlp.dense_4h_to_h", into: block.feedForward.contraction)
            }
            try r.copyNorm(prefix + "final_layer_norm", into: model.finalNorm!)
            if let head = model.outputHead {
                try r.copy(tensors.contains("lm_head.weight") || !tensors.contains("embed_out.weight") ? "lm_head.weight" : "embed_out.weight", into: head.weight)
            }
        case .gpt2:
            // Checkpoints name the base model "transformer." (GPT2LMHeadModel) or not at all (GPT2Model, the original gpt2).
            let prefix = tensors.contains("transformer.wte.weight") ? "transformer." : ""
            try r.copy(prefix + "wte.weight", into: model.tokenEmbedding.weight)
            guard let learned = model.positionalEncodings[0] as? LearnedAbsoluteEncoding else {
                throw Checkpoint.LoadError(path: path, reason: "GPT-2 model without a learned position table")
            }
            try r.copy(prefix + "wpe.weight", into: learned.table.weight)
            for (i, block) in model.blocks.enumerated() {
                let p = prefix + "h.\(i)."
                let a = block.attention
                let cdim = c.modelDimension
                try r.copyNorm(p + "ln_1", into: block.attentionNorm)
                try r.copyNorm(p + "ln_2", into: block.feedForwardNorm)
                let weight = Matrix.transposed(try r.tensor(p + "attn.c_attn.weight", shape: [cdim, 3 * cdim]).scalars, rows: cdim, columns: 3 * cdim)
                let bias = try r.tensor(p + "attn.c_attn.bias", shape: [3 * cdim]).scalars
                for (part, linear) in [a.queryProjection, a.keyProjection, a.valueProjection].enumerated() {
                    try linear.weight.assign(from: Tensor(Array(weight[(part * cdim * cdim)..<((part + 1) * cdim * cdim)]), shape: [cdim, cdim]))
                    try linear.bias?.assign(from: Tensor(Array(bias[(part * cdim)..<((part + 1) * cdim)]), shape: [cdim]))
                }
                try r.copyConv1D(p + "attn.c_proj", into: a.outputProjection)
                try r.copyConv1D(p + "mlp.c_fc", into: block.feedForward.expansion)
                try r.copyConv1D(p + "mlp.c_proj", into: block.feedForward.contraction)
            }
            try r.copyNorm(prefix + "ln_f", into: model.finalNorm!)
            if let head = model.outputHead { try r.copy("lm_head.weight", into: head.weight) }
        }
        try checkEveryTensorUsed(family, reader: r, tiedHead: model.outputHead == nil, path: path)
    }

    /// A tensor the model has no place for would be dropped, and the model would compute other
    /// logits than the checkpoint's (a config.json with fewer layers than its weights, a module this
    /// family lacks, such as Qwen's attention norms): refused, naming it. Known buffers that carry
    /// no weights are not tensors of the model: rotary inverse frequencies and the causal-mask
    /// buffers of old GPT-2 and GPT-NeoX checkpoints; with a tied head, transformers ties a stored
    /// lm_head to the embedding and ignores it, as the import does.
    static func checkEveryTensorUsed(_ family: TransformersFamily, reader: TensorReader, tiedHead: Bool, path: String) throws {
        func isBuffer(_ name: String) -> Bool {
            let last = name.split(separator: ".").suffix(2).joined(separator: ".")
            switch family {
            case .llama: return name.hasSuffix("rotary_emb.inv_freq")
            case .gptNeoX:
                return name.hasSuffix("rotary_emb.inv_freq") || last == "attention.bias" || last == "attention.masked_bias"
            case .gpt2: return last == "attn.bias" || last == "attn.masked_bias"
            }
        }
        let head = ["lm_head.weight", "embed_out.weight"]
        let unused = reader.tensors.files.keys.filter { name in
            !reader.read.contains(name) && !isBuffer(name) && !(tiedHead && head.contains(name))
        }.sorted()
        guard let first = unused.first else { return }
        let more = unused.count > 1 ? " (and \(unused.count - 1) more)" : ""
        throw Checkpoint.LoadError(path: path, reason: "tensor \"\(first)\"\(more) "
            + "has no place in a \(family.rawValue) model of this config.json; it would be dropped and the logits would not be "
            + "the checkpoint's (more layers than num_hidden_layers, or a module the \(family.rawValue) family lacks?)")
    }
}

/// Typed reads of config.json, with errors that name the file, the key and what is allowed.
struct ConfigReader {
    let values: [String: JSONValue]
    let path: String

    func unsupported(_ key: String, _ value: String, _ allowed: String) -> Checkpoint.LoadError {
        Checkpoint.LoadError(path: path, reason: "\(key) = \(value) is not supported; allowed: \(allowed)")
    }

    func number(_ key: String) throws -> Double? {
        switch values[key] {
        case nil, .null?: return nil
        case let .number(n)?: return n
        case let other?: throw unsupported(key, other.compactText, "a number")
        }
    }

    func optionalCount(_ key: String) throws -> Int? {
        guard let n = try number(key) else { return nil }
        guard n >= 1, n <= 1e9, n == n.rounded() else { throw unsupported(key, "\(n)", "a positive whole number") }
        return Int(n)
    }

    func count(_ key: String) throws -> Int {
        guard let n = try optionalCount(key) else { throw Checkpoint.LoadError(path: path, reason: "\(key) is missing") }
        return n
    }

    func bool(_ key: String) throws -> Bool? {
        switch values[key] {
        case nil, .null?: return nil
        case let .bool(b)?: return b
        case let other?: throw unsupported(key, other.compactText, "true or false")
        }
    }

    func string(_ key: String, default fallback: String? = nil) throws -> String {
        switch values[key] {
        case let .string(s)?: return s
        case nil, .null?:
            if let fallback { return fallback }
            throw Checkpoint.LoadError(path: path, reason: "\(key) is missing")
        case let other?: throw unsupported(key, other.compactText, "a string")
        }
    }
}

/// The tensors of a checkpoint's files by name, decoded on request.
struct WeightSource {
    let files: [String: SafeTensors.Index]

    func contains(_ name: String) -> Bool { files[name] != nil }
    func shape(of name: String) -> [Int]? { files[name]?.shape(of: name) }
    func tensor(_ name: String) throws -> Tensor? { try files[name]?.tensor(name) }
}

/// Reads a checkpoint's tensors by name, checking each one's shape against the model's before
/// decoding it, and remembers the names it read (`checkEveryTensorUsed`).
final class TensorReader {
    let tensors: WeightSource
    let path: String
    private(set) var read = Set<String>()

    init(tensors: WeightSource, path: String) {
        self.tensors = tensors
        self.path = path
    }

    func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let found = tensors.shape(of: name) else {
            throw Checkpoint.LoadError(path: path, reason: "missing tensor \"\(name)\" (expected shape \(shape))")
        }
        guard found == shape else {
            throw Checkpoint.LoadError(path: path, reason: "tensor \"\(name)\" has shape \(found), expected \(shape)")
        }
        read.insert(name)
        return try tensors.tensor(name)!
    }

    /// The shape of `name` checked, without decoding it.
    func shapeChecked(_ name: String, shape: [Int]) throws -> [Int] {
        guard let found = tensors.shape(of: name) else {
            throw Checkpoint.LoadError(path: path, reason: "missing tensor \"\(name)\" (expected shape \(shape))")
        }
        guard found == shape else {
            throw Checkpoint.LoadError(path: path, reason: "tensor \"\(name)\" has shape \(found), expected \(shape)")
        }
        return found
    }

    func optionalTensor(_ name: String, shape: [Int]) throws -> Tensor? {
        tensors.contains(name) ? try tensor(name, shape: shape) : nil
    }

    func copy(_ name: String, into parameter: Tensor) throws {
        try parameter.assign(from: tensor(name, shape: parameter.shape))
    }

    /// nn.Linear; a bias the checkpoint lacks is zero when `optionalBias`.
    func copyLinear(_ name: String, into linear: Linear, optionalBias: Bool = false) throws {
        try copy(name + ".weight", into: linear.weight)
        guard let bias = linear.bias else {
            if tensors.contains(name + ".bias") {
                throw Checkpoint.LoadError(path: path, reason: "tensor \"\(name).bias\" has no place in this model (its layer has no bias)")
            }
            return
        }
        if optionalBias, !tensors.contains(name + ".bias") {
            try bias.assign(from: Tensor(zeros: bias.shape))
        } else {
            try copy(name + ".bias", into: bias)
        }
    }

    func copyConv1D(_ name: String, into linear: Linear) throws {
        let (outputs, inputs) = (linear.weight.shape[0], linear.weight.shape[1])
        let w = try tensor(name + ".weight", shape: [inputs, outputs])
        try linear.weight.assign(from: Tensor(Matrix.transposed(w.scalars, rows: inputs, columns: outputs), shape: [outputs, inputs]))
        if let bias = linear.bias { try copy(name + ".bias", into: bias) }
    }

    func copyNorm(_ name: String, into norm: Normalization) throws {
        try copy(name + ".weight", into: norm.scaleParameter)
        if let shift = norm.shiftParameter { try copy(name + ".bias", into: shift) }
    }
}
