import Foundation
import NN
import TensorCore
import XCTest

/// AdamW against a scalar Double reimplementation of Loshchilov and Hutter's update with
/// decoupled weight decay, step by step.
final class AdamWTests: XCTestCase {
    /// The reference optimiser state of one parameter, in Double.
    struct ReferenceParameter {
        var value: [Double]
        var m: [Double]
        var v: [Double]
        let decays: Bool

        init(_ tensor: Tensor, decays: Bool) {
            value = tensor.scalars.map(Double.init)
            m = [Double](repeating: 0, count: tensor.count)
            v = m
            self.decays = decays
        }

        /// p ← p − lr·λ·p (decoupled, only when the parameter decays); then Adam's bias-corrected step.
        mutating func step(gradient: [Float], t: Int, lr: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double) {
            for i in value.indices {
                let g = Double(gradient[i])
                if decays { value[i] -= lr * weightDecay * value[i] }
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                let mHat = m[i] / (1 - pow(beta1, Double(t)))
                let vHat = v[i] / (1 - pow(beta2, Double(t)))
                value[i] -= lr * mHat / (vHat.squareRoot() + epsilon)
            }
        }
    }

    /// Sets `parameter`'s gradient to exactly `gradient` through the tape (L = Σ p ⊙ G).
    func setGradient(_ parameter: Tensor, _ gradient: Tensor) throws {
        parameter.zeroGradient()
        try (parameter * gradient).sum().backward()
    }

    func runAgainstReference(configuration: AdamWConfiguration, decays: [Bool]?, learningRates: [Float]) throws {
        var generator = SplitMix64(seed: 1)
        let matrix = try Tensor(normal: [3, 4], generator: &generator, requiresGradient: true)
        let vector = try Tensor(normal: [5], generator: &generator, requiresGradient: true)
        let cube = try Tensor(normal: [2, 2, 3], generator: &generator, requiresGradient: true)
        let frozen = try Tensor(normal: [2, 2], generator: &generator, requiresGradient: true) // never gets a gradient
        let parameters = [matrix, vector, cube, frozen]
        let optimizer = try AdamW(parameters: parameters, configuration: configuration, decays: decays)
        let expectedDecays = decays ?? [true, false, true, true] // default: rank ≥ 2 decays, vectors do not
        XCTAssertEqual(optimizer.decays, expectedDecays)
        let frozenValues = frozen.scalars
        var reference = zip(parameters, expectedDecays).map { ReferenceParameter($0, decays: $1) }
        let c = configuration
        for (index, lr) in learningRates.enumerated() {
            let t = index + 1
            for (p, parameter) in parameters.dropLast().enumerated() {
                // Gradients of very different scales per parameter, and changing sign over steps.
                let gradient = try Tensor(normal: parameter.shape, standardDeviation: [1, 1e-3, 30][p], generator: &generator)
                try setGradient(parameter, gradient)
                reference[p].step(gradient: gradient.scalars, t: t, lr: Double(lr), beta1: Double(c.beta1), beta2: Double(c.beta2),
                                  epsilon: Double(c.epsilon), weightDecay: Double(c.weightDecay))
            }
            try optimizer.step(learningRate: lr)
            XCTAssertEqual(optimizer.stepCount, t)
            for p in 0..<3 {
                assertClose(parameters[p].scalars, reference[p].value, tolerance: 2e-5, "step \(t), parameter \(p)")
                assertClose(optimizer.firstMoments[p].array, reference[p].m, tolerance: 1e-5, "step \(t), first moment \(p)")
                assertClose(optimizer.secondMoments[p].array, reference[p].v, tolerance: 1e-5, "step \(t), second moment \(p)")
            }
            XCTAssertEqual(frozen.scalars, frozenValues, "a parameter without a gradient is skipped")
            XCTAssertEqual(optimizer.firstMoments[3].array, [0, 0, 0, 0])
        }
    }

