import Foundation
import Models
import PositionalEncodings
import Tasks
import TensorCore

/// Context extension of a trained run: the same weights under another scheme of the same family,
/// at inference (PI, NTK, dynamic NTK, YaRN, llama3, LongRoPE, proportional, HoPE on a RoPE model)
/// or as the start of a short fine-tune at a longer length (Chen et al. 2023's recipe for PI).
public enum Extension {
    /// `run` with its scheme replaced; the run's other settings, and so its task and evaluation, stay.
    public static func specification(_ run: RunSpecification, scheme: SchemeSpecification) throws -> RunSpecification {
        guard run.pe.canSwap(to: scheme) else {
            throw LabError.invalid("weights trained with \(run.pe.name) cannot be used under \(scheme.name): "
                + "only the rotary schemes (rope and its rope_types, hope) swap among themselves; other schemes keep their name")
        }
        var swapped = run
        let scheme = try inheritingRotation(scheme, from: run.pe)
        swapped.pe = SchemeSpecification(try scheme.resolved(trainingLength: run.trainLength, maximumLength: run.tableLength,
                                                             modelDimension: run.modelDimension))
        return swapped
    }

    /// The rotation the weights were trained with — base, pairing, rotated fraction — carried into
    /// a new rotary scheme that does not set them itself: `--pe rope --rope '{"rope_type": "yarn"}'`
    /// on a run trained at rope_theta 500 with interleaved pairs scales that rotation, not the
    /// defaults' (which would silently evaluate other weights' geometry). "proportional" reads
    /// partial_rotary_factor as its kept fraction, so it does not inherit it.
    static func inheritingRotation(_ scheme: SchemeSpecification, from trained: SchemeSpecification) throws -> SchemeSpecification {
        let rotary: Set<String> = ["rope", "hope"]
        guard rotary.contains(scheme.name), rotary.contains(trained.name) else { return scheme }
        var keys = ["rope_theta", "pairing"]
        if scheme.settings["rope_type"] != .string("proportional"), trained.settings["rope_type"] != .string("proportional") {
            keys.append("partial_rotary_factor")
        }
        var inherited: [String: JSONValue] = [:]
        for key in keys where scheme.settings[key] == nil { inherited[key] = trained.settings[key] }
        return inherited.isEmpty ? scheme : try scheme.merging(inherited)
    }

    /// The trained model rebuilt under `scheme` with the same weights, and the run as evaluated.
    public static func swap(_ trained: Transformer, run: RunSpecification,
                            to scheme: SchemeSpecification) throws -> (run: RunSpecification, model: Transformer) {
        let swapped = try specification(run, scheme: scheme)
        var configuration = trained.configuration
        configuration.positionalScheme = try swapped.scheme
        let model = try Initialization.skippingDraws { try Transformer(configuration: configuration, seed: 0) }
        try copyWeights(from: trained, to: model, what: "\(run.pe.description) → \(swapped.pe.description)")
        return (swapped, model)
    }

    /// Copies every parameter by name; the two models must have the same parameters and shapes.
    static func copyWeights(from source: Transformer, to target: Transformer, what: String) throws {
        let sourceNames = Set(source.namedParameters.map(\.name)), targetNames = Set(target.namedParameters.map(\.name))
        guard sourceNames == targetNames else {
            let differing = sourceNames.symmetricDifference(targetNames).sorted().prefix(4).joined(separator: ", ")
            throw LabError.invalid("\(what): the two models' parameters differ (\(differing)); the weights cannot carry over")
        }
        try target.loadWeights(Dictionary(uniqueKeysWithValues: source.namedParameters), path: what)
    }

