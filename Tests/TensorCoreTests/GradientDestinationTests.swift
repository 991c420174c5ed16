import Foundation
import TensorCore
import XCTest

/// A backward kernel writes the first gradient that reaches a tensor into a fresh buffer that
/// was never zeroed, and adds every later one (`Tensor.gradientDestination`). For each operation
/// that does so, two checks:
/// - written in full: with every buffer allocated without zeroing filled with NaN first
///   (`TensorStorage.withUninitializedBuffersPoisoned`), the gradients are finite and the same as without;
/// - added later: inputs used by two copies of the operation receive twice the gradient of one.
final class GradientDestinationTests: XCTestCase {
    struct Case {
        let name: String
        let inputs: [Tensor]
        let operation: ([Tensor]) throws -> Tensor
    }

    func cases() throws -> [Case] {
        var seed: UInt64 = 500
        func u(_ shape: [Int], _ lower: Float = -1, _ upper: Float = 1) throws -> Tensor {
            seed += 1
            return try Random.uniform(shape, seed: seed, lower, upper)
        }
        // Large enough that the parallel paths split the work (≥ 2 · 16,384 values).
        let big = [4, 96, 100]
        var list: [Case] = [
            Case(name: "linear", inputs: [try u([2, 3, 7]), try u([9, 7]), try u([9])]) {
                try $0[0].linear(weight: $0[1], bias: $0[2])
            },
            Case(name: "linear, large", inputs: [try u([64, 40, 24]), try u([72, 24]), try u([72])]) {
                try $0[0].linear(weight: $0[1], bias: $0[2])
            },
            Case(name: "linear, no bias", inputs: [try u([5, 7]), try u([9, 7])]) { try $0[0].linear(weight: $0[1], bias: nil) },
            Case(name: "reshape", inputs: [try u(big)]) { try $0[0].reshaped([96, 400]) },
            Case(name: "affine", inputs: [try u(big)]) { $0[0].affine(scale: -1.5, shift: 2) },
            Case(name: "permute", inputs: [try u([3, 5, 4, 6])]) { try $0[0].permuted([0, 2, 1, 3]) },
            Case(name: "add", inputs: [try u(big), try u(big)]) { try $0[0] + $0[1] },
            Case(name: "subtract", inputs: [try u(big), try u(big)]) { try $0[0] - $0[1] },
            Case(name: "multiply", inputs: [try u(big), try u(big)]) { try $0[0] * $0[1] },
            Case(name: "add, broadcast", inputs: [try u([4, 6]), try u([6])]) { try $0[0] + $0[1] },
            Case(name: "softmax, last axis", inputs: [try u(big)]) { try $0[0].softmax(axis: -1) },
            Case(name: "softmax, inner axis", inputs: [try u([4, 9, 5])]) { try $0[0].softmax(axis: 1) },
            Case(name: "causal softmax", inputs: [try u([3, 4, 20, 24])]) { try $0[0].causalSoftmax() },
            Case(name: "head scores", inputs: [try u([2, 5, 3, 4]), try u([2, 7, 3, 4])]) {
                try Tensor.headScores(queries: $0[0], keys: $0[1], scale: 0.5)
            },
            Case(name: "head scores, split over cores", inputs: [try u([2, 64, 4, 16]), try u([2, 64, 4, 16])]) {
                try Tensor.headScores(queries: $0[0], keys: $0[1], scale: 0.5)
            },
            Case(name: "head context", inputs: [try u([2, 3, 5, 7]), try u([2, 7, 3, 4])]) {
                try Tensor.headContext(probabilities: $0[0], values: $0[1])
            },
            Case(name: "head context, split over cores", inputs: [try u([2, 4, 64, 64]), try u([2, 64, 4, 16])]) {
                try Tensor.headContext(probabilities: $0[0], values: $0[1])
            },
            Case(name: "logSoftmax", inputs: [try u([4, 9, 5])]) { try $0[0].logSoftmax(axis: -1) },
            Case(name: "layerNorm", inputs: [try u(big), try u([100], 0.5, 1.5), try u([100])]) {
                try $0[0].layerNorm(gamma: $0[1], beta: $0[2])
            },
            Case(name: "rmsNorm", inputs: [try u([6, 13]), try u([13], 0.5, 1.5)]) { try $0[0].rmsNorm(gamma: $0[1]) },
        ]
        for activation in Activation.allCases {
            list.append(Case(name: activation.rawValue, inputs: [try u(big, -3, 3)]) { $0[0].activated(activation) })
            list.append(Case(name: activation.rawValue + ", short", inputs: [try u([3, 7], -3, 3)]) { $0[0].activated(activation) })
        }
        for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
            let shared = "tA=\(transposeA) tB=\(transposeB)"
            let a = try u(transposeA ? [2, 4, 3] : [2, 3, 4])
            list.append(Case(name: "matmul, shared right operand, \(shared)", inputs: [a, try u(transposeB ? [5, 4] : [4, 5])]) {
                try $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
            })
            list.append(Case(name: "matmul, batched, \(shared)", inputs: [a, try u(transposeB ? [2, 5, 4] : [2, 4, 5])]) {
                try $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB)
            })
        }
        // An empty batch: the shared right operand's gradient is all zeros, written.
        list.append(Case(name: "matmul, empty batch, tA=true", inputs: [try u([0, 4, 3]), try u([4, 5])]) {
            try $0[0].matmul($0[1], transposeSelf: true)
        })
        list.append(Case(name: "matmul, empty batch", inputs: [try u([0, 3, 4]), try u([4, 5])]) { try $0[0].matmul($0[1]) })
        list.append(Case(name: "linear, no rows", inputs: [try u([0, 7]), try u([9, 7]), try u([9])]) {
            try $0[0].linear(weight: $0[1], bias: $0[2])
        })
        list.append(Case(name: "matmul, batched, large", inputs: [try u([16, 64, 32]), try u([16, 64, 32])]) {
            try $0[0].matmul($0[1], transposeOther: true)
        })
        for pairing in RotaryPairing.allCases {
            let (t, rotary) = (5, 4)
            let angles = (0..<(t * rotary / 2)).map { Float($0) * 0.37 }
            list.append(Case(name: "rotatedPairs, \(pairing)", inputs: [try u([2, 3, t, 6])]) {
                try $0[0].rotatedPairs(cos: angles.map { Foundation.cos($0) }, sin: angles.map { Foundation.sin($0) },
                                       rotaryDimension: rotary, pairing: pairing)
            })
            list.append(Case(name: "rotatedPairs [B, T, H, D], \(pairing)", inputs: [try u([2, t, 3, 6])]) {
                try $0[0].rotatedPairs(cos: angles.map { Foundation.cos($0) }, sin: angles.map { Foundation.sin($0) },
                                       rotaryDimension: rotary, pairing: pairing, layout: .timeThenHeads)
            })
        }
        return list
    }

    /// The gradients of L = Σ_u Σ op(inputs) ⊙ R over `uses` copies of the operation.
    func gradients(_ c: Case, uses: Int) throws -> [[Float]] {
        for input in c.inputs { input.zeroGradient(); input.requiresGradient = true }
        defer { for input in c.inputs { input.zeroGradient() } }
        let outputs = try (0..<uses).map { _ in try c.operation(c.inputs) }
        var generator = SplitMix64(seed: 77)
        let weights = try Tensor(normal: outputs[0].shape, generator: &generator)
        var loss = try (outputs[0] * weights).sum()
        for output in outputs.dropFirst() { loss = try loss + (output * weights).sum() }
        try loss.backward()
        return try c.inputs.map { try XCTUnwrap($0.gradient, "\(c.name): no gradient").scalars }
    }

    func testFirstGradientsAreWrittenInFullAndLaterOnesAdded() throws {
        for c in try cases() {
            let once = try gradients(c, uses: 1)
            let poisoned = try TensorStorage.withUninitializedBuffersPoisoned { try gradients(c, uses: 1) }
            let twice = try gradients(c, uses: 2)
            for i in c.inputs.indices {
                XCTAssertTrue(poisoned[i].allSatisfy(\.isFinite), "\(c.name): input \(i)'s gradient kept a value it never wrote")
                XCTAssertEqual(bits(poisoned[i]), bits(once[i]), "\(c.name): input \(i), from a poisoned buffer")
                assertClose(twice[i], once[i].map { 2 * Double($0) }, tolerance: 1e-5, "\(c.name): input \(i), used twice")
            }
        }
    }

    /// Reshape and a ± b hand the output's gradient buffer to their first operand when no gradient
    /// has reached it yet; the buffer must then behave as that operand's own.
    func testHandedOverGradientBuffers() throws {
        let a = try Tensor([1, 2, 3, 4], shape: [4], requiresGradient: true)
        let b = try Tensor([5, 6, 7, 8], shape: [4], requiresGradient: true)
        let r = try Tensor([1, -1, 2, -2], shape: [4]), s = try Tensor([0.5, 0.25, 4, 8], shape: [4])
        // a reaches the loss through a + b and through a ⊙ s: dL/da = r + s, dL/db = r.
        try (((a + b) * r).sum() + (a * s).sum()).backward()
        XCTAssertEqual(a.gradient?.scalars, [1.5, -0.75, 6, 6])
        XCTAssertEqual(b.gradient?.scalars, [1, -1, 2, -2])
        a.zeroGradient(); b.zeroGradient()
        // The same with the other term first, and a − b.
        try ((a * s).sum() + ((a - b) * r).sum()).backward()
        XCTAssertEqual(a.gradient?.scalars, [1.5, -0.75, 6, 6])
        XCTAssertEqual(b.gradient?.scalars, [-1, 1, -2, 2])
        a.zeroGradient(); b.zeroGradient()
        // x + x: the handed-over buffer is then added to itself.
        try ((a + a) * r).sum().backward()
        XCTAssertEqual(a.gradient?.scalars, [2, -2, 4, -4])
        a.zeroGradient()
        // A reshaped leaf used twice, and a gradient kept across two backward passes.
        for _ in 0..<2 { try ((a.reshaped([2, 2]) * r.reshaped([2, 2])).sum() + (a.reshaped([4, 1]).sum())).backward() }
        XCTAssertEqual(a.gradient?.scalars, [4, 0, 6, -2])
        // A constant left operand takes nothing: only tracked tensors hold gradients.
        let constant = try Tensor([1, 1, 1, 1], shape: [4])
        b.zeroGradient()
        try ((constant + b) * r).sum().backward()
        XCTAssertNil(constant.gradient)
        XCTAssertEqual(b.gradient?.scalars, [1, -1, 2, -2])
    }
}
