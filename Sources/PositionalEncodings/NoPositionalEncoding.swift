import NN
import TensorCore

/// NoPE: no positional signal at all. A causal decoder still tells positions apart through its
/// mask (Haviv et al. 2022, "Transformer Language Models without Positional Encodings Still Learn
/// Positional Information"; Kazemnejad et al. 2023 study its length generalisation).
///
/// Injection point: none. Attention scores are q·k/√D under the causal mask.
public final class NoPositionalEncoding: PositionalEncoding {
    public init() {}
    public var injectionPoint: InjectionPoint { .none }
    public var namedParameters: [(name: String, tensor: Tensor)] { [] }
}
