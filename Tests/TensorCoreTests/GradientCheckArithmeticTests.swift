import TensorCore
import XCTest

/// Finite-difference gradient checks (in Double, against `Reference`) of the arithmetic ops:
/// broadcasting add/sub/mul/div, affine maps, matrix products and reductions.
final class GradientCheckArithmeticTests: XCTestCase {
    /// Operand shape pairs covering every broadcast path: equal shapes (the contiguous kernel), a
    /// trailing vector, a column (stride 0 along the row), both operands stretched, a rank-0
    /// scalar on either side, and a left operand of lower rank.
    let broadcastShapes: [([Int], [Int])] = [
        ([3, 5], [3, 5]),
        ([2, 3, 4], [4]),
        ([2, 3, 4], [3, 1]),
        ([2, 1, 4], [1, 3, 1]),
        ([3, 4], []),
        ([], [2, 3]),
        ([4, 1], [2, 1, 5]),
        ([1, 9], [2, 9]),
    ]

    func binaryCase(_ name: String, _ op: @escaping (Tensor, Tensor) throws -> Tensor,
                    _ f: @escaping (Double, Double) -> Double, positiveRight: Bool = false) throws {
        for (index, (sa, sb)) in broadcastShapes.enumerated() {
            let a = try Random.uniform(sa, seed: UInt64(10 + index), -2, 2)
            // Denominators stay in [0.5, 1.5] so that division is smooth across the finite-difference step.
            let b = positiveRight ? try Random.uniform(sb, seed: UInt64(30 + index), 0.5, 1.5)
                                  : try Random.uniform(sb, seed: UInt64(30 + index), -2, 2)
            try checkGradients("\(name) \(sa) with \(sb)", [a, b]) { try op($0[0], $0[1]) } reference: {
                Reference.binary($0[0], $0[1], f)
            }
            // Only one operand tracked: the other gets no gradient and the tracked one is still right.
            try checkGradients("\(name) \(sa) with \(sb), right only", [a, b], checking: [1]) { try op($0[0], $0[1]) } reference: {
                Reference.binary($0[0], $0[1], f)
            }
            XCTAssertNil(a.gradient, "\(name): an untracked operand must not receive a gradient")
        }
    }

    func testAdd() throws { try binaryCase("add", { try $0 + $1 }, +) }
    func testSubtract() throws { try binaryCase("subtract", { try $0 - $1 }, -) }
    func testMultiply() throws { try binaryCase("multiply", { try $0 * $1 }, *) }
    func testDivide() throws { try binaryCase("divide", { try $0 / $1 }, /, positiveRight: true) }

    func testSameTensorOnBothSides() throws {
        let x = try Random.uniform([3, 7], seed: 1, 0.5, 1.5)
        try checkGradients("x * x", [x]) { try $0[0] * $0[0] } reference: { Reference.map($0[0]) { $0 * $0 } }
        try checkGradients("x / x + x", [x]) { try $0[0] / $0[0] + $0[0] } reference: { Reference.map($0[0]) { $0 / $0 + $0 } }
        try checkGradients("x - x * 2x", [x]) { x in try x[0] - x[0] * x[0].scaled(by: 2) } reference: {
            Reference.map($0[0]) { $0 - 2 * $0 * $0 }
        }
    }

    func testAffineAndScaled() throws {
        let x = try Random.uniform([4, 5], seed: 2, -3, 3)
        try checkGradients("affine", [x]) { $0[0].affine(scale: 1.7, shift: -0.3) } reference: { Reference.map($0[0]) { 1.7 * $0 - 0.3 } }
        try checkGradients("scaled", [x]) { $0[0].scaled(by: -2.5) } reference: { Reference.map($0[0]) { -2.5 * $0 } }
        // Odd length over 8: the SIMD loop and its scalar tail.
        let y = try Random.uniform([19], seed: 3)
        try checkGradients("affine tail", [y]) { $0[0].affine(scale: 0.25, shift: 4) } reference: { Reference.map($0[0]) { 0.25 * $0 + 4 } }
    }

    /// Shapes of (self, other) stored as given, for op(self)·op(other) to be defined.
    func matmulShapes(leading: [Int], m: Int, k: Int, n: Int, transposeA: Bool, transposeB: Bool,
                      sharedRight: Bool) -> ([Int], [Int]) {
        let a = leading + (transposeA ? [k, m] : [m, k])
        let b = (sharedRight ? [] : leading) + (transposeB ? [n, k] : [k, n])
        return (a, b)
    }

