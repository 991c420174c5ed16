import CKernels
import Foundation
import TensorCore
import XCTest

/// Fast kernels against their naive twins (`naiveSgemm`, `naiveBinary`, or a Double loop here) on
/// sizes that cover the SIMD tails (lengths around multiples of 8) and the parallel split
/// (around 2 · `Parallel.minimumElementsPerChunk`, where work goes to several cores).
final class KernelTwinTests: XCTestCase {
    static let threshold = 2 * Parallel.minimumElementsPerChunk
    /// Empty, scalar-only, around one and two SIMD vectors, odd, and on both sides of the split.
    let lengths = [0, 1, 7, 8, 9, 15, 16, 17, 1_001, threshold - 1, threshold, threshold + 13, 3 * threshold + 5]

    func testParallelChunking() {
        let m = Parallel.minimumElementsPerChunk
        XCTAssertEqual(Parallel.chunkCount(for: 0), 1)
        XCTAssertEqual(Parallel.chunkCount(for: 2 * m - 1), 1)
        XCTAssertEqual(Parallel.chunkCount(for: 2 * m), Parallel.coreCount > 1 ? 2 : 1)
        XCTAssertLessThanOrEqual(Parallel.chunkCount(for: 1 << 30), Parallel.coreCount)
        // A reduction's chunks follow from the size alone: a quarter of the minimum each, at most 64.
        XCTAssertEqual(Parallel.reductionChunkCount(for: 2 * m - 1), 1)
        XCTAssertEqual(Parallel.reductionChunkCount(for: 2 * m), 8)
        XCTAssertEqual(Parallel.reductionChunkCount(for: 1 << 30), Parallel.maximumReductionChunks)
        for count in [0, 1, 5, 2 * m - 1, 2 * m, 2 * m + 1, 7 * m + 3] {
            // Every index visited exactly once, chunks in range, each chunk one contiguous range.
            var visits = [Int](repeating: 0, count: count)
            let chunks = Parallel.chunkCount(for: count)
            var seen = [Range<Int>?](repeating: nil, count: chunks)
            let lock = NSLock()
            visits.withUnsafeMutableBufferPointer { v in
                Parallel.forEachChunk(count: count) { chunk, range in
                    for i in range { v[i] += 1 }
                    lock.lock(); seen[chunk] = range; lock.unlock()
                }
            }
            XCTAssertEqual(visits, [Int](repeating: 1, count: count), "count \(count)")
            if count > 0 { XCTAssertEqual(seen.compactMap { $0 }.reduce(0) { $0 + $1.count }, count) }
        }
        var rows = [Int](repeating: 0, count: 3000)
        rows.withUnsafeMutableBufferPointer { r in
            Parallel.forEachRow(rows: 3000, elementsPerRow: 50) { range in for i in range { r[i] += 1 } }
        }
        XCTAssertEqual(rows, [Int](repeating: 1, count: 3000))
    }

    // MARK: Elementwise

    func binaryTwin<Op: BinaryElementwiseOperator>(_ op: Op.Type, _ name: String) {
        for count in lengths {
            let a = Random.floats(count, seed: UInt64(count) + 1, -3, 3)
            let b = Random.floats(count, seed: UInt64(count) + 2, 0.25, 3)
            var fast = [Float](repeating: .nan, count: count), naive = fast
            fast.withUnsafeMutableBufferPointer { Kernels.binary(Op.self, a, b, $0.baseAddress!, count: count) }
            naive.withUnsafeMutableBufferPointer { Kernels.naiveBinary(Op.self, a, b, $0.baseAddress!, count: count) }
            // The same IEEE operation per element, lane by lane: bit-identical.
            XCTAssertEqual(bits(fast), bits(naive), "\(name) count \(count)")
        }
    }

