import TensorCore
import XCTest

/// The tape itself: no-gradient mode, accumulation across backward passes, untracked inputs,
/// repeated and deep graphs.
final class AutogradTests: XCTestCase {
    func parameters() throws -> (Tensor, Tensor) {
        let x = try Random.uniform([3, 4], seed: 1)
        let w = try Random.uniform([4, 2], seed: 2)
        x.requiresGradient = true
        w.requiresGradient = true
        return (x, w)
    }

    func loss(_ x: Tensor, _ w: Tensor) throws -> Tensor {
        try (x.matmul(w).gelu() * x.sum(axis: 1, keepingAxis: true)).softmax().logSoftmax(axis: 0).mean()
    }

    func testWithoutGradientRecordsNothing() throws {
        let (x, w) = try parameters()
        XCTAssertTrue(GradientMode.isEnabled)
        let value = try GradientMode.withoutGradient { () throws -> Tensor in
            XCTAssertFalse(GradientMode.isEnabled)
            let y = try loss(x, w)
            XCTAssertFalse(y.isTracked, "no graph is recorded")
            XCTAssertFalse(try x.matmul(w).isTracked)
            XCTAssertFalse(try (x + x).reshaped([12]).isTracked)
            try y.backward() // a lone scalar: nothing to reach
            return y
        }
        XCTAssertTrue(GradientMode.isEnabled, "the mode is restored")
        XCTAssertNil(x.gradient)
        XCTAssertNil(w.gradient)
        // The values are the same as with recording on.
        let recorded = try loss(x, w)
        XCTAssertTrue(recorded.isTracked)
        XCTAssertEqual(bits(value.scalars), bits(recorded.scalars))
        // The mode is restored even when the body throws.
        XCTAssertThrowsError(try GradientMode.withoutGradient { _ = try x + w })
        XCTAssertTrue(GradientMode.isEnabled)
    }

    func testNestedModesAndUntrackedInputs() throws {
        let (x, _) = try parameters()
        let constant = try Random.uniform([3, 4], seed: 3)
        XCTAssertFalse(try (constant * constant).isTracked, "untracked inputs make untracked results")
        let y = try (x * constant).sum()
        try y.backward()
        XCTAssertNil(constant.gradient, "a constant gets no gradient")
        XCTAssertEqual(bits(try XCTUnwrap(x.gradient).scalars), bits(constant.scalars))
        let inner = GradientMode.withoutGradient { GradientMode.withoutGradient { GradientMode.isEnabled } }
        XCTAssertFalse(inner)
        XCTAssertFalse(x.detached().isTracked)
        XCTAssertEqual(x.detached().scalars, x.scalars)
    }

    func testGradientsAccumulateOverBackwardPasses() throws {
        let (x, w) = try parameters()
        try loss(x, w).backward()
        let once = (try XCTUnwrap(x.gradient).scalars, try XCTUnwrap(w.gradient).scalars)
        try loss(x, w).backward()
        let twice = (try XCTUnwrap(x.gradient).scalars, try XCTUnwrap(w.gradient).scalars)
        XCTAssertEqual(twice.0, once.0.map { $0 * 2 }, "g + g is exactly 2g")
        XCTAssertEqual(twice.1, once.1.map { $0 * 2 })

        // Two different losses: the gradients add.
        x.zeroGradient(); w.zeroGradient()
        XCTAssertNil(x.gradient)
        try x.sum().backward()
        try (x * x).sum().backward()
        let expected = x.scalars.map { 1 + 2 * $0 }
        assertClose(try XCTUnwrap(x.gradient).scalars, expected.map(Double.init), tolerance: 1e-6)
        XCTAssertNil(w.gradient, "w was not in these graphs")
    }