    func testMatrixProductEveryTransposeCombination() throws {
        var seed: UInt64 = 100
        for (leading, shared) in [([Int](), true), ([2], false), ([2], true), ([2, 2], false), ([3, 2], true)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let (sa, sb) = matmulShapes(leading: leading, m: 3, k: 4, n: 5, transposeA: transposeA, transposeB: transposeB,
                                                sharedRight: shared)
                    seed += 2
                    let a = try Random.uniform(sa, seed: seed), b = try Random.uniform(sb, seed: seed + 1)
                    let name = "matmul \(sa)·\(sb) tA=\(transposeA) tB=\(transposeB)"
                    try checkGradients(name, [a, b]) {
                        try $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
                    } reference: {
                        Reference.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
                    }
                    for only in [0, 1] {
                        try checkGradients(name + " input \(only) only", [a, b], checking: [only]) {
                            try $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
                        } reference: {
                            Reference.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
                        }
                    }
                }
            }
        }
    }

    /// The fused product x·Wᵀ + b against finite differences, and against its naive twin
    /// (matmul, then add) value for value and gradient for gradient.
    func testLinearAgainstFiniteDifferencesAndItsNaiveTwin() throws {
        var seed: UInt64 = 300
        for (leading, k, n, biased) in [([Int](), 4, 5, true), ([3], 4, 5, true), ([2, 3], 7, 9, true), ([2, 3], 7, 9, false),
                                        ([5], 1, 17, true), ([2, 3], 0, 4, true)] {
            seed += 3
            let x = try Random.uniform(leading + [k], seed: seed), w = try Random.uniform([n, k], seed: seed + 1)
            let b = try Random.uniform([n], seed: seed + 2)
            let inputs = biased ? [x, w, b] : [x, w]
            let name = "linear \(leading + [k])·\([n, k])ᵀ\(biased ? " + b" : "")"
            func reference(_ d: [DoubleTensor]) -> DoubleTensor {
                let product = Reference.matmul(DoubleTensor(shape: [max(1, leading.reduce(1, *)), k], values: d[0].values), d[1],
                                               transposeA: false, transposeB: true)
                let shaped = DoubleTensor(shape: leading + [n], values: product.values)
                return biased ? Reference.binary(shaped, d[2], +) : shaped
            }
            if k > 0 {
                try checkGradients(name, inputs) { try $0[0].linear(weight: $0[1], bias: biased ? $0[2] : nil) } reference: {
                    reference($0)
                }
            }
            // The naive twin: the same values and gradients as matmul followed by a broadcast add.
            for t in inputs { t.zeroGradient(); t.requiresGradient = true }
            let fused = try x.linear(weight: w, bias: biased ? b : nil)
            var generator = SplitMix64(seed: seed)
            let r = try Tensor(normal: fused.shape, generator: &generator)
            try (fused * r).sum().backward()
            let fusedGradients = inputs.map { $0.gradient?.scalars ?? [] }
            for t in inputs { t.zeroGradient() }
            let product = try (leading.isEmpty ? x.reshaped([1, k]) : x).matmul(w, transposeOther: true).reshaped(fused.shape)
            let twin = biased ? try product + b : product
            try (twin * r).sum().backward()
            XCTAssertEqual(fused.shape, twin.shape, name)
            assertClose(fused.scalars, twin.scalars.map(Double.init), tolerance: 1e-6, "\(name) against matmul + add")
            for (i, t) in inputs.enumerated() {
                assertClose(fusedGradients[i], (t.gradient?.scalars ?? []).map(Double.init), tolerance: 1e-5,
                            "\(name) gradient \(i) against matmul + add")
            }
        }
        // A large product: the parallel split of the product and of the bias gradient's column sums.
        let x = try Random.uniform([64, 33, 40], seed: 900), w = try Random.uniform([24, 40], seed: 901)
        let b = try Random.uniform([24], seed: 902)
        try checkGradients("linear, parallel", [x, w, b], samples: 40, forwardTolerance: 1e-4) {
            try $0[0].linear(weight: $0[1], bias: $0[2])
        } reference: {
            let product = Reference.matmul(DoubleTensor(shape: [64 * 33, 40], values: $0[0].values), $0[1], transposeA: false,
                                           transposeB: true)
            return Reference.binary(DoubleTensor(shape: [64, 33, 24], values: product.values), $0[2], +)
        }
    }

    func testLinearRejectsMismatchedShapes() throws {
        let x = try Tensor(zeros: [2, 3])
        XCTAssertThrowsError(try x.linear(weight: try Tensor(zeros: [4, 2]), bias: nil))
        XCTAssertThrowsError(try x.linear(weight: try Tensor(zeros: [4, 3]), bias: try Tensor(zeros: [3])))
        XCTAssertThrowsError(try x.linear(weight: try Tensor(zeros: [4, 3, 1]), bias: nil))
    }

    func testScaledMatrixProduct() throws {
        for (leading, shared) in [([2], false), ([3, 2], true), ([Int](), true)] {
            for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
                let (sa, sb) = matmulShapes(leading: leading, m: 3, k: 4, n: 5, transposeA: transposeA, transposeB: transposeB,
                                            sharedRight: shared)
                let a = try Random.uniform(sa, seed: 41), b = try Random.uniform(sb, seed: 42)
                try checkGradients("matmul \(sa)·\(sb) tA=\(transposeA) tB=\(transposeB) scale −0.37", [a, b]) {
                    try $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB, scale: -0.37)
                } reference: {
                    Reference.map(Reference.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)) { -0.37 * $0 }
                }
            }
        }
    }

    func testMatrixProductOfATensorWithItself() throws {
        let x = try Random.uniform([2, 3, 4], seed: 7)
        try checkGradients("x·xᵀ", [x]) { try $0[0].matmul($0[0], transposeOther: true) } reference: {
            Reference.matmul($0[0], $0[0], transposeA: false, transposeB: true)
        }
        let w = try Random.uniform([4, 4], seed: 8)
        try checkGradients("wᵀ·w", [w]) { try $0[0].matmul($0[0], transposeSelf: true) } reference: {
            Reference.matmul($0[0], $0[0], transposeA: true, transposeB: false)
        }
    }

    func testSumAndMeanOfEverything() throws {
        let x = try Random.uniform([3, 4, 5], seed: 9)
        try checkGradients("sum", [x]) { $0[0].sum() } reference: { Reference.sum($0[0]) }
        try checkGradients("mean", [x]) { try $0[0].mean() } reference: { x in
            DoubleTensor(shape: [], values: [Reference.sum(x[0]).values[0] / Double(x[0].count)])
        }
        let odd = try Random.uniform([37], seed: 10) // SIMD lanes plus a tail
        try checkGradients("sum odd", [odd]) { $0[0].sum() } reference: { Reference.sum($0[0]) }
    }

    func testSumAndMeanAlongAnAxis() throws {
        let x = try Random.uniform([3, 4, 5], seed: 11)
        for axis in [0, 1, 2, -1, -3] {
            for keep in [false, true] {
                try checkGradients("sum axis \(axis) keep \(keep)", [x]) { try $0[0].sum(axis: axis, keepingAxis: keep) } reference: {
                    Reference.sum($0[0], axis: axis, keepingAxis: keep)
                }
                try checkGradients("mean axis \(axis) keep \(keep)", [x]) { try $0[0].mean(axis: axis, keepingAxis: keep) } reference: { x in
                    let resolved = axis < 0 ? axis + 3 : axis
                    return Reference.map(Reference.sum(x[0], axis: axis, keepingAxis: keep)) { $0 / Double(x[0].shape[resolved]) }
                }
            }
        }
    }

    /// A small graph in which values fan out and join again (a diamond): gradients from every
    /// path must add up.
    func testCompositeGraphWithSharedSubexpressions() throws {
        let x = try Random.uniform([2, 3], seed: 12)
        let w = try Random.uniform([3, 4], seed: 13)
        try checkGradients("diamond", [x, w]) { inputs in
            let h = try inputs[0].matmul(inputs[1])
            let g = h.gelu()
            return try (g * h + h.scaled(by: 3)).softmax(axis: -1)
        } reference: { inputs in
            let h = Reference.matmul(inputs[0], inputs[1], transposeA: false, transposeB: false)
            let g = Reference.map(h, Reference.geluTanh)
            return Reference.softmax(Reference.binary(Reference.binary(g, h, *), Reference.map(h) { 3 * $0 }, +), axis: -1)
        }
    }
}
