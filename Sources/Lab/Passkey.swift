import Foundation
import Models
import TensorCore
import Tasks

/// Passkey retrieval (Mohtashami and Jaggi 2023, "Landmark Attention"; the test of context
/// extension in the YaRN and LongRoPE papers and llama.cpp's passkey example): a five-digit number
/// is hidden at a chosen depth of filler text, and the model is asked for it at the end:
///
///     <intro> <filler …> The pass key is 48213. Remember it. 48213 is the pass key. <filler …>
///     What is the pass key? The pass key is
///
/// The prompt is as long as `length` tokens allow (exactly that at byte level; the filler is cut to
/// fit); depth 0 puts the key right after the intro, depth 1 right before the question. A prompt counts as retrieved when the
/// greedy continuation, leading spaces dropped, starts with the key. Keys are drawn from `seed`,
/// so every model and scheme is asked the same questions.
public enum Passkey {
    public static let intro = "There is an important piece of information hidden inside a lot of irrelevant text. "
        + "Find it and memorize it. I will quiz you about the important information there.\n"
    public static let filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
    public static let question = "\nWhat is the pass key? The pass key is"
    public static func needle(_ key: String) -> String { "The pass key is \(key). Remember it. \(key) is the pass key. " }

    /// Accuracy at one length and depth.
    public struct Cell: Codable, Equatable, Sendable {
        public var length: Int
        public var depth: Double
        public var accuracy: Double
        public var count: Int
    }

    /// Every cell of one model (and scheme), lengths × depths.
    public struct Results: Codable, Equatable, Sendable {
        public var label: String
        public var lengths: [Int]
        public var depths: [Double]
        public var samples: Int
        public var seed: UInt64
        public var cells: [Cell]

        public func accuracy(length: Int, depth: Double) -> Double? {
            cells.first { $0.length == length && $0.depth == depth }?.accuracy
        }
    }

    /// The prompt's text with `fillerCharacters` of filler, the key at `depth` of it.
    static func text(fillerCharacters: Int, depth: Double, key: String) -> String {
        let unit = Array(filler)
        let fill = String((0..<fillerCharacters).map { unit[$0 % unit.count] })
        let split = fill.index(fill.startIndex, offsetBy: Int((depth * Double(fillerCharacters)).rounded()))
        return intro + fill[..<split] + needle(key) + fill[split...] + question
    }

    /// The fewest tokens a prompt can have: intro, key and question around one character of filler.
    public static func minimumLength(codec: any TextCodec) throws -> Int {
        try codec.encode(text(fillerCharacters: 1, depth: 0, key: "99999")).count
    }

    /// The longest prompt evaluated, in tokens.
    public static let maximumLength = 65_536

    /// The prompt of at most `length` tokens (exactly `length` at byte level) with `key` at `depth`
    /// (0…1) of the filler: the whole text is tokenized at once, as a model reads it (pieces
    /// tokenized apart would give token sequences no text has), with as much filler as fits.
    public static func prompt(length: Int, depth: Double, key: String, codec: any TextCodec) throws -> [Int] {
        let minimum = try minimumLength(codec: codec)
        guard length <= maximumLength else {
            throw ConfigurationError(context: "passkey", parameter: "length", value: "\(length)", allowed: "at most \(maximumLength) tokens")
        }
        guard length >= minimum else {
            throw ConfigurationError(context: "passkey", parameter: "length", value: "\(length)",
                                     allowed: "at least \(minimum) tokens (intro, key and question)")
        }
        // Tokens never outnumber bytes, and the filler is ASCII: 8 characters a token bounds any tokenizer here.
        var (low, high) = (1, 8 * length)
        while low < high {
            let middle = (low + high + 1) / 2
            if try codec.encode(text(fillerCharacters: middle, depth: depth, key: key)).count <= length { low = middle } else { high = middle - 1 }
        }
        return try codec.encode(text(fillerCharacters: low, depth: depth, key: key))
    }

    /// Whether a continuation gives the key: its text, leading spaces dropped, starts with it.
    public static func retrieved(_ continuation: [Int], key: String, codec: any TextCodec) -> Bool {
        ((try? codec.decode(continuation)) ?? "").drop(while: { $0 == " " }).hasPrefix(key)
    }

