import Foundation
import TensorCore
import XCTest

/// Finite-difference gradient checks of the shape and indexing ops: reshape, permute, transpose,
/// slice, concatenate, the embedding gather, the last-axis gather and the pair rotation.
final class GradientCheckShapeTests: XCTestCase {
    func testReshape() throws {
        let x = try Random.uniform([2, 3, 4], seed: 1)
        for shape in [[4, 6], [-1, 6], [24], [2, -1, 2, 3], [1, 24, 1]] {
            try checkGradients("reshape \(shape)", [x]) { try $0[0].reshaped(shape) } reference: { x in
                let known = shape.filter { $0 != -1 }.reduce(1, *)
                return DoubleTensor(shape: shape.map { $0 == -1 ? x[0].count / known : $0 }, values: x[0].values)
            }
        }
        // A reshape shares storage, so a second op on the view must still route gradients to the leaf.
        try checkGradients("reshape then scale", [x]) { try $0[0].reshaped([6, 4]).scaled(by: 2).reshaped([2, 12]) } reference: { x in
            DoubleTensor(shape: [2, 12], values: x[0].values.map { 2 * $0 })
        }
    }

    func testPermute() throws {
        let x = try Random.uniform([2, 3, 4, 5], seed: 2)
        for order in [[0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0], [1, 3, 0, 2], [0, 1, 3, 2]] {
            try checkGradients("permute \(order)", [x]) { try $0[0].permuted(order) } reference: { Reference.permute($0[0], order) }
        }
        let matrix = try Random.uniform([7, 3], seed: 3)
        try checkGradients("permute matrix", [matrix]) { try $0[0].permuted([1, 0]) } reference: { Reference.permute($0[0], [1, 0]) }
    }

    func testTranspose() throws {
        let x = try Random.uniform([2, 3, 4, 5], seed: 4)
        for (a0, a1) in [(0, 1), (2, 3), (-1, -2), (0, 3), (1, 1), (-4, 2)] {
            try checkGradients("transpose \(a0) \(a1)", [x]) { try $0[0].transposed(a0, a1) } reference: { Reference.transpose($0[0], a0, a1) }
        }
    }

    func testSlice() throws {
        let x = try Random.uniform([3, 5, 4], seed: 5)
        for (axis, range) in [(0, 1..<3), (1, 0..<5), (1, 2..<4), (-1, 1..<2), (2, 0..<3), (0, 0..<1)] {
            try checkGradients("slice \(axis) \(range)", [x]) { try $0[0].sliced(axis: axis, range) } reference: {
                Reference.slice($0[0], axis: axis, range)
            }
        }
        // Two overlapping slices of one tensor: their gradients add up on the overlap.
        try checkGradients("overlapping slices", [x]) { x in
            try x[0].sliced(axis: 1, 0..<3) * x[0].sliced(axis: 1, 2..<5)
        } reference: { x in
            Reference.binary(Reference.slice(x[0], axis: 1, 0..<3), Reference.slice(x[0], axis: 1, 2..<5), *)
        }
    }

    func testConcatenate() throws {
        for axis in [0, 1, 2, -1, -2] {
            let resolved = axis < 0 ? axis + 3 : axis
            let shapes = [1, 3, 2].map { extent -> [Int] in var s = [2, 3, 4]; s[resolved] = extent; return s }
            let inputs = try shapes.enumerated().map { try Random.uniform($0.element, seed: UInt64(20 + $0.offset)) }
            try checkGradients("concatenate axis \(axis)", inputs) { try Tensor.concatenate($0, axis: axis) } reference: {
                Reference.concatenate($0, axis: axis)
            }
            // Untracked parts are skipped in the backward; tracked ones still get theirs.
            try checkGradients("concatenate axis \(axis), middle only", inputs, checking: [1]) {
                try Tensor.concatenate($0, axis: axis)
            } reference: {
                Reference.concatenate($0, axis: axis)
            }
        }
        let x = try Random.uniform([2, 3], seed: 30)
        try checkGradients("concatenate with itself", [x]) { try Tensor.concatenate([$0[0], $0[0]], axis: 1) } reference: {
            Reference.concatenate([$0[0], $0[0]], axis: 1)
        }
    }

