import Foundation
import Models
import PositionalEncodings
import Tasks

/// A published claim, reproduced small: arms (labelled runs) × seeds, and a criterion fixed before
/// anything runs that says whether the claim holds at this scale. A claim is inconclusive, not
/// refuted, when an arm it compares does not learn its task at the training length: a scheme that
/// fails in distribution says nothing about extrapolation.
public struct Claim: Sendable {
    public let name: String
    public let paper: String
    public let statement: String
    /// How `holds` is decided, in words (the verdict computes exactly this).
    public let criterion: String
    public let arms: [Arm]
    /// The verdict from the finished runs, arm by arm; nil for analytic claims.
    let verdict: @Sendable (ClaimFigures) -> Verdict
    /// Claims that need no training compute their verdict directly.
    let analytic: (@Sendable () throws -> Verdict)?

    /// One labelled configuration; `make` builds its run for a seed (and the quick smoke scale).
    public struct Arm: Sendable {
        public let label: String
        let make: @Sendable (_ seed: UInt64, _ quick: Bool) throws -> RunSpecification
    }

    public struct Verdict: Sendable {
        public var holds: Bool?
        public var summary: String
    }

    /// The verdict on these figures (for claims that train).
    public func verdict(for figures: ClaimFigures) -> Verdict { verdict(figures) }
}

/// The figures of a claim's finished runs: per arm and evaluation length, each seed's result.
public struct ClaimFigures: Sendable {
    public let runs: [String: [(run: RunSpecification, evaluation: EvaluationReport)]]

    public init(runs: [String: [(run: RunSpecification, evaluation: EvaluationReport)]]) { self.runs = runs }

    /// The mean, minimum and maximum over seeds of `metric` at `length` for `arm` (NaN when absent).
    public func stats(_ arm: String, _ length: Int, _ metric: KeyPath<LengthResult, Double>) -> (mean: Double, low: Double, high: Double) {
        let values = (runs[arm] ?? []).compactMap { $0.evaluation.results.first { $0.length == length }?[keyPath: metric] }
        guard !values.isEmpty else { return (.nan, .nan, .nan) }
        return (values.reduce(0, +) / Double(values.count), values.min()!, values.max()!)
    }

    public func mean(_ arm: String, _ length: Int, _ metric: KeyPath<LengthResult, Double>) -> Double {
        stats(arm, length, metric).mean
    }

    /// The mean over `lengths` of the per-length means.
    public func mean(_ arm: String, _ lengths: [Int], _ metric: KeyPath<LengthResult, Double>) -> Double {
        let values = lengths.map { mean(arm, $0, metric) }
        return values.reduce(0, +) / Double(values.count)
    }

    /// Runs of `arm` that diverged.
    public func diverged(_ arm: String) -> Int { (runs[arm] ?? []).filter { $0.evaluation.status == "diverged" }.count }

    /// The arms among `arms` whose mean `metric` at `length` misses `threshold` (below it, or above
    /// it with `lowerIsBetter`), with their figures: the arms that did not learn in distribution.
    func notLearning(_ arms: [String], at length: Int, _ metric: KeyPath<LengthResult, Double>, threshold: Double,
                     lowerIsBetter: Bool = false) -> [String] {
        arms.compactMap { arm in
            let value = mean(arm, length, metric)
            let fails = diverged(arm) > 0 || !value.isFinite || (lowerIsBetter ? value > threshold : value < threshold)
            return fails ? "\(arm) (\(format(value)))" : nil
        }
    }
}

/// A claim's result, as reproduce.json records it.
public struct ClaimOutcome: Codable, Equatable, Sendable {
    public var name: String
    public var paper: String
    public var statement: String
    public var criterion: String
    /// true (holds), false (does not hold), nil (inconclusive at this scale).
    public var holds: Bool?
    public var summary: String
    public var seeds: [UInt64]
    /// A smoke-scale run (`quick`): far too short to be evidence either way.
    public var quick: Bool
    public var seconds: Double
    /// Per arm: label, scheme text, and per length the mean, minimum and maximum of each metric.
    public var arms: [ArmFigures]

    public struct ArmFigures: Codable, Equatable, Sendable {
        public var label: String
        public var scheme: String
        public var runs: Int
        public var diverged: Int
        public var lengths: [LengthFigures]
    }