    /// Retrieval accuracy of `model` at every length × depth, `samples` keys each. All lengths are
    /// checked first (prompt fits, positions fit the model's table). `onCell` sees each result.
    public static func evaluate(model: Transformer, codec: any TextCodec, label: String, lengths: [Int], depths: [Double],
                                samples: Int, seed: UInt64 = 0, onCell: (Cell) throws -> Void = { _ in }) throws -> Results {
        try require(samples >= 1 && samples <= 10_000, "samples", samples, "1…10000")
        try require(!depths.isEmpty && depths.allSatisfy { (0...1).contains($0) }, "depths", depths, "fractions from 0 to 1")
        let answerTokens = try codec.encode(" 99999").count + 1
        let minimum = try minimumLength(codec: codec)
        if let long = lengths.first(where: { $0 > maximumLength }) {
            throw ConfigurationError(context: "passkey", parameter: "length", value: "\(long)",
                                     allowed: "at most \(maximumLength) tokens (a prompt is decoded through one KV cache)")
        }
        let tooShort = lengths.filter { $0 < minimum }
        guard tooShort.isEmpty else {
            throw ConfigurationError(context: "passkey", parameter: "length", value: tooShort.map(String.init).joined(separator: ", "),
                                     allowed: "at least \(minimum) tokens: the intro, the key and the question alone take \(minimum - 1)")
        }
        if let last = model.positionalEncodings.compactMap(\.maximumPosition).min(),
           let long = lengths.filter({ $0 + answerTokens > last + 1 }).first {
            throw ConfigurationError(context: "passkey", parameter: "length", value: "\(long)",
                                     allowed: "at most \(last + 1 - answerTokens): the model's position table ends at \(last) "
                                        + "and the answer takes \(answerTokens) more")
        }
        var cells: [Cell] = []
        for length in lengths {
            for (depthIndex, depth) in depths.enumerated() {
                var generator = SplitMix64(seed: seed ^ (UInt64(length) << 20) ^ UInt64(depthIndex + 1))
                let keys = (0..<samples).map { _ in String(generator.nextInt(in: 10_000..<100_000)) }
                let requests = try keys.map {
                    ContinuationRequest(prompt: try prompt(length: length, depth: depth, key: $0, codec: codec), generatedPositions: .sequential)
                }
                // About 64k prompt tokens per batch: the cache of a long prompt is the memory that matters.
                let batch = max(1, min(samples, 65_536 / length))
                let continuations = try GradientMode.withoutGradient {
                    try model.greedyContinuations(requests, count: answerTokens, maximumBatchSize: batch)
                }
                let right = zip(keys, continuations).filter { retrieved($1.tokens, key: $0, codec: codec) }.count
                let cell = Cell(length: length, depth: depth, accuracy: Double(right) / Double(samples), count: samples)
                try onCell(cell)
                cells.append(cell)
            }
        }
        return Results(label: label, lengths: lengths, depths: depths, samples: samples, seed: seed, cells: cells)
    }

    /// A self-contained page: one heatmap (lengths × depths, accuracy as colour) per report.
    public static func page(title: String, reports: [Results]) -> String {
        var body = ["<p class=\"lead\">Passkey retrieval (Mohtashami and Jaggi 2023): a five-digit key hidden at a depth "
                    + "of filler text, asked for at the end; greedy decoding, a cell is the share of keys retrieved.</p>"]
        for report in reports {
            body.append("<h2>\(escape(report.label))</h2>" + heatmap(report))
        }
        return Report.page(title: title, body: body, footer: "Written by PositionLab; the data is in the JSON file beside this page.")
    }

    static func heatmap(_ report: Results) -> String {
        let (cellWidth, cellHeight, left, top) = (64.0, 26.0, 70.0, 40.0)
        let width = left + cellWidth * Double(report.depths.count) + 20, height = top + cellHeight * Double(report.lengths.count) + 30
        func colour(_ a: Double) -> String {
            // 0: red (215, 48, 39); 1: green (26, 152, 80), through pale yellow.
            let (r, g, b) = a < 0.5
                ? (215 + (255 - 215) * a * 2, 48 + (255 - 48) * a * 2, 39 + (191 - 39) * a * 2)
                : (255 - (255 - 26) * (a - 0.5) * 2, 255 - (255 - 152) * (a - 0.5) * 2, 191 - (191 - 80) * (a - 0.5) * 2)
            return String(format: "rgb(%.0f,%.0f,%.0f)", r, g, b)
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"Helvetica, Arial\" font-size=\"11\">"
        svg += "<text x=\"\(left + cellWidth * Double(report.depths.count) / 2)\" y=\"14\" text-anchor=\"middle\">depth of the key</text>"
        for (j, depth) in report.depths.enumerated() {
            svg += "<text x=\(quote(left + cellWidth * (Double(j) + 0.5))) y=\"32\" text-anchor=\"middle\">\(String(format: "%.0f%%", depth * 100))</text>"
        }
        for (i, length) in report.lengths.enumerated() {
            let y = top + cellHeight * Double(i)
            svg += "<text x=\(quote(left - 6)) y=\(quote(y + cellHeight / 2 + 4)) text-anchor=\"end\">\(length)</text>"
            for (j, depth) in report.depths.enumerated() {
                let x = left + cellWidth * Double(j)
                guard let a = report.accuracy(length: length, depth: depth) else { continue }
                svg += "<rect x=\(quote(x)) y=\(quote(y)) width=\(quote(cellWidth - 2)) height=\(quote(cellHeight - 2)) fill=\"\(colour(a))\"/>"
                svg += "<text x=\(quote(x + cellWidth / 2 - 1)) y=\(quote(y + cellHeight / 2 + 3)) text-anchor=\"middle\">\(String(format: "%.2f", a))</text>"
            }
        }
        svg += "<text x=\"12\" y=\(quote(top + cellHeight * Double(report.lengths.count) / 2)) transform=\"rotate(-90 12 \(Int(top + cellHeight * Double(report.lengths.count) / 2)))\" text-anchor=\"middle\">prompt tokens</text>"
        return svg + "</svg>"
    }

    private static func quote(_ v: Double) -> String { "\"\(String(format: "%.1f", v))\"" }
}
