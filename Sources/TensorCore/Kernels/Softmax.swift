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

/// Causal softmax: the last axis of scores [N, Tq, Tk] (N = B·H) under the causal mask, row i of
/// each [Tq, Tk] block seeing keys j ≤ i + (Tk − Tq) (the queries are the last Tq of the Tk keys).
/// The same probabilities as adding −∞ above the diagonal and taking the softmax (for finite masked
/// scores: a NaN or +∞ there made that composition's whole row NaN, and is never read here), without
/// the mask tensor, and with the exponentials, the normalisation and the backward's dot products done
/// on the visible keys only (about half of each block when Tq = Tk). Masked gradients are +0.
extension Kernels {
    public static func causalSoftmaxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, blocks: Int,
                                            queries tq: Int, keys tk: Int) {
        let offset = tk - tq
        Parallel.forEachRow(rows: blocks * tq, elementsPerRow: tk) { range in
            for line in range {
                let visible = min(tk, line % tq + offset + 1)
                let xs = x + line &* tk, ys = y + line &* tk
                var shift = maximum(xs, count: visible)
                if shift == -.infinity { shift = 0 }  // every visible score −∞: keep it finite, as softmax does
                ys.update(from: xs, count: visible)
                var scale = 1 / exponentiate(ys, count: visible, subtracting: shift)
                binaryRow(MultiplyOperator.self, ys, 1, &scale, 0, ys, 1, count: visible)
                if visible < tk { (ys + visible).update(repeating: 0, count: tk - visible) }
            }
        }
    }

    /// dx = y ⊙ (g − Σ_visible g·y) on the visible keys, 0 on the masked ones (`accumulate`: added to dx,
    /// the masked ones left as they are).
    public static func causalSoftmaxBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                             _ dx: UnsafeMutablePointer<Float>, blocks: Int, queries tq: Int, keys tk: Int,
                                             accumulate: Bool) {
        let offset = tk - tq
        Parallel.forEachRow(rows: blocks * tq, elementsPerRow: tk) { range in
            for line in range {
                let visible = min(tk, line % tq + offset + 1)
                let gs = g + line &* tk, ys = y + line &* tk, dxs = dx + line &* tk
                // Σ g·y in eight lanes, then the lanes and the tail.
                var lanes = SIMD8<Float>(repeating: 0)
                var j = 0
                while j + 8 <= visible { lanes += loadVector(gs + j) * loadVector(ys + j); j += 8 }
                var dot = lanes.sum()
                while j < visible { dot += gs[j] * ys[j]; j += 1 }
                // Eight lanes, each doing the scalar tail's operations (the same values bit for bit).
                let dots = SIMD8<Float>(repeating: dot)
                j = 0
                if accumulate {
                    while j + 8 <= visible {
                        storeVector(loadVector(dxs + j) + loadVector(ys + j) * (loadVector(gs + j) - dots), dxs + j)
                        j += 8
                    }
                    while j < visible { dxs[j] += ys[j] * (gs[j] - dot); j += 1 }
                } else {
                    while j + 8 <= visible { storeVector(loadVector(ys + j) * (loadVector(gs + j) - dots), dxs + j); j += 8 }
                    while j < visible { dxs[j] = ys[j] * (gs[j] - dot); j += 1 }
                    if visible < tk { (dxs + visible).update(repeating: 0, count: tk - visible) }
                }
            }
        }
    }

    /// Naive twin of `causalSoftmaxForward`: scalar loops over the whole row, the masked keys at −∞.
    public static func naiveCausalSoftmaxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, blocks: Int,
                                                 queries tq: Int, keys tk: Int) {
        for line in 0..<(blocks * tq) {
            let last = line % tq + tk - tq
            let scores = (0..<tk).map { $0 <= last ? x[line * tk + $0] : -Float.infinity }
            var shift = scores.max() ?? 0
            if shift == -.infinity { shift = 0 }
            let e = scores.map { Foundation.exp($0 - shift) }
            let sum = e.reduce(0, +)
            for j in 0..<tk { y[line * tk + j] = e[j] / sum }
        }
    }

    /// Naive twin of `causalSoftmaxBackward` (accumulate false): the softmax backward over the whole row.
    public static func naiveCausalSoftmaxBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                                  _ dx: UnsafeMutablePointer<Float>, blocks: Int, queries tq: Int, keys tk: Int) {
        for line in 0..<(blocks * tq) {
            var dot: Float = 0
            for j in 0..<tk { dot += g[line * tk + j] * y[line * tk + j] }
            for j in 0..<tk { dx[line * tk + j] = y[line * tk + j] * (g[line * tk + j] - dot) }
        }
    }
}

extension Tensor {
    /// Softmax along the last axis of attention scores [..., Tq, Tk] (Tk ≥ Tq) under the causal mask:
    /// query i (the (Tk − Tq + i)-th token) sees keys j ≤ i + Tk − Tq; the others get probability 0.
    /// Equals `(self + causalMask).softmax(axis: -1)` with −∞ above that diagonal.
    public func causalSoftmax() throws -> Tensor {
        let name = "causalSoftmax"
        guard rank >= 2 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape], detail: "scores must be [..., Tq, Tk]")
        }
        let (tq, tk) = (shape[rank - 2], shape[rank - 1])
        guard tk >= tq else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape],
                                            detail: "the keys (Tk = \(tk)) must include the queries (Tq = \(tq)): Tk ≥ Tq")
        }
        let blocks = tq == 0 || tk == 0 ? 0 : count / (tq * tk)
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.causalSoftmaxForward(storage.pointer, out.pointer, blocks: blocks, queries: tq, keys: tk)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: [x]) { g in
            let (dx, add) = x.gradientDestination()
            Kernels.causalSoftmaxBackward(g, out.pointer, dx, blocks: blocks, queries: tq, keys: tk, accumulate: add)
        }
    }
}