    public struct LengthFigures: Codable, Equatable, Sendable {
        public var length: Int
        public var accuracy: [Double]
        public var tokenAccuracy: [Double]
        public var perplexity: [Double]
    }

    /// "holds", "does not hold" or "inconclusive".
    public var verdictText: String { holds.map { $0 ? "holds" : "does not hold" } ?? "inconclusive" }
}

/// Runs claims into `folder`/NAME (each a sweep of arms × seeds, resumable, report.html) and writes
/// `folder`/reproduce.json and reproduce.html with every outcome so far.
public enum Reproduction {
    public static let resultsFile = "reproduce.json", pageFile = "reproduce.html"

    /// The runs of `claim` for `seeds` (in quick mode the first seed only).
    public static func plan(_ claim: Claim, seeds: [UInt64], quick: Bool) throws -> [RunSpecification] {
        try (quick ? Array(seeds.prefix(1)) : seeds).flatMap { seed in try claim.arms.map { try $0.make(seed, quick) } }
    }

    public static func sweep(_ claim: Claim, folder: URL, seeds: [UInt64], quick: Bool) throws -> Sweep? {
        guard !claim.arms.isEmpty else { return nil }
        return try Sweep(plan: plan(claim, seeds: seeds, quick: quick), folder: folder.appendingPathComponent(claim.name))
    }

    /// The outcome of a claim whose sweep (if any) has finished.
    public static func outcome(_ claim: Claim, folder: URL, seeds: [UInt64], quick: Bool, seconds: Double) throws -> ClaimOutcome {
        let usedSeeds = quick ? Array(seeds.prefix(1)) : seeds
        guard claim.analytic == nil else {
            let verdict = try claim.analytic!()
            return ClaimOutcome(name: claim.name, paper: claim.paper, statement: claim.statement, criterion: claim.criterion,
                                holds: verdict.holds, summary: verdict.summary, seeds: [], quick: quick, seconds: seconds, arms: [])
        }
        let plan = try plan(claim, seeds: seeds, quick: quick)
        let finished = try Sweep.finishedRuns(in: folder.appendingPathComponent(claim.name))
        var byArm: [String: [(run: RunSpecification, evaluation: EvaluationReport)]] = [:]
        for (index, planned) in plan.enumerated() {
            guard let done = finished.first(where: { $0.run == planned }) else {
                throw LabError.invalid("\(claim.name): run \(planned.name) has not finished")
            }
            byArm[claim.arms[index % claim.arms.count].label, default: []].append((done.run, done.evaluation))
        }
        let figures = ClaimFigures(runs: byArm)
        var verdict = claim.verdict(figures)
        if quick {
            verdict.holds = nil
            verdict.summary = "smoke scale (--quick): not evidence either way. " + verdict.summary
        }
        let arms = claim.arms.map { arm -> ClaimOutcome.ArmFigures in
            let runs = byArm[arm.label] ?? []
            let lengths = Array(Set(runs.flatMap { $0.evaluation.results.map(\.length) })).sorted()
            func triple(_ length: Int, _ metric: KeyPath<LengthResult, Double>) -> [Double] {
                let s = figures.stats(arm.label, length, metric)
                return [s.mean, s.low, s.high]
            }
            return .init(label: arm.label, scheme: runs.first?.run.label ?? "", runs: runs.count, diverged: figures.diverged(arm.label),
                         lengths: lengths.map { .init(length: $0, accuracy: triple($0, \.accuracy),
                                                      tokenAccuracy: triple($0, \.tokenAccuracy),
                                                      perplexity: triple($0, \.perplexity)) })
        }
        return ClaimOutcome(name: claim.name, paper: claim.paper, statement: claim.statement, criterion: claim.criterion,
                            holds: verdict.holds, summary: verdict.summary, seeds: usedSeeds, quick: quick, seconds: seconds,
                            arms: arms)
    }

