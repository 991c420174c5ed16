/// Sums and means, over everything or along one axis.
extension Tensor {
    /// Σ of every value: a scalar (shape []).
    public func sum() -> Tensor {
        let out = TensorStorage(count: 1, zeroed: false)
        out.pointer[0] = Kernels.sum(storage.pointer, count: count)
        let x = self
        return Tensor.result(shape: [], storage: out, operation: "sum", inputs: [x]) { g in
            let grad = x.gradientPointer(), value = g[0]
            for i in 0..<x.count { grad[i] += value }
        }
    }

    /// Mean of every value: a scalar.
    public func mean() throws -> Tensor {
        guard count > 0 else {
            throw TensorError.shapeMismatch(operation: "mean", shapes: [shape], detail: "the mean of no values is undefined")
        }
        return sum().scaled(by: 1 / Float(count))
    }

    /// Σ along `axis`; the axis is kept with extent 1 when `keepingAxis`, dropped otherwise.
    public func sum(axis: Int, keepingAxis: Bool = false) throws -> Tensor {
        let name = "sum(axis:)"
        let resolved = try Shape.normalize(axis: axis, rank: rank, operation: name)
        let (outer, extent, inner) = try Shape.split(shape, axis: resolved, operation: name)
        var outShape = shape
        if keepingAxis { outShape[resolved] = 1 } else { outShape.remove(at: resolved) }
        let out = TensorStorage(count: outer * inner)
        let x = storage.pointer
        Parallel.forEachRow(rows: outer, elementsPerRow: extent * inner) { range in
            for o in range {
                let dst = out.pointer + o * inner
                for j in 0..<extent { Kernels.binaryRow(AddOperator.self, dst, 1, x + (o * extent + j) * inner, 1, dst, 1, count: inner) }
            }
        }
        let input = self
        return Tensor.result(shape: outShape, storage: out, operation: name, inputs: [input]) { g in
            let grad = input.gradientPointer()
            for o in 0..<outer {
                for j in 0..<extent { Kernels.binaryRow(AddOperator.self, grad + (o * extent + j) * inner, 1, g + o * inner, 1,
                                                        grad + (o * extent + j) * inner, 1, count: inner) }
            }
        }
    }

    /// Mean along `axis`.
    public func mean(axis: Int, keepingAxis: Bool = false) throws -> Tensor {
        let resolved = try Shape.normalize(axis: axis, rank: rank, operation: "mean(axis:)")
        guard shape[resolved] > 0 else {
            throw TensorError.shapeMismatch(operation: "mean(axis:)", shapes: [shape], detail: "axis \(resolved) is empty")
        }
        return try sum(axis: resolved, keepingAxis: keepingAxis).scaled(by: 1 / Float(shape[resolved]))
    }
}

extension Kernels {
    /// Σ x[i] with eight SIMD lanes per chunk; chunk partials are added in order. The chunks follow from
    /// `count` alone (`Parallel.reductionChunkCount`), so the sum is the same on any number of cores.
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let chunks = Parallel.reductionChunkCount(for: count)
        var partials = [Float](repeating: 0, count: chunks)
        partials.withUnsafeMutableBufferPointer { partial in
            let p = partial.baseAddress!
            Parallel.forEachChunk(count: count, chunks: chunks) { chunk, range in
                var lanes = SIMD8<Float>(repeating: 0)
                var i = range.lowerBound
                while i + 8 <= range.upperBound { lanes += loadVector(x + i); i += 8 }
                var total = lanes.sum()
                while i < range.upperBound { total += x[i]; i += 1 }
                p[chunk] = total
            }
        }
        return partials.reduce(0, +)
    }

    /// Σ x[i]² (for gradient norms).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var lanes = SIMD8<Float>(repeating: 0)
        var total = 0.0
        var i = 0
        while i + 8 <= count {
            let v = loadVector(x + i); lanes += v * v; i += 8
            if i % 4096 == 0 { total += Double(lanes.sum()); lanes = .zero } // limit Float accumulation error
        }
        total += Double(lanes.sum())
        while i < count { total += Double(x[i] * x[i]); i += 1 }
        return total
    }
}
