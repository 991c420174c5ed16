/// Double-precision reference implementations, written for clarity (multi-index loops, no shared
/// code with TensorCore), against which the Float32 kernels and their gradients are checked.
/// This file: broadcasting arithmetic, matrix products and shape operations.
enum Reference {
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            result[axis] = running
            running *= shape[axis]
        }
        return result
    }

    static func flatten(_ index: [Int], _ shape: [Int]) -> Int {
        var flat = 0
        for axis in shape.indices { flat = flat * shape[axis] + index[axis] }
        return flat
    }

    /// Calls `body` with every multi-index of `shape` in row-major order (an odometer: one allocation).
    static func forEachIndex(_ shape: [Int], _ body: (_ index: [Int], _ flat: Int) -> Void) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<count {
            body(index, flat)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    // MARK: Elementwise

    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        return zip(pa, pb).map { x, y in
            precondition(x == y || x == 1 || y == 1, "reference: \(a) and \(b) do not broadcast")
            return x == 1 ? y : x
        }
    }

    /// The value of `t` at the output multi-index `index` of a broadcast result.
    static func broadcastValue(_ t: DoubleTensor, at index: [Int]) -> Double {
        let offset = index.count - t.shape.count
        var flat = 0
        for (axis, extent) in t.shape.enumerated() {
            flat = flat * extent + (extent == 1 ? 0 : index[axis + offset])
        }
        return t.values[flat]
    }

    static func binary(_ a: DoubleTensor, _ b: DoubleTensor, _ f: (Double, Double) -> Double) -> DoubleTensor {
        let shape = broadcastShape(a.shape, b.shape)
        var values = [Double](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(shape) { index, flat in values[flat] = f(broadcastValue(a, at: index), broadcastValue(b, at: index)) }
        return DoubleTensor(shape: shape, values: values)
    }

    static func map(_ x: DoubleTensor, _ f: (Double) -> Double) -> DoubleTensor {
        DoubleTensor(shape: x.shape, values: x.values.map(f))
    }

    // MARK: Matrix products

    /// op(a)·op(b) over the last two axes, with `b` either rank 2 (shared) or batched like `a`.
    static func matmul(_ a: DoubleTensor, _ b: DoubleTensor, transposeA: Bool, transposeB: Bool) -> DoubleTensor {
        let (ra, ca) = (a.shape[a.shape.count - 2], a.shape[a.shape.count - 1])
        let (rb, cb) = (b.shape[b.shape.count - 2], b.shape[b.shape.count - 1])
        let m = transposeA ? ca : ra, k = transposeA ? ra : ca
        let n = transposeB ? rb : cb
        precondition(k == (transposeB ? cb : rb))
        let leading = Array(a.shape.dropLast(2))
        let batch = leading.reduce(1, *)
        let shared = b.shape.count == 2
        var out = [Double](repeating: 0, count: batch * m * n)
        for s in 0..<batch {
            let aBase = s * ra * ca, bBase = shared ? 0 : s * rb * cb
            for i in 0..<m {
                for j in 0..<n {
                    var total = 0.0
                    for p in 0..<k {
                        let x = transposeA ? a.values[aBase + p * ca + i] : a.values[aBase + i * ca + p]
                        let y = transposeB ? b.values[bBase + j * cb + p] : b.values[bBase + p * cb + j]
                        total += x * y
                    }
                    out[(s * m + i) * n + j] = total
                }
            }
        }
        return DoubleTensor(shape: leading + [m, n], values: out)
    }

    // MARK: Shape operations

    static func permute(_ x: DoubleTensor, _ order: [Int]) -> DoubleTensor {
        let shape = order.map { x.shape[$0] }
        var values = [Double](repeating: 0, count: x.count)
        var inIndex = [Int](repeating: 0, count: order.count)
        forEachIndex(shape) { outIndex, flat in
            for (i, axis) in order.enumerated() { inIndex[axis] = outIndex[i] }
            values[flat] = x.values[flatten(inIndex, x.shape)]
        }
        return DoubleTensor(shape: shape, values: values)
    }

    static func transpose(_ x: DoubleTensor, _ a0: Int, _ a1: Int) -> DoubleTensor {
        let rank = x.shape.count
        var order = Array(0..<rank)
        order.swapAt((a0 + rank) % rank, (a1 + rank) % rank)
        return permute(x, order)
    }

    static func slice(_ x: DoubleTensor, axis: Int, _ range: Range<Int>) -> DoubleTensor {
        let resolved = axis < 0 ? axis + x.shape.count : axis
        var shape = x.shape
        shape[resolved] = range.count
        var values = [Double](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(shape) { index, flat in
            var index = index
            index[resolved] += range.lowerBound
            values[flat] = x.values[flatten(index, x.shape)]
        }
        return DoubleTensor(shape: shape, values: values)
    }

    static func concatenate(_ xs: [DoubleTensor], axis: Int) -> DoubleTensor {
        let resolved = axis < 0 ? axis + xs[0].shape.count : axis
        var shape = xs[0].shape
        shape[resolved] = xs.reduce(0) { $0 + $1.shape[resolved] }
        var values = [Double](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(shape) { index, flat in
            var index = index
            var part = 0
            while index[resolved] >= xs[part].shape[resolved] {
                index[resolved] -= xs[part].shape[resolved]
                part += 1
            }
            values[flat] = xs[part].values[flatten(index, xs[part].shape)]
        }
        return DoubleTensor(shape: shape, values: values)
    }

    /// Rows of `table` [V, C] at `indices`, shaped `indexShape + [C]`.
    static func gatherRows(_ table: DoubleTensor, _ indices: [Int], indexShape: [Int]) -> DoubleTensor {
        let width = table.shape[1]
        var values: [Double] = []
        for id in indices { values += table.values[(id * width)..<((id + 1) * width)] }
        return DoubleTensor(shape: indexShape + [width], values: values)
    }

    /// out[l, i, j] = x[l, i, indices[(l / group) · rows + i][j]] over the leading axes l.
    static func gatheringLastAxis(_ x: DoubleTensor, _ indices: [Int], columns: Int, indexBatches: Int) -> DoubleTensor {
        let rank = x.shape.count
        let rows = x.shape[rank - 2], width = x.shape[rank - 1]
        let lead = x.count / (rows * width)
        let group = lead / indexBatches
        var shape = x.shape
        shape[rank - 1] = columns
        var values = [Double](repeating: 0, count: lead * rows * columns)
        for l in 0..<lead {
            for i in 0..<rows {
                for j in 0..<columns {
                    let column = indices[((l / group) * rows + i) * columns + j]
                    values[(l * rows + i) * columns + j] = x.values[(l * rows + i) * width + column]
                }
            }
        }
        return DoubleTensor(shape: shape, values: values)
    }

    // MARK: Reductions

    static func sum(_ x: DoubleTensor) -> DoubleTensor {
        DoubleTensor(shape: [], values: [x.values.reduce(0, +)])
    }

    static func sum(_ x: DoubleTensor, axis: Int, keepingAxis: Bool) -> DoubleTensor {
        let resolved = axis < 0 ? axis + x.shape.count : axis
        var kept = x.shape
        kept[resolved] = 1
        var values = [Double](repeating: 0, count: kept.reduce(1, *))
        forEachIndex(x.shape) { index, flat in
            var index = index
            index[resolved] = 0
            values[flatten(index, kept)] += x.values[flat]
        }
        var shape = x.shape
        if keepingAxis { shape[resolved] = 1 } else { shape.remove(at: resolved) }
        return DoubleTensor(shape: shape, values: values)
    }
}
