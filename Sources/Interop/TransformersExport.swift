import Foundation
import Models
import NN
import PositionalEncodings
import TensorCore
import Tasks

/// A PositionLab model in the layout of a transformers architecture: the config.json dictionary
/// and the named tensors of model.safetensors (see `TransformersFamily` for the mapping). Built
/// whole before anything is written; a model no architecture can express is refused with the
/// setting and the reason.
public struct TransformersExport {
    public let family: TransformersFamily
    public let configuration: [String: JSONValue]
    public let tensors: [(name: String, tensor: Tensor)]

    /// `maximumPositions`: the config's `max_position_embeddings`, and for sinusoidal and NoPE
    /// models the rows of the fixed position table GPT-2 carries them in (exact up to that length).
    /// A learned table keeps its own size.
    public init(model: Transformer, maximumPositions: Int) throws {
        let c = model.configuration
        func refuse(_ parameter: String, _ value: String, _ allowed: String) -> ConfigurationError {
            ConfigurationError(context: "export to transformers", parameter: parameter, value: value, allowed: allowed)
        }
        guard maximumPositions > 0 else { throw refuse("max positions", "\(maximumPositions)", "a positive length") }
        guard c.normalizationPlacement == .preNorm || c.normalizationPlacement == .parallel else {
            throw refuse("placement", c.normalizationPlacement.rawValue, "preNorm, or parallel for GPT-NeoX (these architectures are pre-norm models)")
        }
        guard c.attentionScoring == .scaledDotProduct else {
            throw refuse("attention scoring", "\(c.attentionScoring)", "scaled dot product (q·k/√D), which transformers' architectures use")
        }
        guard c.positionPrediction == nil else {
            throw refuse("position prediction", "\(c.positionPrediction!) classes", "none: no transformers architecture has a position head")
        }
        guard c.embeddingScale == 1 else {
            throw refuse("embedding scale", "\(c.embeddingScale)", "1: these architectures add the embeddings unscaled")
        }
        let family: TransformersFamily
        switch (c.positionalScheme, c.feedForward, c.normalization) {
        case (.rope, .swiGLU, .rmsNorm), (.hope, .swiGLU, .rmsNorm): family = .llama
        case (.rope, .mlp, .layerNorm): family = .gptNeoX
        case (.none, .mlp, .layerNorm), (.sinusoidal, .mlp, .layerNorm), (.learnedAbsolute, .mlp, .layerNorm): family = .gpt2
        case (.hope, .mlp, .layerNorm):
            throw refuse("pe", "hope", "rope with a LayerNorm/GELU model (GPT-NeoX); HoPE exports as Llama's \"proportional\" RoPE, "
                         + "which needs --feed-forward swiGLU --normalization rmsNorm")
        case (.alibi, _, _):
            throw refuse("pe", "alibi", "rope, learned, sinusoidal or nope: BLOOM normalises the token embeddings "
                         + "(word_embeddings_layernorm) and MPT has no biases, so neither computes PositionLab's block")
        case (.t5, _, _), (.relativeBias, _, _), (.shaw, _, _):
            throw refuse("pe", c.positionalScheme.name, "rope, learned, sinusoidal or nope: no decoder-only transformers "
                         + "architecture adds \(c.positionalScheme.name) biases to its attention scores")
        default:
            throw refuse("architecture", "\(c.positionalScheme.name) with \(c.feedForward.rawValue) and \(c.normalization.rawValue)",
                         "rope or hope with swiGLU and rmsNorm (Llama); rope with mlp and layerNorm (GPT-NeoX); "
                         + "learned, sinusoidal or nope with mlp and layerNorm (GPT-2)")
        }
        if family != .gptNeoX, c.normalizationPlacement == .parallel {
            throw refuse("placement", "parallel", "preNorm: of these architectures only GPT-NeoX (a RoPE model with mlp and layerNorm) "
                         + "has parallel residuals")
        }
        if family != .llama, c.numberOfKeyValueHeads != c.numberOfHeads {
            throw refuse("kv heads", "\(c.numberOfKeyValueHeads)", "\(c.numberOfHeads) (multi-head attention): only Llama has grouped-query heads")
        }
        self.family = family
        var writer = TensorWriter()
        switch family {
        case .llama: configuration = try Self.llama(model, maximumPositions: maximumPositions, into: &writer)
        case .gptNeoX: configuration = try Self.gptNeoX(model, maximumPositions: maximumPositions, into: &writer)
        case .gpt2: configuration = try Self.gpt2(model, maximumPositions: maximumPositions, into: &writer)
        }
        tensors = writer.tensors
    }

