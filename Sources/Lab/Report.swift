import Foundation
import Models
import PositionalEncodings

/// report.html for a sweep folder: per task (and training length and model size), each metric
/// against evaluation length with one line per scheme and a band across seeds, the training
/// length marked; training curves; the run table. One self-contained file: inline SVG and CSS.
public enum Report {
    public static let fileName = "report.html"

    /// Writes the report atomically and returns its path.
    @discardableResult
    public static func write(sweepFolder folder: URL, extraSections: [String] = []) throws -> URL {
        let runs = try Sweep.finishedRuns(in: folder)
        guard !runs.isEmpty else { throw LabError.missing(folder.appendingPathComponent(Sweep.runsFolder).path, "finished runs (runs/*/eval.json)") }
        let url = folder.appendingPathComponent(fileName)
        try AtomicFile.write(html(runs: runs, title: "PositionLab report: \(folder.lastPathComponent)", extraSections: extraSections), to: url)
        return url
    }

    typealias Run = (folder: URL, run: RunSpecification, evaluation: EvaluationReport)

    /// Exact match at the training length below which a run is taken not to have learned its task:
    /// its figures beyond the training length then say nothing about extrapolation.
    public static let learnedAccuracy = 0.95

    /// Whether a run did not learn its task where it was trained: exact match at its training length
    /// (the longest evaluation length not beyond it) below `learnedAccuracy`. Never for text, whose
    /// measures are next-byte accuracy and loss.
    public static func didNotLearn(_ run: RunSpecification, _ evaluation: EvaluationReport) -> Bool {
        guard run.task != "text",
              let atTraining = evaluation.results.filter({ $0.length <= run.trainLength }).last else { return false }
        return atTraining.accuracy < learnedAccuracy
    }

    /// What `kernelSet(ofRunIn:)` says of a run without a record of its kernels (made before they were
    /// recorded, or failed before it trained).
    public static let kernelsNotRecorded = "kernels not recorded"

    /// The kernels a run trained on (from its `environment.json`), as one line: "OpenBLAS 0.3.21 core
    /// SkylakeX, small products avx2+fma, element-wise avx2+fma, 2 cores"; a run resumed on other kernels
    /// lists its sessions joined by " then ". Each of these decides rounding: OpenBLAS's version and core
    /// and the small products the order of the products' sums, the core count how OpenBLAS's products
    /// split. A session whose every product ran on PositionLab's kernel (`ownProductsOnly`) is "PositionLab's
    /// kernel for every product (avx2+fma), element-wise avx2+fma": OpenBLAS and the core count did not
    /// touch its sums.
    /// (PositionLab's own build is not recorded.)
    public static func kernelSet(ofRunIn folder: URL) -> String {
        guard let sessions = try? TrainingSession.sessions(in: folder), !sessions.isEmpty else { return kernelsNotRecorded }
        let lines = sessions.map { session in
            let elementwise = "element-wise \(session.elementwise?.rawValue ?? "not recorded")"
            if session.ownProductsOnly { return "PositionLab's kernel for every product (avx2+fma), " + elementwise }
            let words = session.kernels.configuration.split(separator: " ")
            let library = words.count >= 2 && words[0] == "OpenBLAS" ? words[0...1].joined(separator: " ") : "OpenBLAS"
            let small = "small products " + (session.smallProducts?.rawValue ?? "blas")
            let cores = "\(session.cores) core" + (session.cores == 1 ? "" : "s")
            return "\(library) core \(session.kernels.core), \(small), \(elementwise), \(cores)"
        }
        return lines.enumerated().filter { $0.offset == 0 || lines[$0.offset - 1] != $0.element }.map(\.element)
            .joined(separator: " then ")
    }

    /// The runs by the kernels they trained on, in order of first appearance.
    public static func kernelSets(_ runs: [Sweep.FinishedRun]) -> [(kernels: String, runs: [String])] {
        let sets = runs.map { (kernelSet(ofRunIn: $0.folder), $0.run.name) }
        return orderedUnique(sets.map(\.0)).map { kernels in (kernels, sets.filter { $0.0 == kernels }.map(\.1)) }
    }

