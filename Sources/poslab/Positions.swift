import ArgumentParser
import Foundation
import PositionalEncodings

/// `poslab positions`: what a scheme does, as a table or as JSON.
struct Positions: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a positional scheme computes (frequencies, slopes, buckets, decay).",
        subcommands: [Rope.self, Hope.self, Alibi.self, T5.self, Decay.self]
    )

    /// The sizes these tables accept: each is computed whole, so every size has a limit.
    static let headDimensions = 2...65_536, lengths = 1...4_294_967_296

    /// Throws naming `option`, the value as given and the allowed range, unless `value` is nil or in `range`.
    static func check(_ value: Int?, _ range: ClosedRange<Int>, _ option: String) throws {
        if let value, !range.contains(value) {
            throw ValidationError("\(option) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }

    struct Rope: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "RoPE inverse frequencies and attention factor, with any transformers rope_parameters.")
        @Option(help: "Head dimension D.") var headDim: Int
        @Option(help: "Base (rope_theta).") var base: Double = 10_000
        @Option(help: "Fraction of the head dimension rotated (partial_rotary_factor).") var partial: Double = 1
        @Option(help: "A transformers rope_parameters dictionary, e.g. '{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 2048}'.")
        var rope: String?
        @Option(help: "The model's max_position_embeddings (read by dynamic, yarn and longrope).") var maxPositionEmbeddings: Int?
        @Option(help: "Current sequence length, for length-dependent scaling (dynamic, longrope).") var sequenceLength: Int?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            try check(headDim, headDimensions, "--head-dim")
            try check(maxPositionEmbeddings, lengths, "--max-position-embeddings")
            try check(sequenceLength, lengths, "--sequence-length")
        }

        func run() throws {
            let configuration = try RotaryConfiguration(ropeParameters: try rope.map(JSONValue.object(parsing:)) ?? [:], base: base,
                                                        partialRotaryFactor: partial, maximumPositionEmbeddings: maxPositionEmbeddings)
            let encoding = try RotaryEncoding(configuration: configuration, headDimension: headDim)
            let f = try encoding.frequencies(sequenceLength: sequenceLength)
            try printFrequencies(f, json: json, extra: [:])
        }
    }

    struct Hope: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "HoPE: the kept (rotated) pairs and zeros for the position-independent ones.")
        @Option(help: "Head dimension D.") var headDim: Int
        @Option(help: "Base (rope_theta).") var base: Double = 10_000
        @Option(help: "Keep pairs whose wavelength 2π/θ fits within this training length.") var trainLength: Int?
        @Option(help: "Keep this many highest-frequency pairs instead.") var keep: Int?
        @Option(help: "Keep this fraction of the pairs instead.") var fraction: Double?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            try check(headDim, headDimensions, "--head-dim")
            try check(trainLength, lengths, "--train-length")
            try check(keep, 0...(headDim / 2), "--keep")
        }

        func run() throws {
            let cuts = [trainLength.map(HoPECut.trainingLength), keep.map(HoPECut.count), fraction.map(HoPECut.fraction)].compactMap { $0 }
            guard cuts.count == 1 else { throw ValidationError("give exactly one of --train-length, --keep, --fraction") }
            let encoding = try HoPE.encoding(configuration: RotaryConfiguration(base: base), headDimension: headDim, cut: cuts[0])
            let f = try encoding.frequencies(sequenceLength: nil)
            let rotated = (0..<(encoding.rotaryDimension / 2)).filter { !encoding.positionIndependentPairs.contains($0) }
            try printFrequencies(f, json: json, extra: ["rotated_pairs": rotated])
        }
    }

    struct Alibi: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "ALiBi slopes per head.")
        @Option(help: "Number of heads H.") var heads: Int
        @Flag(help: "Print JSON.") var json = false

        func validate() throws { try check(heads, 1...4_096, "--heads") }

        func run() throws {
            guard heads > 0 else { throw ValidationError("--heads must be positive (got \(heads))") }
            let slopes = ALiBi.slopes(numberOfHeads: heads)
            if json { return try printJSON(["slopes": slopes]) }
            print(table(["head", "slope"], slopes.enumerated().map { ["\($0.offset)", String(format: "%.8g", $0.element)] }))
        }
    }

    struct T5: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "T5 relative-position buckets for key − query from −R to R.")
        @Option(help: "Number of buckets.") var buckets: Int = 32
        @Option(help: "Distance beyond which all share the last bucket.") var maxDistance: Int = 128
        @Flag(help: "Bidirectional buckets (encoder); causal otherwise.") var bidirectional = false
        @Option(help: "Show relative positions from −R to R.") var maxRelative: Int = 16
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            try check(buckets, 1...65_536, "--buckets")
            try check(maxDistance, lengths, "--max-distance")
            try check(maxRelative, 0...1_000_000, "--max-relative")
        }

        func run() throws {
            try T5Bias.validate(numberOfBuckets: buckets, maximumDistance: maxDistance, bidirectional: bidirectional)
            guard maxRelative >= 0 else { throw ValidationError("--max-relative must be non-negative (got \(maxRelative))") }
            let relative = Array(-maxRelative...maxRelative)
            let bucket = relative.map { T5Bias.bucket(relativePosition: $0, bidirectional: bidirectional, numberOfBuckets: buckets, maximumDistance: maxDistance) }
            if json { return try printJSON(["relative_position": relative, "bucket": bucket]) }
            print(table(["key − query", "bucket"], zip(relative, bucket).map { ["\($0)", "\($1)"] }))
        }
    }

    struct Decay: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "RoFormer's long-term-decay bound against relative distance.")
        @Option(help: "Head dimension D.") var headDim: Int
        @Option(help: "Base (rope_theta).") var base: Double = 10_000
        @Option(help: "A transformers rope_parameters dictionary.") var rope: String?
        @Option(help: "Apply HoPE's cut for this training length.") var hopeTrainLength: Int?
        @Option(help: "The model's max_position_embeddings (read by some scalings).") var maxPositionEmbeddings: Int?
        @Option(help: "Largest distance r.") var maxDistance: Int
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            try check(headDim, headDimensions, "--head-dim")
            try check(hopeTrainLength, lengths, "--hope-train-length")
            try check(maxPositionEmbeddings, lengths, "--max-position-embeddings")
            // The bound sums D/2 terms at each distance: cap the work (about a second).
            try check(maxDistance, 0...max(0, 100_000_000 / (headDim / 2) - 1), "--max-distance (with --head-dim \(headDim))")
        }

        func run() throws {
            guard rope == nil || hopeTrainLength == nil else { throw ValidationError("give --rope or --hope-train-length, not both") }
            guard maxDistance >= 0 else { throw ValidationError("--max-distance must be non-negative (got \(maxDistance))") }
            let configuration = try RotaryConfiguration(ropeParameters: try rope.map(JSONValue.object(parsing:)) ?? [:], base: base,
                                                        maximumPositionEmbeddings: maxPositionEmbeddings)
            let encoding = try hopeTrainLength.map { try HoPE.encoding(configuration: configuration, headDimension: headDim, cut: .trainingLength($0)) }
                ?? RotaryEncoding(configuration: configuration, headDimension: headDim)
            let bound = DecayCurve.bound(inverseFrequencies: try encoding.frequencies(sequenceLength: nil).inverseFrequencies, maximumDistance: maxDistance)
            if json { return try printJSON(DecayOutput(distance: Array(0...maxDistance), bound: bound)) }
            print(table(["distance", "bound"], bound.enumerated().map { ["\($0.offset)", String(format: "%.6f", $0.element)] }))
        }
    }
}

private struct DecayOutput: Encodable { let distance: [Int]; let bound: [Double] }

private struct FrequencyOutput: Encodable {
    let inv_freq: [Double]
    let attention_factor: Double
    let rotated_pairs: [Int]?
}

private func printFrequencies(_ f: RoPEFrequencies, json: Bool, extra: [String: [Int]]) throws {
    if json {
        return try printJSON(FrequencyOutput(inv_freq: f.inverseFrequencies, attention_factor: f.attentionFactor, rotated_pairs: extra["rotated_pairs"]))
    }
    print("attention factor: \(f.attentionFactor)")
    print(table(["pair", "inv_freq", "wavelength"], f.inverseFrequencies.enumerated().map { i, theta in
        ["\(i)", String(format: "%.6e", theta), theta == 0 ? "∞ (unrotated)" : String(format: "%.1f", 2 * Double.pi / theta)]
    }))
}
