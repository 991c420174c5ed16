import CKernels
import Foundation

extension Kernels {
    /// e^x for eight lanes at once: Cephes' expf (S. L. Moshier, Cephes Mathematical Library),
    /// range reduction x = n·ln2 + r with ln2 split in two for accuracy, a degree-5 polynomial for
    /// e^r on [−ln2/2, ln2/2], and 2^n built in the exponent bits. Relative error ≈ 2e-7 over the
    /// normal range; below −87.3 (including −∞, the causal mask) the result is exactly 0.
    /// Its naive twin is Foundation's `expf`, compared lane by lane in the tests.
    @inlinable @inline(__always)
    public static func exponential(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let high: Float = 88.376_26, low: Float = -87.336_55
        // Masked replacement, not `clamped`, which is left as an unspecialised generic call.
        var v = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // Round to nearest by adding 1.5·2²³ (the sum's low mantissa bits then hold n), which stays
        // in vector registers where `rounded()` and a float-to-int conversion may not.
        let shifted = v * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        v = v - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * v + 1.398_199_95e-3
        p = p * v + 8.333_451_9e-3
        p = p * v + 4.166_579_59e-2
        p = p * v + 1.666_666_55e-1
        p = p * v + 5.000_000_12e-1
        let y = p * v * v + v + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
        return (y * scale).replacing(with: 0, where: x .< low)
    }

    /// The element-wise kernels this process runs: `avx2FMA` (CKernels, compiled for AVX2 with FMA)
    /// when the CPU has them, else `portable` (Swift's SIMD types, built for the x86-64 baseline, SSE2).
    /// `POSITIONLAB_ELEMENTWISE=portable` forces the portable ones (to compare, or to rule them out).
    public enum ElementwiseKernels: String, Codable, Sendable {
        case avx2FMA = "avx2+fma", portable
    }

    public static let elementwise: ElementwiseKernels =
        runsAVX2(unless: elementwiseVariable, is: ElementwiseKernels.portable.rawValue) ? .avx2FMA : .portable

    public static let elementwiseVariable = "POSITIONLAB_ELEMENTWISE"

    /// Refuses a value of `POSITIONLAB_ELEMENTWISE` other than "portable" (or none).
    public static func checkElementwiseSetting() throws {
        try checkSetting(elementwiseVariable, fallback: ElementwiseKernels.portable.rawValue,
                         fallbackMeaning: "the Swift SIMD kernels", defaultMeaning: "AVX2 with FMA where the CPU has them")
    }

    /// x[i] ← e^(x[i] − shift) for i < count; returns the sum of the results (AVX2 when the CPU has it).
    public static func exponentiate(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float) -> Float {
        elementwise == .avx2FMA ? ck_exponentiate(x, count, shift) : exponentiatePortable(x, count: count, subtracting: shift)
    }

    /// `exponentiate` on Swift's SIMD8 (SSE2 on x86-64): the kernel of CPUs without AVX2, and a twin of the C one.
    @inlinable
    public static func exponentiatePortable(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float) -> Float {
        var i = 0
        var sums = SIMD8<Float>(repeating: 0)
        let raw = UnsafeMutableRawPointer(x)
        while i + 8 <= count {
            let e = exponential(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shift)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD8<Float>.self)
            sums += e
            i += 8
        }
        var sum = sums.sum()
        if i < count {
            var tail = SIMD8<Float>(repeating: -.infinity)
            for j in i..<count { tail[j - i] = x[j] - shift }
            let e = exponential(tail)
            for j in i..<count { x[j] = e[j - i] }
            sum += e.sum()
        }
        return sum
    }

    /// The largest of x[0..<count] (−∞ when count is 0), eight lanes at a time. NaN is not expected
    /// (scores of finite inputs); its naive twin is a scalar `max` loop, compared in the tests.
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        elementwise == .avx2FMA ? ck_maximum(x, count) : maximumPortable(x, count: count)
    }

    @inlinable
    public static func maximumPortable(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var i = 0
        var lanes = SIMD8<Float>(repeating: -.infinity)
        let raw = UnsafeRawPointer(x)
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            lanes = lanes.replacing(with: v, where: v .> lanes)
            i += 8
        }
        var best = lanes.max()
        while i < count { if x[i] > best { best = x[i] }; i += 1 }
        return best
    }
}
