/// Embedding lookup: a gather of rows, with a scatter-add backward.
extension Tensor {
    /// Rows of this table [V, C] picked by `indices` (row-major with shape `indexShape`):
    /// result [indexShape..., C], e.g. [B, T] token ids give [B, T, C] embeddings.
    public func gatherRows(_ indices: [Int], indexShape: [Int]) throws -> Tensor {
        let name = "embedding"
        guard rank == 2 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape], detail: "the table must be [V, C]")
        }
        guard indexShape.reduce(1, *) == indices.count else {
            throw TensorError.shapeMismatch(operation: name, shapes: [indexShape, [indices.count]], detail: "index shape does not hold the indices")
        }
        let rows = shape[0], width = shape[1]
        if let bad = indices.first(where: { $0 < 0 || $0 >= rows }) {
            throw TensorError.indexOutOfRange(operation: name, index: bad, validRange: 0..<rows)
        }
        let out = TensorStorage(count: indices.count * width, zeroed: false)
        let table = storage.pointer
        indices.withUnsafeBufferPointer { ids in
            Parallel.forEachRow(rows: ids.count, elementsPerRow: width) { range in
                for i in range { (out.pointer + i * width).update(from: table + ids[i] * width, count: width) }
            }
        }
        let input = self
        return Tensor.result(shape: indexShape + [width], storage: out, operation: name, inputs: [input]) { g in
            // Scatter-add: repeated ids add up, so this runs on one thread.
            let grad = input.gradientPointer()
            for (i, id) in indices.enumerated() { Kernels.accumulate(g + i * width, into: grad + id * width, count: width) }
        }
    }
}
