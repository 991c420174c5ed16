import Foundation
import XCTest
import Interop
import Models
import PositionalEncodings
import TensorCore

/// Fixtures written by scripts/make_interop_fixtures.sh (transformers 5.24.0, torch 2.13.0):
/// `exported/` holds tiny PositionLab runs written by `poslab export` with the weights they came
/// from (source.safetensors), `foreign/` tiny random models saved by transformers; each has
/// transformers' logits for fixed token IDs (logits.json).
enum InteropFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func folders(_ group: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory.appendingPathComponent(group), includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
    }

    struct Logits: Decodable {
        let ids: [Int]
        let batch: Int
        let length: Int
        let vocabulary: Int
        let logits: [Float]
    }

    static func logits(_ folder: URL) throws -> Logits {
        try JSONDecoder().decode(Logits.self, from: Data(contentsOf: folder.appendingPathComponent("logits.json")))
    }
}

/// max |a − b| / max |b|: the issue's "equal within 1e-4 (relative)".
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    // max() skips NaN: a NaN anywhere is an infinite error.
    if a.contains(where: \.isNaN) || b.contains(where: \.isNaN) { return .infinity }
    let scale = b.map(abs).max() ?? 1
    return zip(a, b).map { abs($0 - $1) }.max()! / max(scale, 1e-12)
}

final class TransformersFixtureTests: XCTestCase {

    /// Train in PositionLab → export → transformers' logits; the same logits from the run's own
    /// model and from the exported folder imported back; and today's exporter writes the same files.
    func testExportedRunsGiveTransformersLogits() throws {
        let folders = try InteropFixtures.folders("exported")
        XCTAssertEqual(folders.count, 7)
        for folder in folders {
            let name = folder.lastPathComponent
            let reference = try InteropFixtures.logits(folder)
            let source = try Transformer.load(from: folder.appendingPathComponent("source.safetensors"))
            let own = try source.logits(reference.ids, batchSize: reference.batch, length: reference.length).scalars
            XCTAssertLessThan(relativeError(own, reference.logits), 1e-4, "\(name): the run's model against transformers")

            let imported = try TransformersImport(folder: folder)
            let back = try imported.model.logits(reference.ids, batchSize: reference.batch, length: reference.length).scalars
            XCTAssertLessThan(relativeError(back, reference.logits), 1e-4, "\(name): imported against transformers")

            let export = try TransformersExport(model: source, maximumPositions: 32)
            let committed = try SafeTensors.read(folder.appendingPathComponent("model.safetensors")).tensors
            XCTAssertEqual(Set(export.tensors.map(\.name)), Set(committed.keys), name)
            for (tensorName, tensor) in export.tensors {
                XCTAssertEqual(tensor.shape, committed[tensorName]?.shape, "\(name): \(tensorName)")
                XCTAssertEqual(tensor.scalars, committed[tensorName]?.scalars, "\(name): \(tensorName)")
            }
            let config = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
            XCTAssertEqual(JSONValue.object(export.configuration), config, name)
        }
    }

    /// Models made by transformers (Llama with grouped-query heads, no biases and linear RoPE
    /// scaling; GPT-NeoX with partial rotation and exact GELU; GPT-2; Llama in BFloat16 shards).
    func testForeignModelsGiveTransformersLogits() throws {
        let folders = try InteropFixtures.folders("foreign")
        XCTAssertEqual(folders.map(\.lastPathComponent),
                       ["gpt2", "gpt_neox-partial", "gpt_neox-pythia", "llama-gqa", "llama-gqa-bf16-sharded"])
        for folder in folders {
            let reference = try InteropFixtures.logits(folder)
            let imported = try TransformersImport(folder: folder)
            let logits = try imported.model.logits(reference.ids, batchSize: reference.batch, length: reference.length).scalars
            XCTAssertLessThan(relativeError(logits, reference.logits), 1e-4, folder.lastPathComponent)
        }
        let llama = try TransformersImport(folder: InteropFixtures.directory.appendingPathComponent("foreign/llama-gqa")).model.configuration
        XCTAssertEqual(llama.numberOfKeyValueHeads, 2)
        XCTAssertEqual(llama.normalizationEpsilon, 1e-5)
        guard case let .rope(rotary) = llama.positionalScheme else { return XCTFail("Llama imports as RoPE") }
        XCTAssertEqual(rotary.base, 500)
        XCTAssertEqual(rotary.scaling, .linear(factor: 2))
    }
}

