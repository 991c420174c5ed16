import Models
import PositionalEncodings
import TensorCore
import XCTest

final class GenerationTests: XCTestCase {
    /// Greedy decoding through the KV cache picks, at each step, the arg max of a full forward
    /// over everything so far, for every scheme.
    func testCachedGreedyDecodingEqualsFullRecomputation() throws {
        for (name, scheme) in try KeyValueCacheTests.schemes() {
            let model = try Transformer(configuration: TransformerConfiguration(
                vocabularySize: 13, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, positionalScheme: scheme), seed: 4)
            let prompt = [3, 1, 4, 1, 5]
            let generated = try model.generate(prompt: prompt, count: 8, sampling: SamplingConfiguration())
            var sequence = prompt
            for token in generated {
                let logits = try GradientMode.withoutGradient { try model.logits(sequence, batchSize: 1, length: sequence.count).scalars }
                let last = Array(logits.suffix(13))
                let best = last.indices.max { last[$0] < last[$1] || (last[$0] == last[$1] && $0 > $1) }!
                XCTAssertEqual(token, best, "\(name) at \(sequence.count)")
                sequence.append(token)
            }
        }
    }

    func testSamplingIsSeededAndRespectsTopK() throws {
        let sampling = try SamplingConfiguration(temperature: 1, topK: 2, seed: 5)
        let logits: [Float] = [0, 3, 2.5, -1, 1]
        var generator = SplitMix64(seed: 1)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<2000 { counts[sampling.choose(logits[...], generator: &generator)] += 1 }
        XCTAssertEqual(counts[0] + counts[3] + counts[4], 0, "only the top 2 tokens")
        // P(1) = 1/(1 + e^−0.5) ≈ 0.622.
        XCTAssertEqual(Double(counts[1]) / 2000, 0.622, accuracy: 0.04)
        let model = try Transformer(configuration: TransformerConfiguration(vocabularySize: 9, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2), seed: 0)
        let hot = try SamplingConfiguration(temperature: 2, seed: 7)
        XCTAssertEqual(try model.generate(prompt: [1], count: 20, sampling: hot), try model.generate(prompt: [1], count: 20, sampling: hot))
        XCTAssertThrowsError(try SamplingConfiguration(temperature: -1)) { XCTAssertTrue("\($0)".contains("temperature")) }
        XCTAssertThrowsError(try model.generate(prompt: [9], count: 1, sampling: hot)) { XCTAssertTrue("\($0)".contains("prompt")) }
    }
}