    /// A fine-tuning run of `base` (a trained run folder): its specification with `scheme`, the
    /// given training length, steps and learning rate; evaluation lengths default to 1, 2, 4 and 8
    /// times the new training length. Checked before any training: the base run must be finished
    /// (a checkpoint at its last step) and its weights must carry over to the new scheme.
    public static func fineTune(base folder: URL, scheme: SchemeSpecification, trainLength: Int?, steps: Int,
                                learningRate: Float?, evalLengths: [Int]?) throws -> RunSpecification {
        let base = try Experiment.specification(in: folder)
        let checkpoint = folder.appendingPathComponent(Checkpoint.fileName)
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            throw LabError.missing(checkpoint.path, "the trained base run's checkpoint")
        }
        let length = trainLength ?? base.trainLength
        let swapped = try specification(base, scheme: scheme)
        if case let .learnedAbsolute(rows) = try swapped.scheme, (evalLengths ?? [8 * length]).max()! > rows {
            throw LabError.invalid("\(folder.path) has a learned table of \(rows) positions, and a fine-tune cannot grow it "
                + "(the new rows would have no trained weights): evaluate within \(rows) tokens with --eval-lengths")
        }
        let run = try RunSpecification(
            task: base.task, taskOptions: base.taskOptions, pe: swapped.pe, positions: base.positions, seed: base.seed,
            trainLength: length, modelDimension: base.modelDimension, layers: base.layers, heads: base.heads, steps: steps,
            batchSize: base.batchSize, learningRate: learningRate ?? base.learningRate,
            evalLengths: evalLengths ?? [1, 2, 4, 8].map { $0 * length }, evalSamples: base.evalSamples,
            checkpointEvery: base.checkpointEvery, predictPositions: base.predictPositions, architecture: base.architecture,
            fineTuneFrom: FineTuneSource(folder: folder.standardizedFileURL.path, identity: base.identity, label: base.label))
        // The weights must fit the new model before any step is spent.
        let model = try Transformer(configuration: run.modelConfiguration(), seed: 0)
        try copyWeights(from: Transformer.load(from: checkpoint), to: model, what: "fine-tune of \(folder.path)")
        return run
    }

    /// The base weights a fine-tuning run starts from, after checking the base is the run it names.
    static func baseWeights(_ source: FineTuneSource) throws -> Transformer {
        let folder = URL(fileURLWithPath: source.folder)
        let base = try Experiment.specification(in: folder)
        guard base.identity == source.identity else {
            throw LabError.invalid("\(source.folder) now holds another run (identity \(base.identity), "
                + "the fine-tune started from \(source.identity)); start the fine-tune anew")
        }
        return try Transformer.load(from: folder.appendingPathComponent(Checkpoint.fileName))
    }
}

extension Report {
    /// One trained model under several schemes: the chosen metric against evaluation length per
    /// method (a plot and a table of methods × lengths), the training length marked.
    public static func extensionPage(run: RunSpecification, reports: [EvaluationReport]) -> String {
        let isText = run.task == "text"
        let metric: (name: String, value: (LengthResult) -> Double, format: String) = isText
            ? ("perplexity (non-overlapping windows)", { $0.perplexity }, "%.3f") : ("exact match", { $0.accuracy }, "%.2f")
        let series = reports.enumerated().map { index, report in
            SVGPlot.Series(name: report.label ?? report.pe, color: SVGPlot.palette[index % SVGPlot.palette.count],
                           points: report.results.map { r in
                               let y = metric.value(r)
                               return (Double(r.length), y, y, y)
                           })
        }
        var plot = SVGPlot(title: metric.name, xLabel: "evaluation length (tokens, log scale)", yLabel: metric.name, series: series)
        plot.logX = true
        plot.yRange = isText ? nil : 0...1
        plot.marker = (Double(run.trainLength), "train")
        plot.width = 760
        let lengths = orderedUnique(reports.flatMap { $0.results.map(\.length) }).sorted()
        var rows = ["<table><tr><th class=\"l\">method</th><th class=\"l\">scheme</th>"
                    + lengths.map { "<th>\($0)</th>" }.joined() + "</tr>"]
        for report in reports {
            let cells = lengths.map { length in
                report.results.first { $0.length == length }.map { String(format: metric.format, metric.value($0)) } ?? "–"
            }
            rows.append("<tr><td class=\"l\">\(escape(report.label ?? report.pe))</td><td class=\"l\">\(escape(report.scheme ?? ""))</td>"
                        + cells.map { "<td>\($0)</td>" }.joined() + "</tr>")
        }
        let lead = "<p class=\"lead\">One model, trained on \(escape(run.task)) with \(escape(run.label)) on sequences of at most "
            + "\(run.trainLength) tokens (seed \(run.seed)), evaluated under each method with its weights unchanged. "
            + "Each cell is the \(metric.name) at that evaluation length.</p>"
        return page(title: "Context extension: \(run.task), \(run.label)",
                    body: [lead, "<div class=\"row\"><figure>\(plot.render())</figure></div>", rows.joined(separator: "\n") + "</table>"])
    }
}
