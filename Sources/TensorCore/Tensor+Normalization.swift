/// Normalisations. Shapes: self [..., C]; gamma and beta [C]; result [..., C].
extension Tensor {
    /// LayerNorm over the last axis: (x − μ)/√(σ² + ε) · γ + β.
    public func layerNorm(gamma: Tensor, beta: Tensor?, epsilon: Float = 1e-5) throws -> Tensor {
        let name = "layerNorm"
        let n = try lastAxisExtent(matching: gamma, beta, operation: name)
        let rows = count / max(n, 1)
        let out = TensorStorage(count: count, zeroed: false)
        let mean = TensorStorage(count: rows, zeroed: false), rstd = TensorStorage(count: rows, zeroed: false)
        Kernels.layerNormForward(storage.pointer, gamma: gamma.storage.pointer, beta: beta?.storage.pointer, out.pointer,
                                 mean: mean.pointer, inverseStd: rstd.pointer, rows: rows, n: n, epsilon: epsilon)
        let x = self
        let inputs = [x, gamma] + (beta.map { [$0] } ?? [])
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: inputs) { g in
            let dx = x.isTracked ? x.gradientDestination() : nil
            Kernels.layerNormBackward(g, x.storage.pointer, gamma: gamma.storage.pointer, mean: mean.pointer, inverseStd: rstd.pointer,
                                      rows: rows, n: n, dx: dx?.pointer,
                                      dGamma: gamma.isTracked ? gamma.gradientPointer() : nil,
                                      dBeta: (beta?.isTracked ?? false) ? beta!.gradientPointer() : nil,
                                      accumulateDx: dx?.accumulate ?? true)
        }
    }

    /// RMSNorm over the last axis: x/√(mean(x²) + ε) · γ.
    public func rmsNorm(gamma: Tensor, epsilon: Float = 1e-6) throws -> Tensor {
        let name = "rmsNorm"
        let n = try lastAxisExtent(matching: gamma, nil, operation: name)
        let rows = count / max(n, 1)
        let out = TensorStorage(count: count, zeroed: false)
        let rinv = TensorStorage(count: rows, zeroed: false)
        Kernels.rmsNormForward(storage.pointer, gamma: gamma.storage.pointer, out.pointer, inverseRMS: rinv.pointer,
                               rows: rows, n: n, epsilon: epsilon)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: [x, gamma]) { g in
            let dx = x.isTracked ? x.gradientDestination() : nil
            Kernels.layerNormBackward(g, x.storage.pointer, gamma: gamma.storage.pointer, mean: rinv.pointer, inverseStd: rinv.pointer,
                                      rows: rows, n: n, dx: dx?.pointer,
                                      dGamma: gamma.isTracked ? gamma.gradientPointer() : nil, dBeta: nil, centered: false,
                                      accumulateDx: dx?.accumulate ?? true)
        }
    }

    /// x/√(Σx² + ε) along `axis` (unit vectors, for cosine attention and normalised Transformers).
    public func l2Normalized(axis: Int = -1, epsilon: Float = 1e-12) throws -> Tensor {
        let name = "l2Normalize"
        let (outer, extent, inner) = try Shape.split(shape, axis: axis, operation: name)
        let out = TensorStorage(count: count, zeroed: false)
        let norms = TensorStorage(count: outer * inner, zeroed: false)
        Kernels.l2NormalizeForward(storage.pointer, out.pointer, norms: norms.pointer, outer: outer, extent: extent, inner: inner, epsilon: epsilon)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: name, inputs: [x]) { g in
            Kernels.l2NormalizeBackward(g, out.pointer, norms: norms.pointer, x.gradientPointer(), outer: outer, extent: extent, inner: inner)
        }
    }

    private func lastAxisExtent(matching gamma: Tensor, _ beta: Tensor?, operation: String) throws -> Int {
        guard let n = shape.last, n > 0 else {
            throw TensorError.shapeMismatch(operation: operation, shapes: [shape], detail: "needs a non-empty last axis")
        }
        guard gamma.shape == [n], beta.map({ $0.shape == [n] }) ?? true else {
            throw TensorError.shapeMismatch(operation: operation, shapes: [shape, gamma.shape] + (beta.map { [$0.shape] } ?? []),
                                            detail: "gamma and beta must be [C] with C = \(n), the input's last extent")
        }
        return n
    }
}