    func testMatchesTheDoubleReferenceStepByStep() throws {
        let schedule = try LearningRateSchedule(peak: 1e-2, warmupSteps: 3, totalSteps: 8)
        let rates = (0..<8).map { schedule.rate(at: $0) }
        try runAgainstReference(configuration: AdamWConfiguration(), decays: nil, learningRates: rates)
        try runAgainstReference(configuration: AdamWConfiguration(beta1: 0.8, beta2: 0.999, epsilon: 1e-6, weightDecay: 0.5),
                                decays: nil, learningRates: [0.05, 0.02, 0.1, 0, 0.03])
        try runAgainstReference(configuration: AdamWConfiguration(weightDecay: 0.3), decays: [false, true, false, true],
                                learningRates: [0.01, 0.02, 0.03])
    }

    /// With a zero gradient the Adam term vanishes and only the decoupled decay is left:
    /// p ← (1 − lr·λ)·p for decaying parameters, p unchanged for the others. (L2 regularisation
    /// through the gradient would instead move p by about lr, whatever its size.)
    func testWeightDecayIsDecoupledFromTheGradient() throws {
        let matrix = try Tensor([2, -4, 8, 0.5], shape: [2, 2], requiresGradient: true)
        let bias = try Tensor([2, -4], shape: [2], requiresGradient: true)
        let optimizer = try AdamW(parameters: [matrix, bias], configuration: AdamWConfiguration(weightDecay: 0.1))
        XCTAssertEqual(optimizer.decays, [true, false], "matrices decay, vectors (gains, biases) do not")
        try setGradient(matrix, Tensor(zeros: [2, 2]))
        try setGradient(bias, Tensor(zeros: [2]))
        try optimizer.step(learningRate: 0.5)
        assertClose(matrix.scalars, [2, -4, 8, 0.5].map { $0 * (1 - 0.5 * 0.1) }, tolerance: 1e-6)
        XCTAssertEqual(bias.scalars, [2, -4])
    }

    /// The first step moves every coordinate by lr·g/(|g| + ε) ≈ ±lr whatever the gradient's scale.
    func testFirstStepIsScaleInvariant() throws {
        for scale: Float in [1e-4, 1, 1e4] {
            let p = try Tensor([1, 1, 1], shape: [3], requiresGradient: true)
            let optimizer = try AdamW(parameters: [p], configuration: AdamWConfiguration(weightDecay: 0))
            try setGradient(p, Tensor([scale, -scale, 2 * scale], shape: [3]))
            try optimizer.step(learningRate: 0.01)
            assertClose(p.scalars, [0.99, 1.01, 0.99], tolerance: 1e-5, "gradient scale \(scale)")
        }
    }

