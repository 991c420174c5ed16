import ArgumentParser
import Foundation
import Interop
import Lab
import Models
import PositionalEncodings
import TensorCore
import Tasks

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a trained model, token by token through a KV cache.",
        discussion: "Byte-level models (vocabulary 256) and transformers folders with a byte-level BPE tokenizer.json take "
            + "--prompt as text and print text; others take --tokens.")

    @Option(help: "Run folder holding checkpoint.safetensors, or a transformers folder.") var model: String
    @Option(help: "Prompt text (byte-level models).") var prompt: String?
    @Option(help: "Prompt token IDs, comma-separated (any model).") var tokens: String?
    @Option(help: "Tokens to generate.") var count = 64
    @Option(help: "0 for greedy decoding, else the sampling temperature.", transform: parseFloat32) var temperature: Float = 0
    @Option(help: "Sample among the k most likely tokens.") var topK: Int?
    @Option(help: "Seed for sampling.") var seed: UInt64 = 0

    func validate() throws {
        guard (1...65_536).contains(count) else { throw ValidationError("--count must be from 1 to 65536, not \(count)") }
    }

    func run() throws {
        let transformer = try checkpointedModel(model)
        let tokenizerFile = URL(fileURLWithPath: model).appendingPathComponent("tokenizer.json")
        // The tokenizer reads --prompt and writes the output; with --tokens IDs go in and out as they are.
        let bpe = prompt != nil && TransformersImport.isTransformersFolder(URL(fileURLWithPath: model))
            && transformer.configuration.vocabularySize != 256
            && FileManager.default.fileExists(atPath: tokenizerFile.path) ? try ByteLevelBPE(contentsOf: tokenizerFile) : nil
        if let bpe, bpe.vocabularySize > transformer.configuration.vocabularySize {
            throw ValidationError("\(tokenizerFile.path) has ids up to \(bpe.vocabularySize - 1), but the model embeds "
                                  + "\(transformer.configuration.vocabularySize) tokens (vocab_size): they do not belong together")
        }
        let byteLevel = transformer.configuration.vocabularySize == 256
        let promptTokens: [Int]
        switch (prompt, tokens) {
        case let (text?, nil):
            if let bpe {
                promptTokens = try bpe.encode(text)
            } else {
                guard byteLevel else {
                    throw ValidationError("--prompt needs a byte-level model (vocabulary 256) or a transformers folder with "
                                          + "tokenizer.json; this one has \(transformer.configuration.vocabularySize): use --tokens")
                }
                promptTokens = Array(text.utf8).map(Int.init)
            }
            guard !promptTokens.isEmpty else { throw ValidationError("--prompt is empty") }
        case let (nil, list?):
            let parsed = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { throw ValidationError("--tokens must be comma-separated integers, not \"\(list)\"") }
            promptTokens = parsed.map { $0! }
        default: throw ValidationError("give exactly one of --prompt and --tokens")
        }
        if let last = transformer.positionalEncodings.compactMap(\.maximumPosition).min(), promptTokens.count + count > last + 1 {
            throw ValidationError("--count \(count) after a prompt of \(promptTokens.count) tokens needs positions up to "
                                  + "\(promptTokens.count + count - 1); this model's position table ends at \(last)")
        }
        let sampling = try SamplingConfiguration(temperature: temperature, topK: topK, seed: seed)
        let output: [Int]
        let folder = URL(fileURLWithPath: model), configuration = folder.appendingPathComponent(Experiment.configurationFile)
        if !TransformersImport.isTransformersFolder(folder), FileManager.default.fileExists(atPath: configuration.path),
           case let assignment = try Experiment.specification(in: folder).positions.atEvaluation,
           let n = assignment.longestEvaluation {
            // Trained on randomized positions: decoded on positions drawn from the same range, as it is evaluated.
            let total = promptTokens.count + count
            guard total <= n else {
                throw ValidationError("--count \(count) after a prompt of \(promptTokens.count) tokens makes \(total) tokens; "
                                      + "\(model) was trained on randomized positions from [0, \(n)), so at most \(n)")
            }
            var generator = SplitMix64(seed: seed ^ 0x9051_7105)
            let positions = try assignment.positions(batchSize: 1, length: total, generator: &generator).values
            output = try transformer.generate(prompt: promptTokens, positions: positions, count: count, sampling: sampling)
        } else {
            output = try transformer.generate(prompt: promptTokens, count: count, sampling: sampling)
        }
        if let bpe, tokens == nil {
            print(try bpe.decode(output))
        } else if byteLevel, tokens == nil {
            print(String(decoding: output.map(UInt8.init), as: UTF8.self))
        } else {
            print(output.map(String.init).joined(separator: ","))
        }
    }
}