    /// config.json, model.safetensors and `extraFiles` (tokenizer files, PositionLab's run
    /// description) into `folder`, which must not exist yet: everything is written into a
    /// temporary folder beside it, which is renamed only when complete.
    /// Refuses a destination that exists, or whose parent folder is missing or not writable, before any work.
    public static func checkDestination(_ folder: URL) throws {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: folder.path) else {
            throw ConfigurationError(parameter: "--out", value: "\(folder.path), which already exists",
                                     allowed: "a folder that does not exist yet (nothing is overwritten)")
        }
        let parent = folder.deletingLastPathComponent()
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: parent.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ConfigurationError(parameter: "--out", value: folder.path, allowed: "a path whose folder \(parent.path) exists")
        }
        guard manager.isWritableFile(atPath: parent.path) else {
            throw ConfigurationError(parameter: "--out", value: folder.path, allowed: "a path in a folder you can write (\(parent.path) is not)")
        }
    }

    /// An export stopped on request (`write`'s `shouldStop`): nothing was written.
    public struct Interrupted: Error, CustomStringConvertible {
        public let folder: String
        public var description: String { "export to \(folder) interrupted: nothing written" }
    }

    /// Writes the folder under a hidden temporary name beside it and renames it when complete.
    /// `shouldStop` is asked between files (a Ctrl-C, say): the temporary folder is removed and
    /// `Interrupted` thrown. A temporary folder left by an export that was killed outright (its
    /// process gone from this machine) is removed by the next export to the same destination.
    public func write(to folder: URL, extraFiles: [String: Data] = [:], shouldStop: () -> Bool = { false }) throws {
        let manager = FileManager.default
        try Self.checkDestination(folder)
        let parent = folder.deletingLastPathComponent()
        // The host in the name: on a folder shared between machines, only this one's processes can be checked.
        let stem = ".\(folder.lastPathComponent).partial-\(Self.hostName)-"
        Self.removeAbandoned(in: parent, stem: stem)
        let temporary = parent.appendingPathComponent(stem + "\(ProcessInfo.processInfo.processIdentifier)")
        try? manager.removeItem(at: temporary)
        try manager.createDirectory(at: temporary, withIntermediateDirectories: false)
        do {
            func checkpoint() throws { if shouldStop() { throw Interrupted(folder: folder.path) } }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoder.encode(JSONValue.object(configuration)), to: temporary.appendingPathComponent("config.json"))
            try checkpoint()
            try SafeTensors.write(tensors, metadata: ["format": "pt"], to: temporary.appendingPathComponent("model.safetensors"))
            for (name, data) in extraFiles.sorted(by: { $0.key < $1.key }) {
                try checkpoint()
                try AtomicFile.write(data, to: temporary.appendingPathComponent(name))
            }
            try checkpoint()
            try manager.moveItem(at: temporary, to: folder)
        } catch {
            try? manager.removeItem(at: temporary)
            throw error
        }
    }

    /// This machine's name as a file name may hold it.
    public static let hostName = ProcessInfo.processInfo.hostName.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        .reduce(into: "") { $0.append($1) }

    /// Removes `stem`PID folders in `parent` whose process (on this machine) no longer exists.
    static func removeAbandoned(in parent: URL, stem: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        for name in names where name.hasPrefix(stem) {
            guard let pid = Int32(name.dropFirst(stem.count)), pid > 0, pid != ProcessInfo.processInfo.processIdentifier,
                  kill(pid, 0) == -1, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))
        }
    }

    // MARK: The three layouts

    static func common(_ c: TransformerConfiguration, family: TransformersFamily) -> [String: JSONValue] {
        [
            "architectures": .array([.string(family.architecture)]), "model_type": .string(family.rawValue),
            "vocab_size": number(c.vocabularySize), "tie_word_embeddings": .bool(c.tiedEmbeddings),
            "bos_token_id": .null, "eos_token_id": .null, "pad_token_id": .null,
            "dtype": .string("float32"), "use_cache": .bool(true),
        ]
    }

    /// The rotary part of config.json: transformers' rope_parameters with the base (and, for HoPE,
    /// the kept pairs as a "proportional" fraction); static NTK, which transformers lacks, as the
    /// base it amounts to. Refuses what the family cannot rotate.
    static func ropeParameters(_ scheme: PositionalScheme, headDimension d: Int, family: TransformersFamily,
                               maximumPositions: Int) throws -> (parameters: [String: JSONValue], configuration: RotaryConfiguration) {
        func refuse(_ parameter: String, _ value: String, _ allowed: String) -> ConfigurationError {
            ConfigurationError(context: "export to \(family.architecture)", parameter: parameter, value: value, allowed: allowed)
        }
        switch scheme {
        case let .rope(configuration):
            var parameters = configuration.scaling.parameters
            let r = try configuration.rotaryDimension(headDimension: d)
            switch configuration.scaling {
            case let .ntk(factor):
                // θ_i = (base·factor^(R/(R−2)))^(−2i/R): the same frequencies as a larger base.
                parameters = ["rope_type": .string("default"), "rope_theta": .number(configuration.base * pow(factor, Double(r) / Double(r - 2)))]
            case .proportional:
                guard family == .llama else {
                    throw refuse("rope_type", "proportional", "a Llama model (swiGLU, rmsNorm): GPT-NeoX rotates only R dimensions")
                }
                parameters["rope_theta"] = .number(configuration.base)
            default:
                parameters["rope_theta"] = .number(configuration.base)
            }
            if case .proportional = configuration.scaling {} else {
                if family == .llama, configuration.partialRotaryFactor != 1 {
                    throw refuse("partial_rotary_factor", "\(configuration.partialRotaryFactor)",
                                 "1: Llama rotates whole heads (GPT-NeoX, a LayerNorm/GELU model, rotates part of each)")
                }
                parameters["partial_rotary_factor"] = .number(configuration.partialRotaryFactor)
            }
            return (parameters, configuration)
        case let .hope(configuration, cut):
            guard case .none = configuration.scaling, configuration.partialRotaryFactor == 1 else {
                throw refuse("pe", "hope with rope_type \(configuration.scaling.parameters["rope_type"]?.compactText ?? "?") and "
                             + "partial_rotary_factor \(configuration.partialRotaryFactor)",
                             "HoPE over plain RoPE on whole heads (transformers' \"proportional\" RoPE at factor 1)")
            }
            let kept = try HoPE.keptPairs(cut: cut, rotaryDimension: d, base: configuration.base).count
            // transformers keeps ⌊fraction·D // 2⌋ pairs; half a dimension of slack makes the floor exact.
            let fraction = min(1, (Double(2 * kept) + 0.5) / Double(d))
            return (["rope_type": .string("proportional"), "partial_rotary_factor": .number(fraction),
                     "rope_theta": .number(configuration.base)], configuration)
        default:
            throw refuse("pe", scheme.name, "a rotary scheme")
        }
    }

    static func llama(_ model: Transformer, maximumPositions: Int, into w: inout TensorWriter) throws -> [String: JSONValue] {
        let c = model.configuration
        let (rope, rotary) = try ropeParameters(c.positionalScheme, headDimension: c.headDimension, family: .llama,
                                                maximumPositions: maximumPositions)
        var config = common(c, family: .llama)
        config.merge([
            "hidden_size": number(c.modelDimension), "intermediate_size": number(c.feedForwardDimension),
            "num_hidden_layers": number(c.numberOfLayers), "num_attention_heads": number(c.numberOfHeads),
            "num_key_value_heads": number(c.numberOfKeyValueHeads), "head_dim": number(c.headDimension),
            "hidden_act": .string("silu"), "max_position_embeddings": number(rotary.maximumPositionEmbeddings ?? maximumPositions),
            "rms_norm_eps": decimal(model.blocks[0].attentionNorm.epsilon), "rope_parameters": .object(rope),
            "attention_bias": .bool(true), "mlp_bias": .bool(false), "attention_dropout": .number(0),
        ]) { $1 }
        let order = try queryKeyOrder(rotary, headDimension: c.headDimension)
        w.add("model.embed_tokens.weight", model.tokenEmbedding.weight)
        for (i, block) in model.blocks.enumerated() {
            let p = "model.layers.\(i)."
            let a = block.attention
            w.add(p + "input_layernorm.weight", block.attentionNorm.scaleParameter)
            try w.addLinear(p + "self_attn.q_proj", a.queryProjection, rowOrder: order, heads: c.numberOfHeads)
            try w.addLinear(p + "self_attn.k_proj", a.keyProjection, rowOrder: order, heads: c.numberOfKeyValueHeads)
            try w.addLinear(p + "self_attn.v_proj", a.valueProjection)
            try w.addLinear(p + "self_attn.o_proj", a.outputProjection)
            w.add(p + "post_attention_layernorm.weight", block.feedForwardNorm.scaleParameter)
            let f = block.feedForward
            guard let gate = f.gate else { throw ConfigurationError(parameter: "feedForward", value: "mlp", allowed: "swiGLU") }
            try w.addLinear(p + "mlp.gate_proj", f.expansion)
            try w.addLinear(p + "mlp.up_proj", gate)
            try w.addLinear(p + "mlp.down_proj", f.contraction)
        }
        w.add("model.norm.weight", model.finalNorm!.scaleParameter)
        if let head = model.outputHead { w.add("lm_head.weight", head.weight) }
        return config
    }

    static func gptNeoX(_ model: Transformer, maximumPositions: Int, into w: inout TensorWriter) throws -> [String: JSONValue] {
        let c = model.configuration
        let (rope, rotary) = try ropeParameters(c.positionalScheme, headDimension: c.headDimension, family: .gptNeoX,
                                                maximumPositions: maximumPositions)
        var config = common(c, family: .gptNeoX)
        config.merge([
            "hidden_size": number(c.modelDimension), "intermediate_size": number(c.feedForwardDimension),
            "num_hidden_layers": number(c.numberOfLayers), "num_attention_heads": number(c.numberOfHeads),
            "hidden_act": .string(TransformersFamily.activationName(c.activation)),
            "max_position_embeddings": number(rotary.maximumPositionEmbeddings ?? maximumPositions),
            "layer_norm_eps": decimal(model.blocks[0].attentionNorm.epsilon), "rope_parameters": .object(rope),
            "use_parallel_residual": .bool(c.normalizationPlacement == .parallel), "attention_bias": .bool(true),
            "attention_dropout": .number(0), "hidden_dropout": .number(0),
        ]) { $1 }
        let (h, d) = (c.numberOfHeads, c.headDimension)
        let order = try queryKeyOrder(rotary, headDimension: d)
        w.add("gpt_neox.embed_in.weight", model.tokenEmbedding.weight)
        for (i, block) in model.blocks.enumerated() {
            let p = "gpt_neox.layers.\(i)."
            let a = block.attention
            try w.addNorm(p + "input_layernorm", block.attentionNorm)
            try w.addNorm(p + "post_attention_layernorm", block.feedForwardNorm)
            // query_key_value: for each head, its D query rows, then its D key rows, then its D value rows.
            func fused(_ pick: (Linear) -> Tensor?, width: Int) throws -> Tensor {
                guard let q = pick(a.queryProjection), let k = pick(a.keyProjection), let v = pick(a.valueProjection) else {
                    throw ConfigurationError(parameter: "attention", value: "projections without biases", allowed: "biases (GPT-NeoX's attention_bias)")
                }
                let (qs, ks) = (Matrix.permutingHeadRows(q.scalars, heads: h, headDimension: d, width: width, order: order),
                                Matrix.permutingHeadRows(k.scalars, heads: h, headDimension: d, width: width, order: order))
                let vs = v.scalars
                var out: [Float] = []
                out.reserveCapacity(3 * qs.count)
                for head in 0..<h {
                    let range = (head * d * width)..<((head + 1) * d * width)
                    out += qs[range]; out += ks[range]; out += vs[range]
                }
                return try Tensor(out, shape: width == 1 ? [3 * h * d] : [3 * h * d, width])
            }
            w.add(p + "attention.query_key_value.weight", try fused({ $0.weight }, width: c.modelDimension))
            w.add(p + "attention.query_key_value.bias", try fused({ $0.bias }, width: 1))
            try w.addLinear(p + "attention.dense", a.outputProjection)
            try w.addLinear(p + "mlp.dense_h_to_4h", block.feedForward.expansion)
            try w.addLinear(p + "mlp.dense_4h_to_h", block.feedForward.contraction)
        }
        try w.addNorm("gpt_neox.final_layer_norm", model.finalNorm!)
        if let head = model.outputHead { w.add("lm_head.weight", head.weight) }
        return config
    }

    static func gpt2(_ model: Transformer, maximumPositions: Int, into w: inout TensorWriter) throws -> [String: JSONValue] {
        let c = model.configuration
        let encoding = model.positionalEncodings[0]
        // The position table: learned as trained; sinusoidal as its fixed rows; NoPE as zeros.
        let table: Tensor
        switch c.positionalScheme {
        case .learnedAbsolute: table = (encoding as! LearnedAbsoluteEncoding).table.weight
        case .sinusoidal:
            let sinusoidal = encoding as! SinusoidalEncoding
            table = try Tensor((0..<maximumPositions).flatMap { sinusoidal.row(position: $0) }, shape: [maximumPositions, c.modelDimension])
        default: table = try Tensor(zeros: [maximumPositions, c.modelDimension])
        }
        var config = common(c, family: .gpt2)
        config.merge([
            "n_embd": number(c.modelDimension), "n_layer": number(c.numberOfLayers), "n_head": number(c.numberOfHeads),
            "n_inner": number(c.feedForwardDimension), "n_positions": number(table.shape[0]),
            "activation_function": .string(TransformersFamily.activationName(c.activation)),
            "layer_norm_epsilon": decimal(model.blocks[0].attentionNorm.epsilon),
            "resid_pdrop": .number(0), "embd_pdrop": .number(0), "attn_pdrop": .number(0),
            "scale_attn_weights": .bool(true), "scale_attn_by_inverse_layer_idx": .bool(false), "reorder_and_upcast_attn": .bool(false),
        ]) { $1 }
        w.add("transformer.wte.weight", model.tokenEmbedding.weight)
        w.add("transformer.wpe.weight", table)
        for (i, block) in model.blocks.enumerated() {
            let p = "transformer.h.\(i)."
            let a = block.attention
            try w.addNorm(p + "ln_1", block.attentionNorm)
            try w.addNorm(p + "ln_2", block.feedForwardNorm)
            // Conv1D keeps [in, out]: c_attn is [C, 3C] with the query, key and value columns side by side.
            let rows = a.queryProjection.weight.scalars + a.keyProjection.weight.scalars + a.valueProjection.weight.scalars
            w.add(p + "attn.c_attn.weight", try Tensor(Matrix.transposed(rows, rows: 3 * c.modelDimension, columns: c.modelDimension),
                                                        shape: [c.modelDimension, 3 * c.modelDimension]))
            let biases = [a.queryProjection, a.keyProjection, a.valueProjection].flatMap { $0.bias?.scalars ?? [] }
            w.add(p + "attn.c_attn.bias", try Tensor(biases, shape: [3 * c.modelDimension]))
            try w.addConv1D(p + "attn.c_proj", a.outputProjection)
            try w.addConv1D(p + "mlp.c_fc", block.feedForward.expansion)
            try w.addConv1D(p + "mlp.c_proj", block.feedForward.contraction)
        }
        try w.addNorm("transformer.ln_f", model.finalNorm!)
        if let head = model.outputHead { w.add("lm_head.weight", head.weight) }
        return config
    }

    /// The row order that writes a head's query and key dimensions in half-split pairing.
    static func queryKeyOrder(_ rotary: RotaryConfiguration, headDimension d: Int) throws -> [Int] {
        let r = try rotary.rotaryDimension(headDimension: d)
        if case .proportional = rotary.scaling { return rotary.pairing == .interleaved ? halfSplitOrder(headDimension: d, rotaryDimension: d) : Array(0..<d) }
        return rotary.pairing == .interleaved ? halfSplitOrder(headDimension: d, rotaryDimension: r) : Array(0..<d)
    }
}

