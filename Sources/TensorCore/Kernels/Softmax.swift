import Foundation

/// Softmax and log-softmax along one axis, split as outer × extent × inner (inner = 1 is the
/// contiguous last-axis case). The maximum is subtracted first so exp never overflows.
extension Kernels {
    /// Index arithmetic wraps (&*, &+): every index is below the tensor's element count.
    public static func softmaxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                      outer: Int, extent: Int, inner: Int, logarithmic: Bool) {
        Parallel.forEachRow(rows: outer * inner, elementsPerRow: extent) { range in
            for line in range {
                let base = (line / inner) &* extent &* inner &+ line % inner
                let xs = x + base, ys = y + base
                var maximum = -Float.infinity
                for j in 0..<extent { maximum = max(maximum, xs[j &* inner]) }
                if maximum == -.infinity { maximum = 0 } // a fully masked line: keep it finite
                var sum: Float = 0
                if inner == 1 {
                    // Contiguous rows: the SIMD exponential, in place in y.
                    ys.update(from: xs, count: extent)
                    sum = exponentiate(ys, count: extent, subtracting: maximum)
                } else {
                    for j in 0..<extent {
                        let e = exp(xs[j &* inner] - maximum)
                        sum += e
                        if !logarithmic { ys[j &* inner] = e }
                    }
                }
                if logarithmic {
                    let logSum = maximum + log(sum)
                    if inner == 1 { for j in 0..<extent { ys[j] = xs[j] - logSum } }
                    else { for j in 0..<extent { ys[j &* inner] = xs[j &* inner] - logSum } }
                } else {
                    let scale = 1 / sum
                    if inner == 1 { for j in 0..<extent { ys[j] *= scale } }
                    else { for j in 0..<extent { ys[j &* inner] *= scale } }
                }
            }
        }
    }

    /// softmax: dx += y·(g − Σg·y); log-softmax: dx += g − softmax·Σg, with softmax = exp(y).
    /// With `accumulate` false, dx = … (its values are not read).
    public static func softmaxBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                       outer: Int, extent: Int, inner: Int, logarithmic: Bool, accumulate: Bool = true) {
        Parallel.forEachRow(rows: outer * inner, elementsPerRow: extent) { range in
            for line in range {
                let base = (line / inner) &* extent &* inner &+ line % inner
                let gs = g + base, ys = y + base, dxs = dx + base
                var dot: Float = 0
                if !accumulate, logarithmic || inner != 1 { for j in 0..<extent { dxs[j &* inner] = 0 } }
                if logarithmic {
                    for j in 0..<extent { dot += gs[j &* inner] }
                    for j in 0..<extent { let i = j &* inner; dxs[i] += gs[i] - exp(ys[i]) * dot }
                } else if inner == 1 {
                    for j in 0..<extent { dot += gs[j] * ys[j] }
                    if accumulate {
                        for j in 0..<extent { dxs[j] += ys[j] * (gs[j] - dot) }
                    } else {
                        for j in 0..<extent { dxs[j] = ys[j] * (gs[j] - dot) }
                    }
                } else {
                    for j in 0..<extent { dot += gs[j &* inner] * ys[j &* inner] }
                    for j in 0..<extent { let i = j &* inner; dxs[i] += ys[i] * (gs[i] - dot) }
                }
            }
        }
    }
}

extension Tensor {
    /// Softmax along `axis`. Shapes: any; e.g. attention scores [B, H, T, T] along the key axis.
    public func softmax(axis: Int = -1) throws -> Tensor { try softmaxOperation(axis: axis, logarithmic: false) }

    /// log(softmax) along `axis`, computed stably as x − logΣexp(x).
    public func logSoftmax(axis: Int = -1) throws -> Tensor { try softmaxOperation(axis: axis, logarithmic: true) }

    private func softmaxOperation(axis: Int, logarithmic: Bool) throws -> Tensor {
        let name = logarithmic ? "logSoftmax" : "softmax"
        let (outer, extent, inner) = try Shape.split(shape, axis: axis, operation: name)
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.softmaxForward(storage.pointer, out.pointer, outer: outer, extent: extent, inner: inner, logarithmic: logarithmic)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: [x]) { g in
            let (dx, add) = x.gradientDestination()
            Kernels.softmaxBackward(g, out.pointer, dx, outer: outer, extent: extent, inner: inner, logarithmic: logarithmic,
                                    accumulate: add)
        }
    }
}
