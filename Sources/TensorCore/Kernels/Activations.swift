import CKernels
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

extension Activation {
    /// Whether `vectorValue` and `vectorDerivative` exist (all but GELU-erf).
    @inline(__always) var isVectorized: Bool { self != .geluErf }

    /// Eight lanes at once, for the forms built on exp (tanh(u) = 1 − 2/(e^{2u} + 1), σ(x) =
    /// 1/(1 + e^{−x})) with `Kernels.exponential`; nil for GELU-erf, which stays scalar.
    @inline(__always) func vectorValue(_ x: SIMD8<Float>) -> SIMD8<Float>? {
        switch self {
        case .geluTanh:
            // 0.5·(1 + tanh u) = σ(2u) = E/(E + 1) with E = e^{2u}: no cancellation where tanh u ≈ −1.
            let u = 0.797_884_56 * (x + 0.044715 * x * x * x)
            let e = Kernels.exponential(2 * u)
            return x * (e / (e + 1))
        case .silu:
            return x / (1 + Kernels.exponential(-x))
        case .geluErf:
            return nil
        }
    }

    @inline(__always) func vectorDerivative(_ x: SIMD8<Float>) -> SIMD8<Float>? {
        switch self {
        case .geluTanh:
            // With s = σ(2u): 0.5·(1 + tanh u) = s and 0.5·(1 − tanh² u) = 2s(1 − s).
            let u = 0.797_884_56 * (x + 0.044715 * x * x * x)
            let e = Kernels.exponential(2 * u)
            let s: SIMD8<Float> = e / (e + 1)
            let slope: SIMD8<Float> = 0.797_884_56 * (1 + 0.134_145 * x * x)  // du/dx, 3·0.044715 = 0.134145
            return s + 2 * x * s * (1 - s) * slope
        case .silu:
            let s = 1 / (1 + Kernels.exponential(-x))
            return s * (1 + x * (1 - s))
        case .geluErf:
            return nil
        }
    }
}

extension Kernels {
    /// The SIMD path (eight lanes, the tail padded) where the activation has one; the scalar
    /// `value` and `derivative` (Foundation's tanh, exp, erf) are its naive twins in the tests.
    public static func activationForward(_ activation: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                                         kernels: ElementwiseKernels = elementwise) {
        Parallel.forEachChunk(count: count, minimumPerChunk: 4096) { _, range in
            if kernels == .avx2FMA, activation != .geluErf {
                let (xs, ys) = (x + range.lowerBound, y + range.lowerBound)
                if activation == .geluTanh { ck_gelu_tanh_forward(xs, ys, range.count) } else { ck_silu_forward(xs, ys, range.count) }
                return
            }
            var i = range.lowerBound
            if activation.isVectorized {
                let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
                while i + 8 <= range.upperBound {
                    yr.storeBytes(of: activation.vectorValue(xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))!,
                                  toByteOffset: 4 * i, as: SIMD8<Float>.self)
                    i += 8
                }
                if i < range.upperBound {
                    var lanes = SIMD8<Float>()
                    for j in i..<range.upperBound { lanes[j - i] = x[j] }
                    let out = activation.vectorValue(lanes)!
                    for j in i..<range.upperBound { y[j] = out[j - i] }
                }
                return
            }
            for i in range { y[i] = activation.value(x[i]) }
        }
    }

    /// dx += dy · f′(x), or dx = dy · f′(x) when `accumulate` is false (dx's values are then not read).
    public static func activationBackward(_ activation: Activation, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                          _ dx: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool = true,
                                          kernels: ElementwiseKernels = elementwise) {
        Parallel.forEachChunk(count: count, minimumPerChunk: 4096) { _, range in
            if kernels == .avx2FMA, activation != .geluErf {
                let (gs, xs, ds) = (dy + range.lowerBound, x + range.lowerBound, dx + range.lowerBound)
                let add: Int32 = accumulate ? 1 : 0
                if activation == .geluTanh { ck_gelu_tanh_backward(gs, xs, ds, range.count, add) } else {
                    ck_silu_backward(gs, xs, ds, range.count, add)
                }
                return
            }
            if !accumulate { (dx + range.lowerBound).update(repeating: 0, count: range.count) }
            var i = range.lowerBound
            if activation.isVectorized {
                let xr = UnsafeRawPointer(x), gr = UnsafeRawPointer(dy), dr = UnsafeMutableRawPointer(dx)
                while i + 8 <= range.upperBound {
                    let d = activation.vectorDerivative(xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))!
                    let g = gr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                    let old = dr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                    dr.storeBytes(of: old + g * d, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                    i += 8
                }
                if i < range.upperBound {
                    var lanes = SIMD8<Float>()
                    for j in i..<range.upperBound { lanes[j - i] = x[j] }
                    let d = activation.vectorDerivative(lanes)!
                    for j in i..<range.upperBound { dx[j] += dy[j] * d[j - i] }
                }
                return
            }
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
            let (dx, add) = x.gradientDestination()
            Kernels.activationBackward(activation, g, x.storage.pointer, dx, count: x.count, accumulate: add)
        }
    }

    public func gelu(approximateTanh: Bool = true) -> Tensor { activated(approximateTanh ? .geluTanh : .geluErf) }
    public func silu() -> Tensor { activated(.silu) }
}