    func testBinaryAgainstNaiveBinary() {
        binaryTwin(AddOperator.self, "add")
        binaryTwin(SubtractOperator.self, "subtract")
        binaryTwin(MultiplyOperator.self, "multiply")
        binaryTwin(DivideOperator.self, "divide")
    }

    func testStridedBinaryRows() {
        let a = Random.floats(80, seed: 3), b = Random.floats(80, seed: 4, 0.5, 2)
        for count in [0, 1, 7, 8, 9, 23] {
            for (sa, sb, so) in [(1, 1, 1), (1, 0, 1), (0, 1, 1), (0, 0, 1), (2, 1, 1), (1, 3, 1), (1, 1, 2), (0, 2, 3)] {
                var out = [Float](repeating: -7, count: 80)
                out.withUnsafeMutableBufferPointer { o in
                    Kernels.binaryRow(DivideOperator.self, a, sa, b, sb, o.baseAddress!, so, count: count)
                }
                for j in 0..<80 {
                    let expected = j % so == 0 && j / so < count ? a[(j / so) * sa] / b[(j / so) * sb] : -7
                    XCTAssertEqual(out[j].bitPattern, expected.bitPattern, "row n=\(count) strides \(sa) \(sb) \(so) at \(j)")
                }
            }
        }
    }

    func testAccumulateAndAffine() {
        for count in lengths {
            let x = Random.floats(count, seed: UInt64(count) + 5), y0 = Random.floats(count, seed: UInt64(count) + 6)
            var y = y0
            y.withUnsafeMutableBufferPointer { Kernels.accumulate(x, into: $0.baseAddress!, count: count, alpha: -1.25) }
            // The naive twin: one scalar Float loop, the same operations in the same order per element.
            var naive = y0
            for i in 0..<count { naive[i] += -1.25 * x[i] }
            XCTAssertEqual(bits(y), bits(naive), "accumulate \(count)")
            var out = [Float](repeating: .nan, count: count)
            out.withUnsafeMutableBufferPointer { Kernels.affine(x, $0.baseAddress!, count: count, alpha: 3.5, beta: -0.5) }
            XCTAssertEqual(bits(out), bits(x.map { 3.5 * $0 + -0.5 }), "affine \(count)")
            assertClose(out, x.map { 3.5 * Double($0) - 0.5 }, tolerance: 1e-5, "affine \(count) against Double")
        }
    }

    func testColumnSumsAndBroadcastRows() {
        // Column counts around SIMD widths; row counts on both sides of the parallel split.
        for (rows, columns) in [(0, 5), (3, 0), (1, 1), (5, 7), (9, 8), (17, 9), (1_000, 64), (4_096, 64), (2_049, 33),
                                (600, 255), (KernelTwinTests.threshold / 16 + 3, 16),
                                // Across the 1024-column blocks of the totals, with a scalar tail.
                                (7, Kernels.columnSumBlock + 13), (130, 2 * Kernels.columnSumBlock + 40)] {
            let x = Random.floats(rows * columns, seed: UInt64(rows * 31 + columns)), y0 = Random.floats(columns, seed: 9)
            var fast = y0, naive = y0
            fast.withUnsafeMutableBufferPointer { Kernels.accumulateColumnSums(x, into: $0.baseAddress!, rows: rows, columns: columns) }
            naive.withUnsafeMutableBufferPointer { Kernels.naiveColumnSums(x, into: $0.baseAddress!, rows: rows, columns: columns) }
            // Each column is summed down the rows in the same order: the same bits.
            XCTAssertEqual(bits(fast), bits(naive), "column sums \(rows)×\(columns)")
            var written = [Float](repeating: .nan, count: columns), writtenNaive = written
            written.withUnsafeMutableBufferPointer {
                Kernels.accumulateColumnSums(x, into: $0.baseAddress!, rows: rows, columns: columns, accumulate: false)
            }
            writtenNaive.withUnsafeMutableBufferPointer {
                Kernels.naiveColumnSums(x, into: $0.baseAddress!, rows: rows, columns: columns, accumulate: false)
            }
            XCTAssertEqual(bits(written), bits(writtenNaive), "column sums written \(rows)×\(columns)")
            let exact = (0..<columns).map { j in Double(y0[j]) + (0..<rows).reduce(0.0) { $0 + Double(x[$1 * columns + j]) } }
            assertClose(fast, exact, tolerance: 1e-4, "column sums \(rows)×\(columns) against Double")
        }
    }

