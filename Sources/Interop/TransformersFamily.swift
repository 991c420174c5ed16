import Foundation
import Models
import PositionalEncodings
import TensorCore

/// Interop: PositionLab models as Hugging Face transformers folders (config.json and safetensors
/// weights in the layout of a transformers architecture) and back. Shapes as in Models: B batch,
/// T sequence, C model dimension, H query heads, Hkv key/value heads, D head dimension (C = H·D),
/// F feed-forward width, V vocabulary. PyTorch's nn.Linear keeps W as [out, in], as `Linear` does;
/// GPT-2's Conv1D keeps it as [in, out].
///
/// Which architecture a PositionLab block maps onto exactly (pre-norm, biases on every attention
/// projection, tied or untied head):
///
///     family    transformers class     norm       feed-forward        position
///     llama     LlamaForCausalLM       RMSNorm    SwiGLU, no biases   RoPE and its scalings, HoPE (as "proportional")
///     gpt_neox  GPTNeoXForCausalLM     LayerNorm  GELU MLP, biases    RoPE and its scalings, partial rotation
///     gpt2      GPT2LMHeadModel        LayerNorm  GELU MLP, biases    learned; sinusoidal and NoPE as a fixed table
///
/// Llama is written with `attention_bias: true` (PositionLab's projections have biases); GPT-NeoX
/// with `use_parallel_residual` true for the `parallel` placement (Pythia's block), false for pre-norm. RoPE with interleaved
/// pairs is written in transformers' half-split pairing by permuting each head's query and key rows
/// (and biases) alike, which leaves every q·k, and so the model, unchanged.
public enum TransformersFamily: String, CaseIterable, Codable, Sendable {
    case llama
    case gptNeoX = "gpt_neox"
    case gpt2

    /// The class name transformers records in `architectures`.
    public var architecture: String {
        switch self {
        case .llama: return "LlamaForCausalLM"
        case .gptNeoX: return "GPTNeoXForCausalLM"
        case .gpt2: return "GPT2LMHeadModel"
        }
    }

    /// The family of a transformers `model_type`, or a message naming the supported ones.
    public init(modelType: String, path: String) throws {
        guard let family = TransformersFamily(rawValue: modelType) else {
            throw Checkpoint.LoadError(path: path, reason: "model_type \"\(modelType)\" is not supported; supported: "
                                       + TransformersFamily.allCases.map { "\($0.rawValue) (\($0.architecture))" }.joined(separator: ", "))
        }
        self = family
    }

    /// The `hidden_act` / `activation_function` name transformers uses for an activation.
    static func activationName(_ activation: Activation) -> String {
        switch activation {
        case .geluTanh: return "gelu_new"
        case .geluErf: return "gelu"
        case .silu: return "silu"
        }
    }

    /// The activation of a transformers name; the tanh approximation goes by several names.
    static func activation(named name: String, path: String) throws -> Activation {
        switch name {
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
        case "gelu": return .geluErf
        case "silu", "swish": return .silu
        default:
            throw Checkpoint.LoadError(path: path, reason: "activation \"\(name)\" is not supported; supported: gelu_new, "
                                       + "gelu_pytorch_tanh (GELU, tanh approximation), gelu (exact), silu")
        }
    }
}

/// The permutation of a head's D query or key dimensions that turns interleaved rotary pairs
/// (2i, 2i+1) into transformers' half-split pairs (i, i + R/2): new dimension j takes old
/// dimension `order[j]`; dimensions from R on (partial rotation) stay where they are.
func halfSplitOrder(headDimension d: Int, rotaryDimension r: Int) -> [Int] {
    (0..<(r / 2)).map { 2 * $0 } + (0..<(r / 2)).map { 2 * $0 + 1 } + Array(r..<d)
}

/// Row-major helpers on [Float] matrices (the exchange format of export and import).
enum Matrix {
    /// [R, K] → [K, R].
    static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
        return out
    }

    /// Rows regrouped by head: within each block of `headDimension` rows (one head), row j takes
    /// row `order[j]`. `width` values per row (1 for a bias).
    static func permutingHeadRows(_ values: [Float], heads: Int, headDimension d: Int, width: Int, order: [Int]) -> [Float] {
        var out = values
        for h in 0..<heads {
            for j in 0..<d {
                let (to, from) = ((h * d + j) * width, (h * d + order[j]) * width)
                out.replaceSubrange(to..<(to + width), with: values[from..<(from + width)])
            }
        }
        return out
    }

    /// The inverse of `order` (for import: half-split back to the model's own order).
    static func inverse(_ order: [Int]) -> [Int] {
        var inverse = [Int](repeating: 0, count: order.count)
        for (j, i) in order.enumerated() { inverse[i] = j }
        return inverse
    }
}
