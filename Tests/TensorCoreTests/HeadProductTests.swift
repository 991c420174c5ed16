import Foundation
import TensorCore
import XCTest

/// Attention's per-head products read from and written to [B, T, H, D] (`Tensor.headScores`,
/// `headContext`) and the rotation in that layout: gradients against finite differences of the
/// Double reference, and the same bits as `matmul` and `rotatedPairs` on [B, H, T, D] copies.
final class HeadProductTests: XCTestCase {
    /// [B, T, H, D] ↔ [B, H, T, D] (the permutation is its own inverse).
    static let swapTimeAndHeads = [0, 2, 1, 3]

    func testHeadProductGradients() throws {
        let swap = Self.swapTimeAndHeads
        // Small, and large enough (B·H·Tq·Tk·D ≥ 2^18) that the heads split over cores.
        for (b, tq, tk, h, d) in [(2, 5, 7, 3, 4), (2, 64, 64, 4, 16)] {
            let q = try Random.uniform([b, tq, h, d], seed: 1), k = try Random.uniform([b, tk, h, d], seed: 2)
            let samples = b * tq * h * d > 1000 ? 40 : nil
            try checkGradients("headScores \([b, tq, tk, h, d])", [q, k], samples: samples) {
                try Tensor.headScores(queries: $0[0], keys: $0[1], scale: 0.35)
            } reference: {
                Reference.map(Reference.matmul(Reference.permute($0[0], swap), Reference.permute($0[1], swap),
                                               transposeA: false, transposeB: true)) { $0 * Double(Float(0.35)) }
            }
            let p = try Random.uniform([b, h, tq, tk], seed: 3), v = try Random.uniform([b, tk, h, d], seed: 4)
            try checkGradients("headContext \([b, tq, tk, h, d])", [p, v], samples: samples) {
                try Tensor.headContext(probabilities: $0[0], values: $0[1])
            } reference: {
                Reference.permute(Reference.matmul($0[0], Reference.permute($0[1], swap), transposeA: false, transposeB: false), swap)
            }
        }
    }

    /// The same products as `matmul` on permuted copies, so the same bits, forward and backward: on
    /// the small-product kernel and (with 300 keys, beyond its depth for dQ) on OpenBLAS, with
    /// gradients written and then added, and a scale that is not a power of two.
    func testHeadProductsEqualMatmulOnPermutedCopiesBitForBit() throws {
        let swap = Self.swapTimeAndHeads
        for (b, tq, tk, h, d) in [(2, 5, 7, 3, 4), (2, 64, 64, 4, 16), (1, 300, 300, 2, 32)] {
            let label = "\([b, tq, tk, h, d])"
            let q = try Random.uniform([b, tq, h, d], seed: 5), k = try Random.uniform([b, tk, h, d], seed: 6)
            let p = try Random.uniform([b, h, tq, tk], seed: 7), v = try Random.uniform([b, tk, h, d], seed: 8)
            let seedScores = try Random.uniform([b, h, tq, tk], seed: 9), seedContext = try Random.uniform([b, tq, h, d], seed: 10)
            for input in [q, k, p, v] { input.requiresGradient = true }
            func run(inPlace: Bool) throws -> [[Float]] {
                for input in [q, k, p, v] { input.zeroGradient() }
                for _ in 0..<2 {  // the second pass adds to the gradients of the first
                    let scores = inPlace ? try Tensor.headScores(queries: q, keys: k, scale: 0.35)
                        : try q.permuted(swap).matmul(k.permuted(swap), transposeOther: true, scale: 0.35)
                    let context = inPlace ? try Tensor.headContext(probabilities: p, values: v)
                        : try p.matmul(v.permuted(swap)).permuted(swap)
                    try scores.backward(seed: seedScores)
                    try context.backward(seed: seedContext)
                    if inPlace { XCTAssertEqual(context.shape, [b, tq, h, d], label) }
                }
                let scores = inPlace ? try Tensor.headScores(queries: q, keys: k, scale: 0.35)
                    : try q.permuted(swap).matmul(k.permuted(swap), transposeOther: true, scale: 0.35)
                let context = inPlace ? try Tensor.headContext(probabilities: p, values: v) : try p.matmul(v.permuted(swap)).permuted(swap)
                return [scores.scalars, context.scalars] + [q, k, p, v].map { $0.gradient!.scalars }
            }
            let (fast, reference) = (try run(inPlace: true), try run(inPlace: false))
            for (index, name) in ["scores", "context", "dQ", "dK", "dP", "dV"].enumerated() {
                XCTAssertEqual(fast[index].map(\.bitPattern), reference[index].map(\.bitPattern), "\(label) \(name)")
            }
        }
    }