    func testPermuteAgainstItsNaiveTwin() {
        // Head splits and merges, a transpose with a strided last axis, rank 1 and 2, and sizes on both
        // sides of the parallel split (chunks that start mid-way through an axis).
        for (shape, order) in [([7], [0]), ([3, 5], [1, 0]), ([2, 9, 4, 16], [0, 2, 1, 3]), ([2, 4, 9, 16], [0, 2, 1, 3]),
                               ([3, 130, 4, 16], [0, 2, 1, 3]), ([4, 5, 6, 7], [3, 1, 0, 2]), ([64, 33, 20], [1, 0, 2])] {
            let count = shape.reduce(1, *)
            let x = Random.floats(count, seed: UInt64(count)), y0 = Random.floats(count, seed: 5)
            var strides = [Int](repeating: 1, count: shape.count)
            for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
            let outShape = order.map { shape[$0] }, sourceStrides = order.map { strides[$0] }
            for accumulate in [false, true] {
                var fast = y0, naive = y0
                Kernels.permute(x, &fast, shape: outShape, sourceStrides: sourceStrides, accumulate: accumulate)
                Kernels.naivePermute(x, &naive, shape: outShape, sourceStrides: sourceStrides, accumulate: accumulate)
                XCTAssertEqual(bits(fast), bits(naive), "permute \(shape) by \(order) accumulate=\(accumulate)")
            }
        }
    }

    func testSumAndSumOfSquares() {
        for count in lengths + [4_095, 4_096, 4_097, 12_289] {
            let x = Random.floats(count, seed: UInt64(count) + 7, 0, 2)
            let exact = x.reduce(0.0) { $0 + Double($1) }, squares = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(Double(Kernels.sum(x, count: count)), exact, accuracy: 1e-6 * max(1, exact), "sum \(count)")
            XCTAssertEqual(Kernels.sumOfSquares(x, count: count), squares, accuracy: 1e-6 * max(1, squares), "sumOfSquares \(count)")
        }
    }

    // MARK: Row kernels

    func testActivationKernels() {
        for count in [1, 9, 4_095, 8_191, 8_192, 20_003] {
            let x = Random.floats(count, seed: UInt64(count) + 8, -6, 6), dy = Random.floats(count, seed: UInt64(count) + 9)
            // Both kernel sets: AVX2 (where this CPU has it) and the portable one, each against the reference.
            for (activation, kernels) in Activation.allCases.flatMap({ a in elementwiseKernels.map { (a, $0) } }) {
                let f = Reference.activation(activation)
                var y = [Float](repeating: .nan, count: count), dx = [Float](repeating: 0.5, count: count)
                y.withUnsafeMutableBufferPointer { Kernels.activationForward(activation, x, $0.baseAddress!, count: count, kernels: kernels) }
                dx.withUnsafeMutableBufferPointer {
                    Kernels.activationBackward(activation, dy, x, $0.baseAddress!, count: count, kernels: kernels)
                }
                assertClose(y, x.map { f(Double($0)) }, tolerance: 1e-5, "\(activation) \(kernels) forward \(count)")
                let expected = (0..<count).map { 0.5 + Double(dy[$0]) * Reference.derivative(f, at: Double(x[$0])) }
                assertClose(dx, expected, tolerance: 1e-4, "\(activation) \(kernels) backward \(count)")
            }
        }
    }

