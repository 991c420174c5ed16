/// Inverted dropout (Srivastava et al. 2014): zero each value with probability p and scale the
/// survivors by 1/(1 − p), so evaluation needs no rescaling. Shapes: any.
extension Tensor {
    public func dropout(probability: Float, generator: inout SplitMix64) throws -> Tensor {
        guard probability >= 0, probability < 1 else {
            throw TensorError.invalidArgument(operation: "dropout", parameter: "probability", value: "\(probability)", allowed: "0 ≤ p < 1")
        }
        if probability == 0 { return self }
        let keep = 1 / (1 - probability)
        let mask = TensorStorage(count: count, zeroed: false)
        for i in 0..<count { mask.pointer[i] = generator.nextUniform() < probability ? 0 : keep }
        let out = TensorStorage(count: count, zeroed: false)
        Kernels.binary(MultiplyOperator.self, storage.pointer, mask.pointer, out.pointer, count: count)
        let x = self
        return Tensor.result(shape: shape, storage: out, operation: "dropout", inputs: [x]) { g in
            let grad = x.gradientPointer()
            for i in 0..<x.count { grad[i] += g[i] * mask.pointer[i] }
        }
    }
}
