import Foundation
import TensorCore
import XCTest

/// Gradient checks on inputs large enough that the forward and backward kernels split their work
/// over cores (more than 2 · `Parallel.minimumElementsPerChunk` elements), with finite differences
/// at sampled elements. Broadcast operands that fold many rows onto one value are included: their
/// gradients must be accumulated without races.
final class GradientCheckParallelTests: XCTestCase {
    let large = 2 * Parallel.minimumElementsPerChunk + 4_133 // above the split threshold, not a multiple of 8

    func testThresholdsAreWhatTheseTestsAssume() {
        XCTAssertGreaterThanOrEqual(large, 2 * Parallel.minimumElementsPerChunk)
        if Parallel.coreCount > 1 {
            XCTAssertGreaterThan(Parallel.chunkCount(for: large), 1, "these sizes must run on several cores")
        }
    }

    func testBroadcastArithmetic() throws {
        let rows = large / 37
        let a = try Random.uniform([rows, 37], seed: 1, -2, 2)
        let column = try Random.uniform([rows, 1], seed: 2, 0.5, 1.5)
        let row = try Random.uniform([37], seed: 3, 0.5, 1.5)
        let same = try Random.uniform([rows, 37], seed: 4, 0.5, 1.5)
        let cases: [(String, (Tensor, Tensor) throws -> Tensor, (Double, Double) -> Double)] = [
            ("add", { try $0 + $1 }, +), ("subtract", { try $0 - $1 }, -), ("multiply", { try $0 * $1 }, *), ("divide", { try $0 / $1 }, /),
        ]
        for (name, op, f) in cases {
            for b in [column, row, same] {
                try checkGradients("large \(name) with \(b.shape)", [a, b], samples: 24, forwardTolerance: 1e-4) { try op($0[0], $0[1]) } reference: {
                    Reference.binary($0[0], $0[1], f)
                }
            }
        }
    }

    func testSumMeanAndAffine() throws {
        let x = try Random.uniform([large], seed: 5)
        try checkGradients("large sum", [x], samples: 16, forwardTolerance: 1e-4) { $0[0].sum() } reference: { Reference.sum($0[0]) }
        try checkGradients("large affine", [x], samples: 16, forwardTolerance: 1e-4) { $0[0].affine(scale: -0.75, shift: 2) } reference: {
            Reference.map($0[0]) { -0.75 * $0 + 2 }
        }
        let y = try Random.uniform([64, large / 64], seed: 6)
        try checkGradients("large sum axis 0", [y], samples: 16, forwardTolerance: 1e-4) { try $0[0].sum(axis: 0) } reference: {
            Reference.sum($0[0], axis: 0, keepingAxis: false)
        }
        try checkGradients("large mean axis 1", [y], samples: 16, forwardTolerance: 1e-4) { try $0[0].mean(axis: 1, keepingAxis: true) } reference: { x in
            Reference.map(Reference.sum(x[0], axis: 1, keepingAxis: true)) { $0 / Double(x[0].shape[1]) }
        }
    }