    func testSoftmaxKernels() {
        for (outer, extent, inner) in [(1, 1, 1), (3, 9, 1), (2, 5, 7), (700, 96, 1), (4, 33, 300)] {
            let count = outer * extent * inner
            let x = DoubleTensor(shape: [outer, extent, inner], values: Random.floats(count, seed: UInt64(count), -5, 5).map(Double.init))
            let xs = x.values.map(Float.init)
            for logarithmic in [false, true] {
                var y = [Float](repeating: .nan, count: count)
                y.withUnsafeMutableBufferPointer {
                    Kernels.softmaxForward(xs, $0.baseAddress!, outer: outer, extent: extent, inner: inner, logarithmic: logarithmic)
                }
                let expected = logarithmic ? Reference.logSoftmax(x, axis: 1) : Reference.softmax(x, axis: 1)
                assertClose(y, expected.values, tolerance: 1e-5, "softmax \(outer)×\(extent)×\(inner) log=\(logarithmic)")
            }
        }
    }

    /// The causal softmax's kernels against their naive twins (scalar loops over whole rows with the
    /// masked keys at −∞): visible keys within rounding (the backward's dot product runs in eight
    /// lanes), masked keys exactly 0, and with `accumulate` the masked gradients left untouched.
    func testCausalSoftmaxKernels() {
        for (blocks, tq, tk) in [(1, 1, 1), (3, 5, 5), (2, 7, 12), (5, 24, 24), (2, 9, 40), (16, 64, 64), (2, 1, 300)] {
            let count = blocks * tq * tk
            let x = Random.floats(count, seed: UInt64(count), -6, 6), g = Random.floats(count, seed: UInt64(count + 1))
            var y = [Float](repeating: .nan, count: count), yNaive = y
            y.withUnsafeMutableBufferPointer { Kernels.causalSoftmaxForward(x, $0.baseAddress!, blocks: blocks, queries: tq, keys: tk) }
            yNaive.withUnsafeMutableBufferPointer {
                Kernels.naiveCausalSoftmaxForward(x, $0.baseAddress!, blocks: blocks, queries: tq, keys: tk)
            }
            let masked = (0..<count).map { $0 % tk > $0 / tk % tq + tk - tq }
            for i in 0..<count {
                if masked[i] { XCTAssertEqual(y[i].bitPattern, Float(0).bitPattern, "forward \(blocks)×\(tq)×\(tk) masked \(i)") }
                XCTAssertEqual(y[i], yNaive[i], accuracy: 1e-6, "forward \(blocks)×\(tq)×\(tk) at \(i)")
            }
            var dx = [Float](repeating: .nan, count: count), dxNaive = dx
            dx.withUnsafeMutableBufferPointer {
                Kernels.causalSoftmaxBackward(g, y, $0.baseAddress!, blocks: blocks, queries: tq, keys: tk, accumulate: false)
            }
            dxNaive.withUnsafeMutableBufferPointer {
                Kernels.naiveCausalSoftmaxBackward(g, yNaive, $0.baseAddress!, blocks: blocks, queries: tq, keys: tk)
            }
            // g − Σg·y cancels: both against the Double value from the same y (the twin's own error is as large).
            let exact = (0..<count).map { i -> Double in
                let line = i / tk
                let dot = (0..<tk).reduce(0.0) { $0 + Double(g[line * tk + $1]) * Double(y[line * tk + $1]) }
                return Double(y[i]) * (Double(g[i]) - dot)
            }
            assertClose(dx, exact, tolerance: 1e-4, "backward \(blocks)×\(tq)×\(tk)")
            assertClose(dxNaive, exact, tolerance: 1e-4, "naive backward \(blocks)×\(tq)×\(tk)")
            var sum = Random.floats(count, seed: 7)
            let before = sum
            sum.withUnsafeMutableBufferPointer {
                Kernels.causalSoftmaxBackward(g, y, $0.baseAddress!, blocks: blocks, queries: tq, keys: tk, accumulate: true)
            }
            for i in 0..<count {
                if masked[i] { XCTAssertEqual(sum[i].bitPattern, before[i].bitPattern, "accumulate \(blocks)×\(tq)×\(tk) masked \(i)") }
                XCTAssertEqual(sum[i], before[i] + dxNaive[i], accuracy: 1e-5, "accumulate \(blocks)×\(tq)×\(tk) at \(i)")
            }
        }
    }

