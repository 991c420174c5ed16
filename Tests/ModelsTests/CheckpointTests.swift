import Foundation
import Models
import NN
import PositionalEncodings
import TensorCore
import XCTest

/// Safetensors files, checkpoints and exact resume.
final class CheckpointTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("positionlab-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testSafeTensorsLayoutFollowsTheSpecification() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = try Tensor([-0.5], shape: [1])
        let data = try SafeTensors.encode([("b", b), ("a", a)], metadata: ["k": "v"])
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0, "the header is padded to a multiple of 8")
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as? [String: Any])
        let entryA = try XCTUnwrap(header["a"] as? [String: Any]), entryB = try XCTUnwrap(header["b"] as? [String: Any])
        XCTAssertEqual(entryA["dtype"] as? String, "F32")
        XCTAssertEqual(entryA["shape"] as? [Int], [2, 3])
        XCTAssertEqual(entryA["data_offsets"] as? [Int], [0, 24], "name order, no gaps")
        XCTAssertEqual(entryB["data_offsets"] as? [Int], [24, 28])
        XCTAssertEqual(header["__metadata__"] as? [String: String], ["k": "v"])
        XCTAssertEqual(data.count, 8 + n + 28)
        let decoded = try SafeTensors.decode(data)
        XCTAssertEqual(decoded.tensors["a"]?.scalars, a.scalars)
        XCTAssertEqual(decoded.tensors["a"]?.shape, [2, 3])
        XCTAssertEqual(decoded.tensors["b"]?.scalars, [-0.5])
        XCTAssertEqual(decoded.metadata, ["k": "v"])
    }

    func testCorruptFilesAreClearErrors() throws {
        let good = try SafeTensors.encode([("a", Tensor([1, 2], shape: [2]))])
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "shorter"),
            (Data([255, 255, 0, 0, 0, 0, 0, 0]) + Data(count: 8), "exceeds"),
            (good.prefix(good.count - 4), "offsets"),
            (Data([2, 0, 0, 0, 0, 0, 0, 0]) + Data("[]".utf8), "JSON object"),
            (good + Data(count: 4), "trailing bytes"),
            (handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                      buffer: 4), "overlaps"),
            (handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, buffer: 8), "belong to no tensor"),
            (handMade(#"{"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, buffer: 8),
             "more bytes than an Int counts"),
            (handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,-9223372036854775808]}}"#, buffer: 4), "offsets"),
        ]
        for (data, expected) in cases {
            XCTAssertThrowsError(try SafeTensors.decode(data, path: "x.safetensors")) { error in
                XCTAssertTrue("\(error)".contains(expected) && "\(error)".contains("x.safetensors"), "\(error)")
            }
        }
    }

    /// A file with `header` and a zeroed buffer of `buffer` bytes.
    func handMade(_ header: String, buffer: Int) -> Data {
        let json = Data(header.utf8)
        return Data((0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) }) + json + Data(count: buffer)
    }

    /// The committed file written by Python's safetensors (scripts/make_safetensors_fixture.py).
    func testReadsAFileWrittenByPython() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("python_safetensors.json"))) as? [String: Any])
        let file = try SafeTensors.read(fixtures.appendingPathComponent("python.safetensors"))
        let tensors = try XCTUnwrap(expected["tensors"] as? [[String: Any]])
        XCTAssertFalse(tensors.isEmpty)
        for entry in tensors {
            let name = try XCTUnwrap(entry["name"] as? String)
            let tensor = try XCTUnwrap(file.tensors[name], name)
            XCTAssertEqual(tensor.shape, entry["shape"] as? [Int], name)
            let values = try XCTUnwrap(entry["values"] as? [Double]).map(Float.init)
            XCTAssertEqual(tensor.scalars, values, name)
        }
    }

    func testResumeReachesTheSameWeightsAsAnUninterruptedRun() throws {
        let configuration = try TransformerConfiguration(vocabularySize: 11, modelDimension: 16, numberOfLayers: 2, numberOfHeads: 2,
                                                         positionalScheme: .t5(numberOfBuckets: 8, maximumDistance: 16, bidirectional: false))
        let training = try TrainingConfiguration(steps: 12, batchSize: 4, seed: 9)
        func batch(_ generator: inout SplitMix64) -> TokenBatch {
            let ids = (0..<(4 * 10)).map { _ in generator.nextInt(in: 0..<11) }
            return TokenBatch(inputs: ids, targets: ids.map { ($0 * 3 + 1) % 11 }, lossMask: ids.map { $0 != 0 }, batchSize: 4, length: 10)
        }
        let whole = try Trainer(model: Transformer(configuration: configuration, seed: 9), configuration: training)
        try whole.train(nextBatch: batch) { _ in }

        let url = folder.appendingPathComponent("checkpoint.safetensors")
        let first = try Trainer(model: Transformer(configuration: configuration, seed: 9), configuration: training)
        do {
            try first.train(nextBatch: batch) { p in if p.step == 5 { try first.saveCheckpoint(to: url); throw CancellationError() } }
        } catch is CancellationError {}  // the "kill" after step 5
        XCTAssertEqual(first.step, 5)
        // A fresh process: a model with other initial weights, restored from the file.
        let second = try Trainer(model: Transformer(configuration: configuration, seed: 1234), configuration: training)
        try second.restoreCheckpoint(from: url)
        XCTAssertEqual(second.step, 5)
        try second.train(nextBatch: batch) { _ in }
        for ((name, a), (_, b)) in zip(whole.model.namedParameters, second.model.namedParameters) {
            XCTAssertEqual(a.scalars, b.scalars, "\(name) differs after resume")
        }
        // And the checkpoint loads as a model by itself.
        let loaded = try Transformer.load(from: url)
        XCTAssertEqual(loaded.configuration, configuration)
    }

    func testRestoringIntoAnotherArchitectureFails() throws {
        let url = folder.appendingPathComponent("c.safetensors")
        let small = try TransformerConfiguration(vocabularySize: 5, modelDimension: 8, numberOfLayers: 1, numberOfHeads: 2)
        try Trainer(model: Transformer(configuration: small, seed: 0), configuration: TrainingConfiguration(steps: 1, batchSize: 1)).saveCheckpoint(to: url)
        let other = try TransformerConfiguration(vocabularySize: 5, modelDimension: 16, numberOfLayers: 1, numberOfHeads: 2)
        let trainer = try Trainer(model: Transformer(configuration: other, seed: 0), configuration: TrainingConfiguration(steps: 1, batchSize: 1))
        XCTAssertThrowsError(try trainer.restoreCheckpoint(from: url)) { XCTAssertTrue("\($0)".contains("configuration"), "\($0)") }
        XCTAssertThrowsError(try Transformer(configuration: other, seed: 0).loadWeights(SafeTensors.read(url).tensors)) {
            XCTAssertTrue("\($0)".contains("needs"), "\($0)")
        }
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let url = folder.appendingPathComponent("f.txt")
        try AtomicFile.write("one", to: url)
        try AtomicFile.write("two", to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["f.txt"])
    }
}
