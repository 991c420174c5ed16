import TensorCore
import XCTest

/// A row-major tensor of Doubles: the value type of the reference implementations in `Reference`.
struct DoubleTensor: Equatable {
    var shape: [Int]
    var values: [Double]

    init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "reference: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    init(_ tensor: Tensor) { self.init(shape: tensor.shape, values: tensor.scalars.map(Double.init)) }

    var count: Int { values.count }
}

/// Random test tensors, always from explicit seeds.
enum Random {
    static func uniform(_ shape: [Int], seed: UInt64, _ lower: Float = -1, _ upper: Float = 1) throws -> Tensor {
        var generator = SplitMix64(seed: seed)
        return try Tensor(uniform: shape, lower: lower, upper: upper, generator: &generator)
    }

    static func normal(_ shape: [Int], seed: UInt64, standardDeviation: Float = 1) throws -> Tensor {
        var generator = SplitMix64(seed: seed)
        return try Tensor(normal: shape, standardDeviation: standardDeviation, generator: &generator)
    }

    static func floats(_ count: Int, seed: UInt64, _ lower: Float = -1, _ upper: Float = 1) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in lower + (upper - lower) * generator.nextUniform() }
    }

    static func integers(_ count: Int, below bound: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.nextInt(in: 0..<bound) }
    }
}

/// The worst of |actual − expected| / max(|expected|, floor) over all elements, where the floor is
/// `floorFraction` of the largest |expected| (so that values that cancel to almost zero are
/// judged on the scale of the whole tensor, not on their own) and at least `absoluteFloor`.
func worstRelativeError(_ actual: [Float], _ expected: [Double], floorFraction: Double = 0.01,
                        absoluteFloor: Double = 1e-12) -> (error: Double, index: Int) {
    precondition(actual.count == expected.count)
    let largest = expected.reduce(0) { max($0, abs($1)) }
    let floor = max(largest * floorFraction, absoluteFloor)
    var worst = (error: 0.0, index: -1)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let error = a.isFinite ? abs(Double(a) - e) / max(abs(e), floor) : .infinity
        if error > worst.error || worst.index < 0 { worst = (error, i) }
    }
    return worst
}

func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, floorFraction: Double = 0.01,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(message()): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    guard !actual.isEmpty else { return }
    let (error, index) = worstRelativeError(actual, expected, floorFraction: floorFraction)
    XCTAssertLessThanOrEqual(error, tolerance,
                             "\(message()): worst relative error at \(index): \(actual[index]) vs \(expected[index])",
                             file: file, line: line)
}

/// The bit patterns of a tensor's values, for bitwise comparisons.
func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

extension XCTestCase {
    /// Checks an operation against its Double reference, forward and backward.
    ///
    /// The scalar loss is L = Σ op(inputs) ⊙ R for a fixed random R. The Float32 gradient of every
    /// input in `checking` (all inputs by default) comes from `backward()`; the expected gradient is
    /// the central finite difference of L computed entirely in Double from `reference`, with step
    /// `step`·max(1, |x|). With `samples`, only that many randomly chosen elements of each input are
    /// differentiated numerically (for large inputs that exercise the parallel paths).
    func checkGradients(_ name: String, _ inputs: [Tensor], checking: [Int]? = nil, samples: Int? = nil,
                        forwardTolerance: Double = 1e-5, gradientTolerance: Double = 1e-3, step: Double = 1e-6,
                        file: StaticString = #filePath, line: UInt = #line,
                        _ forward: ([Tensor]) throws -> Tensor,
                        reference: ([DoubleTensor]) throws -> DoubleTensor) throws {
        let checked = checking ?? Array(inputs.indices)
        for (i, input) in inputs.enumerated() {
            input.zeroGradient()
            input.requiresGradient = checked.contains(i)
        }
        let output = try forward(inputs)
        XCTAssertTrue(output.isTracked, "\(name): the output must be recorded", file: file, line: line)
        var generator = SplitMix64(seed: 0x5EED)
        let weights = try Tensor(normal: output.shape, generator: &generator)
        try (output * weights).sum().backward()

        // Forward: Float32 against the Double reference.
        let doubles = inputs.map(DoubleTensor.init)
        let expected = try reference(doubles)
        XCTAssertEqual(output.shape, expected.shape, "\(name): output shape", file: file, line: line)
        assertClose(output.scalars, expected.values, tolerance: forwardTolerance, "\(name) forward", file: file, line: line)

        // Backward: Float32 autograd against central differences of the Double reference.
        let r = weights.scalars.map(Double.init)
        func loss(_ xs: [DoubleTensor]) throws -> Double {
            let y = try reference(xs).values
            var total = 0.0
            for j in y.indices { total += y[j] * r[j] }
            return total
        }
        for i in checked {
            let analytic = try XCTUnwrap(inputs[i].gradient, "\(name): input \(i) has no gradient", file: file, line: line).scalars
            XCTAssertEqual(analytic.count, inputs[i].count, file: file, line: line)
            let elements: [Int]
            if let samples, samples < inputs[i].count {
                elements = Random.integers(samples, below: inputs[i].count, seed: UInt64(i) &+ 17)
            } else {
                elements = Array(0..<inputs[i].count)
            }
            var xs = doubles
            var numeric: [Double] = []
            for j in elements {
                let saved = xs[i].values[j]
                let h = step * max(1, abs(saved))
                xs[i].values[j] = saved + h
                let plus = try loss(xs)
                xs[i].values[j] = saved - h
                let minus = try loss(xs)
                xs[i].values[j] = saved
                numeric.append((plus - minus) / (2 * h))
            }
            let picked = elements.map { analytic[$0] }
            assertClose(picked, numeric, tolerance: gradientTolerance, "\(name) gradient of input \(i)", file: file, line: line)
            XCTAssertTrue(numeric.contains { $0 != 0 }, "\(name): input \(i) has a vanishing gradient; the check is void",
                          file: file, line: line)
        }
    }

    /// Asserts that `body` throws a `TensorError` whose message contains every string of `mentions`.
    func assertTensorError(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let tensorError = error as? TensorError else {
                XCTFail("expected a TensorError, got \(type(of: error)): \(error)", file: file, line: line)
                return
            }
            let message = tensorError.description
            for mention in mentions {
                XCTAssertTrue(message.contains(mention), "\"\(message)\" should mention \"\(mention)\"", file: file, line: line)
            }
        }
    }
}
