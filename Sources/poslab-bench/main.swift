import Foundation
import Models
import NN
import PositionalEncodings
import Tasks
import TensorCore

// poslab-bench: the engine's speed, measured in a release build. Prints sgemm throughput and
// the time of one training step of a small Transformer. (The PyTorch comparison of training
// throughput belongs to `poslab bench`, with its reference script under bench/.)

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Best of `repeats` timings of `body`, after one warm-up run.
func best(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var result = Double.infinity
    for _ in 0..<repeats { result = min(result, try seconds(body)) }
    return result
}

print("PositionLab engine benchmark (\(Parallel.coreCount) cores)")
print("sgemm (OpenBLAS, row-major, C = A·B):")
for n in [128, 256, 512, 1024] {
    var generator = SplitMix64(seed: 1)
    let a = try Tensor(normal: [n, n], generator: &generator), b = try Tensor(normal: [n, n], generator: &generator)
    let c = TensorStorage(count: n * n)
    let repeats = max(3, 2_000_000_000 / (2 * n * n * n))
    let time = best(5) {
        for _ in 0..<repeats {
            Kernels.sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a.storage.pointer, lda: n,
                          b: b.storage.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
        }
    } / Double(repeats)
    print(String(format: "  %5d × %-5d  %8.1f GFLOP/s  (%.3f ms)", n, n, 2 * Double(n * n * n) / time / 1e9, time * 1e3))
}

print("one training step (forward, backward, clip, AdamW), RoPE, pre-norm LayerNorm, GELU:")
for (dimension, layers, length, batch) in [(64, 2, 64, 64), (128, 4, 128, 32), (256, 4, 256, 32)] {
    let configuration = try TransformerConfiguration(vocabularySize: 256, modelDimension: dimension, numberOfLayers: layers,
                                                     numberOfHeads: 4, feedForwardDimension: 4 * dimension,
                                                     positionalScheme: .rope(RotaryConfiguration()))
    let model = try Transformer(configuration: configuration, seed: 0)
    let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 1_000_000, batchSize: batch))
    var generator = SplitMix64(seed: 2)
    let inputs = (0..<(batch * length)).map { _ in generator.nextInt(in: 0..<256) }
    let fixed = TokenBatch(inputs: inputs, targets: inputs.map { ($0 + 1) % 256 }, lossMask: [Bool](repeating: true, count: inputs.count),
                           batchSize: batch, length: length)
    var tokens = 0
    let start = Date()
    let time = try best(5) { _ = try trainer.trainStep(nextBatch: { _ in fixed }, tokens: &tokens, start: start) }
    print(String(format: "  C=%-4d layers=%d T=%-4d B=%-3d  %8.1f ms/step  %9.0f tokens/s  (%d parameters)",
                 dimension, layers, length, batch, time * 1e3, Double(batch * length) / time, model.parameterCount))
}