    func testNormalizationKernelsWithChunkedParameterGradients() {
        // rows · n above the split: dγ and dβ are summed per chunk, then over chunks.
        for (rows, n) in [(1, 1), (3, 8), (5, 17), (700, 96), (40, 1_000)] {
            let x = Random.floats(rows * n, seed: UInt64(rows * n), -2, 2), dy = Random.floats(rows * n, seed: UInt64(rows + n))
            let gamma = Random.floats(n, seed: 3, 0.5, 1.5), beta = Random.floats(n, seed: 4)
            var y = [Float](repeating: .nan, count: rows * n), mean = [Float](repeating: 0, count: rows), rstd = mean
            Kernels.layerNormForward(x, gamma: gamma, beta: beta, &y, mean: &mean, inverseStd: &rstd, rows: rows, n: n, epsilon: 1e-5)
            let xd = DoubleTensor(shape: [rows, n], values: x.map(Double.init))
            let gd = DoubleTensor(shape: [n], values: gamma.map(Double.init)), bd = DoubleTensor(shape: [n], values: beta.map(Double.init))
            assertClose(y, Reference.layerNorm(xd, gamma: gd, beta: bd).values, tolerance: 1e-4, "layerNorm forward \(rows)×\(n)")
            var dGamma = [Float](repeating: 0, count: n), dBeta = dGamma
            Kernels.layerNormBackward(dy, x, gamma: gamma, mean: mean, inverseStd: rstd, rows: rows, n: n, dx: nil,
                                      dGamma: &dGamma, dBeta: &dBeta)
            var expectedGamma = [Double](repeating: 0, count: n), expectedBeta = expectedGamma
            let normalized = Reference.layerNorm(xd, gamma: DoubleTensor(shape: [n], values: [Double](repeating: 1, count: n)), beta: nil)
            for r in 0..<rows {
                for j in 0..<n {
                    expectedGamma[j] += Double(dy[r * n + j]) * normalized.values[r * n + j]
                    expectedBeta[j] += Double(dy[r * n + j])
                }
            }
            assertClose(dGamma, expectedGamma, tolerance: 1e-4, "layerNorm dγ \(rows)×\(n)")
            assertClose(dBeta, expectedBeta, tolerance: 1e-4, "layerNorm dβ \(rows)×\(n)")
            var inverseRMS = [Float](repeating: 0, count: rows)
            Kernels.rmsNormForward(x, gamma: gamma, &y, inverseRMS: &inverseRMS, rows: rows, n: n, epsilon: 1e-6)
            assertClose(y, Reference.rmsNorm(xd, gamma: gd).values, tolerance: 1e-4, "rmsNorm forward \(rows)×\(n)")
        }
    }

