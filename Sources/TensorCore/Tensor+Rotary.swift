/// Rotation of value pairs by per-position angles: the kernel behind rotary position encodings
/// (Su et al. 2021, RoFormer). The scheme-level logic (frequencies, scaling) lives in
/// PositionalEncodings; this op only rotates, forward and backward.
public enum RotaryPairing: String, Codable, CaseIterable, Sendable {
    /// Pairs (2i, 2i+1): RoFormer, GPT-J and the seed document's code.
    case interleaved
    /// Pairs (i, i + R/2): GPT-NeoX and Llama (`rotate_half`).
    case halfSplit

    @inline(__always) func indices(_ i: Int, half: Int) -> (Int, Int) {
        self == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
    }
}

extension Kernels {
    /// y = R(θ)·x on the first `rotary` values of each row of length `width`: for pair i,
    /// (x₁, x₂) ↦ (x₁·c − x₂·s, x₂·c + x₁·s) with c = cos[row's table][i], s = sin[…][i]; the other
    /// values pass through. `transposed` applies Rᵀ (the backward, which also accumulates into y
    /// when `accumulate` is true). Rows are [B, H, T] (or [B, T, H], `layout`); the table row of
    /// (b, h, t) is (b mod tableBatch)·T + t.
    /// Eight pairs at a time (SIMD): half-split pairs are two runs of the row, interleaved pairs the
    /// even and odd lanes of sixteen values. `naiveRotatePairs` is its scalar twin.
    public static func rotatePairs(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>,
                                   sin: UnsafePointer<Float>, batch: Int, heads: Int, length: Int, width: Int, rotary: Int,
                                   tableBatch: Int, pairing: RotaryPairing, transposed: Bool, accumulate: Bool = true,
                                   layout: HeadLayout = .headsThenTime) {
        let half = rotary / 2
        let sign: Float = transposed ? -1 : 1
        let adds = transposed && accumulate  // otherwise written: the backward is the forward's loop with −sin
        Parallel.forEachRow(rows: batch * heads * length, elementsPerRow: width) { range in
            guard let first = range.first else { return }
            var walker = HeadRowWalker(row: first, heads: heads, length: length, layout: layout)
            for row in range {
                defer { walker.advance() }
                let (b, t) = (walker.batch, walker.position)
                let table = ((tableBatch == 1 ? 0 : b) &* length &+ t) &* half
                let xr = x + row &* width, yr = y + row &* width
                let cr = cos + table, sr = sin + table
                var i = 0
                while i + 8 <= half {
                    let c = loadVector(cr + i), s = loadVector(sr + i) * sign
                    let x1: SIMD8<Float>, x2: SIMD8<Float>
                    if pairing == .halfSplit {
                        (x1, x2) = (loadVector(xr + i), loadVector(xr + half + i))
                    } else {
                        let low = loadVector(xr + 2 &* i), high = loadVector(xr + 2 &* i + 8)
                        x1 = SIMD8(lowHalf: low.evenHalf, highHalf: high.evenHalf)
                        x2 = SIMD8(lowHalf: low.oddHalf, highHalf: high.oddHalf)
                    }
                    var y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s
                    if pairing == .halfSplit {
                        if adds { y1 += loadVector(yr + i); y2 += loadVector(yr + half + i) }
                        storeVector(y1, yr + i); storeVector(y2, yr + half + i)
                    } else {
                        var low = SIMD8<Float>(), high = SIMD8<Float>()
                        low.evenHalf = y1.lowHalf; low.oddHalf = y2.lowHalf
                        high.evenHalf = y1.highHalf; high.oddHalf = y2.highHalf
                        if adds { low += loadVector(yr + 2 &* i); high += loadVector(yr + 2 &* i + 8) }
                        storeVector(low, yr + 2 &* i); storeVector(high, yr + 2 &* i + 8)
                    }
                    i += 8
                }
                while i < half {
                    let (p, q) = pairing.indices(i, half: half)
                    let c = cr[i], s = sign * sr[i]
                    let x1 = xr[p], x2 = xr[q]
                    if adds {
                        yr[p] += x1 * c - x2 * s
                        yr[q] += x2 * c + x1 * s
                    } else {
                        yr[p] = x1 * c - x2 * s
                        yr[q] = x2 * c + x1 * s
                    }
                    i += 1
                }
                if rotary < width {
                    if adds {
                        for j in rotary..<width { yr[j] += xr[j] }
                    } else {
                        (yr + rotary).update(from: xr + rotary, count: width - rotary)
                    }
                }
            }
        }
    }

    /// Scalar twin of `rotatePairs`: one pair at a time, no SIMD, no threads.
    public static func naiveRotatePairs(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>,
                                        sin: UnsafePointer<Float>, batch: Int, heads: Int, length: Int, width: Int, rotary: Int,
                                        tableBatch: Int, pairing: RotaryPairing, transposed: Bool, accumulate: Bool = true,
                                        layout: HeadLayout = .headsThenTime) {
        let half = rotary / 2
        let sign: Float = transposed ? -1 : 1
        for row in 0..<(batch * heads * length) {
            let b = row / (heads * length), t = layout == .headsThenTime ? row % length : (row / heads) % length
            let table = ((tableBatch == 1 ? 0 : b) * length + t) * half
            let xr = x + row * width, yr = y + row * width
            let adds = transposed && accumulate
            for i in 0..<half {
                let (p, q) = pairing.indices(i, half: half)
                let c = cos[table + i], s = sign * sin[table + i]
                let y1 = xr[p] * c - xr[q] * s, y2 = xr[q] * c + xr[p] * s
                yr[p] = adds ? yr[p] + y1 : y1
                yr[q] = adds ? yr[q] + y2 : y2
            }
            for j in rotary..<max(rotary, width) { yr[j] = adds ? yr[j] + xr[j] : xr[j] }
        }
    }
}

