/// Matrix products on OpenBLAS.
extension Tensor {
    /// scale · op(self) · op(other), where op transposes the last two axes when asked (the scale is
    /// BLAS's alpha: attention's 1/√D costs no pass of its own).
    ///
    /// Shapes: self [..., M, K] (or [..., K, M] with `transposeSelf`), other [K, N] (or [N, K]) shared
    /// across self's leading axes, or other [..., K, N] with the same leading axes as self
    /// (batched). Result [..., M, N]. Typical uses: [B, T, C] · [C, C'] for a projection,
    /// [B, H, T, D] · [B, H, T, D]ᵀ for attention scores.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false,
                       scale: Float = 1) throws -> Tensor {
        let name = "matmul"
        guard rank >= 2, other.rank >= 2 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, other.shape], detail: "both operands need at least two axes")
        }
        let (r0, c0) = (shape[rank - 2], shape[rank - 1])
        let (r1, c1) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        let m = transposeSelf ? c0 : r0, k = transposeSelf ? r0 : c0
        let k2 = transposeOther ? c1 : r1, n = transposeOther ? r1 : c1
        guard k == k2 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, other.shape],
                                            detail: "inner extents differ (\(k) and \(k2)) with transposeSelf=\(transposeSelf), transposeOther=\(transposeOther)")
        }
        let leading = Array(shape.dropLast(2))
        let shared = other.rank == 2
        if !shared, Array(other.shape.dropLast(2)) != leading {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, other.shape],
                                            detail: "batched operands need equal leading axes, or a two-axis right operand shared across the batch")
        }
        let batch = leading.reduce(1, *)
        let outShape = leading + [m, n]
        let out = TensorStorage(count: outShape.reduce(1, *), zeroed: false)
        let a = storage, b = other.storage
        let (lda, ldb) = (c0, c1)
        let aStride = r0 * c0, bStride = shared ? 0 : r1 * c1, cStride = m * n
        if shared && !transposeSelf {
            // One product with the batch folded into M: better for BLAS than `batch` small calls.
            Kernels.sgemm(transposeA: false, transposeB: transposeOther, m: batch * m, n: n, k: k, alpha: scale,
                          a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: 0, c: out.pointer, ldc: n)
        } else {
            Tensor.forEachProduct(batch, work: m * n * k) { i in
                Kernels.sgemmBlock(transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k, alpha: scale,
                                   a: a.pointer + i * aStride, lda: lda, b: b.pointer + i * bStride, ldb: ldb,
                                   beta: 0, c: out.pointer + i * cStride, ldc: n)
            }
        }
        let lhs = self, rhs = other
        let (tA, tB) = (transposeSelf, transposeOther)
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: [lhs, rhs]) { g in
            // C = s·op(A)·op(B): dop(A) = s·dC·op(B)ᵀ and dop(B) = s·op(A)ᵀ·dC; beta = 1 accumulates in place.
            // Each gradient is written (beta = 0) when it is the first to arrive, added (beta = 1) otherwise.
            if lhs.isTracked {
                let (gA, addA) = lhs.gradientDestination()
                let betaA: Float = addA ? 1 : 0
                if shared && !tA {
                    Kernels.sgemm(transposeA: false, transposeB: !tB, m: batch * m, n: k, k: n, alpha: scale,
                                  a: g, lda: n, b: b.pointer, ldb: ldb, beta: betaA, c: gA, ldc: lda)
                } else {
                    // Each batch item's dA is its own block: items run in parallel.
                    Tensor.forEachProduct(batch, work: m * n * k) { i in
                        if !tA { // dA (m×k) = dC · op(B)ᵀ
                            Kernels.sgemmBlock(transposeA: false, transposeB: !tB, m: m, n: k, k: n, alpha: scale,
                                               a: g + i * cStride, lda: n, b: b.pointer + i * bStride, ldb: ldb,
                                               beta: betaA, c: gA + i * aStride, ldc: lda)
                        } else { // dA (k×m) = op(B) · dCᵀ
                            Kernels.sgemmBlock(transposeA: tB, transposeB: true, m: k, n: m, k: n, alpha: scale,
                                               a: b.pointer + i * bStride, lda: ldb, b: g + i * cStride, ldb: n,
                                               beta: betaA, c: gA + i * aStride, ldc: lda)
                        }
                    }
                }
            }
            if rhs.isTracked {
                let (gB, addB) = rhs.gradientDestination()
                // A shared dB sums every item: only the first item may overwrite it.
                func betaB(_ item: Int) -> Float { addB || item > 0 ? 1 : 0 }
                if shared && !tA {
                    if !tB { // dB (k×n) = Aᵀ · dC over all rows
                        Kernels.sgemm(transposeA: true, transposeB: false, m: k, n: n, k: batch * m, alpha: scale,
                                      a: a.pointer, lda: lda, b: g, ldb: n, beta: betaB(0), c: gB, ldc: ldb)
                    } else { // dB (n×k) = dCᵀ · A
                        Kernels.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: batch * m, alpha: scale,
                                      a: g, lda: n, b: a.pointer, ldb: lda, beta: betaB(0), c: gB, ldc: ldb)
                    }
                } else {
                    // An empty batch adds nothing: a first gradient is then all zeros.
                    if batch == 0 && !addB { gB.update(repeating: 0, count: rhs.count) }
                    // A shared right operand (bStride = 0) sums every item into one dB: then in order.
                    Tensor.forEachProduct(batch, work: shared ? 0 : m * n * k) { i in
                        if !tB { // dB (k×n) = op(A)ᵀ · dC
                            Kernels.sgemmBlock(transposeA: !tA, transposeB: false, m: k, n: n, k: m, alpha: scale,
                                               a: a.pointer + i * aStride, lda: lda, b: g + i * cStride, ldb: n,
                                               beta: betaB(shared ? i : 0), c: gB + i * bStride, ldc: ldb)
                        } else { // dB (n×k) = dCᵀ · op(A)
                            Kernels.sgemmBlock(transposeA: true, transposeB: tA, m: n, n: k, k: m, alpha: scale,
                                               a: g + i * cStride, lda: n, b: a.pointer + i * aStride, ldb: lda,
                                               beta: betaB(shared ? i : 0), c: gB + i * bStride, ldc: ldb)
                        }
                    }
                }
            }
        }
    }

    /// Runs `body` for each of `count` independent products, spread over the cores when the total
    /// work (`count` × `work` multiply-adds) is large; `work` = 0 keeps them in order on this thread.
    static func forEachProduct(_ count: Int, work: Int, _ body: (Int) -> Void) {
        let chunks = work > 0 && count * work >= 1 << 18 ? min(Parallel.coreCount, count) : 1
        if chunks <= 1 { for i in 0..<count { body(i) }; return }
        Parallel.perform(iterations: chunks) { chunk in
            for i in (chunk * count / chunks)..<((chunk + 1) * count / chunks) { body(i) }
        }
    }
}
