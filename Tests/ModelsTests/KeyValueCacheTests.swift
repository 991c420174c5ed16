import Models
import NN
import PositionalEncodings
import TensorCore
import XCTest

/// Whole-sequence forward equals token-by-token decoding with a KV cache, for every scheme.
final class KeyValueCacheTests: XCTestCase {
    static func schemes() throws -> [(String, PositionalScheme)] {
        let half = 4 // R/2 for head dimension 8
        return [
            ("nope", .none),
            ("sinusoidal", .sinusoidal(scale: 1)),
            ("learned", .learnedAbsolute(maximumLength: 32)),
            ("relative", .relativeBias(maximumDistance: 3)),
            ("t5", .t5(numberOfBuckets: 8, maximumDistance: 10, bidirectional: false)),
            ("t5-bidirectional", .t5(numberOfBuckets: 8, maximumDistance: 10, bidirectional: true)),
            ("shaw", .shaw(maximumDistance: 3)),
            ("alibi", .alibi),
            ("rope-half", .rope(try RotaryConfiguration())),
            ("rope-interleaved-partial", .rope(try RotaryConfiguration(pairing: .interleaved, partialRotaryFactor: 0.5))),
            ("rope-linear", .rope(try RotaryConfiguration(scaling: .linear(factor: 2)))),
            ("rope-ntk", .rope(try RotaryConfiguration(scaling: .ntk(factor: 3)))),
            ("rope-dynamic", .rope(try RotaryConfiguration(scaling: .dynamic(factor: 2, originalMaximumLength: 4)))),
            ("rope-yarn", .rope(try RotaryConfiguration(scaling: .yarn(YaRNParameters(factor: 4, originalMaximumLength: 6))))),
            ("rope-llama3", .rope(try RotaryConfiguration(scaling: .llama3(Llama3Parameters(factor: 8, lowFrequencyFactor: 1,
                                                                                            highFrequencyFactor: 4, originalMaximumLength: 8)))))
            ,
            ("rope-longrope", .rope(try RotaryConfiguration(scaling: .longRoPE(LongRoPEParameters(
                shortFactor: (0..<half).map { 1 + Double($0) * 0.1 }, longFactor: (0..<half).map { 2 + Double($0) * 0.5 },
                originalMaximumLength: 5, factor: nil, attentionFactor: nil)), maximumPositionEmbeddings: 20))),
            ("hope", .hope(try RotaryConfiguration(), cut: .trainingLength(8))),
        ]
    }

    func testIncrementalDecodingEqualsFullForwardForEveryScheme() throws {
        let (b, t, v) = (2, 11, 13)
        var generator = SplitMix64(seed: 7)
        let ids = (0..<(b * t)).map { _ in generator.nextInt(in: 0..<v) }
        for (name, scheme) in try Self.schemes() {
            let model = try Transformer(configuration: TransformerConfiguration(
                vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, positionalScheme: scheme), seed: 3)
            try perturbPositionalTables(model, generator: &generator)
            try GradientMode.withoutGradient {
                let full = try model.logits(ids, batchSize: b, length: t).scalars
                let cache = KeyValueCache(model: model)
                for step in 0..<t {
                    let stepIDs = (0..<b).map { ids[$0 * t + step] }
                    let incremental = try model.logits(stepIDs, batchSize: b, length: 1, cache: cache).scalars
                    // Reference: the whole prefix at once (equal to the full forward for every scheme
                    // whose frequencies do not depend on the length, which is checked below too).
                    let prefixIDs = (0..<b).flatMap { Array(ids[($0 * t)..<($0 * t + step + 1)]) }
                    let prefix = try model.logits(prefixIDs, batchSize: b, length: step + 1).scalars
                    for row in 0..<b {
                        let got = Array(incremental[(row * v)..<((row + 1) * v)])
                        let last = ((row * (step + 1)) + step) * v
                        assertClose(got, Array(prefix[last..<(last + v)]), tolerance: 2e-4, "\(name) step \(step) row \(row) vs prefix")
                        if !scheme.dependsOnLength {
                            let f = (row * t + step) * v
                            assertClose(got, Array(full[f..<(f + v)]), tolerance: 2e-4, "\(name) step \(step) row \(row) vs full")
                        }
                    }
                }
                XCTAssertEqual(cache.length, t)
            }
        }
    }

