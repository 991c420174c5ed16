import ArgumentParser
import Interop
import Foundation
import Lab
import Models
import PositionalEncodings
import TensorCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training throughput, attention speed and peak memory (release builds only mean anything).",
        subcommands: [BenchTrain.self, BenchAttention.self, BenchMemory.self, BenchMatrixProduct.self, BenchGenerate.self,
                      BenchForward.self])
}

/// The reference configurations of the PyTorch comparison (bench/torch_reference.py builds the same).
struct BenchConfiguration {
    let name: String, dimension: Int, layers: Int, length: Int, batch: Int
    static let all = [BenchConfiguration(name: "small", dimension: 64, layers: 2, length: 64, batch: 64),
                      BenchConfiguration(name: "reference", dimension: 128, layers: 4, length: 128, batch: 32),
                      BenchConfiguration(name: "large", dimension: 256, layers: 4, length: 256, batch: 32)]

    func model() throws -> Transformer {
        try Transformer(configuration: TransformerConfiguration(
            vocabularySize: 256, modelDimension: dimension, numberOfLayers: layers, numberOfHeads: 4, feedForwardDimension: 4 * dimension,
            positionalScheme: .rope(RotaryConfiguration())), seed: 0)
    }
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// One warm-up run, then the best of `repeats` (the protocol bench/torch_reference.py uses too).
func bestTime(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var result = Double.infinity
    for _ in 0..<repeats { result = min(result, try seconds(body)) }
    return result
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Time training steps (forward, backward, clip, AdamW) of the reference configurations: tokens per second.")

    @Option(help: "Configurations: small, reference, large (comma-separated).") var configurations = "small,reference,large"
    @Option(help: "Timed steps (best of).") var repeats = 5
    @Option(help: ArgumentHelp("Then train this many more steps and report resident memory after the first 10 and after "
            + "all (a steady-state step should allocate nothing that stays); 0 skips it.")) var memorySteps = 0
    @Flag(help: "Print JSON (the format bench/compare.py reads).") var json = false

    func run() throws {
        let wanted = configurations.split(separator: ",").map(String.init)
        let chosen = try wanted.map { name in
            guard let c = BenchConfiguration.all.first(where: { $0.name == name }) else {
                throw ValidationError("--configurations: unknown \"\(name)\"; choose from small, reference, large")
            }
            return c
        }
        guard (1...1_000).contains(repeats) else { throw ValidationError("--repeats must be from 1 to 1000, not \(repeats)") }
        guard (0...100_000).contains(memorySteps) else {
            throw ValidationError("--memory-steps must be from 0 to 100000, not \(memorySteps)")
        }
        var rows: [[String: JSONValue]] = []
        for c in chosen {
            let model = try c.model()
            let trainer = try Trainer(model: model, configuration: TrainingConfiguration(steps: 1_000_000, batchSize: c.batch))
            var generator = SplitMix64(seed: 2)
            let inputs = (0..<(c.batch * c.length)).map { _ in generator.nextInt(in: 0..<256) }
            let batch = TokenBatch(inputs: inputs, targets: inputs.map { ($0 + 1) % 256 },
                                   lossMask: [Bool](repeating: true, count: inputs.count), batchSize: c.batch, length: c.length)
            var tokens = 0
            let start = Date()
            let time = try bestTime(repeats) { _ = try trainer.trainStep(nextBatch: { _ in batch }, tokens: &tokens, start: start) }
            let rate = Double(c.batch * c.length) / time
            var row: [String: JSONValue] = [
                "name": .string(c.name), "model_dimension": .number(Double(c.dimension)), "layers": .number(Double(c.layers)),
                "heads": .number(4), "sequence_length": .number(Double(c.length)), "batch_size": .number(Double(c.batch)),
                "feed_forward": .number(Double(4 * c.dimension)), "ms_per_step": .number(time * 1e3),
                "tokens_per_second": .number(rate), "parameters": .number(Double(model.parameterCount))]
            if memorySteps > 0 {
                let step = { _ = try trainer.trainStep(nextBatch: { _ in batch }, tokens: &tokens, start: start) }
                for _ in 0..<min(10, memorySteps) { try step() }
                let early = residentBytes()
                for _ in 10..<max(10, memorySteps) { try step() }
                let late = residentBytes()
                row["resident_mib_after_10_steps"] = .number(Double(early) / 1_048_576)
                row["resident_mib_after_all_steps"] = .number(Double(late) / 1_048_576)
                row["memory_steps"] = .number(Double(memorySteps))
                if !json {
                    print(String(format: "%-9@ resident memory %.1f MiB after 10 steps, %.1f MiB after %d", c.name,
                                 Double(early) / 1_048_576, Double(late) / 1_048_576, memorySteps))
                }
            }
            rows.append(row)
            if !json {
                print(String(format: "%-9@ C=%-4d L=%d T=%-4d B=%-3d  %8.1f ms/step  %9.0f tokens/s", c.name, c.dimension, c.layers,
                             c.length, c.batch, time * 1e3, rate))
            }
        }
        if json {
            try printJSON(["implementation": JSONValue.string("positionlab"), "threads": .number(Double(Parallel.coreCount)),
                           "blas": .string(try BLAS.load().summary), "elementwise": .string(Kernels.elementwise.rawValue),
                           "small_products": .string(Kernels.smallProducts.rawValue),
                           "product_tiles": Kernels.ownProductTiles.map { .string($0.rawValue) } ?? .null,
                           "configurations": .array(rows.map { .object($0) })])
        }
    }
}

enum AttentionPath: String, ExpressibleByArgument, CaseIterable {
    case blocked, materialized
}

struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention",
        abstract: "Time causal attention forward and backward (batch 1) on the blocked and materialised paths: GFLOP/s, "
            + "and the blocked path's share of sgemm's GFLOP/s measured in the same run.")

    @Option(parsing: .upToNextOption, help: "Sequence lengths.") var lengths: [Int] = [512, 2048, 8192]
    @Option(help: "Heads (H).") var heads = 4
    @Option(help: "Head dimension (D).") var dimension = 32
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Paths to time; the materialised one only up to 4096 tokens "
            + "(it holds T × T scores per head).", valueName: "path"))
    var paths: [AttentionPath] = AttentionPath.allCases
    @Option(help: "Timed runs (best of).") var repeats = 3

    func validate() throws {
        if let bad = lengths.first(where: { !(1...65_536).contains($0) }) {
            throw ValidationError("invalid lengths = \(bad); allowed: lengths from 1 to 65536")
        }
        guard (1...64).contains(heads) else { throw ValidationError("invalid heads = \(heads); allowed: 1 to 64") }
        guard (1...512).contains(dimension) else {
            throw ValidationError("invalid dimension = \(dimension); allowed: 1 to 512")
        }
        guard (1...1_000).contains(repeats) else {
            throw ValidationError("invalid repeats = \(repeats); allowed: 1 to 1000")
        }
        if !paths.contains(.blocked), let long = lengths.first(where: { $0 > 4096 }) {
            throw ValidationError("invalid lengths = \(long) with --paths materialized; allowed: 1 to 4096 "
                + "(the materialised path holds T × T scores per head; add --paths blocked for longer ones)")
        }
        // What a length holds (checked before anything is allocated): Q, K, V, the output, the seed and
        // their gradients, and on the materialised path about six [H, T, T] score tensors (scores,
        // probabilities, their gradients, and the products' workspace).
        for t in lengths {
            var bytes = 4 * 10 * Double(heads) * Double(t) * Double(dimension)
            if paths.contains(.materialized), t <= 4096 { bytes += 4 * 6 * Double(heads) * Double(t) * Double(t) }
            try RunLimits.checkMemory(bytes, what: "heads \(heads), dimension \(dimension), length \(t)",
                                      advice: "fewer heads, a smaller dimension or length")
        }
    }

    func run() throws {
        let (h, d) = (heads, dimension)
        var rows: [[String]] = []
        for t in lengths {
            var generator = SplitMix64(seed: 1)
            let q = try Tensor(normal: [1, h, t, d], generator: &generator, requiresGradient: true)
            let k = try Tensor(normal: [1, h, t, d], generator: &generator, requiresGradient: true)
            let v = try Tensor(normal: [1, h, t, d], generator: &generator, requiresGradient: true)
            let seed = try Tensor(normal: [1, h, t, d], generator: &generator)
            // Causal attention does half the work of full attention: 2·T²·D per head forward (two
            // products over the lower triangle), and 2.5× that backward (FlashAttention-2's count).
            let forwardFlops = 2 * Double(t) * Double(t) * Double(d) * Double(h)
            let scale = 1 / Float(d).squareRoot()
            for path in paths where path == .blocked || t <= 4096 {
                let attention: () throws -> Tensor
                switch path {
                case .blocked: attention = { try Tensor.causalAttention(queries: q, keys: k, values: v, scale: scale) }
                case .materialized:
                    attention = {
                        // As the model's materialised path computes it.
                        try q.matmul(k, transposeOther: true, scale: scale).causalSoftmax().matmul(v)
                    }
                }
                let forward = try bestTime(repeats) { _ = try GradientMode.withoutGradient { try attention() } }
                let out = try attention()
                let backward = try bestTime(repeats) { try out.backward(seed: seed) }
                rows.append([String(t), path.rawValue, String(format: "%.2f", forward * 1e3),
                             String(format: "%.1f", forwardFlops / forward / 1e9),
                             String(format: "%.2f", backward * 1e3), String(format: "%.1f", 2.5 * forwardFlops / backward / 1e9)])
            }
        }
        // The goal is stated against the matrix product of the same run: the machine's speed that minute.
        let sgemm = try BenchMatrixProduct.gigaflops(size: 1024)
        print("element-wise kernels: \(Kernels.elementwise.rawValue); products: \(Kernels.smallProducts.rawValue)"
              + (Kernels.ownProductTiles.map { " (\($0.rawValue) tiles)" } ?? "") + "; "
              + "B = 1, H = \(h), D = \(d); "
              + "sgemm 1024² in this run: \(String(format: "%.1f", sgemm)) GFLOP/s")
        let shares = rows.map { row in
            [3, 5].map { String(format: "%.0f%%", 100 * Double(row[$0])! / sgemm) }
        }
        print(table(["T", "path", "forward ms", "GFLOP/s", "backward ms", "GFLOP/s", "fwd/sgemm", "bwd/sgemm"],
                    zip(rows, shares).map { $0 + $1 }))
    }
}

struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "memory",
        abstract: "Peak resident memory of one forward pass of the reference model (C=128, 4 layers, 4 heads, RoPE) at batch 1.")

    @Option(help: "Sequence length.") var length = 16_384

    func run() throws {
        guard length > 0 else { throw ValidationError("--length must be positive, not \(length)") }
        let model = try BenchConfiguration.all[1].model()
        var generator = SplitMix64(seed: 3)
        let ids = (0..<length).map { _ in generator.nextInt(in: 0..<256) }
        let before = peakResidentBytes()
        let time = try seconds { _ = try GradientMode.withoutGradient { try model.logits(ids, batchSize: 1, length: length) } }
        let after = peakResidentBytes()
        print(String(format: "T=%d  forward %.2f s  peak resident memory %.1f MiB (%.1f MiB before the pass)",
                     length, time, Double(after) / 1_048_576, Double(before) / 1_048_576))
    }
}

/// The process's peak resident set size (VmHWM in /proc/self/status), in bytes.
func peakResidentBytes() -> Int { statusBytes("VmHWM:") }

/// The process's current resident set size (VmRSS), in bytes.
func residentBytes() -> Int { statusBytes("VmRSS:") }

private func statusBytes(_ field: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
}

struct BenchMatrixProduct: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sgemm",
        abstract: "OpenBLAS sgemm throughput (row-major C = A·B) in GFLOP/s, the engine's matrix product.")

    @Option(parsing: .upToNextOption, help: "Matrix sizes n (n×n times n×n).") var sizes: [Int] = [128, 256, 512, 1024]

    func validate() throws {
        if let bad = sizes.first(where: { !(1...8192).contains($0) }) {
            throw ValidationError("invalid sizes = \(bad); allowed: sizes from 1 to 8192")
        }
    }

    func run() throws {
        var rows: [[String]] = []
        for n in sizes {
            let gigaflops = try Self.gigaflops(size: n)
            let milliseconds = 2 * Double(n * n * n) / gigaflops / 1e6
            rows.append(["\(n)×\(n)", String(format: "%.1f", gigaflops), String(format: "%.3f", milliseconds)])
        }
        print("sgemm on \(Parallel.coreCount) core\(Parallel.coreCount == 1 ? "" : "s"): \(try BLAS.load().summary)")
        print(table(["size", "GFLOP/s", "ms"], rows))
    }

    /// The engine's matrix product C = A·B of n × n matrices: the best of five rounds of ~2 GFLOP each.
    static func gigaflops(size n: Int) throws -> Double {
        var generator = SplitMix64(seed: 1)
        let a = try Tensor(normal: [n, n], generator: &generator), b = try Tensor(normal: [n, n], generator: &generator)
        let c = TensorStorage(count: n * n)
        let repeats = max(3, 2_000_000_000 / (2 * n * n * n))
        let time = bestTime(5) {
            for _ in 0..<repeats {
                Kernels.sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a.storage.pointer, lda: n,
                              b: b.storage.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
            }
        } / Double(repeats)
        return 2 * Double(n * n * n) / time / 1e9
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate",
        abstract: "Time greedy decoding with a KV cache after a prompt of each context length (the reference model: "
            + "C=128, 4 layers, 4 heads, RoPE, batch 1): prefill seconds and milliseconds per new token.")

    @Option(parsing: .upToNextOption, help: "Context lengths (prompt tokens).") var contexts: [Int] = [512, 2048, 8192]
    @Option(help: "New tokens decoded after each prompt.") var tokens = 64
    @Flag(help: "Print JSON (the format bench/generate.sh compares with PyTorch's).") var json = false

    func validate() throws {
        guard !contexts.isEmpty, contexts.allSatisfy({ (1...65_536).contains($0) }) else {
            throw ValidationError("--contexts must be lengths from 1 to 65536, not \(contexts)")
        }
        guard (1...4096).contains(tokens) else { throw ValidationError("--tokens must be from 1 to 4096, not \(tokens)") }
    }

    func run() throws {
        guard let reference = BenchConfiguration.all.first(where: { $0.name == "reference" }) else { return }
        let model = try reference.model()
        var rows: [[String: JSONValue]] = []
        for context in contexts {
            var generator = SplitMix64(seed: 3)
            let prompt = (0..<context).map { _ in generator.nextInt(in: 0..<256) }
            try GradientMode.withoutGradient {
                // One untimed warm-up decode on a short prompt, then the measured prompt.
                let warm = KeyValueCache(model: model)
                _ = try model.logits(Array(prompt.prefix(8)), batchSize: 1, length: min(8, context), cache: warm)
                let cache = KeyValueCache(model: model)
                var last: [Float] = []
                let prefill = try seconds { last = try model.logits(prompt, batchSize: 1, length: context, cache: cache).scalars }
                var next = argMax(last.suffix(256))
                let decode = try seconds {
                    for _ in 0..<tokens {
                        next = argMax(try model.logits([next], batchSize: 1, length: 1, cache: cache).scalars[...])
                    }
                }
                rows.append(["context": .number(Double(context)), "tokens": .number(Double(tokens)),
                             "prefill_seconds": .number(prefill), "ms_per_token": .number(decode / Double(tokens) * 1e3)])
                if !json {
                    print(String(format: "context %6d  prefill %7.3f s  decode %7.3f ms/token", context, prefill, decode / Double(tokens) * 1e3))
                }
            }
        }
        if json {
            try printJSON(["implementation": JSONValue.string("positionlab"), "threads": .number(Double(Parallel.coreCount)),
                           "blas": .string(try BLAS.load().summary), "elementwise": .string(Kernels.elementwise.rawValue),
                           "small_products": .string(Kernels.smallProducts.rawValue),
                           "product_tiles": Kernels.ownProductTiles.map { .string($0.rawValue) } ?? .null,
                           "contexts": .array(rows.map { .object($0) })])
        }
    }

    /// The index of the largest value (greedy decoding).
    func argMax(_ values: ArraySlice<Float>) -> Int {
        var best = values.startIndex
        for i in values.indices where values[i] > values[best] { best = i }
        return best - values.startIndex
    }
}

