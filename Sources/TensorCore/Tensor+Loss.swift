import Foundation

/// Cross-entropy, fused with its softmax for stability and speed.
extension Tensor {
    /// Mean of −log softmax(logits)[target] over the selected rows.
    ///
    /// Shapes: self (logits) [..., V], flattened to N rows; `targets` has N entries; `mask`, when
    /// given, has N entries and selects the rows that count (the loss on chosen tokens only, e.g.
    /// a task's target tokens). Targets of unselected rows are ignored and may be any value.
    public func crossEntropy(targets: [Int], mask: [Bool]? = nil) throws -> Tensor {
        let name = "crossEntropy"
        guard let vocabulary = shape.last, vocabulary > 0 else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape], detail: "logits need a non-empty last axis [..., V]")
        }
        let rows = count / vocabulary
        guard targets.count == rows else {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, [targets.count]], detail: "one target per row of logits is needed")
        }
        if let mask, mask.count != rows {
            throw TensorError.shapeMismatch(operation: name, shapes: [shape, [mask.count]], detail: "one mask entry per row of logits is needed")
        }
        let selected = (0..<rows).filter { mask?[$0] ?? true }
        guard !selected.isEmpty else {
            throw TensorError.invalidArgument(operation: name, parameter: "mask", value: "all false", allowed: "at least one selected row")
        }
        for r in selected where targets[r] < 0 || targets[r] >= vocabulary {
            throw TensorError.indexOutOfRange(operation: name + " (target of row \(r))", index: targets[r], validRange: 0..<vocabulary)
        }
        let probabilities = TensorStorage(count: selected.count * vocabulary, zeroed: false)
        let losses = TensorStorage(count: selected.count, zeroed: false)
        let x = storage.pointer
        selected.withUnsafeBufferPointer { rowsSelected in
            Parallel.forEachRow(rows: rowsSelected.count, elementsPerRow: vocabulary) { range in
                for s in range {
                    let r = rowsSelected[s]
                    let xr = x + r * vocabulary, pr = probabilities.pointer + s * vocabulary
                    let maximum = Kernels.maximum(xr, count: vocabulary)  // SIMD; a NaN logit is passed over
                    pr.update(from: xr, count: vocabulary)
                    let sum = Kernels.exponentiate(pr, count: vocabulary, subtracting: maximum)  // SIMD exp
                    let inverse = 1 / sum
                    for j in 0..<vocabulary { pr[j] *= inverse }
                    losses.pointer[s] = maximum + log(sum) - xr[targets[r]]
                }
            }
        }
        var total = 0.0
        for s in 0..<selected.count { total += Double(losses.pointer[s]) }
        let out = TensorStorage(count: 1, zeroed: false)
        out.pointer[0] = Float(total / Double(selected.count))
        let logits = self
        return Tensor.result(shape: [], storage: out, operation: name, inputs: [logits]) { g in
            // d/dlogits = (softmax − onehot(target)) / N_selected, scaled by the incoming gradient.
            let grad = logits.gradientPointer()
            let scale = g[0] / Float(selected.count)
            selected.withUnsafeBufferPointer { rowsSelected in
                Parallel.forEachRow(rows: rowsSelected.count, elementsPerRow: vocabulary) { range in
                    for s in range {  // each selected row adds to its own row of the gradient
                        let r = rowsSelected[s]
                        let pr = probabilities.pointer + s * vocabulary, gr = grad + r * vocabulary
                        for j in 0..<vocabulary { gr[j] += scale * pr[j] }
                        gr[targets[r]] -= scale
                    }
                }
            }
        }
    }
}