func number(_ value: Int) -> JSONValue { .number(Double(value)) }

/// A Float as the shortest decimal that reads back to it (1e-06, not 9.999999974752427e-07).
func decimal(_ value: Float) -> JSONValue { .number(Double("\(value)") ?? Double(value)) }

/// Collects named tensors in the order they are added.
struct TensorWriter {
    var tensors: [(name: String, tensor: Tensor)] = []

    mutating func add(_ name: String, _ tensor: Tensor) { tensors.append((name, tensor)) }

    /// nn.Linear: weight [out, in] as it is (rows regrouped per head by `rowOrder`), bias [out].
    mutating func addLinear(_ name: String, _ linear: Linear, rowOrder: [Int]? = nil, heads: Int = 1) throws {
        guard let order = rowOrder, order != Array(0..<order.count) else {
            add(name + ".weight", linear.weight)
            if let bias = linear.bias { add(name + ".bias", bias) }
            return
        }
        let (outputs, inputs) = (linear.weight.shape[0], linear.weight.shape[1])
        add(name + ".weight", try Tensor(Matrix.permutingHeadRows(linear.weight.scalars, heads: heads, headDimension: order.count,
                                                                  width: inputs, order: order), shape: [outputs, inputs]))
        if let bias = linear.bias {
            add(name + ".bias", try Tensor(Matrix.permutingHeadRows(bias.scalars, heads: heads, headDimension: order.count, width: 1, order: order),
                                           shape: [outputs]))
        }
    }

    /// GPT-2's Conv1D: weight [in, out] (the transpose of nn.Linear's), bias [out].
    mutating func addConv1D(_ name: String, _ linear: Linear) throws {
        let (outputs, inputs) = (linear.weight.shape[0], linear.weight.shape[1])
        add(name + ".weight", try Tensor(Matrix.transposed(linear.weight.scalars, rows: outputs, columns: inputs), shape: [inputs, outputs]))
        if let bias = linear.bias { add(name + ".bias", bias) }
    }

    mutating func addNorm(_ name: String, _ norm: Normalization) throws {
        add(name + ".weight", norm.scaleParameter)
        guard let shift = norm.shiftParameter else {
            throw ConfigurationError(parameter: "normalization", value: "rmsNorm", allowed: "layerNorm (this architecture's norms have a bias)")
        }
        add(name + ".bias", shift)
    }
}