final class TransformersRoundTripTests: XCTestCase {

    /// A model with every parameter drawn at random (norm scales near 1), so biases and norms count.
    func randomModel(_ scheme: PositionalScheme, feedForward: FeedForwardKind = .mlp, normalization: NormalizationKind = .layerNorm,
                     activation: Activation = .geluTanh, keyValueHeads: Int? = nil, tied: Bool = true,
                     placement: NormalizationPlacement = .preNorm, seed: UInt64 = 7) throws -> Transformer {
        let configuration = try TransformerConfiguration(
            vocabularySize: 40, modelDimension: 24, numberOfLayers: 2, numberOfHeads: 3, numberOfKeyValueHeads: keyValueHeads,
            feedForwardDimension: 40, feedForward: feedForward, activation: activation, normalization: normalization,
            normalizationPlacement: placement, tiedEmbeddings: tied, positionalScheme: scheme)
        let model = try Transformer(configuration: configuration, seed: seed)
        var generator = SplitMix64(seed: seed + 1)
        for (name, parameter) in model.namedParameters {
            let isScale = name.hasSuffix("norm.weight")
            let values: [Float] = (0..<parameter.count).map { _ in (isScale ? 1 : 0) + 0.2 * generator.nextNormal() }
            try parameter.assign(from: Tensor(values, shape: parameter.shape))
        }
        return model
    }

    /// Export, write, import: the same logits, for every scheme and block an architecture expresses.
    func testRoundTripKeepsLogits() throws {
        let rope = { (pairing: RotaryPairing, partial: Double, scaling: RoPEScaling) in
            PositionalScheme.rope(try RotaryConfiguration(base: 1000, pairing: pairing, partialRotaryFactor: partial, scaling: scaling,
                                                          maximumPositionEmbeddings: 16))
        }
        let cases: [(String, Transformer, TransformersFamily)] = [
            ("neox interleaved partial", try randomModel(rope(.interleaved, 0.5, .none)), .gptNeoX),
            ("neox half-split, exact GELU, untied", try randomModel(rope(.halfSplit, 1, .linear(factor: 2)), activation: .geluErf,
                                                                    tied: false), .gptNeoX),
            ("neox static NTK as a base", try randomModel(rope(.halfSplit, 1, .ntk(factor: 4))), .gptNeoX),
            ("llama GQA interleaved", try randomModel(rope(.interleaved, 1, .none), feedForward: .swiGLU, normalization: .rmsNorm,
                                                      keyValueHeads: 1), .llama),
            ("llama llama3 scaling, untied", try randomModel(rope(.halfSplit, 1, .llama3(Llama3Parameters(
                factor: 4, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaximumLength: 8))),
                feedForward: .swiGLU, normalization: .rmsNorm, tied: false), .llama),
            ("llama HoPE", try randomModel(.hope(try RotaryConfiguration(pairing: .interleaved), cut: .count(2)),
                                           feedForward: .swiGLU, normalization: .rmsNorm), .llama),
            ("neox parallel residual", try randomModel(rope(.interleaved, 0.25, .none), placement: .parallel), .gptNeoX),
            ("gpt2 learned", try randomModel(.learnedAbsolute(maximumLength: 20)), .gpt2),
            ("gpt2 sinusoidal", try randomModel(.sinusoidal(scale: 0.5)), .gpt2),
            ("gpt2 nope", try randomModel(.none), .gpt2),
        ]
        let ids = (0..<(2 * 14)).map { ($0 * 7 + 3) % 40 }
        for (name, model, family) in cases {
            let export = try TransformersExport(model: model, maximumPositions: 18)
            XCTAssertEqual(export.family, family, name)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-roundtrip-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            try export.write(to: folder)
            let imported = try TransformersImport(folder: folder)
            let original = try model.logits(ids, batchSize: 2, length: 14).scalars
            let back = try imported.model.logits(ids, batchSize: 2, length: 14).scalars
            XCTAssertLessThan(relativeError(back, original), 2e-6, name)
        }
    }

