import Foundation
import Models
import NN
import PositionalEncodings
import TensorCore
import Tasks

/// Lab: train short, evaluate long, compare schemes. Runs are folders:
///
///     config.json              the RunSpecification (everything the run was started with)
///     log.jsonl                one line per step: step, loss, learning rate, gradient norm, tokens/s
///     checkpoint.safetensors   weights, optimiser state, progress (atomic; resume continues exactly)
///     eval.json                per evaluation length: accuracy, token accuracy, loss, perplexity, count
///
/// The library never prints; progress goes to the caller's callbacks.
/// The architecture beyond size: grouped-query heads, feed-forward kind, norms, attention scoring,
/// tied embeddings, the embedding scale (see `TransformerConfiguration`). Every key may be absent from JSON.
public struct ArchitectureOptions: Codable, Equatable, Sendable {
    public var keyValueHeads: Int?
    public var feedForward: FeedForwardKind
    public var normalization: NormalizationKind
    public var placement: NormalizationPlacement
    public var attentionScoring: AttentionScoring
    public var tiedEmbeddings: Bool
    /// Token embeddings multiplied by √C on the way in (Vaswani et al. 2017, §3.4;
    /// `TransformerConfiguration.embeddingScale`); not with the normalized placement, whose
    /// embeddings stay on the unit sphere. Off by default: see `SchemeSpecification.defaultSinusoidalScale`.
    public var scaledEmbeddings: Bool

    public init(keyValueHeads: Int? = nil, feedForward: FeedForwardKind = .mlp, normalization: NormalizationKind = .layerNorm,
                placement: NormalizationPlacement = .preNorm, attentionScoring: AttentionScoring = .scaledDotProduct,
                tiedEmbeddings: Bool = true, scaledEmbeddings: Bool = false) {
        self.keyValueHeads = keyValueHeads; self.feedForward = feedForward; self.normalization = normalization
        self.placement = placement; self.attentionScoring = attentionScoring; self.tiedEmbeddings = tiedEmbeddings
        self.scaledEmbeddings = scaledEmbeddings
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(keyValueHeads: try c.decodeIfPresent(Int.self, forKey: .keyValueHeads),
                  feedForward: try c.decodeIfPresent(FeedForwardKind.self, forKey: .feedForward) ?? .mlp,
                  normalization: try c.decodeIfPresent(NormalizationKind.self, forKey: .normalization) ?? .layerNorm,
                  placement: try c.decodeIfPresent(NormalizationPlacement.self, forKey: .placement) ?? .preNorm,
                  attentionScoring: try c.decodeIfPresent(AttentionScoring.self, forKey: .attentionScoring) ?? .scaledDotProduct,
                  tiedEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tiedEmbeddings) ?? true,
                  scaledEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .scaledEmbeddings) ?? false)
    }
}

/// One training run and its evaluation, validated on creation.
public struct RunSpecification: Codable, Equatable, Sendable {
    public var task: String
    public var taskOptions: TaskOptions
    /// The positional scheme with every setting explicit (run defaults filled in on creation).
    public var pe: SchemeSpecification
    /// How training assigns position IDs (evaluation always uses 0..T−1, or the task's coupled IDs).
    public var positions: PositionAssignment
    public var seed: UInt64
    /// The longest training sequence, in tokens.
    public var trainLength: Int
    public var modelDimension: Int
    public var layers: Int
    public var heads: Int
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    /// Evaluation lengths, in tokens.
    public var evalLengths: [Int]
    /// Examples (or text windows) per evaluation length.
    public var evalSamples: Int
    public var checkpointEvery: Int
    /// Predictive Position Coupling (Golowich et al. 2025): a second head learns the coupled position
    /// ID of the next token, and evaluation decodes greedily feeding back the model's own IDs.
    /// Needs a task with coupled positions (addition).
    public var predictPositions: Bool
    public var architecture: ArchitectureOptions
    /// A fine-tuning run starts from another run's trained weights instead of a fresh initialisation.
    public var fineTuneFrom: FineTuneSource?

