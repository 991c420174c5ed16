/// SplitMix64 (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators"):
/// a small, fast generator with a 64-bit state. Every random choice in PositionLab draws from
/// one of these, created from an explicit seed and passed explicitly, so a run is reproducible.
public struct SplitMix64: RandomNumberGenerator, Codable, Equatable, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1) with 24 random bits (every Float32 of that grid is equally likely).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal value by the Box–Muller transform, computed in Double.
    public mutating func nextNormal() -> Float {
        let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0) // (0, 1]: log is finite
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A uniform integer in `range` without modulo bias.
    public mutating func nextInt(in range: Range<Int>) -> Int {
        Int.random(in: range, using: &self)
    }

    /// A generator for a sub-stream, derived from this one's next value: independent streams for
    /// data and for initialisation come from one seed.
    public mutating func split() -> SplitMix64 { SplitMix64(seed: next()) }
}

import Foundation
@inline(__always) func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Foundation.cos(x) }

/// Whether random initial values are drawn (always, but while `skippingDraws` runs). A model whose
/// every weight is loaded right after it is built (from a checkpoint, a transformers folder, a
/// scheme swap) skips them: drawing the normal values of a 135M-parameter model took 4 of the 6.5 s
/// of loading it. Tensors built inside are zero and the generators are not advanced.
public enum Initialization {
    @TaskLocal public static var draws = true

    public static func skippingDraws<Result>(_ body: () throws -> Result) rethrows -> Result {
        try $draws.withValue(false) { try body() }
    }
}
