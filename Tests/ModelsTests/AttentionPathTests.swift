import Models
import NN
import PositionalEncodings
import TensorCore
import XCTest

/// The blocked (online-softmax) attention path against the materialised one, through whole models:
/// same logits, same gradients, for every scheme that has a distance table, and the architecture
/// variants (grouped-query heads, cosine attention, SwiGLU, RMSNorm, post-norm) under a KV cache.
final class AttentionPathTests: XCTestCase {
    func gradients(_ model: Transformer, _ batch: TokenBatch, positions: PositionIDs?) throws -> (Float, [[Float]]) {
        model.zeroGradients()
        let loss = try model.loss(batch, positions: positions)
        try loss.backward()
        return (try loss.item(), model.parameters.map { $0.gradient?.scalars ?? [Float](repeating: 0, count: $0.count) })
    }

    func testBlockedEqualsMaterializedForEverySchemeWithGradients() throws {
        let (b, t, v) = (2, 70, 11) // 70 crosses the 64-wide tiles
        var generator = SplitMix64(seed: 5)
        let ids = (0..<(b * t)).map { _ in generator.nextInt(in: 0..<v) }
        let batch = TokenBatch(inputs: ids, targets: ids.map { ($0 + 1) % v }, lossMask: ids.map { $0 % 3 != 0 }, batchSize: b, length: t)
        // Randomized positions differ per row: the blocked path must index its bias per row too.
        let randomized = try PositionAssignment.randomized(maximumPosition: 300).positions(batchSize: b, length: t, generator: &generator)
        for (name, scheme) in try KeyValueCacheTests.schemes() where name != "shaw" {
            for positions in [nil, randomized] {
                if case .learnedAbsolute = scheme { continue } // its 32-entry table cannot reach T = 70; unbiased like NoPE
                let model = try Transformer(configuration: TransformerConfiguration(
                    vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, positionalScheme: scheme), seed: 3)
                for (parameter, tensor) in model.namedParameters where parameter.hasPrefix("positional") {
                    try tensor.assign(from: Tensor((0..<tensor.count).map { _ in generator.nextNormal() * 0.5 }, shape: tensor.shape))
                }
                let label = "\(name)\(positions == nil ? "" : " randomized")"
                model.attentionImplementation = .materialized
                let (lossM, gradM) = try gradients(model, batch, positions: positions)
                model.attentionImplementation = .blocked
                let (lossB, gradB) = try gradients(model, batch, positions: positions)
                XCTAssertEqual(lossM, lossB, accuracy: 1e-5 * max(1, abs(lossM)), label)
                for (index, (m, blocked)) in zip(gradM, gradB).enumerated() {
                    assertClose(blocked, m, tolerance: 2e-4, "\(label) gradient of \(model.namedParameters[index].name)")
                }
            }
        }
    }

    /// Training and evaluation without a cache keep queries, keys and values in the projections' layout
    /// (`CausalSelfAttention.attendInPlace`); a recorder sends a call down the general path, which
    /// permutes them to [B, H, T, D]. Both must give the same loss and gradients bit for bit: every
    /// scheme, per-row positions, and fixed-temperature cosine scoring, which normalises queries and
    /// keys. Shaw, shared key heads and learned score scales (learned cosine, nGPT) must take the
    /// general path either way.
    func testAttentionInTheProjectionsLayoutEqualsTheGeneralPathBitForBit() throws {
        let (b, t, v) = (2, 20, 11)
        var generator = SplitMix64(seed: 8)
        let ids = (0..<(b * t)).map { _ in generator.nextInt(in: 0..<v) }
        let batch = TokenBatch(inputs: ids, targets: ids.map { ($0 + 3) % v }, lossMask: ids.map { $0 % 4 != 0 }, batchSize: b, length: t)
        let randomized = try PositionAssignment.randomized(maximumPosition: 31).positions(batchSize: b, length: t, generator: &generator)
        var variants: [(String, TransformerConfiguration)] = try KeyValueCacheTests.schemes().map { name, scheme in
            (name, try .init(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, positionalScheme: scheme))
        }
        let rope = PositionalScheme.rope(try RotaryConfiguration())
        variants += [
            ("cosine fixed", try .init(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                       attentionScoring: .cosine(temperature: 0.1, learned: false), positionalScheme: rope)),
            ("cosine learned alibi", try .init(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                               attentionScoring: .cosine(temperature: 0.2, learned: true), positionalScheme: .alibi)),
            ("nGPT", try .init(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, feedForward: .swiGLU,
                               normalizationPlacement: .normalized, tiedEmbeddings: false, positionalScheme: rope)),
            ("gqa 4/2", try .init(vocabularySize: v, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 4, numberOfKeyValueHeads: 2,
                                  positionalScheme: rope)),
        ]
        for (name, configuration) in variants {
            for positions in [nil, randomized] {
                let model = try Transformer(configuration: configuration, seed: 4)
                for (parameter, tensor) in model.namedParameters where parameter.hasPrefix("positional") {
                    try tensor.assign(from: Tensor((0..<tensor.count).map { _ in generator.nextNormal() * 0.5 }, shape: tensor.shape))
                }
                let label = "\(name)\(positions == nil ? "" : " randomized")"
                let (lossInPlace, gradientsInPlace) = try gradients(model, batch, positions: positions)
                let takesIt = !["shaw", "cosine learned alibi", "nGPT", "gqa 4/2"].contains(name)
                XCTAssertEqual(model.blocks.map(\.attention.lastPath), model.blocks.map { _ in
                    takesIt ? AttentionPath.projectionsLayout : .materialized }, label)
                for block in model.blocks { block.attention.recorder = { _, _, _ in } }
                let (loss, gradients) = try gradients(model, batch, positions: positions)
                XCTAssertEqual(model.blocks.map(\.attention.lastPath), model.blocks.map { _ in AttentionPath.materialized }, label)
                XCTAssertEqual(lossInPlace.bitPattern, loss.bitPattern, "\(label): loss \(lossInPlace) against \(loss)")
                for (index, (inPlace, general)) in zip(gradientsInPlace, gradients).enumerated() {
                    XCTAssertEqual(inPlace.map(\.bitPattern), general.map(\.bitPattern),
                                   "\(label): gradient of \(model.namedParameters[index].name)")
                }
            }
        }
    }

