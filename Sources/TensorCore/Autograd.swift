/// The record of one operation in the graph: its inputs and the kernel that, given the gradient
/// of the operation's output, accumulates the gradients of its tracked inputs.
final class GraphNode {
    let operation: String
    let inputs: [Tensor]
    let backward: (_ outputGradient: UnsafePointer<Float>) -> Void
    /// An input whose gradient from this operation is the output's gradient itself (reshape; the
    /// left operand of an add), and the kernel for the other inputs. When no gradient has reached
    /// that input yet, it takes the output's gradient buffer as its own instead of a copy.
    let passThrough: PassThrough?

    struct PassThrough {
        let input: Tensor
        let backwardOthers: (_ outputGradient: UnsafePointer<Float>) -> Void
    }

    init(operation: String, inputs: [Tensor], passThrough: PassThrough? = nil,
         backward: @escaping (_ outputGradient: UnsafePointer<Float>) -> Void) {
        self.operation = operation
        self.inputs = inputs
        self.passThrough = passThrough
        self.backward = backward
    }
}

/// Whether operations record themselves for backward. Evaluation runs inside
/// `GradientMode.withoutGradient { ... }`, which records nothing and keeps no intermediate values.
public enum GradientMode {
    @TaskLocal public static var isEnabled = true

    /// Runs `body` with recording switched off.
    public static func withoutGradient<Result>(_ body: () throws -> Result) rethrows -> Result {
        try $isEnabled.withValue(false) { try body() }
    }
}

extension Tensor {
    /// Builds the result of an operation and, when gradients are on and an input is tracked,
    /// records the backward kernel. The kernel must capture storages, never the result tensor.
    /// `passThrough` names an input whose gradient is the output's gradient unchanged, with the
    /// kernel for the other inputs (see `GraphNode.passThrough`).
    static func result(shape: [Int], storage: TensorStorage, operation: String, inputs: [Tensor],
                       passThrough: GraphNode.PassThrough? = nil,
                       backward: @escaping (_ outputGradient: UnsafePointer<Float>) -> Void) -> Tensor {
        let output = Tensor(shape: shape, storage: storage)
        if GradientMode.isEnabled, inputs.contains(where: { $0.isTracked }) {
            let pass = passThrough.flatMap { $0.input.isTracked && $0.input.count == output.count ? $0 : nil }
            output.node = GraphNode(operation: operation, inputs: inputs, passThrough: pass, backward: backward)
        }
        return output
    }

    /// Reverse-mode differentiation: accumulates d(self)/d(leaf) into every tracked leaf's
    /// gradient. `self` must hold one value unless `seed` (the gradient of self) is given.
    /// Gradients add up across calls until `zeroGradient()`, which is how accumulation works.
    public func backward(seed: Tensor? = nil) throws {
        if let seed {
            guard seed.count == count else {
                throw TensorError.shapeMismatch(operation: "backward", shapes: [shape, seed.shape], detail: "the seed must have the output's shape")
            }
        } else if count != 1 {
            throw TensorError.shapeMismatch(operation: "backward", shapes: [shape],
                                            detail: "backward() without a seed needs a one-element output (a loss)")
        }
        let order = topologicalOrder()
        let g = gradientPointer()
        if let seed {
            for i in 0..<count { g[i] += seed.storage.pointer[i] }
        } else {
            g[0] += 1
        }
        for tensor in order.reversed() {
            guard let node = tensor.node, let outputGradient = tensor.gradientStorage else { continue }
            // Intermediate gradients are not needed once passed on; leaves keep theirs.
            tensor.gradientStorage = nil
            if let pass = node.passThrough, pass.input.isTracked, pass.input.gradientStorage == nil {
                // The first gradient to reach that input is this one, unchanged: hand the buffer over.
                pass.input.gradientStorage = outputGradient
                pass.backwardOthers(UnsafePointer(outputGradient.pointer))
            } else {
                node.backward(UnsafePointer(outputGradient.pointer))
            }
        }
    }

    /// Tracked tensors reachable from self, every input before the tensors made from it.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative depth-first search: deep graphs must not overflow the stack.
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in tensor.node?.inputs ?? [] where input.isTracked && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }
}