    func testRowKernels() throws {
        let n = 96
        let x = try Random.uniform([large / n, n], seed: 7, -2, 2)
        let gamma = try Random.uniform([n], seed: 8, 0.5, 1.5), beta = try Random.uniform([n], seed: 9)
        try checkGradients("large layerNorm", [x, gamma, beta], samples: 24, forwardTolerance: 1e-4) { try $0[0].layerNorm(gamma: $0[1], beta: $0[2]) } reference: {
            Reference.layerNorm($0[0], gamma: $0[1], beta: $0[2])
        }
        try checkGradients("large rmsNorm", [x, gamma], samples: 24, forwardTolerance: 1e-4) { try $0[0].rmsNorm(gamma: $0[1]) } reference: {
            Reference.rmsNorm($0[0], gamma: $0[1])
        }
        try checkGradients("large softmax", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].softmax() } reference: { Reference.softmax($0[0], axis: -1) }
        try checkGradients("large logSoftmax", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].logSoftmax() } reference: { Reference.logSoftmax($0[0], axis: -1) }
        try checkGradients("large l2Normalized", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].l2Normalized() } reference: {
            Reference.l2Normalize($0[0], axis: -1)
        }
        let strided = try Random.uniform([8, 16, large / 128], seed: 10, -2, 2)
        try checkGradients("large softmax, inner axis", [strided], samples: 24, forwardTolerance: 1e-4) { try $0[0].softmax(axis: 1) } reference: {
            Reference.softmax($0[0], axis: 1)
        }
        try checkGradients("large l2Normalized, inner axis", [strided], samples: 24, forwardTolerance: 1e-4) { try $0[0].l2Normalized(axis: 1) } reference: {
            Reference.l2Normalize($0[0], axis: 1)
        }
        try checkGradients("large crossEntropy", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].crossEntropy(targets: Random.integers(large / n, below: n, seed: 11)) } reference: {
            Reference.crossEntropy($0[0], targets: Random.integers(large / n, below: n, seed: 11), mask: nil)
        }
    }

    func testActivations() throws {
        let x = try Random.uniform([large], seed: 12, -4, 4)
        for activation in Activation.allCases {
            try checkGradients("large \(activation)", [x], samples: 24, forwardTolerance: 1e-4) { $0[0].activated(activation) } reference: {
                Reference.map($0[0], Reference.activation(activation))
            }
        }
    }

    func testShapeAndIndexingOps() throws {
        let x = try Random.uniform([4, 8, 32, 36], seed: 13)
        try checkGradients("large permute", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].permuted([0, 2, 1, 3]) } reference: {
            Reference.permute($0[0], [0, 2, 1, 3])
        }
        try checkGradients("large transpose", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].transposed(-1, -2) } reference: {
            Reference.transpose($0[0], -1, -2)
        }
        let indices = Random.integers(4 * 32 * 40, below: 36, seed: 14)
        try checkGradients("large gatheringLastAxis", [x], samples: 24, forwardTolerance: 1e-4) { try $0[0].gatheringLastAxis(indices, columns: 40, indexBatches: 4) } reference: {
            Reference.gatheringLastAxis($0[0], indices, columns: 40, indexBatches: 4)
        }
        let table = try Random.uniform([50, 64], seed: 15)
        let ids = Random.integers(700, below: 50, seed: 16)
        try checkGradients("large gatherRows", [table], samples: 24, forwardTolerance: 1e-4) { try $0[0].gatherRows(ids, indexShape: [7, 100]) } reference: {
            Reference.gatherRows($0[0], ids, indexShape: [7, 100])
        }
        let angles = Random.floats(4 * 32 * 12, seed: 17, -3, 3)
        let (c, s) = (angles.map { Float(cos(Double($0))) }, angles.map { Float(sin(Double($0))) })
        for pairing in RotaryPairing.allCases {
            try checkGradients("large rotatedPairs \(pairing)", [x], samples: 24, forwardTolerance: 1e-4) {
                try $0[0].rotatedPairs(cos: c, sin: s, rotaryDimension: 24, pairing: pairing)
            } reference: {
                Reference.rotatePairs($0[0], cos: c.map(Double.init), sin: s.map(Double.init), rotary: 24, pairing: pairing)
            }
        }
    }

    func testMatrixProductLargerThanOneBlock() throws {
        let a = try Random.uniform([3, 70, 90], seed: 18), b = try Random.uniform([90, 65], seed: 19)
        for (tA, tB) in [(false, false), (false, true), (true, false), (true, true)] {
            let lhs = tA ? try a.transposed(1, 2).detached() : a, rhs = tB ? try b.transposed(0, 1).detached() : b
            try checkGradients("large matmul tA=\(tA) tB=\(tB)", [lhs, rhs], samples: 16, forwardTolerance: 1e-4) {
                try $0[0].matmul($0[1], transposeSelf: tA, transposeOther: tB)
            } reference: {
                Reference.matmul($0[0], $0[1], transposeA: tA, transposeB: tB)
            }
        }
    }
}