    func testInvalidHyperparametersAreRejectedByName() throws {
        func expect(_ parameter: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), file: file, line: line) { error in
                guard let error = error as? ConfigurationError else { return XCTFail("\(error) is not a ConfigurationError", file: file, line: line) }
                XCTAssertEqual(error.parameter, parameter, file: file, line: line)
                XCTAssertTrue(error.description.contains(parameter), file: file, line: line)
            }
        }
        let p = try Tensor(zeros: [2], requiresGradient: true)
        let optimizer = try AdamW(parameters: [p], configuration: AdamWConfiguration())
        expect("learningRate") { try optimizer.step(learningRate: -1e-3) }
        expect("learningRate") { try optimizer.step(learningRate: .nan) }
        expect("learningRate") { try optimizer.step(learningRate: .infinity) }
        XCTAssertEqual(optimizer.stepCount, 0, "a rejected step does not count")
        expect("beta1") { _ = try AdamWConfiguration(beta1: 1) }
        expect("beta1") { _ = try AdamWConfiguration(beta1: -0.1) }
        expect("beta2") { _ = try AdamWConfiguration(beta2: 1.5) }
        expect("epsilon") { _ = try AdamWConfiguration(epsilon: 0) }
        expect("weightDecay") { _ = try AdamWConfiguration(weightDecay: -0.01) }
        expect("decays") { _ = try AdamW(parameters: [p], configuration: AdamWConfiguration(), decays: [true, false]) }
        // Decoding goes through the same checks.
        let bad = Data(#"{"beta1": 0.9, "beta2": 2, "epsilon": 1e-8, "weightDecay": 0.1}"#.utf8)
        expect("beta2") { _ = try JSONDecoder().decode(AdamWConfiguration.self, from: bad) }
        let good = try AdamWConfiguration(beta1: 0.8, beta2: 0.99, epsilon: 1e-7, weightDecay: 0.2)
        XCTAssertEqual(try JSONDecoder().decode(AdamWConfiguration.self, from: JSONEncoder().encode(good)), good)
    }

    func testFusedKernelOnALargeBuffer() throws {
        // Large enough for the update to be split over cores; each element must be updated once.
        let count = 3 * (1 << 14) + 11
        var generator = SplitMix64(seed: 3)
        let p = try Tensor(normal: [count, 1], generator: &generator, requiresGradient: true)
        let optimizer = try AdamW(parameters: [p], configuration: AdamWConfiguration())
        var reference = ReferenceParameter(p, decays: true)
        for t in 1...3 {
            let gradient = try Tensor(normal: [count, 1], generator: &generator)
            try setGradient(p, gradient)
            reference.step(gradient: gradient.scalars, t: t, lr: 0.01, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1)
            try optimizer.step(learningRate: 0.01)
        }
        assertClose(p.scalars, reference.value, tolerance: 2e-5)
    }

    /// The SIMD update against its scalar twin, bit for bit: lengths around the eight lanes and on both
    /// sides of the split over cores, moments that start non-zero, gradients with zeros and extremes.
    func testSIMDUpdateMatchesItsScalarTwinBitForBit() {
        let threshold = 2 * Parallel.minimumElementsPerChunk
        for count in [0, 1, 7, 8, 9, 15, 16, 17, 1_003, threshold - 1, threshold + 9, 3 * threshold + 5] {
            var generator = SplitMix64(seed: UInt64(count) + 7)
            func floats(_ scale: Float) -> [Float] {
                (0..<count).map { i in i % 13 == 0 ? 0 : scale * (Float(generator.next() % 20_001) / 10_000 - 1) }
            }
            // Extremes inside the SIMD blocks too: overflow, infinities, NaN, −0, subnormals.
            let extremes: [Float] = [1e20, .infinity, -.infinity, .nan, -0.0, .leastNonzeroMagnitude, 1e-30, -1e-38]
            let p0 = floats(1), g = floats(3).enumerated().map { i, x in i % 97 == 5 ? extremes[i / 97 % extremes.count] : x }
            let m0 = floats(0.1), v0 = floats(0.01).map(abs)
            var (p1, m1, v1) = (p0, m0, v0), (p2, m2, v2) = (p0, m0, v0)
            let (lr, beta1, beta2, epsilon, weightDecay): (Float, Float, Float, Float, Float) = (0.003, 0.9, 0.95, 1e-8, 0.1)
            let (correction1, correction2): (Float, Float) = (1 - 0.9 * 0.9 * 0.9, 1 - 0.95 * 0.95 * 0.95)
            Kernels.adamWUpdate(&p1, gradient: g, firstMoment: &m1, secondMoment: &v1, count: count, learningRate: lr,
                                beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay,
                                correction1: correction1, correction2: correction2)
            Kernels.naiveAdamWUpdate(&p2, gradient: g, firstMoment: &m2, secondMoment: &v2, count: count, beta1: beta1,
                                     beta2: beta2, epsilon: epsilon, decay: 1 - lr * weightDecay,
                                     stepScale: lr / correction1, inverseCorrection2: 1 / correction2)
            for (name, fast, naive) in [("parameter", p1, p2), ("first moment", m1, m2), ("second moment", v1, v2)] {
                XCTAssertEqual(fast.map(\.bitPattern), naive.map(\.bitPattern), "\(name), count \(count)")
            }
        }
    }
}

/// |actual − expected| / max(|expected|, 1% of the largest |expected|) ≤ tolerance, elementwise.
func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, _ message: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, message(), file: file, line: line)
    let floor = max(1e-12, 0.01 * expected.reduce(0) { max($0, abs($1)) })
    for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(Double(a) - e) <= tolerance * max(abs(e), floor)) {
        XCTFail("\(message()): element \(i) is \(a), expected \(e)", file: file, line: line)
        return
    }
}