    /// A warning when the runs whose kernels are recorded did not all train on the same ones (another
    /// machine, OpenBLAS version or core, core count, a run resumed elsewhere, unless every product ran
    /// on PositionLab's kernel): their figures then differ
    /// in rounding too, and single-seed figures move with rounding. Nil when they did; runs without a
    /// record are not compared (`kernelsNote` counts them).
    public static func mixedKernelsWarning(_ sets: [(kernels: String, runs: [String])]) -> String? {
        let (recorded, unrecorded) = recordedKernels(sets)
        guard recorded.count > 1 || recorded.contains(where: { $0.kernels.contains(" then ") }) else { return nil }
        let listed = recorded.map { "\($0.kernels): \($0.runs.count) run\($0.runs.count == 1 ? "" : "s")"
            + ($0.runs.count <= 3 ? " (" + $0.runs.joined(separator: ", ") + ")" : "") }
        return "These runs did not all train on the same kernels, which round differently: " + listed.joined(separator: "; ")
            + (unrecorded > 0 ? "; and \(unrecorded) run\(unrecorded == 1 ? "" : "s") without a record of \(unrecorded == 1 ? "its" : "their") kernels" : "")
            + ". Single-seed figures move with rounding; compare runs of one set of kernels, or means over seeds."
    }

    /// The sets with a record, and how many runs have none.
    private static func recordedKernels(_ sets: [(kernels: String, runs: [String])])
        -> (recorded: [(kernels: String, runs: [String])], unrecorded: Int) {
        (sets.filter { $0.kernels != kernelsNotRecorded }, sets.first { $0.kernels == kernelsNotRecorded }?.runs.count ?? 0)
    }

    /// The report's line when the kernels are not mixed: the one set, and how many runs have no record.
    public static func kernelsNote(_ sets: [(kernels: String, runs: [String])]) -> String {
        let (recorded, unrecorded) = recordedKernels(sets)
        let missing = "\(unrecorded) run\(unrecorded == 1 ? " has" : "s have") no record of \(unrecorded == 1 ? "its" : "their") kernels."
        guard let only = recorded.first else { return "The runs have no record of their kernels." }
        return "Trained on \(only.kernels)." + (unrecorded > 0 ? " " + missing : "")
    }