struct BenchForward: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forward",
        abstract: "Time one forward pass (logits at every position, batch 1) of a transformers folder at each length, "
            + "with peak resident memory; bench/forward.sh runs transformers on the same folder after it.")

    @Option(help: "A transformers folder (Llama, GPT-NeoX or GPT-2).") var model: String
    @Option(parsing: .upToNextOption, help: "Sequence lengths.") var lengths: [Int] = [2048, 8192]
    @Flag(help: "Print JSON (the format bench/forward.sh compares with transformers').") var json = false

    func validate() throws {
        guard !lengths.isEmpty, lengths.allSatisfy({ (1...65_536).contains($0) }) else {
            throw ValidationError("--lengths must be from 1 to 65536, not \(lengths)")
        }
    }

    func run() throws {
        let url = URL(fileURLWithPath: model)
        guard TransformersImport.isTransformersFolder(url) else {
            throw ValidationError("--model \(model) is not a transformers folder (a config.json with a model_type)")
        }
        let loadStart = Date()
        let imported = try TransformersImport(folder: url)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let afterLoad = residentBytes()
        let c = imported.model.configuration
        if let last = imported.model.positionalEncodings.compactMap(\.maximumPosition).min(), let long = lengths.first(where: { $0 > last + 1 }) {
            throw ValidationError("--lengths \(long) exceeds the model's position table (\(last + 1) positions)")
        }
        var rows: [[String: JSONValue]] = []
        for length in lengths {
            var generator = SplitMix64(seed: 3)
            let ids = (0..<length).map { _ in generator.nextInt(in: 0..<c.vocabularySize) }
            let time = try GradientMode.withoutGradient {
                try seconds { _ = try imported.model.logits(ids, batchSize: 1, length: length) }
            }
            let peak = peakResidentBytes()
            rows.append(["length": .number(Double(length)), "seconds": .number(time), "tokens_per_second": .number(Double(length) / time),
                         "peak_resident_mib": .number(Double(peak) / 1_048_576)])
            if !json {
                print(String(format: "T=%6d  forward %7.2f s  %8.0f tokens/s  peak resident memory %.0f MiB",
                             length, time, Double(length) / time, Double(peak) / 1_048_576))
            }
        }
        let parameters = imported.model.namedParameters.reduce(0) { $0 + $1.tensor.count }
        if json {
            try printJSON(["implementation": JSONValue.string("positionlab"), "threads": .number(Double(Parallel.coreCount)),
                           "blas": .string(try BLAS.load().summary), "elementwise": .string(Kernels.elementwise.rawValue),
                           "small_products": .string(Kernels.smallProducts.rawValue),
                           "product_tiles": Kernels.ownProductTiles.map { .string($0.rawValue) } ?? .null,
                           "parameters": .number(Double(parameters)),
                           "load_seconds": .number(loadSeconds), "resident_after_load_mib": .number(Double(afterLoad) / 1_048_576),
                           "lengths": .array(rows.map { .object($0) })])
        } else {
            print(String(format: "%@, %.1fM parameters, loaded in %.1f s (%.0f MiB resident)", imported.family.architecture,
                         Double(parameters) / 1e6, loadSeconds, Double(afterLoad) / 1_048_576))
        }
    }
}
