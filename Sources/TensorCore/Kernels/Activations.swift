import Foundation

/// Pointwise activations: forward y = f(x) and backward dx += dy · f′(x), side by side.
public enum Activation: String, Codable, CaseIterable, Sendable {
    /// GELU, tanh approximation (Hendrycks and Gimpel 2016; GPT-2's form).
    case geluTanh
    /// GELU, exact: x·Φ(x) with Φ from erf.
    case geluErf
    /// SiLU / swish: x·σ(x) (Elfwing et al. 2017; used by SwiGLU).
    case silu

    @inline(__always) func value(_ x: Float) -> Float {
        switch self {
        case .geluTanh:
            let u = 0.797_884_56 * (x + 0.044715 * x * x * x) // √(2/π)
            return 0.5 * x * (1 + tanh(u))
        case .geluErf:
            return 0.5 * x * (1 + erf(x * 0.707_106_78))
        case .silu:
            return x / (1 + exp(-x))
        }
    }

    @inline(__always) func derivative(_ x: Float) -> Float {
        switch self {
        case .geluTanh:
            let u = 0.797_884_56 * (x + 0.044715 * x * x * x)
            let t = tanh(u)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.797_884_56 * (1 + 3 * 0.044715 * x * x)
        case .geluErf:
            let phi = exp(-0.5 * x * x) * 0.398_942_28 // 1/√(2π)
            return 0.5 * (1 + erf(x * 0.707_106_78)) + x * phi
        case .silu:
            let s = 1 / (1 + exp(-x))
            return s * (1 + x * (1 - s))
        }
    }
}

extension Kernels {
    public static func activationForward(_ activation: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count: count, minimumPerChunk: 4096) { _, range in
            for i in range { y[i] = activation.value(x[i]) }
        }
    }

    public static func activationBackward(_ activation: Activation, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                          _ dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count: count, minimumPerChunk: 4096) { _, range in
            for i in range { dx[i] += dy[i] * activation.derivative(x[i]) }
        }
    }
}

extension Tensor {
    /// f(self) elementwise. Shapes: any.
    public func activated(_ activation: Activation) -> Tensor {
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.activationForward(activation, storage.pointer, out.pointer, count: count)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: activation.rawValue, inputs: [x]) { g in
            Kernels.activationBackward(activation, g, x.storage.pointer, x.gradientPointer(), count: x.count)
        }
    }

    public func gelu(approximateTanh: Bool = true) -> Tensor { activated(approximateTanh ? .geluTanh : .geluErf) }
    public func silu() -> Tensor { activated(.silu) }
}
