import Foundation
import TensorCore

/// Double-precision references of the nonlinear operations: activations, normalisations,
/// softmax, cross-entropy, rotation and dropout.
extension Reference {
    // MARK: Activations

    static func geluTanh(_ x: Double) -> Double {
        0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    static func geluErf(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    static func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }

    static func activation(_ kind: Activation) -> (Double) -> Double {
        switch kind {
        case .geluTanh: return geluTanh
        case .geluErf: return geluErf
        case .silu: return silu
        }
    }

    /// The derivative by a high-order central difference in Double (for kernel twins of the backward).
    static func derivative(_ f: (Double) -> Double, at x: Double) -> Double {
        let h = 1e-3 * max(1, abs(x))
        return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)
    }

    // MARK: Operations along one axis

    /// Applies `f` to every line of `x` along `axis` (the values x[o, ·, i]), writing the result in place.
    static func alongAxis(_ x: DoubleTensor, axis: Int, _ f: ([Double]) -> [Double]) -> DoubleTensor {
        let resolved = axis < 0 ? axis + x.shape.count : axis
        let extent = x.shape[resolved]
        let inner = x.shape[(resolved + 1)...].reduce(1, *)
        let outer = x.shape[..<resolved].reduce(1, *)
        var values = x.values
        for o in 0..<outer {
            for i in 0..<inner {
                let positions = (0..<extent).map { (o * extent + $0) * inner + i }
                let mapped = f(positions.map { x.values[$0] })
                for (p, v) in zip(positions, mapped) { values[p] = v }
            }
        }
        return DoubleTensor(shape: x.shape, values: values)
    }

    static func softmax(_ x: DoubleTensor, axis: Int) -> DoubleTensor {
        alongAxis(x, axis: axis) { line in
            let m = line.max() ?? 0
            let e = line.map { exp($0 - m) }
            let total = e.reduce(0, +)
            return e.map { $0 / total }
        }
    }

    static func logSoftmax(_ x: DoubleTensor, axis: Int) -> DoubleTensor {
        alongAxis(x, axis: axis) { line in
            let m = line.max() ?? 0
            let logSum = m + log(line.reduce(0) { $0 + exp($1 - m) })
            return line.map { $0 - logSum }
        }
    }

    static func l2Normalize(_ x: DoubleTensor, axis: Int, epsilon: Double = 1e-12) -> DoubleTensor {
        alongAxis(x, axis: axis) { line in
            let norm = (line.reduce(0) { $0 + $1 * $1 } + epsilon).squareRoot()
            return line.map { $0 / norm }
        }
    }

    static func layerNorm(_ x: DoubleTensor, gamma: DoubleTensor, beta: DoubleTensor?, epsilon: Double = 1e-5) -> DoubleTensor {
        alongAxis(x, axis: -1) { line in
            let n = Double(line.count)
            let mean = line.reduce(0, +) / n
            let variance = line.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
            let scale = 1 / (variance + epsilon).squareRoot()
            return line.indices.map { j in (line[j] - mean) * scale * gamma.values[j] + (beta?.values[j] ?? 0) }
        }
    }

    static func rmsNorm(_ x: DoubleTensor, gamma: DoubleTensor, epsilon: Double = 1e-6) -> DoubleTensor {
        alongAxis(x, axis: -1) { line in
            let meanSquare = line.reduce(0) { $0 + $1 * $1 } / Double(line.count)
            let scale = 1 / (meanSquare + epsilon).squareRoot()
            return line.indices.map { j in line[j] * scale * gamma.values[j] }
        }
    }

    // MARK: Loss

    /// Mean over the selected rows of −log softmax(row)[target].
    static func crossEntropy(_ logits: DoubleTensor, targets: [Int], mask: [Bool]?) -> DoubleTensor {
        let vocabulary = logits.shape.last!
        let rows = logits.count / vocabulary
        var total = 0.0, selected = 0
        for r in 0..<rows where mask?[r] ?? true {
            let line = Array(logits.values[(r * vocabulary)..<((r + 1) * vocabulary)])
            let m = line.max()!
            let logSum = m + log(line.reduce(0) { $0 + exp($1 - m) })
            total += logSum - line[targets[r]]
            selected += 1
        }
        return DoubleTensor(shape: [], values: [total / Double(selected)])
    }

    // MARK: Rotation

    /// Rotates pairs among the first `rotary` values of each [B, H, T, D] row by the table angles
    /// (cos/sin given per [tableBatch, T, R/2]); the other values pass through.
    static func rotatePairs(_ x: DoubleTensor, cos: [Double], sin: [Double], rotary: Int, pairing: RotaryPairing) -> DoubleTensor {
        let (b, h, t, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let half = rotary / 2
        let tableBatch = half == 0 ? 1 : cos.count / (t * half)
        var values = x.values
        for bi in 0..<b {
            for hi in 0..<h {
                for ti in 0..<t {
                    let base = ((bi * h + hi) * t + ti) * d
                    let table = ((tableBatch == 1 ? 0 : bi) * t + ti) * half
                    for i in 0..<half {
                        let p = pairing == .interleaved ? 2 * i : i
                        let q = pairing == .interleaved ? 2 * i + 1 : i + half
                        let c = cos[table + i], s = sin[table + i]
                        values[base + p] = x.values[base + p] * c - x.values[base + q] * s
                        values[base + q] = x.values[base + q] * c + x.values[base + p] * s
                    }
                }
            }
        }
        return DoubleTensor(shape: x.shape, values: values)
    }

    // MARK: Dropout

    /// The multiplier of each value that `dropout(probability:generator:)` draws from a generator
    /// seeded with `seed`: 0 with probability p, 1/(1 − p) otherwise.
    static func dropoutMask(count: Int, probability: Float, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.nextUniform() < probability ? 0 : 1 / (1 - Double(probability)) }
    }
}