extension Tensor {
    /// Rotates pairs among the first `rotaryDimension` values of the last axis by the angles whose
    /// cosines and sines are given; the remaining values pass through unchanged.
    ///
    /// Shapes: self [B, H, T, D] (or [B, T, H, D], `layout`); `cos` and `sin` are [B, T, R/2] (one
    /// table per batch row) or [1, T, R/2] (shared), row-major, with R = `rotaryDimension` (even, ≤ D).
    /// They may carry an attention factor (YaRN scales both by it); the backward applies the transpose.
    public func rotatedPairs(cos: [Float], sin: [Float], rotaryDimension: Int, pairing: RotaryPairing,
                             layout: HeadLayout = .headsThenTime) throws -> Tensor {
        let name = "rotatedPairs"
        guard rank == 4 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape], detail: "expects \(layout.legend)")
        }
        let (b, h, t, d) = (shape[0], shape[3 - layout.timeAxis], shape[layout.timeAxis], shape[3])
        guard rotaryDimension >= 0, rotaryDimension <= d, rotaryDimension % 2 == 0 else {
            throw TensorError.invalidArgument(operation: name, parameter: "rotaryDimension", value: "\(rotaryDimension)",
                                              allowed: "an even number from 0 to the head dimension \(d)")
        }
        let half = rotaryDimension / 2
        let perBatch = t * half
        guard cos.count == sin.count, cos.count == perBatch || cos.count == b * perBatch else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, [cos.count], [sin.count]],
                                            detail: "cos and sin need [1, T, R/2] = \(perBatch) or [B, T, R/2] = \(b * perBatch) values")
        }
        let tableBatch = perBatch == 0 ? 1 : cos.count / perBatch
        let out = TensorStorage(count: count, zeroed: false)
        let cosStorage = cos.withUnsafeBufferPointer { TensorStorage(copying: $0) }
        let sinStorage = sin.withUnsafeBufferPointer { TensorStorage(copying: $0) }
        Kernels.rotatePairs(storage.pointer, out.pointer, cos: cosStorage.pointer, sin: sinStorage.pointer, batch: b, heads: h,
                            length: t, width: d, rotary: rotaryDimension, tableBatch: tableBatch, pairing: pairing,
                            transposed: false, layout: layout)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: [x]) { g in
            let (dx, add) = x.gradientDestination()
            Kernels.rotatePairs(g, dx, cos: cosStorage.pointer, sin: sinStorage.pointer, batch: b, heads: h, length: t,
                                width: d, rotary: rotaryDimension, tableBatch: tableBatch, pairing: pairing, transposed: true,
                                accumulate: add, layout: layout)
        }
    }

    /// Picks, for each row i of the last two axes, the values at column indices[i][j]:
    /// out[..., i, j] = self[..., i, indices[i·columns + j]]. Relative-position schemes use it to turn
    /// a per-offset score q_i·a_r ([..., Tq, R]) into a per-key score ([..., Tq, Tk]).
    /// Shapes: self [..., Tq, R], indices [Tq, Tk] (values in 0..<R), result [..., Tq, Tk]. With
    /// `indexBatches` = N > 1, indices are [N, Tq, Tk] and the leading axes of self split into N
    /// equal groups (e.g. [B, H, Tq, R] with N = B: one index table per batch row).
    public func gatheringLastAxis(_ indices: [Int], columns: Int, indexBatches: Int = 1) throws -> Tensor {
        let name = "gatheringLastAxis"
        guard rank >= 2 else { throw TensorError.shapeMismatch(operation: name, shapes: [shape], detail: "expects [..., Tq, R]") }
        let rows = shape[rank - 2], width = shape[rank - 1]
        let lead = count / max(1, rows * width)
        guard indexBatches > 0, lead % indexBatches == 0, indices.count == indexBatches * rows * columns else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, [indices.count]],
                                            detail: "indices must be [N, Tq, Tk] = [\(indexBatches), \(rows), \(columns)] with N dividing the leading extent \(lead)")
        }
        let group = lead / indexBatches
        if let bad = indices.first(where: { $0 < 0 || $0 >= width }) {
            throw TensorError.indexOutOfRange(operation: name, index: bad, validRange: 0..<width)
        }
        var outShape = shape
        outShape[rank - 1] = columns
        let out = TensorStorage(count: lead * rows * columns, zeroed: false)
        let src = storage.pointer
        indices.withUnsafeBufferPointer { idx in
            Parallel.forEachRow(rows: lead * rows, elementsPerRow: columns) { range in
                for r in range {
                    let i = r % rows
                    let from = src + r * width, to = out.pointer + r * columns, ir = idx.baseAddress! + ((r / rows / group) * rows + i) * columns
                    for j in 0..<columns { to[j] = from[ir[j]] }
                }
            }
        }
        let input = self
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: [input]) { g in
            let grad = input.gradientPointer()
            indices.withUnsafeBufferPointer { idx in
                // Each row scatters into its own row of the input: rows run in parallel safely.
                Parallel.forEachRow(rows: lead * rows, elementsPerRow: columns) { range in
                    for r in range {
                        let i = r % rows
                        let to = grad + r * width, from = g + r * columns, ir = idx.baseAddress! + ((r / rows / group) * rows + i) * columns
                        for j in 0..<columns { to[ir[j]] += from[j] }
                    }
                }
            }
        }
    }
}