    func testSchemesWithoutAnArchitectureAreRefusedWithTheReason() throws {
        func refusal(_ model: Transformer) -> String {
            do { _ = try TransformersExport(model: model, maximumPositions: 16); return "exported" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(try randomModel(.alibi)).contains("BLOOM"))
        XCTAssertTrue(refusal(try randomModel(.t5(numberOfBuckets: 8, maximumDistance: 16, bidirectional: false))).contains("t5"))
        XCTAssertTrue(refusal(try randomModel(.hope(try RotaryConfiguration(), cut: .count(2)))).contains("proportional"))
        XCTAssertTrue(refusal(try randomModel(.rope(try RotaryConfiguration()), keyValueHeads: 1)).contains("grouped-query"))
        XCTAssertTrue(refusal(try randomModel(.rope(try RotaryConfiguration(partialRotaryFactor: 0.5)), feedForward: .swiGLU,
                                              normalization: .rmsNorm)).contains("partial_rotary_factor"))
        XCTAssertTrue(refusal(try randomModel(.learnedAbsolute(maximumLength: 8), feedForward: .swiGLU)).contains("architecture"))
        XCTAssertTrue(refusal(try randomModel(.rope(try RotaryConfiguration()), placement: .postNorm)).contains("postNorm"))
        XCTAssertTrue(refusal(try randomModel(.learnedAbsolute(maximumLength: 8), placement: .parallel)).contains("only GPT-NeoX"))
    }

    func testWriteRefusesAnExistingFolderAndLeavesNothingBehind() throws {
        let model = try randomModel(.none)
        let export = try TransformersExport(model: model, maximumPositions: 8)
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: parent) }
        let folder = parent.appendingPathComponent("model")
        try export.write(to: folder)
        XCTAssertThrowsError(try export.write(to: folder)) { XCTAssertTrue("\($0)".contains("does not exist yet"), "\($0)") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent.path), ["model"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["config.json", "model.safetensors"])
    }

    /// An export asked to stop leaves nothing; one killed outright leaves a hidden folder that the
    /// next export to the same destination removes (its process being gone), and no other.
    func testInterruptedAndAbandonedExportsLeaveNothing() throws {
        let export = try TransformersExport(model: try randomModel(.none), maximumPositions: 8)
        let manager = FileManager.default
        let parent = manager.temporaryDirectory.appendingPathComponent("poslab-export-\(UUID().uuidString)")
        try manager.createDirectory(at: parent, withIntermediateDirectories: false)
        defer { try? manager.removeItem(at: parent) }
        let folder = parent.appendingPathComponent("model")
        var asked = 0
        XCTAssertThrowsError(try export.write(to: folder, extraFiles: ["a.json": Data("{}".utf8)], shouldStop: {
            asked += 1
            return asked == 2
        })) { XCTAssertTrue($0 is TransformersExport.Interrupted, "\($0)") }
        XCTAssertEqual(try manager.contentsOfDirectory(atPath: parent.path), [], "nothing written")
        // A process that no longer exists (a child that has exited), and one that does (this one's parent).
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let host = TransformersExport.hostName
        let gone = ".model.partial-\(host)-\(child.processIdentifier)", alive = ".model.partial-\(host)-\(getppid())"
        let elsewhere = ".model.partial-another-host-\(child.processIdentifier)"
        let other = ".other.partial-\(host)-\(child.processIdentifier)"
        for name in [gone, alive, elsewhere, other] {
            try manager.createDirectory(at: parent.appendingPathComponent(name), withIntermediateDirectories: false)
        }
        try export.write(to: folder)
        XCTAssertEqual(Set(try manager.contentsOfDirectory(atPath: parent.path)), ["model", alive, elsewhere, other],
                       "another machine's export, a live one and another destination's are left alone")
    }

    func testWriteRefusesAFolderItCannotWrite() throws {
        try XCTSkipIf(getuid() == 0, "root writes into any folder: the permission check cannot be seen")
        let export = try TransformersExport(model: try randomModel(.none), maximumPositions: 8)
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: parent) }
        let locked = parent.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o555])
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked.path) }
        XCTAssertThrowsError(try export.write(to: locked.appendingPathComponent("model"))) {
            XCTAssertTrue("\($0)".contains("a path in a folder you can write"), "\($0)")
        }
    }
}