    /// Adds (or replaces) `outcome` in reproduce.json and rewrites reproduce.html; returns the page.
    @discardableResult
    public static func record(_ outcome: ClaimOutcome, folder: URL) throws -> URL {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent(resultsFile)
        var outcomes = (try? JSONDecoder().decode([ClaimOutcome].self, from: Data(contentsOf: url))) ?? []
        outcomes.removeAll { $0.name == outcome.name }
        outcomes.append(outcome)
        let order = ReproductionCatalog.claims.map(\.name)
        outcomes.sort { (order.firstIndex(of: $0.name) ?? order.count) < (order.firstIndex(of: $1.name) ?? order.count) }
        try AtomicFile.write(prettyJSON(outcomes), to: url)
        let page = folder.appendingPathComponent(pageFile)
        try AtomicFile.write(Report.reproductionPage(outcomes), to: page)
        return page
    }
}

extension Report {
    /// The claims table (claim, paper, verdict, key figures) and, per claim, its arms' figures.
    public static func reproductionPage(_ outcomes: [ClaimOutcome]) -> String {
        var body = ["<p class=\"lead\">Small, seeded reproductions of published claims about positional encodings. Each claim's "
                    + "criterion was fixed before it ran; a claim is <b>inconclusive</b> when a scheme it compares does not learn "
                    + "its task at the training length. Figures are means over seeds, with the range in brackets.</p>"]
        var rows = ["<table><tr><th class=\"l\">claim</th><th class=\"l\">paper</th><th class=\"l\">verdict</th>"
                    + "<th class=\"l\">what was measured</th></tr>"]
        for o in outcomes {
            let color = o.holds.map { $0 ? "#009E73" : "#D55E00" } ?? "#999999"
            rows.append("<tr><td class=\"l\"><a href=\"#\(escape(o.name))\">\(escape(o.name))</a></td><td class=\"l\">\(escape(o.paper))</td>"
                        + "<td class=\"l\" style=\"color:\(color);font-weight:bold\">\(o.verdictText)</td>"
                        + "<td class=\"l\">\(escape(o.summary))</td></tr>")
        }
        body.append(rows.joined(separator: "\n") + "</table>")
        for o in outcomes {
            body.append("<h2 id=\"\(escape(o.name))\">\(escape(o.name)) <span class=\"sub\">\(escape(o.paper)); \(o.verdictText)"
                        + (o.seeds.isEmpty ? "" : "; seeds \(o.seeds.map(String.init).joined(separator: ", "))")
                        + String(format: "; %.0f s", o.seconds) + "</span></h2>")
            body.append("<p class=\"lead\"><b>Claim.</b> \(escape(o.statement))<br><b>Criterion.</b> \(escape(o.criterion))<br>"
                        + "<b>Measured.</b> \(escape(o.summary))</p>")
            guard !o.arms.isEmpty else { continue }
            let lengths = Array(Set(o.arms.flatMap { $0.lengths.map(\.length) })).sorted()
            var table = ["<table><tr><th class=\"l\">arm</th><th class=\"l\">runs</th><th class=\"l\">metric</th>"
                         + lengths.map { "<th>\($0)</th>" }.joined() + "</tr>"]
            for arm in o.arms {
                for (metric, key) in [("exact match", \ClaimOutcome.LengthFigures.accuracy), ("token accuracy", \.tokenAccuracy),
                                      ("perplexity", \.perplexity)] {
                    let cells = lengths.map { length -> String in
                        guard let f = arm.lengths.first(where: { $0.length == length })?[keyPath: key], f.count == 3 else { return "–" }
                        return "\(format(f[0])) [\(format(f[1]))–\(format(f[2]))]"
                    }
                    table.append("<tr><td class=\"l\">\(escape(arm.label))</td><td class=\"l\">\(arm.runs)"
                                 + (arm.diverged > 0 ? " (\(arm.diverged) diverged)" : "") + "</td><td class=\"l\">\(metric)</td>"
                                 + cells.map { "<td>\($0)</td>" }.joined() + "</tr>")
                }
            }
            body.append(table.joined(separator: "\n") + "</table>")
            body.append("<p class=\"sub\">Runs, curves and analysis: <a href=\"\(escape(o.name))/report.html\">\(escape(o.name))/report.html</a></p>")
        }
        return page(title: "PositionLab: the literature, checked", body: body)
    }
}

/// A number in two or three significant figures for tables and summaries.
func format(_ value: Double) -> String {
    guard value.isFinite else { return "n/a" }
    return abs(value) >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
}
