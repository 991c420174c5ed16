import ArgumentParser
import Foundation
import Models

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a trained model, token by token through a KV cache.",
        discussion: "Byte-level models (vocabulary 256) take --prompt as text and print text; others take --tokens.")

    @Option(help: "Run folder holding checkpoint.safetensors.") var model: String
    @Option(help: "Prompt text (byte-level models).") var prompt: String?
    @Option(help: "Prompt token IDs, comma-separated (any model).") var tokens: String?
    @Option(help: "Tokens to generate.") var count = 64
    @Option(help: "0 for greedy decoding, else the sampling temperature.", transform: parseFloat32) var temperature: Float = 0
    @Option(help: "Sample among the k most likely tokens.") var topK: Int?
    @Option(help: "Seed for sampling.") var seed: UInt64 = 0

    func run() throws {
        let transformer = try checkpointedModel(model)
        let byteLevel = transformer.configuration.vocabularySize == 256
        let promptTokens: [Int]
        switch (prompt, tokens) {
        case let (text?, nil):
            guard byteLevel else { throw ValidationError("--prompt needs a byte-level model (vocabulary 256); this one has \(transformer.configuration.vocabularySize): use --tokens") }
            promptTokens = Array(text.utf8).map(Int.init)
        case let (nil, list?):
            let parsed = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { throw ValidationError("--tokens must be comma-separated integers, not \"\(list)\"") }
            promptTokens = parsed.map { $0! }
        default: throw ValidationError("give exactly one of --prompt and --tokens")
        }
        let sampling = try SamplingConfiguration(temperature: temperature, topK: topK, seed: seed)
        let output = try transformer.generate(prompt: promptTokens, count: count, sampling: sampling)
        if byteLevel, tokens == nil {
            print(String(decoding: output.map(UInt8.init), as: UTF8.self))
        } else {
            print(output.map(String.init).joined(separator: ","))
        }
    }
}