    static func html(runs: [Run], title: String, extraSections: [String]) -> String {
        // A series is one specification up to the seed: only seeds are averaged, never runs that
        // differ in any other setting (steps, scheme settings, PPC, positions, architecture).
        // Legends are named within each task group; a name keeps its colour across groups.
        struct Group: Hashable { let task: String; let trainLength: Int; let dimension: Int }
        let groups = orderedUnique(runs.map { Group(task: $0.run.task, trainLength: $0.run.trainLength, dimension: $0.run.modelDimension) })
        func members(_ group: Group) -> [Run] {
            runs.filter { $0.run.task == group.task && $0.run.trainLength == group.trainLength && $0.run.modelDimension == group.dimension }
        }
        let groupNames = groups.map { seriesNames(members($0)) }
        let allNames = orderedUnique(groups.indices.flatMap { g in
            orderedUnique(members(groups[g]).map(\.run.identityWithoutSeed)).compactMap { groupNames[g][$0] }
        })
        let colorOfName = Dictionary(uniqueKeysWithValues: allNames.enumerated().map { ($1, SVGPlot.palette[$0 % SVGPlot.palette.count]) })
        var body: [String] = []
        let seeds = Set(runs.map(\.run.seed)).count
        body.append("<p class=\"lead\">\(runs.count) runs: \(Set(runs.map(\.run.label)).count) schemes × \(Set(runs.map(\.run.task)).count) tasks × \(seeds) seed\(seeds == 1 ? "" : "s"). "
                    + "Each model is trained on sequences up to the dashed line and evaluated on longer ones; lines are the mean over seeds, bands their range.</p>")
        let kernelSets = kernelSets(runs)
        if let warning = mixedKernelsWarning(kernelSets) {
            body.append("<p class=\"lead warn\">\(escape(warning))</p>")
        } else {
            body.append("<p class=\"sub\">\(escape(kernelsNote(kernelSets)))</p>")
        }
        let unlearned = runs.filter { didNotLearn($0.run, $0.evaluation) }
        if !unlearned.isEmpty {
            let names = unlearned.map { escape("\($0.run.task) \($0.run.label) (seed \($0.run.seed))") }.joined(separator: ", ")
            body.append("<p class=\"lead warn\">Did not learn the task at the training length (exact match below "
                        + String(format: "%.2f", learnedAccuracy) + " there; marked ! in the table of runs): \(names). "
                        + "Their figures beyond the training length say nothing about extrapolation.</p>")
        }
        for (index, group) in groups.enumerated() {
            let members = members(group)
            let schemes = orderedUnique(members.map(\.run.identityWithoutSeed))
            let names = groupNames[index]
            let color = Dictionary(uniqueKeysWithValues: schemes.map { ($0, colorOfName[names[$0] ?? ""] ?? SVGPlot.palette[0]) })
            let isText = members.first?.run.task == "text"
            body.append("<h2>\(escape(group.task)) <span class=\"sub\">trained on ≤ \(group.trainLength) tokens, C = \(group.dimension)</span></h2><div class=\"row\">")
            let metrics: [(String, String, KeyPath<LengthResult, Double>, ClosedRange<Double>?)] = isText
                ? [("next-byte accuracy", "accuracy", \.tokenAccuracy, 0...1), ("loss (nats/byte)", "loss", \.loss, nil)]
                : [("exact match", "accuracy", \.accuracy, 0...1), ("token accuracy", "token accuracy", \.tokenAccuracy, 0...1), ("loss on targets", "loss", \.loss, nil)]
            for (title, label, key, range) in metrics {
                var plot = SVGPlot(title: title, xLabel: "evaluation length (tokens, log scale)", yLabel: label, series: schemes.compactMap { pe in
                    let own = members.filter { $0.run.identityWithoutSeed == pe }
                    guard !own.isEmpty else { return nil }
                    let lengths = orderedUnique(own.flatMap { $0.evaluation.results.map(\.length) }).sorted()
                    let points = lengths.map { length -> (x: Double, y: Double, low: Double, high: Double) in
                        let values = own.compactMap { $0.evaluation.results.first { $0.length == length }?[keyPath: key] }.filter(\.isFinite)
                        guard !values.isEmpty else { return (Double(length), .nan, .nan, .nan) }
                        return (Double(length), values.reduce(0, +) / Double(values.count), values.min()!, values.max()!)
                    }
                    return SVGPlot.Series(name: names[pe] ?? pe, color: color[pe]!, points: points)
                })
                plot.logX = true
                plot.yRange = range
                plot.marker = (Double(group.trainLength), "train")
                body.append("<figure>\(plot.render())</figure>")
            }
            if !isText, let along = alongTheAnswer(members, schemes: schemes, names: names, color: color) {
                body.append("<figure>\(along.render())</figure>")
            }
            var curves = SVGPlot(title: "training loss", xLabel: "step", yLabel: "loss (moving mean of 20 steps)", series: schemes.compactMap { pe in
                let own = members.filter { $0.run.identityWithoutSeed == pe }
                guard let first = own.first else { return nil }
                let logs = own.map { smooth(TrainingLog.read($0.folder.appendingPathComponent(Experiment.logFile)).map(\.loss), window: 20) }
                let steps = logs.map(\.count).min() ?? 0
                let stride = max(1, steps / 150)
                let points = Swift.stride(from: 0, to: steps, by: stride).map { i -> (x: Double, y: Double, low: Double, high: Double) in
                    let values = logs.map { $0[i] }
                    return (Double(i + 1), values.reduce(0, +) / Double(values.count), values.min()!, values.max()!)
                }
                _ = first
                return SVGPlot.Series(name: names[pe] ?? pe, color: color[pe]!, points: points)
            })
            curves.marker = nil
            body.append("<figure>\(curves.render())</figure></div>")
            body.append(analysisRow(members, schemes: schemes, names: names, color: color))
        }
        body.append(contentsOf: extraSections)
        body.append("<h2>Runs</h2>" + runTable(runs))
        return page(title: title, body: body)
    }

    /// Token accuracy by index along the answer at the longest length every series was evaluated
    /// at (eval.json's `token_accuracy_by_index`): where beyond its training length a model goes
    /// wrong; runs that did not record it (diverged, failed, or evaluated by an older build) are
    /// left out, and nil when none did or answers are shorter than three tokens.
    static func alongTheAnswer(_ members: [Run], schemes: [String], names: [String: String], color: [String: String]) -> SVGPlot? {
        let recorded = members.map { Set($0.evaluation.results.filter { $0.tokenAccuracyByIndex != nil }.map(\.length)) }
            .filter { !$0.isEmpty }
        guard let common = recorded.first.map({ recorded.reduce($0) { $0.intersection($1) } }), let longest = common.max() else {
            return nil
        }
        var plot = SVGPlot(title: "token accuracy along the answer at \(longest) tokens", xLabel: "answer token (1 = the first)",
                           yLabel: "token accuracy", series: schemes.compactMap { pe in
            let rows = members.filter { $0.run.identityWithoutSeed == pe }
                .compactMap { $0.evaluation.results.first { $0.length == longest }?.tokenAccuracyByIndex }
            guard let count = rows.map(\.count).max(), count > 0 else { return nil }
            let points = (0..<count).map { i -> (x: Double, y: Double, low: Double, high: Double) in
                let values = rows.compactMap { i < $0.count ? $0[i] : nil }
                return (Double(i + 1), values.reduce(0, +) / Double(values.count), values.min()!, values.max()!)
            }
            return SVGPlot.Series(name: names[pe] ?? pe, color: color[pe] ?? SVGPlot.palette[0], points: points)
        })
        // A one- or two-token answer (sparse, parity) has no "along": its points are the token accuracy.
        guard plot.series.contains(where: { $0.points.count >= 3 }) else { return nil }
        plot.yRange = 0...1
        return plot
    }

