/// Elementwise arithmetic with NumPy broadcasting, and scalar affine maps.
/// Shapes: any; the result has the broadcast shape of the operands.
extension Tensor {
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.elementwise(rhs, AddOperator.self, "add") }
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.elementwise(rhs, SubtractOperator.self, "subtract") }
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.elementwise(rhs, MultiplyOperator.self, "multiply") }
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor { try lhs.elementwise(rhs, DivideOperator.self, "divide") }

    /// alpha · self + beta, elementwise (scale and shift by constants).
    public func affine(scale alpha: Float, shift beta: Float = 0) -> Tensor {
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.affine(storage.pointer, out.pointer, count: count, alpha: alpha, beta: beta)
        return Tensor.result(shape: shape, storage: out, operation: "affine", inputs: [self]) { [self] g in
            let (dx, add) = gradientDestination()
            Kernels.store(g, into: dx, count: count, alpha: alpha, adding: add)
        }
    }

    /// alpha · self.
    public func scaled(by alpha: Float) -> Tensor { affine(scale: alpha) }

    private func elementwise<Op: BinaryElementwiseOperator>(_ other: Tensor, _ op: Op.Type, _ name: String) throws -> Tensor {
        let outShape = try Shape.broadcast(shape, other.shape, operation: name)
        let a = storage, b = other.storage
        let out = TensorStorage(count: outShape.reduce(1, *), zeroed: false)
        let walk: BroadcastWalk?
        if shape == other.shape {
            walk = nil
            Kernels.binary(Op.self, a.pointer, b.pointer, out.pointer, count: out.count)
        } else {
            let w = BroadcastWalk(shape: outShape, operands: [shape, other.shape])
            let sa = w.rowStride(0), sb = w.rowStride(1), n = w.rowLength
            Parallel.forEachRow(rows: w.rowCount, elementsPerRow: n) { rows in
                for row in rows {
                    Kernels.binaryRow(Op.self, a.pointer + w.offset(row: row, operand: 0), sa,
                                      b.pointer + w.offset(row: row, operand: 1), sb, out.pointer + row &* n, 1, count: n)
                }
            }
            walk = w
        }
        let lhs = self, rhs = other
        // d(a⊙b)/da and d(a⊙b)/db, as factors that multiply the output gradient.
        let lhsBackward: (UnsafePointer<Float>) -> Void = { g in
            if lhs.isTracked {
                switch Op.self {
                case is AddOperator.Type, is SubtractOperator.Type:
                    accumulateBroadcast(g, times: nil, factorStride: 0, scale: 1, into: lhs, operand: 0, walk: walk)
                case is MultiplyOperator.Type:
                    accumulateBroadcast(g, times: b.pointer, factorStride: 1, scale: 1, into: lhs, operand: 0, walk: walk, factorOperand: 1)
                default: // divide: d/da = 1/b
                    let reciprocal = TensorStorage(count: b.count, zeroed: false)
                    for i in 0..<b.count { reciprocal.pointer[i] = 1 / b.pointer[i] }
                    accumulateBroadcast(g, times: reciprocal.pointer, factorStride: 1, scale: 1, into: lhs, operand: 0, walk: walk, factorOperand: 1)
                }
            }
        }
        let rhsBackward: (UnsafePointer<Float>) -> Void = { g in
            if rhs.isTracked {
                switch Op.self {
                case is AddOperator.Type:
                    accumulateBroadcast(g, times: nil, factorStride: 0, scale: 1, into: rhs, operand: 1, walk: walk)
                case is SubtractOperator.Type:
                    accumulateBroadcast(g, times: nil, factorStride: 0, scale: -1, into: rhs, operand: 1, walk: walk)
                case is MultiplyOperator.Type:
                    accumulateBroadcast(g, times: a.pointer, factorStride: 1, scale: 1, into: rhs, operand: 1, walk: walk, factorOperand: 0)
                default: // divide: d/db = −a/b² = −out/b, computed in the output's shape
                    let factor = TensorStorage(count: out.count, zeroed: false)
                    if let walk {
                        let sb = walk.rowStride(1), n = walk.rowLength
                        for row in 0..<walk.rowCount {
                            let ob = walk.offset(row: row, operand: 1)
                            for j in 0..<n { factor.pointer[row * n + j] = out.pointer[row * n + j] / b.pointer[ob + j * sb] }
                        }
                    } else {
                        for i in 0..<out.count { factor.pointer[i] = out.pointer[i] / b.pointer[i] }
                    }
                    accumulateBroadcast(g, times: factor.pointer, factorStride: 1, scale: -1, into: rhs, operand: 1, walk: walk, factorOperand: nil)
                }
            }
        }
        // a ± b with a of the output's shape: a's gradient is the output's gradient itself.
        let passes = (Op.self is AddOperator.Type || Op.self is SubtractOperator.Type) && shape == outShape
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: [lhs, rhs],
                             passThrough: passes ? GraphNode.PassThrough(input: lhs, backwardOthers: rhsBackward) : nil) { g in
            lhsBackward(g)
            rhsBackward(g)
        }
    }
}

/// target.grad (reduced over its broadcast axes) += scale · g · factor, where g has the output's
/// shape and `factor` is read either in the output's layout (`factorOperand` nil) or in the
/// layout of operand `factorOperand`.
private func accumulateBroadcast(_ g: UnsafePointer<Float>, times factor: UnsafePointer<Float>?, factorStride: Int, scale: Float,
                                 into target: Tensor, operand: Int, walk: BroadcastWalk?, factorOperand: Int? = nil) {
    guard let walk else {
        // Same shapes: contiguous, parallel, SIMD; the first gradient to arrive is written, not added.
        let (grad, add) = target.gradientDestination()
        if let factor {
            Parallel.forEachChunk(count: target.count) { _, range in
                if add {
                    for i in range { grad[i] += scale * g[i] * factor[i] }
                } else {
                    for i in range { grad[i] = scale * g[i] * factor[i] }
                }
            }
        } else {
            Kernels.store(g, into: grad, count: target.count, alpha: scale, adding: add)
        }
        return
    }
    let grad = target.gradientPointer()
    let n = walk.rowLength
    let st = walk.rowStride(operand)
    let sf = factorOperand.map { walk.rowStride($0) } ?? 1
    // Index arithmetic wraps (&*): every index is below a tensor's element count.
    let body: (Range<Int>) -> Void = { rows in
        for row in rows {
            let target = grad + walk.offset(row: row, operand: operand)
            let gRow = g + row &* n
            if let factor {
                let fRow = factor + (factorOperand.map { walk.offset(row: row, operand: $0) } ?? row &* n)
                if st == 1, sf == 1 {
                    for j in 0..<n { target[j] += scale * gRow[j] * fRow[j] }
                } else {
                    for j in 0..<n { target[j &* st] += scale * gRow[j] * fRow[j &* sf] }
                }
            } else if st == 1 {
                for j in 0..<n { target[j] += scale * gRow[j] }
            } else {
                for j in 0..<n { target[j &* st] += scale * gRow[j] }
            }
        }
    }
    // Rows that fold onto the same target values must accumulate on one thread.
    if walk.isReduced(operand: operand) { body(0..<walk.rowCount) } else { Parallel.forEachRow(rows: walk.rowCount, elementsPerRow: n, body) }
}