    func testEmbeddingGatherWithRepeatedIndices() throws {
        let table = try Random.uniform([5, 3], seed: 6)
        // Index 2 appears three times and 0 twice: the scatter-add must sum their gradients; row 1 and 3 get none.
        let ids = [0, 2, 2, 4, 0, 2]
        try checkGradients("gatherRows [2, 3]", [table]) { try $0[0].gatherRows(ids, indexShape: [2, 3]) } reference: {
            Reference.gatherRows($0[0], ids, indexShape: [2, 3])
        }
        let gradient = try XCTUnwrap(table.gradient).scalars
        XCTAssertEqual(Array(gradient[3..<6]), [0, 0, 0], "an unused row gets a zero gradient")
        XCTAssertEqual(Array(gradient[9..<12]), [0, 0, 0], "an unused row gets a zero gradient")
        try checkGradients("gatherRows flat", [table]) { try $0[0].gatherRows([4, 4, 1], indexShape: [3]) } reference: {
            Reference.gatherRows($0[0], [4, 4, 1], indexShape: [3])
        }
        try checkGradients("gatherRows single", [table]) { try $0[0].gatherRows([3], indexShape: []) } reference: {
            Reference.gatherRows($0[0], [3], indexShape: [])
        }
    }

    func testGatheringLastAxis() throws {
        let x = try Random.uniform([2, 3, 4, 5], seed: 7)
        let shared = (0..<(4 * 6)).map { ($0 * 7) % 5 }
        try checkGradients("gatheringLastAxis shared", [x]) { try $0[0].gatheringLastAxis(shared, columns: 6) } reference: {
            Reference.gatheringLastAxis($0[0], shared, columns: 6, indexBatches: 1)
        }
        let perBatch = (0..<(2 * 4 * 3)).map { ($0 * 3 + 1) % 5 }
        try checkGradients("gatheringLastAxis per batch", [x]) { try $0[0].gatheringLastAxis(perBatch, columns: 3, indexBatches: 2) } reference: {
            Reference.gatheringLastAxis($0[0], perBatch, columns: 3, indexBatches: 2)
        }
        let perHead = Random.integers(6 * 4 * 2, below: 5, seed: 8)
        try checkGradients("gatheringLastAxis per head", [x]) { try $0[0].gatheringLastAxis(perHead, columns: 2, indexBatches: 6) } reference: {
            Reference.gatheringLastAxis($0[0], perHead, columns: 2, indexBatches: 6)
        }
    }

    func rotaryTables(batch: Int, length: Int, half: Int, seed: UInt64) -> ([Float], [Float]) {
        let angles = Random.floats(batch * length * half, seed: seed, -3, 3)
        return (angles.map { Float(cos(Double($0))) }, angles.map { Float(sin(Double($0))) })
    }

    func testRotatedPairsBothPairingsAndPartialRotation() throws {
        let (b, h, t, d) = (2, 3, 4, 8)
        let x = try Random.uniform([b, h, t, d], seed: 9)
        for pairing in RotaryPairing.allCases {
            for rotary in [8, 4, 2, 0] {
                for tableBatch in [1, b] {
                    let (c, s) = rotaryTables(batch: tableBatch, length: t, half: rotary / 2, seed: UInt64(rotary * 10 + tableBatch))
                    let name = "rotatedPairs \(pairing) R=\(rotary) tables=\(tableBatch)"
                    try checkGradients(name, [x]) {
                        try $0[0].rotatedPairs(cos: c, sin: s, rotaryDimension: rotary, pairing: pairing)
                    } reference: {
                        Reference.rotatePairs($0[0], cos: c.map(Double.init), sin: s.map(Double.init), rotary: rotary, pairing: pairing)
                    }
                }
            }
        }
    }

    /// A rotation preserves the norm of each rotated pair, whichever the pairing.
    func testRotationIsAnIsometry() throws {
        let x = try Random.uniform([1, 2, 5, 6], seed: 10)
        let (c, s) = rotaryTables(batch: 1, length: 5, half: 3, seed: 11)
        for pairing in RotaryPairing.allCases {
            let y = try x.rotatedPairs(cos: c, sin: s, rotaryDimension: 6, pairing: pairing)
            let before = x.scalars.reduce(0.0) { $0 + Double($1 * $1) }, after = y.scalars.reduce(0.0) { $0 + Double($1 * $1) }
            XCTAssertEqual(before, after, accuracy: 1e-5 * before)
        }
    }
}
