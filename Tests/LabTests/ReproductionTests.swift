import Foundation
import Lab
import PositionalEncodings
import XCTest

/// The claims' verdicts on made-up figures: holds, does not hold, and inconclusive when a scheme
/// does not learn in distribution.
final class ReproductionTests: XCTestCase {
    func figures(_ claim: Claim, _ values: [String: [Int: (accuracy: Double, tokenAccuracy: Double, perplexity: Double)]]) throws
        -> ClaimFigures {
        var runs: [String: [(run: RunSpecification, evaluation: EvaluationReport)]] = [:]
        for (index, arm) in claim.arms.enumerated() {
            let run = try Reproduction.plan(claim, seeds: [0], quick: true)[index]
            let results = (values[arm.label] ?? [:]).map { length, v in
                LengthResult(length: length, accuracy: v.accuracy, tokenAccuracy: v.tokenAccuracy, loss: log(v.perplexity),
                             perplexity: v.perplexity, count: 8)
            }.sorted { $0.length < $1.length }
            runs[arm.label] = [(run, EvaluationReport(task: run.task, pe: run.pe.name, trainLength: run.trainLength, seed: 0,
                                                      results: results))]
        }
        return ClaimFigures(runs: runs)
    }

    func testALiBiTextVerdicts() throws {
        let claim = try ReproductionCatalog.claim(named: "alibi-text")
        func text(_ alibi: [Double], _ sinusoidal: [Double], _ rope: [Double]) throws -> Claim.Verdict {
            func arm(_ p: [Double]) -> [Int: (Double, Double, Double)] {
                [64: (0, 0.5, p[0]), 256: (0, 0.5, p[1]), 1024: (0, 0.5, p[2])]
            }
            return claim.verdict(for: try figures(claim, ["alibi": arm(alibi), "sinusoidal": arm(sinusoidal), "rope": arm(rope)]))
        }
        XCTAssertEqual(try text([4, 4.1, 4.2], [4.2, 9, 20], [4, 8, 30]).holds, true)
        XCTAssertEqual(try text([4, 4.1, 5], [4.2, 9, 20], [4, 8, 30]).holds, false, "ALiBi rose by 25%")
        XCTAssertEqual(try text([4, 4.1, 4.2], [4.2, 4.5, 5], [4, 8, 30]).holds, false, "sinusoidal stayed flat")
        let lagging = try text([4, 4.1, 4.2], [9, 9, 20], [4, 8, 30])
        XCTAssertNil(lagging.holds, "sinusoidal at L is 2.25× the best: it did not learn")
        XCTAssertTrue(lagging.summary.contains("did not learn in distribution: sinusoidal"), lagging.summary)
    }

    func testSparsityVerdicts() throws {
        let claim = try ReproductionCatalog.claim(named: "sparsity")
        func sparse(_ beyond: [Double], atL: Double = 1, k4AtL: Double = 1) throws -> Claim.Verdict {
            var values: [String: [Int: (Double, Double, Double)]] = [:]
            for (label, value) in zip(["k=1", "k=2", "k=3", "k=2, local 6"], beyond) {
                values[label] = [24: (atL, 1, 1), 48: (value, 0.5, 2), 96: (value, 0.5, 2)]
            }
            values["k=4"] = [24: (k4AtL, 1, 1), 48: (0.7, 0.5, 2), 96: (0.7, 0.5, 2)]
            return claim.verdict(for: try figures(claim, values))
        }
        XCTAssertEqual(try sparse([0.9, 0.5, 0.2, 0.8]).holds, true)
        let shown = try sparse([0.9, 0.5, 0.2, 0.8], k4AtL: 0.1)
        XCTAssertEqual(shown.holds, true, "k = 4 is shown, not judged: its failing at L makes nothing inconclusive")
        XCTAssertTrue(shown.summary.contains("k=4: 0.10 at L, 0.70 beyond"), shown.summary)
        XCTAssertEqual(try sparse([0.9, 0.5, 0.6, 0.8]).holds, false, "k = 3 above k = 2")
        XCTAssertEqual(try sparse([0.9, 0.5, 0.2, 0.52]).holds, false, "locality helps by less than 0.05")
        XCTAssertNil(try sparse([0.9, 0.5, 0.2, 0.8], atL: 0.5).holds)
    }

    func testDecayBoundAndThePlanOfEveryClaim() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("poslab-reproduce-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try Reproduction.outcome(try ReproductionCatalog.claim(named: "roformer-decay"), folder: folder, seeds: [0],
                                               quick: false, seconds: 0)
        XCTAssertEqual(outcome.holds, true, outcome.summary)
        let page = try String(contentsOf: try Reproduction.record(outcome, folder: folder), encoding: .utf8)
        XCTAssertTrue(page.contains("roformer-decay") && page.contains("holds"))
        // Every claim's runs are valid and distinct, with at least three seeds at full scale.
        for claim in ReproductionCatalog.claims where !claim.arms.isEmpty {
            let plan = try Reproduction.plan(claim, seeds: [0, 1, 2], quick: false)
            XCTAssertEqual(plan.count, 3 * claim.arms.count, claim.name)
            XCTAssertEqual(Set(plan.map(\.identity)).count, plan.count, claim.name)
        }
        XCTAssertThrowsError(try ReproductionCatalog.claim(named: "flat-earth")) { XCTAssertTrue("\($0)".contains("alibi-text")) }
    }
}