    /// Rotation of [B, T, H, D] rows: the rotation of [B, H, T, D] rows, permuted, bit for bit, with
    /// its gradient; and the kernel against its scalar twin in that layout.
    func testRotationInTheProjectionsLayout() throws {
        let swap = Self.swapTimeAndHeads
        let (b, t, h, d) = (2, 7, 3, 8)
        let x = try Random.uniform([b, t, h, d], seed: 11)
        for pairing in RotaryPairing.allCases {
            for rotary in [8, 4] {
                for tableBatch in [1, b] {
                    let angles = Random.floats(tableBatch * t * rotary / 2, seed: UInt64(rotary + tableBatch), -3, 3)
                    let (c, s) = (angles.map { Float(cos(Double($0))) }, angles.map { Float(sin(Double($0))) })
                    let name = "rotatedPairs [B, T, H, D] \(pairing) R=\(rotary) tables=\(tableBatch)"
                    let direct = try x.rotatedPairs(cos: c, sin: s, rotaryDimension: rotary, pairing: pairing, layout: .timeThenHeads)
                    let viaCopy = try x.permuted(swap).rotatedPairs(cos: c, sin: s, rotaryDimension: rotary, pairing: pairing).permuted(swap)
                    XCTAssertEqual(direct.scalars.map(\.bitPattern), viaCopy.scalars.map(\.bitPattern), name)
                    try checkGradients(name, [x]) {
                        try $0[0].rotatedPairs(cos: c, sin: s, rotaryDimension: rotary, pairing: pairing, layout: .timeThenHeads)
                    } reference: {
                        Reference.permute(Reference.rotatePairs(Reference.permute($0[0], swap), cos: c.map(Double.init),
                                                                sin: s.map(Double.init), rotary: rotary, pairing: pairing), swap)
                    }
                }
            }
        }
        let (heads, length, width, rotary) = (3, 700, 40, 32)
        let rows = Random.floats(b * length * heads * width, seed: 12), y0 = Random.floats(rows.count, seed: 13)
        let c = Random.floats(b * length * rotary / 2, seed: 14), s = Random.floats(c.count, seed: 15)
        for pairing in RotaryPairing.allCases {
            for (transposed, accumulate) in [(false, false), (true, true)] {
                var fast = y0, naive = y0
                Kernels.rotatePairs(rows, &fast, cos: c, sin: s, batch: b, heads: heads, length: length, width: width,
                                    rotary: rotary, tableBatch: b, pairing: pairing, transposed: transposed,
                                    accumulate: accumulate, layout: .timeThenHeads)
                Kernels.naiveRotatePairs(rows, &naive, cos: c, sin: s, batch: b, heads: heads, length: length, width: width,
                                         rotary: rotary, tableBatch: b, pairing: pairing, transposed: transposed,
                                         accumulate: accumulate, layout: .timeThenHeads)
                assertClose(fast, naive.map(Double.init), tolerance: 1e-6,
                            "rotatePairs [B, T, H, D] \(pairing) transposed=\(transposed) accumulate=\(accumulate)")
            }
        }
    }

    /// The rotation's row walker gives every row's batch row and position from any starting row (a thread's
    /// first), in both layouts, as the divisions do: [B, H, T] row r is (r / (H·T), r mod T), [B, T, H] row r is
    /// (r / (T·H), (r / H) mod T).
    func testHeadRowWalkerFollowsTheDivisions() {
        let (batch, heads, length) = (3, 4, 5), rows = batch * heads * length
        for layout in [HeadLayout.headsThenTime, .timeThenHeads] {
            for start in [0, 1, length - 1, length, heads * length - 1, heads * length + 3, rows - 1] {
                var walker = HeadRowWalker(row: start, heads: heads, length: length, layout: layout)
                for row in start..<rows {
                    let position = layout == .headsThenTime ? row % length : (row / heads) % length
                    XCTAssertEqual(walker.batch, row / (heads * length), "\(layout) from \(start): batch of row \(row)")
                    XCTAssertEqual(walker.position, position, "\(layout) from \(start): position of row \(row)")
                    walker.advance()
                }
            }
        }
    }

    func testHeadProductShapesAreChecked() throws {
        func u(_ shape: [Int]) throws -> Tensor { try Random.uniform(shape, seed: 1) }
        assertTensorError(["headScores", "[2, 5, 3, 4]", "[2, 5, 2, 4]"]) {
            try Tensor.headScores(queries: u([2, 5, 3, 4]), keys: u([2, 5, 2, 4]), scale: 1)
        }
        assertTensorError(["headScores", "[2, 5, 12]"]) { try Tensor.headScores(queries: u([2, 5, 12]), keys: u([2, 5, 12]), scale: 1) }
        assertTensorError(["headContext", "[2, 3, 5, 7]", "[2, 5, 3, 4]"]) {
            try Tensor.headContext(probabilities: u([2, 3, 5, 7]), values: u([2, 5, 3, 4]))
        }
        assertTensorError(["rotatedPairs", "[B, T, H, D]"]) {
            try u([2, 3, 8]).rotatedPairs(cos: [1], sin: [1], rotaryDimension: 2, pairing: .halfSplit, layout: .timeThenHeads)
        }
    }
}