    public init(task: String = "copy", taskOptions: TaskOptions = TaskOptions(), pe: SchemeSpecification = .rope,
                positions: PositionAssignment = .sequential, seed: UInt64 = 0, trainLength: Int = 32, modelDimension: Int = 64,
                layers: Int = 3, heads: Int = 4, steps: Int = 3000, batchSize: Int = 32, learningRate: Float = 3e-3,
                evalLengths: [Int]? = nil, evalSamples: Int = 64, checkpointEvery: Int = 100, predictPositions: Bool = false,
                architecture: ArchitectureOptions = ArchitectureOptions(), fineTuneFrom: FineTuneSource? = nil,
                checkingFit: Bool = true) throws {
        try RunLimits.check(trainLength: trainLength)
        let lengths = evalLengths ?? [1, 2, 4, 8].map { $0 * trainLength }
        try RunLimits.check(trainLength: trainLength, evalLengths: lengths, extraPosition: positions.largestExtraPosition,
                            steps: steps, batchSize: batchSize, evalSamples: evalSamples, checkpointEvery: checkpointEvery,
                            layers: layers, modelDimension: modelDimension, heads: heads)
        self.task = task; self.taskOptions = taskOptions; self.positions = positions; self.seed = seed
        self.trainLength = trainLength; self.modelDimension = modelDimension; self.layers = layers; self.heads = heads
        self.steps = steps; self.batchSize = batchSize; self.learningRate = learningRate
        self.evalLengths = lengths.sorted(); self.evalSamples = evalSamples; self.checkpointEvery = checkpointEvery
        self.predictPositions = predictPositions
        self.architecture = architecture
        self.fineTuneFrom = fineTuneFrom
        self.pe = pe
        // Building every part once rejects an invalid run before any work starts.
        let built = try makeTask()
        // A new run's lengths must fit its task (checked before training, not found after it); a
        // recorded run (`checkingFit` false, from config.json) stays readable as it was made.
        if checkingFit, let problem = built.trainingProblem(length: trainLength) {
            throw ConfigurationError(parameter: "trainLength", value: "\(trainLength)", allowed: problem)
        }
        if checkingFit {
            if let n = positions.longestEvaluation, n < trainLength {
                throw ConfigurationError(parameter: "positions", value: "randomized:\(n)",
                                         allowed: "randomized:N with N at least the training length \(trainLength)")
            }
            try built.checkEvaluation(lengths: self.evalLengths)
            try positions.checkEvaluation(lengths: self.evalLengths)
        }
        let rows = try positionsUsed(by: built) + 1
        self.pe = SchemeSpecification(try pe.resolved(trainingLength: trainLength, maximumLength: max(tableLength, rows),
                                                      modelDimension: modelDimension))
        if case let .learnedAbsolute(maximumLength) = try scheme, maximumLength < rows {
            throw ConfigurationError(parameter: "learned.max_length", value: "\(maximumLength)",
                                     allowed: "at least \(rows): this run's training and evaluation use positions up to \(rows - 1)")
        }
        let configuration = try modelConfiguration(for: built)
        _ = try trainingConfiguration()
        try RunLimits.checkMemory(RunLimits.trainingBytes(configuration, batchSize: batchSize, length: trainLength,
                                                          tableRows: rows), what: "\(layers) layers, model dimension "
                                  + "\(modelDimension), batch \(batchSize), length \(trainLength)")
    }

    /// The largest position ID training or evaluation gives a token: the longest sequence plus any
    /// offset or randomized range, or the task's own coupled IDs (addition's offset in training).
    func positionsUsed(by task: LabTask) throws -> Int {
        var largest = (evalLengths + [trainLength]).max()! - 1 + positions.largestExtraPosition
        if case let .sequence(sequenceTask) = task {
            largest = max(largest, try sequenceTask.largestCoupledPosition(length: trainLength) ?? 0,
                          try sequenceTask.evaluationTask.largestCoupledPosition(length: evalLengths.max()!) ?? 0)
        }
        return largest
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var pe = try c.decode(SchemeSpecification.self, forKey: .pe)
        // A config.json written before schemes had settings names the scheme alone ("pe": "sinusoidal";
        // new files record every setting): its sinusoidal table had amplitude 1, today's default is 1/√C.
        if (try? c.decode(String.self, forKey: .pe)) != nil, pe.name == "sinusoidal", pe.settings["scale"] == nil {
            pe = try pe.merging(["scale": .number(1)])
        }
        // Likewise a run written before the sparse task had a target setting trained on the sum mod q.
        var taskOptions = try c.decodeIfPresent(TaskOptions.self, forKey: .taskOptions) ?? TaskOptions()
        let recordedTaskKeys = try? c.nestedContainer(keyedBy: LegacyTaskKeys.self, forKey: .taskOptions)
        if recordedTaskKeys?.contains(.sparseTarget) != true {
            taskOptions.sparseTarget = .sumModulo
        }
        // And an addition run written before the markers were coupled had them at fixed IDs.
        if recordedTaskKeys?.contains(.additionMarkers) != true, Self.involvesAddition(try c.decode(String.self, forKey: .task)) {
            taskOptions.additionMarkers = .fixed
        }
        try self.init(task: c.decode(String.self, forKey: .task), taskOptions: taskOptions,
                      pe: pe, positions: c.decodeIfPresent(PositionAssignment.self, forKey: .positions) ?? .sequential,
                      seed: c.decode(UInt64.self, forKey: .seed), trainLength: c.decode(Int.self, forKey: .trainLength),
                      modelDimension: c.decode(Int.self, forKey: .modelDimension), layers: c.decode(Int.self, forKey: .layers),
                      heads: c.decode(Int.self, forKey: .heads), steps: c.decode(Int.self, forKey: .steps),
                      batchSize: c.decode(Int.self, forKey: .batchSize), learningRate: c.decode(Float.self, forKey: .learningRate),
                      evalLengths: c.decode([Int].self, forKey: .evalLengths), evalSamples: c.decode(Int.self, forKey: .evalSamples),
                      checkpointEvery: c.decode(Int.self, forKey: .checkpointEvery),
                      predictPositions: c.decodeIfPresent(Bool.self, forKey: .predictPositions) ?? false,
                      architecture: c.decodeIfPresent(ArchitectureOptions.self, forKey: .architecture) ?? ArchitectureOptions(),
                      fineTuneFrom: c.decodeIfPresent(FineTuneSource.self, forKey: .fineTuneFrom), checkingFit: false)
    }

