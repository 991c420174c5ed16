import Foundation
import Lab
import PositionalEncodings
import Models
import TensorCore
import Tasks
import XCTest

final class LabTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("positionlab-lab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testInvalidRunsAreRejectedBeforeAnyWork() {
        let cases: [(() throws -> RunSpecification, String)] = [
            ({ try RunSpecification(task: "sorting") }, "sorting"),
            ({ try RunSpecification(pe: SchemeSpecification(name: "warp")) }, "warp"),
            ({ try RunSpecification(trainLength: 2) }, "trainLength"),
            ({ try RunSpecification(evalLengths: [1]) }, "evalLengths"),
            ({ try RunSpecification(heads: 3) }, "numberOfHeads"),
            ({ try RunSpecification(task: "sparse", taskOptions: TaskOptions(k: 0)) }, "k"),
        ]
        for (make, expected) in cases {
            XCTAssertThrowsError(try make()) { XCTAssertTrue("\($0)".contains(expected), "\($0) should name \(expected)") }
        }
    }

    func testNewRunsScaleTheSinusoidalTableAndOldRunFilesDoNot() throws {
        let run = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "sinusoidal"), trainLength: 12, modelDimension: 16)
        XCTAssertFalse(run.architecture.scaledEmbeddings)
        XCTAssertEqual(run.pe.settings["scale"], .number(0.25), "1/√C, recorded in config.json")
        XCTAssertEqual(try run.modelConfiguration().positionalScheme, .sinusoidal(scale: 0.25))
        XCTAssertEqual(try run.modelConfiguration().embeddingScale, 1)
        XCTAssertEqual(run.label, "sinusoidal")
        let vaswani = try RunSpecification(task: "copy", pe: SchemeSpecification(parsing: #"sinusoidal{"scale": 1}"#),
                                           trainLength: 12, modelDimension: 16)
        XCTAssertEqual(try vaswani.modelConfiguration().positionalScheme, .sinusoidal(scale: 1))
        XCTAssertEqual(vaswani.label, "sinusoidal(scale=1)")
        XCTAssertEqual(try RunSpecification(pe: SchemeSpecification(name: "learned"), trainLength: 12, modelDimension: 16)
            .modelConfiguration().positionalScheme, .learnedAbsolute(maximumLength: 98), "other schemes as they were")
        XCTAssertEqual(try JSONDecoder().decode(RunSpecification.self, from: JSONEncoder().encode(run)), run)
        // A config.json written before schemes had settings ("pe": "sinusoidal") rebuilds the model it trained.
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(run)) as? [String: Any])
        object["pe"] = "sinusoidal"
        var architecture = try XCTUnwrap(object["architecture"] as? [String: Any])
        architecture["scaledEmbeddings"] = nil
        object["architecture"] = architecture
        let old = try JSONDecoder().decode(RunSpecification.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(try old.modelConfiguration().positionalScheme, .sinusoidal(scale: 1))
        // Vaswani et al.'s √C on the token embeddings, when asked for; nGPT keeps its unit-norm embeddings.
        let scaled = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "nope"), trainLength: 12, modelDimension: 16,
                                          architecture: ArchitectureOptions(scaledEmbeddings: true))
        XCTAssertEqual(try scaled.modelConfiguration().embeddingScale, 4)
        let normalized = try RunSpecification(task: "copy", trainLength: 12, modelDimension: 16,
                                              architecture: ArchitectureOptions(feedForward: .swiGLU, placement: .normalized, scaledEmbeddings: true))
        XCTAssertEqual(try normalized.modelConfiguration().embeddingScale, 1)
    }

    func testEvaluationOfAnUntrainedModelIsNearUniformAndRepeatable() throws {
        let run = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "alibi"), trainLength: 12, modelDimension: 16, layers: 1, evalLengths: [12, 24], evalSamples: 10)
        let model = try Transformer(configuration: run.modelConfiguration(), seed: 1)
        let first = try Evaluator.evaluate(model: model, task: run.makeTask(), lengths: run.evalLengths, samples: run.evalSamples)
        let second = try Evaluator.evaluate(model: model, task: run.makeTask(), lengths: run.evalLengths, samples: run.evalSamples)
        XCTAssertEqual(first, second, "evaluation data depends only on the length")
        for result in first {
            XCTAssertEqual(result.count, 10)
            XCTAssertEqual(result.loss, log(Double(TaskVocabulary.size)), accuracy: 0.2, "a fresh model is near uniform")
            XCTAssertEqual(result.perplexity, exp(result.loss), accuracy: 1e-9)
            XCTAssertLessThan(result.accuracy, 0.2)
        }
        // Learned absolute positions cannot be evaluated beyond their table: a clear error, not a trap.
        let learned = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "learned"), trainLength: 12, modelDimension: 16, layers: 1, evalLengths: [12])
        let learnedModel = try Transformer(configuration: learned.modelConfiguration(), seed: 1)
        XCTAssertThrowsError(try Evaluator.evaluate(model: learnedModel, task: learned.makeTask(), lengths: [40], samples: 2)) {
            XCTAssertTrue("\($0)".contains("invalid evaluation length = 40; allowed: at most"), "\($0)")
        }
    }

    /// A run trained on randomized positions is evaluated on positions drawn from the same range
    /// (Ruoss et al. 2023), on the same examples as every other run; a length beyond the range is refused.
    func testRandomizedRunsAreEvaluatedOnRandomizedPositions() throws {
        XCTAssertEqual(PositionAssignment.randomized(maximumPosition: 96).atEvaluation, .randomized(maximumPosition: 96))
        XCTAssertEqual(PositionAssignment.randomOffset(maximumOffset: 30).atEvaluation, .sequential, "offset 0, as Cho et al.")
        XCTAssertEqual(PositionAssignment.sequential.atEvaluation, .sequential)
        let randomized = PositionAssignment.randomized(maximumPosition: 64)
        func results(_ scheme: String, _ positions: PositionAssignment, text: Bool = false) throws -> [LengthResult] {
            let run = try RunSpecification(task: "reverse", pe: SchemeSpecification(name: scheme), trainLength: 12, modelDimension: 16,
                                           layers: 1, evalLengths: [12, 24])
            var configuration = try run.modelConfiguration()
            if text { configuration.vocabularySize = 256 }
            let model = try Transformer(configuration: configuration, seed: 3)
            let corpus = Array(String(repeating: "in the beginning was the word. ", count: 20).utf8)
            let task = text ? LabTask.text(try TextTask(bytes: corpus)) : try run.makeTask()
            return try Evaluator.evaluate(model: model, task: task, lengths: run.evalLengths, samples: 6, positions: positions)
        }
        // RoPE sees the positions: randomized ones score differently from 0..T−1, and the same twice.
        XCTAssertNotEqual(try results("rope", randomized), try results("rope", .sequential))
        XCTAssertEqual(try results("rope", randomized), try results("rope", randomized))
        // NoPE does not: the same figures, so the examples themselves are unchanged. Text too.
        XCTAssertEqual(try results("nope", randomized), try results("nope", .sequential))
        XCTAssertNotEqual(try results("rope", randomized, text: true), try results("rope", .sequential, text: true))
        // The run records its training assignment and evaluation follows it.
        let run = try RunSpecification(task: "reverse", pe: SchemeSpecification(name: "rope"), positions: randomized, trainLength: 12,
                                       modelDimension: 16, layers: 1, evalLengths: [12, 24], evalSamples: 6)
        let model = try Transformer(configuration: run.modelConfiguration(), seed: 3)
        XCTAssertEqual(try Evaluator.report(model: model, run: run).results, try results("rope", randomized))
        // Lengths beyond the range cannot draw their positions from it: refused before any compute.
        XCTAssertThrowsError(try Evaluator.evaluate(model: model, task: run.makeTask(), lengths: [12, 80], samples: 2,
                                                    positions: randomized)) {
            XCTAssertTrue("\($0)".contains("invalid evaluation length = 80; allowed: at most 64 tokens"), "\($0)")
        }
        XCTAssertThrowsError(try RunSpecification(task: "reverse", positions: randomized, trainLength: 12, evalLengths: [12, 96])) {
            XCTAssertTrue("\($0)".contains("evaluation length = 96") && "\($0)".contains("--eval-lengths"), "\($0)")
        }
        XCTAssertThrowsError(try RunSpecification(task: "reverse", positions: .randomized(maximumPosition: 10), trainLength: 12,
                                                  evalLengths: [10])) {
            XCTAssertTrue("\($0)".contains("positions = randomized:10"), "\($0)")
        }
        // The report records the positions it was scored on; one without them, of a randomized run, is stale.
        var report = try Evaluator.report(model: model, run: run)
        XCTAssertEqual(report.positions, "randomized:64")
        XCTAssertFalse(report.isStale(for: run))
        report.positions = nil
        XCTAssertTrue(report.isStale(for: run), "scored on 0..T−1 before evaluation drew randomized positions")
        let plain = try RunSpecification(task: "reverse", trainLength: 12, modelDimension: 16, layers: 1, evalLengths: [12])
        XCTAssertFalse(report.isStale(for: plain))
        // Analysis draws them too, and refuses a length beyond the range.
        XCTAssertNoThrow(try Analyzer.analyze(model: model, run: run, length: 24, samples: 2))
        XCTAssertThrowsError(try Analyzer.analyze(model: model, run: run, length: 80, samples: 2))
    }

    /// A finished run trained on randomized positions whose eval.json predates evaluation on such
    /// positions is evaluated again from its checkpoint (not trained again, not reported as it was).
    func testSweepEvaluatesAStaleRandomizedRunAgain() throws {
        let run = try RunSpecification(task: "reverse", pe: SchemeSpecification(name: "rope"), positions: .randomized(maximumPosition: 40),
                                       trainLength: 12, modelDimension: 16, layers: 1, heads: 2, steps: 4, batchSize: 4,
                                       evalLengths: [12, 24], evalSamples: 3)
        let sweep = try Sweep(plan: [run], folder: folder)
        try sweep.run(jobs: 1) { _ in }
        let url = sweep.runFolder(run).appendingPathComponent("eval.json")
        let fresh = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: url))
        XCTAssertEqual(fresh.positions, "randomized:40")
        // As an older build wrote it: no record of the positions, other figures.
        var old = fresh
        old.positions = nil
        old.results = old.results.map { var r = $0; r.accuracy = 0.123; return r }
        try JSONEncoder().encode(old).write(to: url)
        let events = EventLog()
        try sweep.run(jobs: 1) { event in
            if case .skipped = event { events.append("skipped") }
            if case let .step(_, progress) = event { events.append("step \(progress.step)") }
            if case .finished = event { events.append("finished") }
        }
        XCTAssertEqual(events.all, ["finished"], "evaluated again, with no training step")
        XCTAssertEqual(try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: url)), fresh)
        let skips = EventLog()
        try sweep.run(jobs: 1) { event in if case .skipped = event { skips.append("skipped") } }
        XCTAssertEqual(skips.all, ["skipped"])
    }

    func testSweepWritesResultsSkipsFinishedRunsAndResumesKilledOnes() throws {
        let specification = try SweepSpecification(tasks: ["copy"], pes: ["nope", "rope"].map { try SchemeSpecification(name: $0) }, trainLengths: [12], modelDimensions: [16],
                                                   evalMultipliers: [1, 2], layers: 1, heads: 2, steps: 6, batchSize: 4, evalSamples: 3)
        let sweep = try Sweep(specification: specification, folder: folder)
        let events = EventLog()
        try sweep.run(jobs: 2) { event in
            switch event {
            case let .started(run, resumed): events.append("start \(run.pe.name) \(resumed)")
            case let .finished(run, _, _): events.append("done \(run.pe.name)")
            case let .skipped(run): events.append("skip \(run.pe.name)")
            case .step: break
            }
        }
        XCTAssertEqual(Set(events.all), ["start nope false", "start rope false", "done nope", "done rope"])
        let csv = try String(contentsOf: folder.appendingPathComponent("results.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first.map(String.init), Sweep.csvHeader)
        XCTAssertEqual(csv.count, 1 + 2 * 2, "one row per run per evaluation length")
        for row in csv.dropFirst() {  // the kernels (a quoted field: it holds commas), then the status
            if Kernels.smallProducts == .avx2FMA {  // every product of these small models on PositionLab's kernel
                XCTAssertTrue(row.hasSuffix(",\"PositionLab's kernel for every product (avx2+fma), element-wise "
                                            + Kernels.elementwise.rawValue + "\",finished"), String(row))
            } else {
                XCTAssertTrue(row.contains(",\"OpenBLAS ")
                              && (row.hasSuffix(" cores\",finished") || row.hasSuffix(" core\",finished")), String(row))
            }
        }
        let ropeFolder = sweep.runFolder(try specification.runs()[1])
        let before = try Data(contentsOf: ropeFolder.appendingPathComponent("eval.json"))

        // A run killed after its last checkpoint but before its evaluation: only it runs again.
        try FileManager.default.removeItem(at: ropeFolder.appendingPathComponent("eval.json"))
        let again = EventLog()
        try sweep.run(jobs: 1) { event in
            if case let .started(run, resumed) = event { again.append("start \(run.pe.name) \(resumed)") }
            if case let .skipped(run) = event { again.append("skip \(run.pe.name)") }
        }
        XCTAssertEqual(again.all, ["skip nope", "start rope true"])
        XCTAssertEqual(try Data(contentsOf: ropeFolder.appendingPathComponent("eval.json")), before, "resuming reproduces the result")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: folder.path).contains { $0.contains(".tmp") })

        let report = try Report.write(sweepFolder: folder)
        let html = try String(contentsOf: report, encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.contains("<script"), "self-contained, no scripts")
        for scheme in ["nope", "rope"] { XCTAssertTrue(html.contains(">\(scheme)</text>"), "legend names \(scheme)") }
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<svg").count - 1, 4)
        XCTAssertTrue(html.contains("token accuracy along the answer at"), "where along the answer each scheme goes wrong")
        // Runs that did not learn at their training length are named at the top and marked in the table.
        let unlearned = try Sweep.finishedRuns(in: folder).filter { Report.didNotLearn($0.run, $0.evaluation) }
        XCTAssertEqual(html.contains("Did not learn the task at the training length"), !unlearned.isEmpty)
        for r in unlearned { XCTAssertTrue(html.contains("\(r.run.task) \(r.run.label) (seed \(r.run.seed))"), html) }
        XCTAssertEqual(html.components(separatedBy: " !</td>").count - 1, unlearned.count)
        // The kernels they trained on (the rope run in two sessions, both here): named once, no warning.
        XCTAssertEqual(try TrainingSession.sessions(in: ropeFolder).count, 2)
        // On a CPU with AVX2 and FMA every product of these small models ran on PositionLab's kernel.
        let named = Kernels.smallProducts == .avx2FMA ? "Trained on PositionLab's kernel for every product"
            : "Trained on OpenBLAS"
        XCTAssertTrue(html.contains(named), "the kernels are named")
        XCTAssertFalse(html.contains("did not all train on the same kernels"))
        // One run as if trained on another machine: the report says the runs round differently.
        let nopeFolder = sweep.runFolder(try specification.runs()[0])
        try Self.writeSessions([Self.session(core: "Prescott", cores: 1)], in: nopeFolder)
        let mixed = try String(contentsOf: try Report.write(sweepFolder: folder), encoding: .utf8)
        XCTAssertTrue(mixed.contains("did not all train on the same kernels"), mixed)
        XCTAssertTrue(mixed.contains("OpenBLAS 0.3.21 core Prescott, small products avx2+fma, element-wise avx2+fma, 1 core: 1 run ("
                                     + (try specification.runs()[0].name) + ")"), mixed)
    }

    static func session(core: String, cores: Int, from step: Int = 0, blasProducts: Int? = nil) -> TrainingSession {
        TrainingSession(fromStep: step, cores: cores,
                        kernels: BLASKernels(library: "libopenblas.so.0", core: core, chosenBy: .positionLab,
                                             coreInstructionSet: .avx2, cpu: "AMD EPYC", cpuInstructionSet: .avx2,
                                             configuration: "OpenBLAS 0.3.21"),
                        elementwise: .avx2FMA, smallProducts: .avx2FMA, blasProducts: blasProducts)
    }

    static func writeSessions(_ sessions: [TrainingSession], in folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(["sessions": sessions]).write(to: folder.appendingPathComponent(TrainingSession.file))
    }

    func testARunsKernelsAreOneLineAndARunResumedOnOthersListsBoth() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), "kernels not recorded")
        try Self.writeSessions([Self.session(core: "Zen", cores: 2), Self.session(core: "Zen", cores: 2, from: 40)], in: folder)
        let zen = "OpenBLAS 0.3.21 core Zen, small products avx2+fma, element-wise avx2+fma, 2 cores"
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), zen, "a resume on the same kernels is one line")
        try Self.writeSessions([Self.session(core: "Zen", cores: 2), Self.session(core: "SkylakeX", cores: 2, from: 40)],
                               in: folder)
        let both = zen + " then " + zen.replacingOccurrences(of: "Zen", with: "SkylakeX")
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), both)
        XCTAssertNil(Report.mixedKernelsWarning([(zen, ["a", "b"])]))
        XCTAssertNotNil(Report.mixedKernelsWarning([(both, ["a"])]), "one run resumed on other kernels")
        let skylake = zen.replacingOccurrences(of: "Zen", with: "SkylakeX")
        let warning = Report.mixedKernelsWarning([(zen, ["a", "b"]), (Report.kernelsNotRecorded, ["c", "d", "e", "f"]),
                                                  (skylake, ["g"])]) ?? ""
        XCTAssertTrue(warning.contains(zen + ": 2 runs (a, b); " + skylake + ": 1 run (g); and 4 runs without a record"),
                      warning)
        // Runs without a record are not compared: one set and some unrecorded ones is no warning.
        let partly = [(kernels: zen, runs: ["a"]), (kernels: Report.kernelsNotRecorded, runs: ["b"])]
        XCTAssertNil(Report.mixedKernelsWarning(partly))
        XCTAssertEqual(Report.kernelsNote(partly), "Trained on \(zen). 1 run has no record of its kernels.")
        XCTAssertEqual(Report.kernelsNote([(Report.kernelsNotRecorded, ["a", "b"])]), "The runs have no record of their kernels.")
        // Back on the first kernels after others: three sessions, three lines.
        try Self.writeSessions([Self.session(core: "Zen", cores: 2), Self.session(core: "SkylakeX", cores: 2, from: 10),
                                Self.session(core: "Zen", cores: 2, from: 20)], in: folder)
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), both + " then " + zen)
        // Sessions whose every product ran on PositionLab's kernel: OpenBLAS's core and the core count did not
        // touch their sums, so they are one line; one product on OpenBLAS, or a count not recorded, and they are not.
        let own = "PositionLab's kernel for every product (avx2+fma), element-wise avx2+fma"
        try Self.writeSessions([Self.session(core: "Zen", cores: 2, blasProducts: 0),
                                Self.session(core: "SkylakeX", cores: 1, from: 40, blasProducts: 0)], in: folder)
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), own)
        try Self.writeSessions([Self.session(core: "Zen", cores: 2, blasProducts: 0),
                                Self.session(core: "Zen", cores: 2, from: 40, blasProducts: 1)], in: folder)
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), own + " then " + zen)
        XCTAssertNotNil(Report.mixedKernelsWarning([(own, ["a"]), (zen, ["b"])]))
        // A record that does not parse is no record.
        try Data("{not json".utf8).write(to: folder.appendingPathComponent(TrainingSession.file))
        XCTAssertEqual(Report.kernelSet(ofRunIn: folder), Report.kernelsNotRecorded)
    }

    func testARunBelowTheLearnedAccuracyAtItsTrainingLengthIsFlagged() throws {
        let run = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "nope"), trainLength: 8, evalLengths: [4, 8, 16])
        func report(_ accuracies: [Double]) -> EvaluationReport {
            EvaluationReport(task: "copy", pe: "nope", trainLength: 8, seed: 0, results: zip([4, 8, 16], accuracies).map {
                LengthResult(length: $0, accuracy: $1, tokenAccuracy: $1, loss: 1, perplexity: 2.7, count: 1)
            })
        }
        XCTAssertFalse(Report.didNotLearn(run, report([1, 0.95, 0])), "0.95 at the training length is learned")
        XCTAssertTrue(Report.didNotLearn(run, report([1, 0.94, 1])), "the training length (8) decides, not 4 or 16")
        let text = try RunSpecification(task: "text", pe: SchemeSpecification(name: "nope"), trainLength: 8, evalLengths: [4, 8, 16])
        XCTAssertFalse(Report.didNotLearn(text, report([0, 0, 0])), "text is measured by next-byte accuracy and loss")
    }

    func testEffectiveKAndAttentionByDistanceOnAKnownPattern() throws {
        // One head, three queries: [1], [0.5, 0.5], [0.05, 0.05, 0.9].
        let probabilities = try Tensor([1, 0, 0, 0.5, 0.5, 0, 0.05, 0.05, 0.9], shape: [1, 1, 3, 3])
        let unused = try Tensor(zeros: [1, 1, 3, 2])
        let layer = Analyzer.summarize(queries: unused, keys: unused, probabilities: probabilities, lossMask: [true, true, true],
                                       rotaryDimension: 0, pairing: .halfSplit)
        XCTAssertEqual(layer.effectiveK, 4.0 / 3, accuracy: 1e-9)  // 1, 2 and 1 tokens hold 90%
        XCTAssertEqual(layer.effectiveKHistogram.prefix(2), [2, 1])
        XCTAssertEqual(layer.attentionByDistance[0][0], (1 + 0.5 + 0.9) / 3, accuracy: 1e-6)
        XCTAssertEqual(layer.attentionByDistance[0][1], (0.5 + 0.05) / 2, accuracy: 1e-6)
        XCTAssertEqual(layer.attentionByDistance[0][2], 0.05, accuracy: 1e-6)
        // Mass-weighted distance of the 90% set: 0, (0·0.5 + 1·0.5)/1, 0.
        XCTAssertEqual(layer.meanDistance, 0.5 / 3, accuracy: 1e-6)
    }

    func testAnalysisOfARotaryModelMarksFullPeriodPairs() throws {
        let run = try RunSpecification(task: "copy", pe: SchemeSpecification(name: "hope"), trainLength: 16, modelDimension: 32, layers: 2, heads: 2, evalLengths: [16])
        let model = try Transformer(configuration: run.modelConfiguration(), seed: 0)
        let report = try Analyzer.analyze(model: model, run: run, length: 32, samples: 3)
        XCTAssertEqual(report.layers.count, 2)
        let theta = try XCTUnwrap(report.inverseFrequencies)
        XCTAssertEqual(report.fullPeriodPairs, theta.indices.filter { theta[$0] > 0 && 2 * .pi / theta[$0] <= 16 })
        XCTAssertEqual(report.layers[0].queryPairMagnitudes?.count, 8)
        XCTAssertEqual(report.decayBound?.first ?? 0, 4.5, accuracy: 1e-9)  // at r = 0, |S_j| = j: (1/8)·Σ_{j=1…8} j
        for layer in report.layers { XCTAssertGreaterThanOrEqual(layer.effectiveK, 1) }
    }
}