final class TransformersBadInputTests: XCTestCase {
    /// A copy of a fixture folder in a temporary place, changed by `edit`.
    func editedCopy(of fixture: String, _ edit: (URL) throws -> Void) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-bad-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: InteropFixtures.directory.appendingPathComponent(fixture), to: copy)
        try edit(copy)
        return copy
    }

    func editConfig(_ folder: URL, _ change: (inout [String: JSONValue]) -> Void) throws {
        let url = folder.appendingPathComponent("config.json")
        guard case var .object(config) = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) else { return XCTFail() }
        change(&config)
        try JSONEncoder().encode(JSONValue.object(config)).write(to: url)
    }

    func message(_ folder: URL) -> String {
        defer { try? FileManager.default.removeItem(at: folder) }
        do { _ = try TransformersImport(folder: folder); return "imported" } catch { return "\(error)" }
    }

    func testUnsupportedArchitecturesAndSettingsAreNamed() throws {
        let bloom = message(try editedCopy(of: "foreign/gpt2") { try editConfig($0) { $0["model_type"] = .string("bloom") } })
        XCTAssertTrue(bloom.contains("\"bloom\"") && bloom.contains("llama (LlamaForCausalLM)"), bloom)
        let relu = message(try editedCopy(of: "foreign/gpt_neox-partial") { try editConfig($0) { $0["hidden_act"] = .string("relu") } })
        XCTAssertTrue(relu.contains("activation \"relu\" is not supported"), relu)
        let bias = message(try editedCopy(of: "foreign/llama-gqa") { try editConfig($0) { $0["mlp_bias"] = .bool(true) } })
        XCTAssertTrue(bias.contains("mlp_bias"), bias)
        let rope = message(try editedCopy(of: "foreign/llama-gqa") {
            try editConfig($0) { $0["rope_parameters"] = .object(["rope_type": .string("su-rope")]) }
        })
        XCTAssertTrue(rope.contains("rope_parameters") && rope.contains("su-rope"), rope)
    }

    func testMissingAndMisshapenTensorsAreNamed() throws {
        let shape = message(try editedCopy(of: "foreign/gpt2") { try editConfig($0) { $0["vocab_size"] = .number(65) } })
        XCTAssertTrue(shape.contains("transformer.wte.weight") && shape.contains("[65, 16]"), shape)
        let shard = message(try editedCopy(of: "foreign/llama-gqa-bf16-sharded") {
            try FileManager.default.removeItem(at: $0.appendingPathComponent("model-00002-of-00002.safetensors"))
        })
        XCTAssertTrue(shard.contains("model-00002-of-00002.safetensors, which is missing"), shard)
        let truncated = message(try editedCopy(of: "foreign/gpt_neox-partial") {
            let url = $0.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: url)
            try data.prefix(data.count - 100).write(to: url)
        })
        XCTAssertTrue(truncated.contains("model.safetensors"), truncated)
        let hostile = message(try editedCopy(of: "foreign/llama-gqa-bf16-sharded") {
            let url = $0.appendingPathComponent("model.safetensors.index.json")
            try Data(#"{"weight_map": {"model.norm.weight": "../../etc/passwd"}}"#.utf8).write(to: url)
        })
        XCTAssertTrue(hostile.contains("not a file name in the folder"), hostile)
        let repeated = message(try editedCopy(of: "foreign/llama-gqa-bf16-sharded") {
            let url = $0.appendingPathComponent("model.safetensors.index.json")
            try Data(#"{"weight_map": {"model.norm.weight": "a.safetensors", "model.norm.weight": "b.safetensors"}}"#.utf8).write(to: url)
        })
        XCTAssertTrue(repeated.contains("names weight_map.model.norm.weight twice"), repeated)
        let header = message(try editedCopy(of: "foreign/gpt2") {
            // The same tensor entry twice in model.safetensors' header (the JSON text edited, its length kept).
            let url = $0.appendingPathComponent("model.safetensors")
            var data = try Data(contentsOf: url)
            let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            var text = String(decoding: data[8..<(8 + length)], as: UTF8.self)
            let names = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]).keys
                .filter { $0 != "__metadata__" }.sorted()
            let b = try XCTUnwrap(names.first { n in names.contains { $0 != n && $0.utf8.count == n.utf8.count } })
            let a = try XCTUnwrap(names.first { $0 != b && $0.utf8.count == b.utf8.count })
            text = text.replacingOccurrences(of: "\"\(b)\"", with: "\"\(a)\"")
            data.replaceSubrange(8..<(8 + length), with: Data(text.utf8))
            try data.write(to: url)
        })
        XCTAssertTrue(header.contains("the header names") && header.contains(" twice"), header)
        let empty = message(try editedCopy(of: "foreign/gpt2") {
            try FileManager.default.removeItem(at: $0.appendingPathComponent("model.safetensors"))
        })
        XCTAssertTrue(empty.contains("holds neither model.safetensors nor model.safetensors.index.json"), empty)
    }

    /// A tensor the model has no place for is refused by name (its logits would not be the
    /// checkpoint's); known weightless buffers are not.
    func testTensorsWithoutAPlaceAreRefusedAndBuffersAreNot() throws {
        func adding(_ extra: [(name: String, tensor: Tensor)], to fixture: String) throws -> URL {
            try editedCopy(of: fixture) { folder in
                let url = folder.appendingPathComponent("model.safetensors")
                let file = try SafeTensors.read(url)
                try SafeTensors.write(file.tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + extra,
                                      metadata: file.metadata, to: url)
            }
        }
        let layer = message(try adding([("transformer.h.9.mlp.c_fc.weight", Tensor(zeros: [16, 64]))], to: "foreign/gpt2"))
        XCTAssertTrue(layer.contains("\"transformer.h.9.mlp.c_fc.weight\"") && layer.contains("has no place"), layer)
        let two = message(try adding([("transformer.h.0.attn.q_norm.weight", Tensor(zeros: [4])),
                                      ("transformer.h.0.attn.k_norm.weight", Tensor(zeros: [4]))], to: "foreign/gpt2"))
        XCTAssertTrue(two.contains("k_norm.weight\" (and 1 more)"), two)
        let buffers = message(try adding([("transformer.h.0.attn.bias", Tensor(zeros: [1, 1, 4, 4])),
                                          ("transformer.h.0.attn.masked_bias", Tensor(zeros: [1]))], to: "foreign/gpt2"))
        XCTAssertEqual(buffers, "imported", "GPT-2's causal-mask buffers carry no weights")
        let frequencies = message(try adding([("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor(zeros: [4]))],
                                             to: "foreign/llama-gqa"))
        XCTAssertEqual(frequencies, "imported")
    }

    func testARunFolderIsNotATransformersFolder() throws {
        XCTAssertTrue(TransformersImport.isTransformersFolder(InteropFixtures.directory.appendingPathComponent("foreign/gpt2")))
        XCTAssertFalse(TransformersImport.isTransformersFolder(InteropFixtures.directory))
    }
}