    /// A matrix product's gradients add up wherever a tensor meets it: as both operands, in two
    /// products, as a shared right operand of a batched product (its items summed), and in an empty
    /// product (a zero gradient).
    func testMatrixProductGradientsAddUpWhereverATensorMeetsIt() throws {
        let x = try Random.uniform([3, 3], seed: 5)
        x.requiresGradient = true
        // By hand: d sum(x·x)/dx_ab = Σ_k x_bk + Σ_i x_ia; d sum(x·xᵀ)/dx_ab = 2 Σ_i x_ib.
        try (x.matmul(x).sum() + x.matmul(x, transposeOther: true).sum()).backward()
        let v = x.scalars.map(Double.init)
        let rowSum = (0..<3).map { i in (0..<3).map { v[i * 3 + $0] }.reduce(0, +) }
        let columnSum = (0..<3).map { j in (0..<3).map { v[$0 * 3 + j] }.reduce(0, +) }
        let expected: [Double] = (0..<9).map { (index: Int) -> Double in
            let (a, b) = (index / 3, index % 3)
            let first: Double = rowSum[b] + columnSum[a]
            return first + 2 * columnSum[b]
        }
        assertClose(try XCTUnwrap(x.gradient).scalars, expected, tolerance: 1e-5)

        // Batched left operand, shared right operand taken transposed (the per-item path): dW sums items.
        let batched = try Random.uniform([4, 3, 2], seed: 6), w = try Random.uniform([3, 5], seed: 7)
        w.requiresGradient = true
        try batched.matmul(w, transposeSelf: true).sum().backward()
        let direct = try XCTUnwrap(w.gradient).scalars
        w.zeroGradient()
        for item in 0..<4 {
            let slice = try Tensor(Array(batched.scalars[(item * 6)..<((item + 1) * 6)]), shape: [3, 2])
            try slice.matmul(w, transposeSelf: true).sum().backward()
        }
        assertClose(direct, try XCTUnwrap(w.gradient).scalars.map(Double.init), tolerance: 1e-5)

        // An empty product: zero rows, so dW is zero.
        let empty = try Tensor([Float](), shape: [0, 3]), v2 = try Random.uniform([3, 2], seed: 8)
        v2.requiresGradient = true
        try empty.matmul(v2).sum().backward()
        XCTAssertEqual(try XCTUnwrap(v2.gradient).scalars, [Float](repeating: 0, count: 6))
    }

    func testTheSameGraphCanBeReplayed() throws {
        let (x, w) = try parameters()
        let y = try loss(x, w)
        try y.backward()
        let once = try XCTUnwrap(w.gradient).scalars
        try y.backward() // intermediate gradients were released after the first pass
        XCTAssertEqual(try XCTUnwrap(w.gradient).scalars, once.map { $0 * 2 })
        XCTAssertNil(y.gradient, "intermediate results do not keep gradients")
    }

    func testSeededBackwardOnANonScalarOutput() throws {
        let (x, w) = try parameters()
        let y = try x.matmul(w)
        let seed = try Random.normal(y.shape, seed: 4)
        try y.backward(seed: seed)
        // dL/dx = seed · wᵀ.
        let expected = Reference.matmul(DoubleTensor(seed), DoubleTensor(w), transposeA: false, transposeB: true)
        assertClose(try XCTUnwrap(x.gradient).scalars, expected.values, tolerance: 1e-5)
    }

    func testLeafBackwardAndScalarRoot() throws {
        let x = try Tensor([2], shape: [1], requiresGradient: true)
        try x.backward()
        XCTAssertEqual(x.gradient?.scalars, [1])
        XCTAssertEqual(try x.scaled(by: 3).item(), 6)
        XCTAssertEqual(Tensor(scalar: 4).shape, [])
        XCTAssertEqual(try Tensor(scalar: 4).item(), 4)
    }

    func testDeepGraphsDoNotOverflowTheStack() throws {
        let x = try Tensor([1, 2], shape: [2], requiresGradient: true)
        var y = x
        for _ in 0..<20_000 { y = y.affine(scale: 1, shift: 0.001) }
        try y.sum().backward()
        XCTAssertEqual(x.gradient?.scalars, [1, 1])
        XCTAssertEqual(y.scalars[0], 21, accuracy: 0.05)
    }

    func testDiamondGraphsVisitEachNodeOnce() throws {
        let x = try Tensor([0.5, -1, 2], shape: [3], requiresGradient: true)
        // y = a + a with a = 3x, used by two consumers: dy/dx = 6 (a counted twice would give 12 or more).
        let a = x.scaled(by: 3)
        let b = try a + a
        let c = try b + a // 9x
        try c.sum().backward()
        XCTAssertEqual(x.gradient?.scalars, [9, 9, 9])
    }
}