    func testForcingBlockedAttentionOnShawIsAClearError() throws {
        let model = try Transformer(configuration: TransformerConfiguration(
            vocabularySize: 7, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2, positionalScheme: .shaw(maximumDistance: 2)), seed: 1)
        model.attentionImplementation = .blocked
        XCTAssertThrowsError(try model.logits([1, 2, 3], batchSize: 1, length: 3)) { error in
            XCTAssertTrue("\(error)".contains("implementation"), "\(error)")
        }
        model.attentionImplementation = .automatic  // automatic falls back to the materialised path
        XCTAssertNoThrow(try model.logits([1, 2, 3], batchSize: 1, length: 3))
    }

    func testArchitectureVariantsDecodeIncrementallyOnBothPaths() throws {
        let rope = PositionalScheme.rope(try RotaryConfiguration())
        let variants: [(String, TransformerConfiguration)] = [
            ("gqa 4/2", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 4, numberOfKeyValueHeads: 2, positionalScheme: rope)),
            ("mqa 4/1 alibi", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 4, numberOfKeyValueHeads: 1, positionalScheme: .alibi)),
            ("cosine fixed", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                       attentionScoring: .cosine(temperature: 0.1, learned: false), positionalScheme: rope)),
            ("cosine learned t5", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                            attentionScoring: .cosine(temperature: 0.2, learned: true),
                                            positionalScheme: .t5(numberOfBuckets: 8, maximumDistance: 16, bidirectional: false))),
            ("swiglu rmsnorm", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2, feedForwardDimension: 24,
                                         feedForward: .swiGLU, normalization: .rmsNorm, positionalScheme: rope)),
            ("post-norm untied", try .init(vocabularySize: 9, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                           normalizationPlacement: .postNorm, tiedEmbeddings: false, positionalScheme: .sinusoidal(scale: 1))),
        ]
        let t = 9
        var generator = SplitMix64(seed: 11)
        let ids = (0..<(2 * t)).map { _ in generator.nextInt(in: 0..<9) }
        for (name, configuration) in variants {
            let model = try Transformer(configuration: configuration, seed: 2)
            for implementation in [AttentionImplementation.materialized, .blocked] {
                model.attentionImplementation = implementation
                try GradientMode.withoutGradient {
                    let full = try model.logits(ids, batchSize: 2, length: t).scalars
                    let cache = KeyValueCache(model: model)
                    var pieces = [[Float]](repeating: [], count: 2)
                    for step in 0..<t {
                        let out = try model.logits([ids[step], ids[t + step]], batchSize: 2, length: 1, cache: cache).scalars
                        pieces[0] += out[0..<9]; pieces[1] += out[9..<18]
                    }
                    assertClose(pieces[0] + pieces[1], full, tolerance: 2e-4, "\(name) \(implementation)")
                }
            }
            // Grouped heads really share: key and value projections are Hkv·D wide.
            XCTAssertEqual(model.blocks[0].attention.keyProjection.weight.shape[0], configuration.numberOfKeyValueHeads * configuration.headDimension)
        }
    }

    func testInvalidArchitecturesAreRejected() {
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 9, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 4,
                                                          numberOfKeyValueHeads: 3)) { XCTAssertTrue("\($0)".contains("numberOfKeyValueHeads"), "\($0)") }
        XCTAssertThrowsError(try TransformerConfiguration(vocabularySize: 9, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 4,
                                                          attentionScoring: .cosine(temperature: 0, learned: false))) {
            XCTAssertTrue("\($0)".contains("temperature"), "\($0)")
        }
    }
}