final class PredictivePositionCouplingLabTests: XCTestCase {
    func testPredictedPositionsNeedCoupledTasksAndDecodeWithTheModelsOwnIDs() throws {
        XCTAssertThrowsError(try RunSpecification(task: "copy", pe: SchemeSpecification(name: "learned"), predictPositions: true)) {
            XCTAssertTrue("\($0)".contains("predictPositions"), "\($0)")
        }
        let run = try RunSpecification(task: "addition", taskOptions: TaskOptions(maximumOffset: 2, padOperands: true),
                                       pe: SchemeSpecification(name: "learned"), trainLength: 13,
                                       modelDimension: 16, layers: 1, heads: 2, steps: 2, evalLengths: [13, 19], evalSamples: 5,
                                       predictPositions: true)
        let configuration = try run.modelConfiguration()
        // Addition's largest ID at 19 tokens (5 digits) with offset 2: 3 + 2 + 5 = 10; classes 0…11.
        XCTAssertEqual(configuration.positionPrediction, 12)
        XCTAssertTrue(run.name.contains("-ppc-"))
        let model = try Transformer(configuration: configuration, seed: 0)
        let results = try Evaluator.evaluate(model: model, task: run.makeTask(), lengths: run.evalLengths, samples: run.evalSamples)
        XCTAssertEqual(results.map(\.count), [5, 5])
        for r in results {
            XCTAssertTrue((0...1).contains(r.tokenAccuracy) && r.loss.isFinite)
            // Accuracy along the answer from the same free-running decoding: the padded operands
            // give every answer one length (digits + 1), so its mean is the token accuracy.
            let byIndex = try XCTUnwrap(r.tokenAccuracyByIndex)
            XCTAssertEqual(byIndex.count, (r.length - 4) / 3 + 1)
            XCTAssertEqual(byIndex.reduce(0, +) / Double(byIndex.count), r.tokenAccuracy, accuracy: 1e-12)
        }
    }
}
