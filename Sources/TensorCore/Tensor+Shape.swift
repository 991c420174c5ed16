/// Reshape, transpose, permute, slice and concatenate. Shapes: any.
extension Tensor {
    /// The same values with a new shape (one extent may be −1, inferred). Shares storage.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let name = "reshape"
        var resolved = newShape
        let unknown = newShape.indices.filter { newShape[$0] == -1 }
        guard unknown.count <= 1, !newShape.contains(where: { $0 < -1 }) else {
            throw TensorError.invalidArgument(operation: name, parameter: "shape", value: "\(newShape)",
                                              allowed: "non-negative extents and at most one −1")
        }
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        if let axis = unknown.first {
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(operation: name, shapes: [shape, newShape], detail: "cannot infer the −1 extent")
            }
            resolved[axis] = count / known
        }
        guard resolved.reduce(1, *) == count else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, newShape],
                                            detail: "\(count) values cannot take a shape of \(resolved.reduce(1, *))")
        }
        let input = self
        return Tensor.result(shape: resolved, storage: storage, operation: name, inputs: [input],
                             passThrough: GraphNode.PassThrough(input: input, backwardOthers: { _ in })) { g in
            let (dx, add) = input.gradientDestination()
            Kernels.store(g, into: dx, count: input.count, adding: add)
        }
    }

    /// Swaps two axes (a copy).
    public func transposed(_ axis0: Int, _ axis1: Int) throws -> Tensor {
        let a0 = try Shape.normalize(axis: axis0, rank: rank, operation: "transpose")
        let a1 = try Shape.normalize(axis: axis1, rank: rank, operation: "transpose")
        var order = Array(0..<rank)
        order.swapAt(a0, a1)
        return try permuted(order)
    }

    /// Reorders axes: result axis i is input axis `order[i]` (a copy).
    /// Example: [B, T, H, D].permuted([0, 2, 1, 3]) is [B, H, T, D].
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw TensorError.invalidArgument(operation: "permute", parameter: "order", value: "\(order)",
                                              allowed: "a permutation of 0..<\(rank) for shape \(shape)")
        }
        let outShape = order.map { shape[$0] }
        let inStrides = Shape.strides(shape)
        let gatherStrides = order.map { inStrides[$0] } // input stride for each output axis
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.permute(storage.pointer, out.pointer, shape: outShape, sourceStrides: gatherStrides, accumulate: false)
        let input = self
        // Inverse: output axis i came from input axis order[i].
        var inverse = [Int](repeating: 0, count: rank)
        for (i, axis) in order.enumerated() { inverse[axis] = i }
        let outStrides = Shape.strides(outShape)
        let scatterStrides = inverse.map { outStrides[$0] }
        return Tensor.result(shape: outShape, storage: out, operation: "permute", inputs: [input]) { g in
            let (dx, add) = input.gradientDestination()
            Kernels.permute(g, dx, shape: input.shape, sourceStrides: scatterStrides, accumulate: add)
        }
    }

    /// The values at `range` along `axis` (a copy).
    public func sliced(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let name = "slice"
        let resolved = try Shape.normalize(axis: axis, rank: rank, operation: name)
        guard range.lowerBound >= 0, range.upperBound <= shape[resolved] else {
            throw TensorError.indexOutOfRange(operation: name + " (range \(range) on axis \(resolved) of \(shape))",
                                              index: range.lowerBound < 0 ? range.lowerBound : range.upperBound,
                                              validRange: 0..<(shape[resolved] + 1))
        }
        let (outer, extent, inner) = try Shape.split(shape, axis: resolved, operation: name)
        var outShape = shape
        outShape[resolved] = range.count
        let out = TensorStorage(count: outer * range.count * inner, zeroed: false)
        let src = storage.pointer, block = range.count * inner
        for o in 0..<outer {
            (out.pointer + o * block).update(from: src + (o * extent + range.lowerBound) * inner, count: block)
        }
        let input = self
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: [input]) { g in
            let grad = input.gradientPointer()
            for o in 0..<outer {
                Kernels.accumulate(g + o * block, into: grad + (o * extent + range.lowerBound) * inner, count: block)
            }
        }
    }

    /// Joins tensors along `axis`; every other extent must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        let name = "concatenate"
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(operation: name, parameter: "tensors", value: "[]", allowed: "at least one tensor")
        }
        let resolved = try Shape.normalize(axis: axis, rank: first.rank, operation: name)
        for t in tensors {
            var a = t.shape, b = first.shape
            guard a.count == b.count else {
                throw TensorError.shapeMismatch(operation: name, shapes: tensors.map(\.shape), detail: "ranks differ")
            }
            a[resolved] = 0; b[resolved] = 0
            guard a == b else {
                throw TensorError.shapeMismatch(operation: name, shapes: tensors.map(\.shape), detail: "extents off axis \(resolved) differ")
            }
        }
        var outShape = first.shape
        outShape[resolved] = tensors.reduce(0) { $0 + $1.shape[resolved] }
        let outer = first.shape[..<resolved].reduce(1, *)
        let inner = first.shape[(resolved + 1)...].reduce(1, *)
        let outBlock = outShape[resolved] * inner
        let out = TensorStorage(count: outShape.reduce(1, *), zeroed: false)
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            let block = t.shape[resolved] * inner
            for o in 0..<outer { (out.pointer + o * outBlock + offset).update(from: t.storage.pointer + o * block, count: block) }
            offset += block
        }
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: tensors) { g in
            for (t, start) in zip(tensors, offsets) where t.isTracked {
                let block = t.shape[resolved] * inner
                let grad = t.gradientPointer()
                for o in 0..<outer { Kernels.accumulate(g + o * outBlock + start, into: grad + o * block, count: block) }
            }
        }
    }
}