    /// The in-place inference path with grouped heads, cosine and nGPT scoring equals the full forward.
    func testInPlaceCacheWithGroupedHeadsAndOtherScorings() throws {
        let (t, v) = (70, 11)  // past the blocked-attention threshold of the full forward
        var generator = SplitMix64(seed: 5)
        let ids = (0..<t).map { _ in generator.nextInt(in: 0..<v) }
        let configurations: [(String, TransformerConfiguration)] = [
            ("gqa-rope", try TransformerConfiguration(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 4,
                                                      numberOfKeyValueHeads: 2, positionalScheme: .rope(try RotaryConfiguration()))),
            ("mqa-alibi", try TransformerConfiguration(vocabularySize: v, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 4,
                                                       numberOfKeyValueHeads: 1, positionalScheme: .alibi)),
            ("cosine-yarn", try TransformerConfiguration(vocabularySize: v, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2,
                attentionScoring: .cosine(temperature: 0.1, learned: false),
                positionalScheme: .rope(try RotaryConfiguration(scaling: .yarn(YaRNParameters(factor: 4, originalMaximumLength: 16)))))),
            ("ngpt-rope", try TransformerConfiguration(vocabularySize: v, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2,
                feedForward: .swiGLU, normalizationPlacement: .normalized, attentionScoring: .normalized,
                positionalScheme: .rope(try RotaryConfiguration()))),
        ]
        for (name, configuration) in configurations {
            let model = try Transformer(configuration: configuration, seed: 2)
            try GradientMode.withoutGradient {
                let full = try model.logits(ids, batchSize: 1, length: t).scalars
                let cache = KeyValueCache(model: model)
                var incremental = try model.logits(Array(ids[0..<3]), batchSize: 1, length: 3, cache: cache).scalars
                for step in 3..<t { incremental += try model.logits([ids[step]], batchSize: 1, length: 1, cache: cache).scalars }
                assertClose(incremental, full, tolerance: 2e-4, name)
                XCTAssertEqual(cache.layers[0].content, .scoredKeys, name)
                XCTAssertGreaterThanOrEqual(cache.layers[0].capacity, t)
            }
        }
    }

    /// A prefill split into chunks of queries (a small score budget) equals the full forward, with
    /// score biases computed per chunk.
    func testPrefillInChunksOfQueriesMatches() throws {
        let (t, v) = (23, 9)
        var generator = SplitMix64(seed: 4)
        let ids = (0..<(2 * t)).map { _ in generator.nextInt(in: 0..<v) }
        for scheme: PositionalScheme in [.alibi, .t5(numberOfBuckets: 8, maximumDistance: 10, bidirectional: false), .shaw(maximumDistance: 3),
                                         .rope(try RotaryConfiguration())] {
            let model = try Transformer(configuration: TransformerConfiguration(vocabularySize: v, modelDimension: 16, numberOfLayers: 2,
                                                                                numberOfHeads: 2, positionalScheme: scheme), seed: 6)
            try perturbPositionalTables(model, generator: &generator)
            for block in model.blocks { block.attention.cachedScoreBudget = 2 * 2 * 20 }  // chunks of a few queries
            try GradientMode.withoutGradient {
                let full = try model.logits(ids, batchSize: 2, length: t).scalars
                let cache = KeyValueCache(model: model)
                let prefill = try model.logits(ids, batchSize: 2, length: t, cache: cache).scalars
                assertClose(prefill, full, tolerance: 2e-4, "\(scheme) chunked prefill")
            }
        }
    }

    func testChunkedPrefillThenDecodeMatches() throws {
        let (t, v) = (9, 11)
        var generator = SplitMix64(seed: 9)
        let ids = (0..<t).map { _ in generator.nextInt(in: 0..<v) }
        let model = try Transformer(configuration: TransformerConfiguration(
            vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 4, positionalScheme: .alibi), seed: 1)
        try GradientMode.withoutGradient {
            let full = try model.logits(ids, batchSize: 1, length: t).scalars
            let cache = KeyValueCache(model: model)
            let first = try model.logits(Array(ids[0..<5]), batchSize: 1, length: 5, cache: cache).scalars
            let rest = try model.logits(Array(ids[5...]), batchSize: 1, length: 4, cache: cache).scalars
            assertClose(first + rest, full, tolerance: 2e-4, "prefill 5 then 4")
        }
    }

    /// Zero-initialised bias tables would make a broken lookup invisible: give them random values.
    private func perturbPositionalTables(_ model: Transformer, generator: inout SplitMix64) throws {
        for (name, tensor) in model.namedParameters where name.hasPrefix("positional") {
            let values = (0..<tensor.count).map { _ in generator.nextNormal() * 0.5 }
            try tensor.assign(from: Tensor(values, shape: tensor.shape))
        }
    }
}

extension PositionalScheme {
    var dependsOnLength: Bool {
        if case let .rope(configuration) = self { return configuration.scaling.dependsOnLength }
        return false
    }
}

func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    var worst: Float = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
    XCTAssertLessThanOrEqual(worst, tolerance, message, file: file, line: line)
}
