import TensorCore
import XCTest

/// Finite-difference gradient checks of the nonlinear ops: normalisations, activations,
/// softmax, log-softmax, cross-entropy and dropout.
final class GradientCheckNonlinearTests: XCTestCase {
    func testLayerNorm() throws {
        let x = try Random.uniform([2, 3, 6], seed: 1, -2, 2)
        let gamma = try Random.uniform([6], seed: 2, 0.5, 1.5)
        let beta = try Random.uniform([6], seed: 3)
        try checkGradients("layerNorm", [x, gamma, beta]) { try $0[0].layerNorm(gamma: $0[1], beta: $0[2]) } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: $0[2])
        }
        try checkGradients("layerNorm without beta", [x, gamma]) { try $0[0].layerNorm(gamma: $0[1], beta: nil) } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: nil)
        }
        try checkGradients("layerNorm x only", [x, gamma, beta], checking: [0]) { try $0[0].layerNorm(gamma: $0[1], beta: $0[2]) } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: $0[2])
        }
        try checkGradients("layerNorm parameters only", [x, gamma, beta], checking: [1, 2]) {
            try $0[0].layerNorm(gamma: $0[1], beta: $0[2])
        } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: $0[2])
        }
        let wide = try Random.uniform([3, 17], seed: 4, -2, 2), wideGamma = try Random.uniform([17], seed: 5, 0.5, 1.5)
        try checkGradients("layerNorm eps 1e-3", [wide, wideGamma]) { try $0[0].layerNorm(gamma: $0[1], beta: nil, epsilon: 1e-3) } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: nil, epsilon: 1e-3)
        }
    }

    func testRMSNorm() throws {
        let x = try Random.uniform([2, 3, 6], seed: 6, -2, 2)
        let gamma = try Random.uniform([6], seed: 7, 0.5, 1.5)
        try checkGradients("rmsNorm", [x, gamma]) { try $0[0].rmsNorm(gamma: $0[1]) } reference: {
            Reference.rmsNorm($0[0], gamma: $0[1])
        }
        try checkGradients("rmsNorm x only", [x, gamma], checking: [0]) { try $0[0].rmsNorm(gamma: $0[1], epsilon: 1e-2) } reference: {
            Reference.rmsNorm($0[0], gamma: $0[1], epsilon: 1e-2)
        }
    }

    func testL2Normalized() throws {
        let x = try Random.uniform([3, 4, 5], seed: 8, -2, 2)
        for axis in [-1, 0, 1, 2] {
            try checkGradients("l2Normalized axis \(axis)", [x]) { try $0[0].l2Normalized(axis: axis) } reference: {
                Reference.l2Normalize($0[0], axis: axis)
            }
        }
        try checkGradients("l2Normalized eps", [x]) { try $0[0].l2Normalized(axis: 1, epsilon: 0.5) } reference: {
            Reference.l2Normalize($0[0], axis: 1, epsilon: 0.5)
        }
    }

    func testActivations() throws {
        // Values around the bends, including large magnitudes where the tails saturate.
        let x = try Random.uniform([5, 9], seed: 9, -5, 5)
        try checkGradients("gelu tanh", [x]) { $0[0].gelu() } reference: { Reference.map($0[0], Reference.geluTanh) }
        try checkGradients("gelu erf", [x]) { $0[0].gelu(approximateTanh: false) } reference: { Reference.map($0[0], Reference.geluErf) }
        try checkGradients("silu", [x]) { $0[0].silu() } reference: { Reference.map($0[0], Reference.silu) }
        for activation in Activation.allCases {
            try checkGradients("activated \(activation)", [x]) { $0[0].activated(activation) } reference: {
                Reference.map($0[0], Reference.activation(activation))
            }
        }
    }

    /// The causal softmax against the Double softmax of the scores with −∞ above the diagonal
    /// (query i sees keys j ≤ i + Tk − Tq), forward and backward; square and KV-cache-shaped blocks,
    /// and one large enough to split over cores.
    func testCausalSoftmaxMatchesTheMaskedSoftmax() throws {
        for (shape, samples) in [([2, 3, 5, 5], nil), ([1, 2, 3, 7], nil), ([4, 1, 6], nil), ([8, 4, 40, 40], 40)] as [([Int], Int?)] {
            let x = try Random.uniform(shape, seed: UInt64(shape.reduce(1, *)), -3, 3)
            try checkGradients("causalSoftmax \(shape)", [x], samples: samples) { try $0[0].causalSoftmax() } reference: {
                let (tq, tk) = (shape[shape.count - 2], shape[shape.count - 1])
                var masked = $0[0]
                for index in masked.values.indices where index % tk > index / tk % tq + tk - tq { masked.values[index] = -.infinity }
                return Reference.softmax(masked, axis: -1)
            }
        }
        XCTAssertThrowsError(try Tensor(repeating: 0, shape: [2, 5, 4]).causalSoftmax(), "Tk < Tq")
        XCTAssertThrowsError(try Tensor(repeating: 0, shape: [5]).causalSoftmax(), "rank 1")
    }

    func testSoftmaxAndLogSoftmaxAlongEveryAxis() throws {
        let x = try Random.uniform([3, 4, 5], seed: 10, -3, 3)
        for axis in [-1, 0, 1, 2, -2] {
            try checkGradients("softmax axis \(axis)", [x]) { try $0[0].softmax(axis: axis) } reference: {
                Reference.softmax($0[0], axis: axis)
            }
            try checkGradients("logSoftmax axis \(axis)", [x]) { try $0[0].logSoftmax(axis: axis) } reference: {
                Reference.logSoftmax($0[0], axis: axis)
            }
        }
        // Large logits: the maximum must be subtracted before exp.
        let large = try Random.uniform([2, 6], seed: 11, 80, 90)
        try checkGradients("softmax large", [large]) { try $0[0].softmax() } reference: { Reference.softmax($0[0], axis: -1) }
        try checkGradients("logSoftmax large", [large]) { try $0[0].logSoftmax() } reference: { Reference.logSoftmax($0[0], axis: -1) }
    }

    func testCrossEntropyWithAndWithoutAMask() throws {
        let logits = try Random.uniform([2, 3, 7], seed: 12, -3, 3)
        let targets = [0, 6, 3, 3, 1, 5]
        try checkGradients("crossEntropy", [logits]) { try $0[0].crossEntropy(targets: targets) } reference: {
            Reference.crossEntropy($0[0], targets: targets, mask: nil)
        }
        // Masked rows are ignored, and so are their targets (here out of range).
        let mask = [true, false, true, false, false, true]
        let partial = [0, -1, 3, 99, 1, 5]
        try checkGradients("crossEntropy masked", [logits]) { try $0[0].crossEntropy(targets: partial, mask: mask) } reference: {
            Reference.crossEntropy($0[0], targets: partial, mask: mask)
        }
        let gradient = try XCTUnwrap(logits.gradient).scalars
        for row in 0..<6 where !mask[row] {
            XCTAssertEqual(Array(gradient[(row * 7)..<((row + 1) * 7)]), [Float](repeating: 0, count: 7),
                           "masked row \(row) must get no gradient")
        }
        // Each selected row's gradient sums to zero (softmax minus one-hot), divided by the selected count.
        for row in 0..<6 where mask[row] {
            XCTAssertEqual(gradient[(row * 7)..<((row + 1) * 7)].reduce(0, +), 0, accuracy: 1e-6)
        }
        let large = try Random.uniform([4, 5], seed: 13, 50, 70)
        try checkGradients("crossEntropy large logits", [large]) { try $0[0].crossEntropy(targets: [4, 0, 2, 2]) } reference: {
            Reference.crossEntropy($0[0], targets: [4, 0, 2, 2], mask: nil)
        }
    }

    func testDropout() throws {
        let x = try Random.uniform([6, 11], seed: 14, -2, 2)
        for probability: Float in [0.1, 0.5, 0.9] {
            let seed: UInt64 = 77
            try checkGradients("dropout p=\(probability)", [x]) { inputs in
                var generator = SplitMix64(seed: seed)
                return try inputs[0].dropout(probability: probability, generator: &generator)
            } reference: { inputs in
                let mask = Reference.dropoutMask(count: inputs[0].count, probability: probability, seed: seed)
                return DoubleTensor(shape: inputs[0].shape, values: zip(inputs[0].values, mask).map(*))
            }
        }
        // The gradient is exactly R ⊙ mask, with every mask value 0 or 1/(1 − p).
        let probability: Float = 0.3
        x.requiresGradient = true
        x.zeroGradient()
        var generator = SplitMix64(seed: 5)
        let y = try x.dropout(probability: probability, generator: &generator)
        let r = try Random.normal(x.shape, seed: 6)
        try (y * r).sum().backward()
        let keep = 1 / (1 - probability)
        let gradient = try XCTUnwrap(x.gradient).scalars
        var dropped = 0
        for i in 0..<x.count {
            if y.scalars[i] == 0 {
                dropped += 1
                XCTAssertEqual(gradient[i], 0, "a dropped value passes no gradient")
            } else {
                XCTAssertEqual(y.scalars[i], x.scalars[i] * keep, "kept values are scaled by 1/(1 − p)")
                XCTAssertEqual(gradient[i], r.scalars[i] * keep, "kept values pass the gradient scaled by 1/(1 − p)")
            }
        }
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertLessThan(dropped, x.count)
        // p = 0 is the identity.
        var unused = SplitMix64(seed: 1)
        XCTAssertEqual(try x.dropout(probability: 0, generator: &unused).scalars, x.scalars)
        XCTAssertEqual(unused, SplitMix64(seed: 1), "p = 0 draws nothing")
    }

    func testDropoutRateOnALargeTensor() throws {
        let x = try Tensor(repeating: 1, shape: [200_000])
        for probability: Float in [0.1, 0.5] {
            var generator = SplitMix64(seed: 8)
            let y = try x.dropout(probability: probability, generator: &generator).scalars
            let fraction = Double(y.filter { $0 == 0 }.count) / Double(y.count)
            XCTAssertEqual(fraction, Double(probability), accuracy: 0.005)
            XCTAssertEqual(Double(y.reduce(0, +)) / Double(y.count), 1, accuracy: 0.01, "inverted dropout keeps the mean")
        }
    }
}