    private enum LegacyTaskKeys: String, CodingKey { case sparseTarget, additionMarkers }

    enum CodingKeys: String, CodingKey {
        case task, taskOptions, pe, positions, seed, trainLength, modelDimension, layers, heads, steps, batchSize, learningRate
        case evalLengths, evalSamples, checkpointEvery, predictPositions, architecture, fineTuneFrom
    }

    /// Whether `task` (a name, or a "+" mixture of names) includes addition.
    static func involvesAddition(_ task: String) -> Bool { task.split(separator: "+").contains("addition") }

    /// As synthesized, but `taskOptions.additionMarkers` only for an addition run with coupled
    /// markers (`TaskOptions.encode(to:includingAdditionMarkers:)`): the identity of every run
    /// made before the markers existed is unchanged.
    public func encode(to encoder: Encoder) throws {
        struct RecordedTaskOptions: Encodable {
            let options: TaskOptions, markers: Bool
            func encode(to encoder: Encoder) throws { try options.encode(to: encoder, includingAdditionMarkers: markers) }
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(task, forKey: .task)
        try c.encode(RecordedTaskOptions(options: taskOptions,
                                         markers: Self.involvesAddition(task) && taskOptions.additionMarkers == .coupled),
                     forKey: .taskOptions)
        try c.encode(pe, forKey: .pe); try c.encode(positions, forKey: .positions); try c.encode(seed, forKey: .seed)
        try c.encode(trainLength, forKey: .trainLength); try c.encode(modelDimension, forKey: .modelDimension)
        try c.encode(layers, forKey: .layers); try c.encode(heads, forKey: .heads); try c.encode(steps, forKey: .steps)
        try c.encode(batchSize, forKey: .batchSize); try c.encode(learningRate, forKey: .learningRate)
        try c.encode(evalLengths, forKey: .evalLengths); try c.encode(evalSamples, forKey: .evalSamples)
        try c.encode(checkpointEvery, forKey: .checkpointEvery); try c.encode(predictPositions, forKey: .predictPositions)
        try c.encode(architecture, forKey: .architecture); try c.encodeIfPresent(fineTuneFrom, forKey: .fineTuneFrom)
    }

    public func makeTask() throws -> LabTask { try LabTask.make(name: task, options: taskOptions) }

    public func modelConfiguration() throws -> TransformerConfiguration { try modelConfiguration(for: makeTask()) }

    /// The model for `task` (this run's, already built: a text task reads its whole corpus).
    public func modelConfiguration(for task: LabTask) throws -> TransformerConfiguration {
        let longest = (evalLengths + [trainLength]).max()! + positions.largestExtraPosition
        var classes: Int?
        if predictPositions {
            guard case let .sequence(sequenceTask) = task, let largest = try sequenceTask.largestCoupledPosition(length: longest) else {
                throw ConfigurationError(parameter: "predictPositions", value: "true for task \(self.task)",
                                         allowed: "a task with coupled position IDs (addition)")
            }
            classes = largest + 2  // IDs 0…largest, and the one after the last token
        }
        return try TransformerConfiguration(
            vocabularySize: task.vocabularySize, modelDimension: modelDimension, numberOfLayers: layers, numberOfHeads: heads,
            numberOfKeyValueHeads: architecture.keyValueHeads, feedForward: architecture.feedForward,
            normalization: architecture.normalization, normalizationPlacement: architecture.placement,
            attentionScoring: architecture.attentionScoring, tiedEmbeddings: architecture.tiedEmbeddings,
            positionalScheme: try scheme,
            positionPrediction: classes,
            embeddingScale: architecture.scaledEmbeddings && architecture.placement != .normalized ? Float(modelDimension).squareRoot() : 1)
    }

    public func trainingConfiguration() throws -> TrainingConfiguration {
        try TrainingConfiguration(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
    }

    /// The positional scheme the model is built with. A learned table covers every evaluated
    /// position by default; the positions beyond training stay untrained.
    public var scheme: PositionalScheme {
        get throws { try pe.resolved(trainingLength: trainLength, maximumLength: tableLength, modelDimension: modelDimension) }
    }

    /// The rows a learned table gets by default: every position training and evaluation use, and two more.
    var tableLength: Int { (evalLengths + [trainLength]).max()! + positions.largestExtraPosition + 2 }

    /// The scheme's label: its name and the settings that differ from its defaults for this run,
    /// then what else sets this run apart from a plain one (Predictive Position Coupling, training
    /// positions, fine-tuning).
    public var label: String {
        var parts = [pe.label(defaults: defaultScheme)]
        if predictPositions { parts.append("+PPC") }
        switch positions {
        case .sequential, .coupled: break
        case let .randomOffset(n): parts.append("offset:\(n)")
        case let .randomized(n): parts.append("randomized:\(n)")
        }
        if let fineTuneFrom { parts.append("fine-tuned from \(fineTuneFrom.label)") }
        return parts.joined(separator: " ")
    }

    /// The same scheme with nothing set, resolved for this run (what `label` leaves out).
    var defaultScheme: SchemeSpecification? {
        (try? SchemeSpecification(name: pe.name).resolved(trainingLength: trainLength, maximumLength: tableLength,
                                                           modelDimension: modelDimension))
            .map(SchemeSpecification.init)
    }

    /// The run's identity: a hash of its whole specification (every setting, the seed included).
    /// Two runs with equal identities trained the same thing; a sweep skips a run only on a match.
    public var identity: String { RunSpecification.hash(self) }

    /// The identity of this specification with the seed left out: runs that share it differ only
    /// by seed, and a report averages exactly those.
    public var identityWithoutSeed: String {
        var unseeded = self
        unseeded.seed = 0
        return RunSpecification.hash(unseeded)
    }

    static func hash(_ run: RunSpecification) -> String {
        // Over the canonical JSON (sorted keys): stable across processes and platforms.
        fnv1a((try? prettyJSON(run)) ?? "\(run)")
    }

    /// FNV-1a, 64 bits, as 16 hex digits.
    static func fnv1a(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// A folder name: task-scheme-Ltrain-Cdim-sSeed-identity (the first 10 hex digits of the hash).
    public var name: String {
        "\(task)-\(pe.name)\(predictPositions ? "-ppc" : "")\(fineTuneFrom == nil ? "" : "-ft")-L\(trainLength)"
            + "-C\(modelDimension)-s\(seed)-\(identity.prefix(10))"
    }
}

/// The run a fine-tuning run starts from: its folder and its identity when the fine-tune began,
/// so that a fine-tune of a changed base run is another run.
public struct FineTuneSource: Codable, Equatable, Sendable {
    public var folder: String
    public var identity: String
    /// The base run's label, for reports.
    public var label: String

    public init(folder: String, identity: String, label: String) {
        self.folder = folder; self.identity = identity; self.label = label
    }
}


extension PositionAssignment {
    /// How far beyond the sequence length training may place a position.
    var largestExtraPosition: Int {
        switch self {
        case .sequential, .coupled: return 0
        case let .randomOffset(maximumOffset): return maximumOffset
        case let .randomized(maximumPosition): return maximumPosition
        }
    }
}

extension SequenceTask {
    /// The largest coupled position ID of this task's examples up to `length` tokens, or nil when
    /// its examples carry no coupled positions (read off seeded examples of the largest size).
    func largestCoupledPosition(length: Int) throws -> Int? {
        let size = self.size(fittingIn: length)
        guard size >= minimumSize else { return nil }
        if let addition = self as? AdditionTask { return addition.maximumPositionID(size: size) }
        if let mixture = self as? TaskMixture {
            return try mixture.tasks.compactMap { try $0.largestCoupledPosition(length: length) }.max()
        }
        var generator = SplitMix64(seed: 1)
        // A task's examples all carry coupled positions or none do: the shortest says which (the
        // long ones are costly at lengths near the limit).
        guard try example(size: minimumSize, generator: &generator).positions != nil else { return nil }
        let examples = try (0..<16).map { _ in try example(size: size, generator: &generator) }
        let largest = examples.compactMap { $0.positions?.max() }.max()
        return largest
    }
}