    /// The SIMD LayerNorm and RMSNorm kernels against their scalar twins: rows of lengths around
    /// multiples of 8 (SIMD body and tail) and row counts on both sides of the parallel split.
    func testNormalizationKernelsAgainstTheirNaiveTwins() {
        for (rows, n) in [(1, 1), (2, 7), (3, 8), (4, 9), (5, 17), (33, 64), (700, 96), (40, 1_000), (300, 131)] {
            // Different summation orders (eight partial sums against one): equal to float rounding, relative to
            // the values' scale (a mean near zero is compared against the largest mean).
            let x = Random.floats(rows * n, seed: UInt64(rows * n) + 1, -2, 2), dy = Random.floats(rows * n, seed: UInt64(rows + n) + 2)
            let gamma = Random.floats(n, seed: 5, 0.5, 1.5), beta = Random.floats(n, seed: 6)
            let dx0 = Random.floats(rows * n, seed: 7), dGamma0 = Random.floats(n, seed: 8), dBeta0 = Random.floats(n, seed: 9)
            for biased in [true, false] {
                var y = [Float](repeating: .nan, count: rows * n), mean = [Float](repeating: .nan, count: rows), rstd = mean
                var yN = y, meanN = mean, rstdN = mean
                beta.withUnsafeBufferPointer { b in
                    let b = biased ? b.baseAddress : nil
                    Kernels.layerNormForward(x, gamma: gamma, beta: b, &y, mean: &mean, inverseStd: &rstd, rows: rows, n: n, epsilon: 1e-5)
                    Kernels.naiveLayerNormForward(x, gamma: gamma, beta: b, &yN, mean: &meanN, inverseStd: &rstdN, rows: rows, n: n,
                                                  epsilon: 1e-5)
                }
                let name = "layerNorm \(rows)×\(n) biased=\(biased)"
                assertClose(y, yN.map(Double.init), tolerance: 1e-4, "\(name) forward")
                assertClose(mean, meanN.map(Double.init), tolerance: 1e-5, floorFraction: 1, "\(name) mean (against the largest)")
                assertClose(rstd, rstdN.map(Double.init), tolerance: 1e-5, "\(name) 1/σ")
            }
            for (centered, accumulateDx) in [(true, true), (false, true), (true, false), (false, false)] {
                var mean = [Float](repeating: 0, count: rows), rstd = mean
                var y = [Float](repeating: 0, count: rows * n)
                if centered {
                    Kernels.naiveLayerNormForward(x, gamma: gamma, beta: nil, &y, mean: &mean, inverseStd: &rstd, rows: rows, n: n,
                                                  epsilon: 1e-5)
                } else {
                    Kernels.naiveRMSNormForward(x, gamma: gamma, &y, inverseRMS: &rstd, rows: rows, n: n, epsilon: 1e-6)
                }
                // Accumulating into values already there, as gradients do.
                // dx written (accumulateDx false) into NaN, or added to values already there.
                var (dx, dGamma, dBeta) = (accumulateDx ? dx0 : [Float](repeating: .nan, count: dx0.count), dGamma0, dBeta0)
                var (dxN, dGammaN, dBetaN) = (dx, dGamma0, dBeta0)
                Kernels.layerNormBackward(dy, x, gamma: gamma, mean: mean, inverseStd: rstd, rows: rows, n: n, dx: &dx,
                                          dGamma: &dGamma, dBeta: &dBeta, centered: centered, accumulateDx: accumulateDx)
                Kernels.naiveLayerNormBackward(dy, x, gamma: gamma, mean: mean, inverseStd: rstd, rows: rows, n: n, dx: &dxN,
                                               dGamma: &dGammaN, dBeta: &dBetaN, centered: centered, accumulateDx: accumulateDx)
                let name = "\(centered ? "layerNorm" : "rmsNorm") backward \(rows)×\(n) accumulateDx=\(accumulateDx)"
                assertClose(dx, dxN.map(Double.init), tolerance: 1e-4, "\(name) dx")
                assertClose(dGamma, dGammaN.map(Double.init), tolerance: 1e-4, "\(name) dγ")
                assertClose(dBeta, dBetaN.map(Double.init), tolerance: 1e-4, "\(name) dβ")
            }
            var r = [Float](repeating: .nan, count: rows), rN = r
            var y = [Float](repeating: .nan, count: rows * n), yN = y
            Kernels.rmsNormForward(x, gamma: gamma, &y, inverseRMS: &r, rows: rows, n: n, epsilon: 1e-6)
            Kernels.naiveRMSNormForward(x, gamma: gamma, &yN, inverseRMS: &rN, rows: rows, n: n, epsilon: 1e-6)
            assertClose(y, yN.map(Double.init), tolerance: 1e-4, "rmsNorm forward \(rows)×\(n)")
            assertClose(r, rN.map(Double.init), tolerance: 1e-5, "rmsNorm 1/rms \(rows)×\(n)")
        }
    }

