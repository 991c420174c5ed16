import Foundation
import Models
import PositionalEncodings
import Tasks
import TensorCore
import XCTest
import Lab

/// The run-identity rule (a run is its whole specification), the inference-time scheme swap and
/// fine-tuning from a trained run.
final class RunIdentityTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-identity-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func tiny(_ scheme: String = "rope", steps: Int = 4, seed: UInt64 = 0, predict: Bool = false) throws -> RunSpecification {
        try RunSpecification(task: predict ? "addition" : "copy", pe: SchemeSpecification(parsing: scheme), seed: seed,
                             trainLength: 13, modelDimension: 16, layers: 1, heads: 2, steps: steps, batchSize: 4,
                             evalLengths: [13, 26], evalSamples: 3, predictPositions: predict)
    }

    func testEverySettingIsPartOfTheIdentityAndOnlyTheSeedIsLeftOutOfTheSeries() throws {
        let base = try tiny()
        XCTAssertEqual(base.identity, try tiny().identity, "the identity is a function of the specification")
        XCTAssertEqual(base.identity.count, 16)
        let others = [try tiny(steps: 5), try tiny(#"rope{"rope_theta": 500}"#), try tiny("hope"), try tiny(seed: 1)]
        XCTAssertEqual(Set(([base] + others).map(\.identity)).count, 5)
        XCTAssertEqual(Set(([base] + others).map(\.name)).count, 5, "folder names carry the identity")
        XCTAssertEqual(base.identityWithoutSeed, try tiny(seed: 1).identityWithoutSeed)
        XCTAssertNotEqual(base.identityWithoutSeed, try tiny(steps: 5).identityWithoutSeed)
        // The recorded scheme is explicit: a config.json says every setting it trained with.
        XCTAssertEqual(base.pe.settings["rope_theta"], .number(10_000))
        XCTAssertEqual(base.pe.settings["max_position_embeddings"], .number(13))
        // A config.json from before schemes had settings ("pe": "rope") reads as the same run.
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as? [String: Any])
        object["pe"] = "rope"
        let old = try JSONDecoder().decode(RunSpecification.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(old, base)
        XCTAssertEqual(old.identity, base.identity)
        // A sparse run written before the target setting existed trained on the sum mod q.
        var options = try XCTUnwrap(object["taskOptions"] as? [String: Any])
        options["sparseTarget"] = nil
        object["taskOptions"] = options
        object["task"] = "sparse"
        let sparse = try JSONDecoder().decode(RunSpecification.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(sparse.taskOptions.sparseTarget, .sumModulo)
        XCTAssertEqual(try RunSpecification(task: "sparse").taskOptions.sparseTarget, .sum, "new runs: the plain sum")
        // Addition's markers are recorded only where they matter: every run made before they
        // existed keeps its identity (its folder name), and an addition run written then had them
        // at fixed IDs, another run than today's coupled default (a sweep retrains it).
        XCTAssertNil(options["additionMarkers"], "a copy run's config.json does not name them")
        let copyToday = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as? [String: Any])
        XCTAssertNil((copyToday["taskOptions"] as? [String: Any])?["additionMarkers"])
        let newAddition = try RunSpecification(task: "addition", trainLength: 16, modelDimension: 16, layers: 1, heads: 2,
                                               steps: 2, evalLengths: [16])
        XCTAssertEqual(newAddition.taskOptions.additionMarkers, .coupled)
        let recorded = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(newAddition)) as? [String: Any])
        XCTAssertEqual((recorded["taskOptions"] as? [String: Any])?["additionMarkers"] as? String, "coupled")
        XCTAssertEqual(try JSONDecoder().decode(RunSpecification.self, from: JSONEncoder().encode(newAddition)), newAddition)
        var before = recorded, beforeOptions = try XCTUnwrap(recorded["taskOptions"] as? [String: Any])
        beforeOptions["additionMarkers"] = nil
        before["taskOptions"] = beforeOptions
        let oldData = try JSONSerialization.data(withJSONObject: before)
        let addition = try JSONDecoder().decode(RunSpecification.self, from: oldData)
        XCTAssertEqual(addition.taskOptions.additionMarkers, .fixed)
        XCTAssertNotEqual(addition.identity, newAddition.identity)
        // Its identity is the hash of what it recorded: re-encoded, it is the same JSON.
        let reencoded = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(addition)) as? [String: Any])
        let canonical = { (o: [String: Any]) in try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) }
        XCTAssertEqual(try canonical(reencoded), try canonical(before), "an old addition run keeps its identity")
        var fixedToday = newAddition
        fixedToday.taskOptions.additionMarkers = .fixed
        XCTAssertEqual(fixedToday.identity, addition.identity, "fixed markers today are the old runs' layout, and the same run")
        // encode(to:) is written by hand (for the markers): every stored setting must reach config.json.
        var everything = newAddition
        everything.fineTuneFrom = FineTuneSource(folder: "runs/base", identity: "0123456789abcdef", label: "rope")
        let written = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(everything)) as? [String: Any])
        XCTAssertEqual(Set(written.keys), Set(Mirror(reflecting: everything).children.compactMap(\.label)))
        XCTAssertEqual(try JSONDecoder().decode(RunSpecification.self, from: JSONEncoder().encode(everything)), everything)
    }

    func testSweepsRerunAChangedSpecificationAndReportOnlyTheirPlan() throws {
        func sweep(steps: Int, pes: [String]) throws -> (Sweep, [String]) {
            let specification = try SweepSpecification(tasks: ["copy"], pes: pes.map(SchemeSpecification.init(parsing:)),
                                                       trainLengths: [12], modelDimensions: [16], evalMultipliers: [1],
                                                       layers: 1, heads: 2, steps: steps, batchSize: 4, evalSamples: 3)
            let sweep = try Sweep(specification: specification, folder: folder)
            let events = EventLog()
            try sweep.run(jobs: 1) { event in
                switch event {
                case let .started(run, _): events.append("start \(run.label)")
                case let .skipped(run): events.append("skip \(run.label)")
                default: break
                }
            }
            return (sweep, events.all)
        }
        XCTAssertEqual(try sweep(steps: 3, pes: ["nope", "rope"]).1, ["start nope", "start rope"])
        XCTAssertEqual(try sweep(steps: 3, pes: ["nope", "rope"]).1, ["skip nope", "skip rope"])
        // Another step count is another run: nothing is skipped, and the old runs are not this sweep's results.
        let (changed, events) = try sweep(steps: 4, pes: ["nope", #"rope{"rope_theta": 100}"#])
        XCTAssertEqual(events, ["start nope", "start rope(rope_theta=100)"])
        let finished = try Sweep.finishedRuns(in: changed.folder)
        XCTAssertEqual(finished.map(\.run.steps), [4, 4])
        let csv = try String(contentsOf: folder.appendingPathComponent(Sweep.resultsFile), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 1 + 2)
        XCTAssertTrue(csv.contains(#""rope{""max_position_embeddings"":12"#), csv)
        XCTAssertTrue(csv.contains("rope(rope_theta=100)"), csv)
        // A folder whose config.json is not the run its name says is refused, never reported.
        let nope = try XCTUnwrap(finished.first { $0.run.pe.name == "nope" }).folder
        try AtomicFile.write(prettyJSON(try tiny("nope", steps: 9)), to: nope.appendingPathComponent(Experiment.configurationFile))
        XCTAssertThrowsError(try Sweep.finishedRuns(in: folder)) { XCTAssertTrue("\($0)".contains("another run"), "\($0)") }
        XCTAssertThrowsError(try sweep(steps: 4, pes: ["nope"])) { XCTAssertTrue("\($0)".contains("another specification"), "\($0)") }
        // Two schemes that are the same run once their defaults are filled in are refused up front.
        XCTAssertThrowsError(try sweep(steps: 4, pes: ["rope", #"rope{"rope_theta": 10000}"#])) {
            XCTAssertTrue("\($0)".contains("same run"), "\($0)")
        }
    }

    func testReportSeriesAverageSeedsOnly() throws {
        let runs = [try tiny(), try tiny(seed: 1), try tiny(steps: 5), try tiny("hope")]
        let names = Report.seriesNames(runs.map { (folder, $0, EvaluationReport(task: "copy", pe: $0.pe.name, trainLength: 13,
                                                                                  seed: $0.seed, results: [])) })
        XCTAssertEqual(names.count, 3, "two seeds of one specification are one series")
        XCTAssertEqual(names[runs[0].identityWithoutSeed], "rope · steps=4")
        XCTAssertEqual(names[runs[2].identityWithoutSeed], "rope · steps=5")
        XCTAssertEqual(names[runs[3].identityWithoutSeed], "hope")
    }

    /// A RoPE model swapped to YaRN at inference computes exactly what a model built with YaRN from
    /// the start computes with the same weights.
    func testSwappedRotaryRunEqualsAModelBuiltWithThatScaling() throws {
        let run = try tiny()
        let trained = try Transformer(configuration: run.modelConfiguration(), seed: 7)
        let yarn = try SchemeSpecification(parsing: #"rope{"rope_type": "yarn", "factor": 4}"#)
        let (swappedRun, swapped) = try Extension.swap(trained, run: run, to: yarn)
        XCTAssertEqual(swappedRun.pe.settings["rope_type"], .string("yarn"))
        XCTAssertEqual(swappedRun.task, run.task)
        let direct = try Transformer(configuration: try RunSpecification(
            task: "copy", pe: yarn, trainLength: 13, modelDimension: 16, layers: 1, heads: 2, steps: 4, batchSize: 4,
            evalLengths: [13, 26], evalSamples: 3).modelConfiguration(), seed: 7)
        XCTAssertEqual(direct.configuration, swapped.configuration)
        let ids = (0..<40).map { $0 % 11 }
        let expected = try direct.logits(ids, batchSize: 1, length: 40).scalars
        XCTAssertEqual(try swapped.logits(ids, batchSize: 1, length: 40).scalars, expected)
        XCTAssertNotEqual(try trained.logits(ids, batchSize: 1, length: 40).scalars, expected, "YaRN changes the rotation")
        // HoPE on the same weights: fine as well; ALiBi on RoPE weights is refused.
        XCTAssertNoThrow(try Extension.swap(trained, run: run, to: try SchemeSpecification(name: "hope")))
        XCTAssertThrowsError(try Extension.swap(trained, run: run, to: try SchemeSpecification(name: "alibi"))) {
            XCTAssertTrue("\($0)".contains("cannot be used under alibi"), "\($0)")
        }
        // A learned table of another size cannot carry its weights over.
        let learned = try tiny("learned")
        let learnedModel = try Transformer(configuration: learned.modelConfiguration(), seed: 1)
        XCTAssertThrowsError(try Extension.swap(learnedModel, run: learned,
                                                to: try SchemeSpecification(parsing: #"learned{"max_length": 9}"#)))
    }

    /// A new scaling keeps the rotation the weights were trained with unless it sets its own.
    func testSwapKeepsTheTrainedBasePairingAndFraction() throws {
        let run = try RunSpecification(task: "copy", pe: try SchemeSpecification(
            parsing: #"rope{"rope_theta": 500, "pairing": "interleaved", "partial_rotary_factor": 0.5}"#), trainLength: 13,
            modelDimension: 16, layers: 1, heads: 2, steps: 4, batchSize: 4, evalLengths: [13, 26], evalSamples: 3)
        let yarn = try Extension.specification(run, scheme: try SchemeSpecification(parsing: #"rope{"rope_type": "yarn", "factor": 4}"#))
        XCTAssertEqual(yarn.pe.settings["rope_theta"], .number(500))
        XCTAssertEqual(yarn.pe.settings["pairing"], .string("interleaved"))
        XCTAssertEqual(yarn.pe.settings["partial_rotary_factor"], .number(0.5))
        let hope = try Extension.specification(run, scheme: try SchemeSpecification(parsing: #"hope{"rope_theta": 1000}"#))
        XCTAssertEqual(hope.pe.settings["rope_theta"], .number(1000), "a setting given wins")
        XCTAssertEqual(hope.pe.settings["pairing"], .string("interleaved"))
    }

    func testFineTuneStartsFromTheBaseWeightsAndNamesItsBase() throws {
        let baseFolder = folder.appendingPathComponent("base")
        let base = try tiny(steps: 2)
        let trained = try Experiment(specification: base, folder: baseFolder).train(resume: false)
        let linear = try SchemeSpecification(parsing: #"rope{"rope_type": "linear", "factor": 2}"#)
        let run = try Extension.fineTune(base: baseFolder, scheme: linear, trainLength: 26, steps: 1, learningRate: 1e-7,
                                         evalLengths: nil)
        XCTAssertEqual(run.fineTuneFrom?.identity, base.identity)
        XCTAssertEqual(run.evalLengths, [26, 52, 104, 208])
        XCTAssertTrue(run.label.contains("fine-tuned from rope"), run.label)
        // One step at a learning rate of 1e-7 moves no weight by more than about 1e-7: it started from the base.
        let tuned = try Experiment(specification: run, folder: folder.appendingPathComponent("ft")).train(resume: false)
        let fresh = try Transformer(configuration: run.modelConfiguration(), seed: run.seed)
        func distance(_ a: Transformer, _ b: Transformer) -> Float {
            zip(a.namedParameters, b.namedParameters).map { zip($0.tensor.scalars, $1.tensor.scalars).map { abs($0 - $1) }.max() ?? 0 }
                .max() ?? 0
        }
        XCTAssertLessThan(distance(trained, tuned), 1e-5)
        XCTAssertGreaterThan(distance(fresh, tuned), 1e-3, "a fresh initialisation is far from the fine-tuned weights")
        XCTAssertEqual(try Experiment.specification(in: folder.appendingPathComponent("ft")), run)
        // Bad input: a base that does not exist, a swap across families.
        XCTAssertThrowsError(try Extension.fineTune(base: folder.appendingPathComponent("absent"), scheme: linear, trainLength: nil,
                                                    steps: 1, learningRate: nil, evalLengths: nil)) {
            XCTAssertTrue("\($0)".contains("config.json"), "\($0)")
        }
        XCTAssertThrowsError(try Extension.fineTune(base: baseFolder, scheme: try SchemeSpecification(name: "alibi"), trainLength: nil,
                                                    steps: 1, learningRate: nil, evalLengths: nil))
    }

    /// A diverged run is a result: recorded in eval.json, log.jsonl (valid JSON) and results.csv, and
    /// the sweep goes on to its other runs.
    func testDivergedRunsAreRecordedAndTheSweepGoesOn() throws {
        let specification = try SweepSpecification(tasks: ["copy"], pes: ["nope", "rope"].map { try SchemeSpecification(name: $0) },
                                                   trainLengths: [12], modelDimensions: [16], evalMultipliers: [1], layers: 1,
                                                   heads: 2, steps: 40, batchSize: 4, learningRate: 1e6, evalSamples: 3)
        let sweep = try Sweep(specification: specification, folder: folder)
        try sweep.run(jobs: 1) { _ in }
        let finished = try Sweep.finishedRuns(in: folder)
        XCTAssertEqual(finished.count, 2)
        for run in finished {
            XCTAssertEqual(run.evaluation.status, "diverged")
            XCTAssertNotNil(run.evaluation.divergedAtStep)
            let lines = try String(contentsOf: run.folder.appendingPathComponent(Experiment.logFile), encoding: .utf8)
                .split(separator: "\n")
            for line in lines { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(line.utf8)), String(line)) }
            XCTAssertTrue(lines.last?.contains(#""status": "diverged""#) ?? false)
        }
        let csv = try String(contentsOf: folder.appendingPathComponent(Sweep.resultsFile), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv.dropFirst().allSatisfy { $0.hasSuffix(",diverged") }, "\(csv)")
        XCTAssertNoThrow(try Report.write(sweepFolder: folder))
    }

    /// Addition evaluates at offset 0 (Cho et al.), and a learned table covers the coupled IDs that
    /// training's offsets reach, or the run is refused before it trains.
    func testCoupledPositionsAreCheckedBeforeTraining() throws {
        let task = try AdditionTask(maximumOffset: 30)
        var generator = SplitMix64(seed: 3)
        for _ in 0..<20 {
            let example = try task.evaluationTask.example(size: 20, generator: &generator)
            XCTAssertLessThanOrEqual(example.positions?.max() ?? .max, AdditionTask.firstDigitPosition + 20, "offset 0 at evaluation")
        }
        let options = TaskOptions(maximumOffset: 60)
        let run = try RunSpecification(task: "addition", taskOptions: options, pe: SchemeSpecification(name: "learned"),
                                       trainLength: 16, modelDimension: 16, layers: 1, heads: 2, evalLengths: [16, 22])
        // Training IDs reach at most 3 + 60 + 4 = 67 (4-digit operands fit in 16 tokens): 68 rows at least.
        guard case let .learnedAbsolute(rows) = try run.scheme else { return XCTFail("\(try run.scheme)") }
        XCTAssertGreaterThanOrEqual(rows, 68)
        XCTAssertThrowsError(try RunSpecification(task: "addition", taskOptions: options,
                                                  pe: SchemeSpecification(parsing: #"learned{"max_length": 40}"#), trainLength: 16,
                                                  modelDimension: 16, layers: 1, heads: 2, evalLengths: [16])) {
            XCTAssertTrue("\($0)".contains("learned.max_length") && "\($0)".contains("67"), "\($0)")
        }
    }
}