    /// A self-contained page: inline CSS, `body`'s sections in order.
    static func page(title: String, body: [String],
                     footer: String = "Written by PositionLab; data in results.csv and each run's eval.json and log.jsonl.") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; margin: 24px 32px; color: #222; max-width: 2300px; }
        h1 { font-size: 22px; margin-bottom: 4px; } h3 { font-size: 14px; margin: 14px 0 4px; color: #333; } h2 { font-size: 17px; margin: 26px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
        .sub { font-weight: normal; color: #666; font-size: 13px; } .lead { color: #444; max-width: 70em; }
        .warn { color: #a33; font-weight: bold; }
        .row { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; }
        table { border-collapse: collapse; font-size: 12px; } th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: right; }
        th { background: #f5f5f5; } td.l, th.l { text-align: left; }
        </style></head><body>
        <h1>\(escape(title))</h1>
        \(body.joined(separator: "\n"))
        <p class="sub">\(escape(footer))</p>
        </body></html>

        """
    }

    /// Inside the models: attention against distance, effective k by layer, rotary components, decay.
    static func analysisRow(_ members: [Run], schemes: [String], names: [String: String], color: [String: String]) -> String {
        let analyses: [(pe: String, report: AnalysisReport)] = members.compactMap { run in
            guard let data = FileManager.default.contents(atPath: run.folder.appendingPathComponent(Analyzer.fileName).path),
                  let report = try? JSONDecoder().decode(AnalysisReport.self, from: data) else { return nil }
            return (run.run.identityWithoutSeed, report)
        }
        guard let first = analyses.first?.report else { return "" }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
        func series(_ make: (AnalysisReport) -> [(Double, Double)]?) -> [SVGPlot.Series] {
            schemes.compactMap { pe in
                let own = analyses.filter { $0.pe == pe }.compactMap { make($0.report) }
                guard let points = own.first else { return nil }
                let averaged = points.indices.map { i -> (x: Double, y: Double, low: Double, high: Double) in
                    let values = own.compactMap { $0.indices.contains(i) ? $0[i].1 : nil }
                    return (points[i].0, mean(values), values.min() ?? .nan, values.max() ?? .nan)
                }
                return SVGPlot.Series(name: names[pe] ?? pe, color: color[pe]!, points: averaged)
            }
        }
        var figures: [String] = []
        var distance = SVGPlot(title: "attention mass against distance", xLabel: "query − key distance (tokens)",
                               yLabel: "mean attention (layers, heads)", series: series { report in
            let span = report.layers.first?.attentionByDistance.first?.count ?? 0
            return (0..<span).map { d in (Double(d), mean(report.layers.flatMap { $0.attentionByDistance.map { $0[d] } })) }
        })
        distance.marker = (Double(first.trainLength), "train")
        figures.append(distance.render())
        let effective = SVGPlot(title: "tokens holding 90% of the attention", xLabel: "layer", yLabel: "effective k (mean)",
                                series: series { $0.layers.enumerated().map { (Double($0.offset), $0.element.effectiveK) } })
        figures.append(effective.render())
        let locality = SVGPlot(title: "how far back the attention lies", xLabel: "layer", yLabel: "mean distance of the 90% mass",
                               series: series { $0.layers.enumerated().map { (Double($0.offset), $0.element.meanDistance) } })
        figures.append(locality.render())
        if analyses.contains(where: { $0.report.inverseFrequencies != nil }) {
            var pairs = SVGPlot(title: "query components per rotary pair", xLabel: "pair i (θ_i falls with i)", yLabel: "mean |q pair| (layers)",
                                series: series { report in
                guard let magnitudes = report.layers.first?.queryPairMagnitudes else { return nil }
                return magnitudes.indices.map { i in (Double(i), mean(report.layers.compactMap { $0.queryPairMagnitudes?[i] })) }
            })
            if let cut = analyses.compactMap({ $0.report.fullPeriodPairs?.last }).first { pairs.marker = (Double(cut), "last full period") }
            figures.append(pairs.render())
            let decay = SVGPlot(title: "long-term decay bound (RoFormer)", xLabel: "relative distance", yLabel: "(1/(D/2))·Σ|S_j|",
                                series: series { report in report.decayBound.map { $0.enumerated().map { (Double($0.offset), $0.element) } } })
            figures.append(decay.render())
        }
        return "<h3>inside the models <span class=\"sub\">(\(first.length) tokens, twice the training length; analysis.json)</span></h3><div class=\"row\">"
            + figures.map { "<figure>\($0)</figure>" }.joined() + "</div>"
    }

    static func runTable(_ runs: [Run]) -> String {
        var rows = ["<table><tr><th class=\"l\">run</th><th class=\"l\">task</th><th class=\"l\">pe</th><th>seed</th><th>train length</th><th>C</th><th>steps</th><th>final train loss</th><th>exact match at train length</th><th>at longest</th><th>longest</th></tr>"]
        for (folder, run, evaluation) in runs {
            let log = TrainingLog.read(folder.appendingPathComponent(Experiment.logFile))
            let final = smooth(log.map(\.loss), window: 20).last.map { String(format: "%.3f", $0) } ?? "–"
            let atTrain = evaluation.results.filter { $0.length <= run.trainLength }.last
            let longest = evaluation.results.last
            rows.append("<tr><td class=\"l\">\(escape(folder.lastPathComponent))</td><td class=\"l\">\(escape(run.task))</td><td class=\"l\">\(escape(run.label))</td>"
                        + "<td>\(run.seed)</td><td>\(run.trainLength)</td><td>\(run.modelDimension)</td><td>\(run.steps)</td><td>\(final)</td>"
                        + "<td>\(atTrain.map { String(format: "%.3f", $0.accuracy) } ?? "–")\(didNotLearn(run, evaluation) ? " !" : "")</td><td>\(longest.map { String(format: "%.3f", $0.accuracy) } ?? "–")</td>"
                        + "<td>\(longest.map { String($0.length) } ?? "–")</td></tr>")
        }
        return rows.joined(separator: "\n") + "</table>"
    }

    /// A legend name per series (identity without seed): the run's label, and where two series
    /// share a label in one sweep, what else differs, as the first settings that do.
    public static func seriesNames(_ runs: [(folder: URL, run: RunSpecification, evaluation: EvaluationReport)]) -> [String: String] {
        var byLabel: [String: [RunSpecification]] = [:]
        var first: [String: RunSpecification] = [:]
        for r in runs where first[r.run.identityWithoutSeed] == nil {
            first[r.run.identityWithoutSeed] = r.run
            byLabel[r.run.label, default: []].append(r.run)
        }
        var names: [String: String] = [:]
        for (label, members) in byLabel {
            for run in members {
                names[run.identityWithoutSeed] = members.count == 1 ? label : label + " · " + distinguishing(run, among: members)
            }
        }
        return names
    }

    /// The settings of `run` that differ from some other member, e.g. "steps=2000, layers=1".
    static func distinguishing(_ run: RunSpecification, among members: [RunSpecification]) -> String {
        func fields(_ r: RunSpecification) -> [String: String] {
            guard let data = try? JSONEncoder().encode(r),
                  case let .object(o)? = try? JSONDecoder().decode(JSONValue.self, from: data) else { return [:] }
            return o.filter { $0.key != "seed" }.mapValues(\.compactText)
        }
        let own = fields(run)
        let others = members.filter { $0 != run }.map(fields)
        let differing = own.keys.sorted().filter { key in others.contains { $0[key] != own[key] } }
        let shown = differing.prefix(3).map { "\($0)=\(own[$0]!.prefix(40))" }
        return shown.isEmpty ? String(run.identityWithoutSeed.prefix(8)) : shown.joined(separator: ", ")
    }

    static func smooth(_ values: [Double], window: Int) -> [Double] {
        var result: [Double] = [], sum = 0.0
        for (i, v) in values.enumerated() {
            sum += v
            if i >= window { sum -= values[i - window] }
            result.append(sum / Double(min(i + 1, window)))
        }
        return result
    }
}

func orderedUnique<T: Hashable>(_ values: [T]) -> [T] {
    var seen = Set<T>()
    return values.filter { seen.insert($0).inserted }
}