    func testL2NormalizeAndRotationKernels() {
        for (outer, extent, inner) in [(1, 1, 1), (2, 9, 3), (64, 40, 13)] {
            let count = outer * extent * inner
            let x = Random.floats(count, seed: UInt64(count) + 10, -2, 2)
            var y = [Float](repeating: .nan, count: count), norms = [Float](repeating: 0, count: outer * inner)
            Kernels.l2NormalizeForward(x, &y, norms: &norms, outer: outer, extent: extent, inner: inner, epsilon: 1e-12)
            let expected = Reference.l2Normalize(DoubleTensor(shape: [outer, extent, inner], values: x.map(Double.init)), axis: 1)
            assertClose(y, expected.values, tolerance: 1e-5, "l2Normalize \(outer)×\(extent)×\(inner)")
        }
        let (b, h, t, d, rotary) = (2, 4, 130, 40, 32)
        let x = Random.floats(b * h * t * d, seed: 11)
        let cosines = Random.floats(b * t * rotary / 2, seed: 12), sines = Random.floats(b * t * rotary / 2, seed: 13)
        for pairing in RotaryPairing.allCases {
            var y = [Float](repeating: .nan, count: x.count)
            Kernels.rotatePairs(x, &y, cos: cosines, sin: sines, batch: b, heads: h, length: t, width: d, rotary: rotary,
                                tableBatch: b, pairing: pairing, transposed: false)
            let expected = Reference.rotatePairs(DoubleTensor(shape: [b, h, t, d], values: x.map(Double.init)),
                                                 cos: cosines.map(Double.init), sin: sines.map(Double.init), rotary: rotary, pairing: pairing)
            assertClose(y, expected.values, tolerance: 1e-5, "rotatePairs \(pairing)")
        }
        // Against the scalar twin: rotary widths below, at and around multiples of 16 (eight pairs at a
        // time, then the tail), shared and per-batch tables, forward and backward, written and added.
        for (rotary, width, tableBatch) in [(2, 2, 1), (8, 8, 2), (16, 16, 1), (16, 20, 2), (18, 18, 1), (32, 40, 2), (34, 64, 1),
                                            (64, 64, 2)] {
            let (b, h, t) = (2, 3, 700)
            let x = Random.floats(b * h * t * width, seed: UInt64(rotary * width)), y0 = Random.floats(x.count, seed: 3)
            let c = Random.floats(tableBatch * t * rotary / 2, seed: 14), s = Random.floats(c.count, seed: 15)
            for pairing in RotaryPairing.allCases {
                for (transposed, accumulate) in [(false, false), (true, false), (true, true)] {
                    var fast = y0, naive = y0
                    Kernels.rotatePairs(x, &fast, cos: c, sin: s, batch: b, heads: h, length: t, width: width, rotary: rotary,
                                        tableBatch: tableBatch, pairing: pairing, transposed: transposed, accumulate: accumulate)
                    Kernels.naiveRotatePairs(x, &naive, cos: c, sin: s, batch: b, heads: h, length: t, width: width, rotary: rotary,
                                             tableBatch: tableBatch, pairing: pairing, transposed: transposed, accumulate: accumulate)
                    assertClose(fast, naive.map(Double.init), tolerance: 1e-6,
                                "rotatePairs R=\(rotary) D=\(width) \(pairing) transposed=\(transposed) accumulate=\(accumulate)")
                }
            }
        }
    }
}

import Foundation

/// The element-wise kernel sets this CPU can run: the portable one always, AVX2 where it has it.
let elementwiseKernels: [Kernels.ElementwiseKernels] = ck_has_avx2_fma() != 0 ? [.avx2FMA, .portable] : [.portable]