extension Kernels {
    /// out[i] (=|+=) src[Σ index_a · sourceStrides[a]] over the row-major walk of `shape`; the last
    /// axis is copied as a run when its source stride is 1. Each chunk of rows finds its first row's
    /// source offset once and then steps it like an odometer (no division per row: heads of 16 values
    /// are split and merged around attention). `naivePermute` is its twin.
    public static func permute(_ src: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, shape: [Int],
                               sourceStrides: [Int], accumulate: Bool) {
        let total = shape.reduce(1, *)
        guard total > 0 else { return }
        let n = shape.last ?? 1
        let s = sourceStrides.last ?? 1
        let rows = total / n
        let leading = max(0, shape.count - 1)
        Parallel.forEachRow(rows: rows, elementsPerRow: n) { range in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, leading)) { index in
                var remainder = range.lowerBound, offset = 0
                for axis in stride(from: leading - 1, through: 0, by: -1) {
                    index[axis] = remainder % shape[axis]
                    remainder /= shape[axis]
                    offset &+= index[axis] &* sourceStrides[axis]
                }
                for row in range {
                    let from = src + offset, to = out + row &* n
                    if accumulate {
                        if s == 1 {
                            var j = 0
                            while j + 8 <= n { storeVector(loadVector(to + j) + loadVector(from + j), to + j); j += 8 }
                            while j < n { to[j] += from[j]; j += 1 }
                        } else {
                            for j in 0..<n { to[j] += from[j &* s] }
                        }
                    } else {
                        if s == 1 {  // inline: a call to memmove costs more than a head's 16 values
                            var j = 0
                            while j + 8 <= n { storeVector(loadVector(from + j), to + j); j += 8 }
                            while j < n { to[j] = from[j]; j += 1 }
                        } else {
                            for j in 0..<n { to[j] = from[j &* s] }
                        }
                    }
                    var axis = leading - 1
                    while axis >= 0 {
                        index[axis] += 1
                        offset &+= sourceStrides[axis]
                        if index[axis] < shape[axis] { break }
                        offset &-= shape[axis] &* sourceStrides[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }

    /// Naive twin of `permute`: each output value's source index found by division, one at a time.
    public static func naivePermute(_ src: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, shape: [Int],
                                    sourceStrides: [Int], accumulate: Bool) {
        let total = shape.reduce(1, *)
        for i in 0..<total {
            var remainder = i, source = 0
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                source += (remainder % shape[axis]) * sourceStrides[axis]
                remainder /= shape[axis]
            }
            out[i] = accumulate ? out[i] + src[source] : src[source]
        }
    }
}

extension BroadcastWalk {
    /// A walk over `shape` reading one operand through explicit strides.
    init(shape: [Int], strides: [Int]) {
        self.shape = shape
        rowLength = shape.last ?? 1
        rowCount = rowLength == 0 ? 0 : shape.reduce(1, *) / rowLength
        operandStrides = [strides]
    }
}
