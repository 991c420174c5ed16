/// The affine map of a fully connected layer, with its bias in the matrix product.
extension Tensor {
    /// self·Wᵀ + b, one product: the bias is added in the small-product kernel's epilogue, or (on
    /// OpenBLAS) written into the output's rows and the product added to it (beta = 1), so no
    /// separate pass reads the product again to add the bias; the backward sums the output
    /// gradient's columns for the bias in one pass. Same values as
    /// `matmul(weight, transposeOther: true) + bias` (its naive twin in the tests) up to the order
    /// of the additions.
    ///
    /// Shapes: self [..., K], weight [N, K] (PyTorch's layout), bias [N] or nil; result [..., N].
    public func linear(weight: Tensor, bias: Tensor?) throws -> Tensor {
        let name = "linear"
        guard rank >= 1, weight.rank == 2, weight.shape[1] == shape[rank - 1] else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, weight.shape],
                                            detail: "expects input [..., K] and weight [N, K] with the same K")
        }
        let (k, n) = (weight.shape[1], weight.shape[0])
        if let bias, bias.shape != [n] {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, weight.shape, bias.shape],
                                            detail: "the bias must be [N] = [\(n)]")
        }
        let rows = shape.dropLast().reduce(1, *)
        let outShape = Array(shape.dropLast()) + [n]
        let out = TensorStorage(count: rows * n, zeroed: false)
        Kernels.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: k, alpha: 1, a: storage.pointer, lda: k,
                      b: weight.storage.pointer, ldb: k, beta: 0, c: out.pointer, ldc: n, bias: bias?.storage.pointer)
        let x = self, w = weight, xs = storage, ws = weight.storage
        let inputs = [x, w] + (bias.map { [$0] } ?? [])
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: inputs) { g in
            // Each gradient is written (beta = 0) when it is the first to arrive, added (beta = 1) otherwise.
            if x.isTracked {  // dX [rows, K] += dY · W
                let (dx, add) = x.gradientDestination()
                Kernels.sgemm(transposeA: false, transposeB: false, m: rows, n: k, k: n, alpha: 1, a: g, lda: n,
                              b: ws.pointer, ldb: k, beta: add ? 1 : 0, c: dx, ldc: k)
            }
            if w.isTracked {  // dW [N, K] += dYᵀ · X
                let (dw, add) = w.gradientDestination()
                Kernels.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: rows, alpha: 1, a: g, lda: n,
                              b: xs.pointer, ldb: k, beta: add ? 1 : 0, c: dw, ldc: k)
            }
            if let bias, bias.isTracked {  // db [N] += Σ_rows dY
                let (db, add) = bias.gradientDestination()
                Kernels.accumulateColumnSums(g, into: db, rows: rows, columns: n, accumulate: add)
            }
        }
    }
}
