import ArgumentParser
import Foundation
import Lab
import Models
import PositionalEncodings
import Tasks

/// `poslab passkey`: passkey retrieval by length and depth, for a text run or a transformers folder.
struct PasskeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passkey",
        abstract: "Passkey retrieval: a five-digit key hidden at each depth of filler text, asked for at the end.",
        discussion: "For text models: the lab's byte-level text runs and transformers folders (through their tokenizer.json). "
            + "With --pes, each scheme of the run's family side by side (the run's own first), e.g. --pes "
            + "'rope{\"rope_type\": \"yarn\", \"factor\": 4}',hope. Prints accuracy by length × depth; --out writes the JSON and "
            + "an HTML page of heatmaps beside it.")

    @Option(help: "Run folder, or a transformers folder.") var model: String
    @Option(help: "Prompt lengths in tokens, comma-separated (default: the run's evaluation lengths that can hold a key).")
    var lengths: String?
    @Option(help: "Depths of the key in the filler, fractions from 0 to 1, comma-separated.") var depths = "0,0.25,0.5,0.75,1"
    @Option(help: "Keys per length and depth.") var samples = 5
    @Option(help: "Seed of the keys.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Evaluate under this scheme instead of the run's own. " + schemeHelp)) var pe: String?
    @Option(help: ArgumentHelp(ropeHelp)) var rope: String?
    @Option(help: "Several schemes, comma-separated, each as --pe takes it; the run's own is evaluated first.") var pes: String?
    @Option(help: "Write the results as JSON to this file and the heatmaps to the same name with .html.") var out: String?

    func validate() throws {
        guard (1...10_000).contains(samples) else { throw ValidationError("--samples must be from 1 to 10000, not \(samples)") }
        if pe != nil, pes != nil { throw ValidationError("give --pe or --pes, not both") }
    }

    func run() throws {
        let depthValues = try depths.split(separator: ",").map { part -> Double in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let value = Double(text), (0...1).contains(value) else {
                throw ValidationError("--depths must be fractions from 0 to 1, comma-separated; \"\(text)\" is not one")
            }
            return value
        }
        guard !depthValues.isEmpty else { throw ValidationError("--depths is empty") }
        if let repeated = depthValues.first(where: { d in depthValues.filter { $0 == d }.count > 1 }) {
            throw ValidationError("--depths gives \(repeated) twice; each depth is one column")
        }
        let given = try lengths.map(parseLengths)
        let single = try pe.map { try parseScheme($0, rope: rope) }
        let methods = try pes.map { try parseSchemeList($0, rope: rope) }
        if let out {
            try AtomicFile.checkDestination(URL(fileURLWithPath: out), parameter: "--out")
            try AtomicFile.checkDestination(URL(fileURLWithPath: out).deletingPathExtension().appendingPathExtension("html"), parameter: "--out")
        }
        let (run, trained) = try loadRun(model)
        guard run.task == "text" else {
            throw ValidationError("--model \(model) trained on \(run.task); passkey retrieval needs a text model")
        }
        if case .randomized = run.positions {
            // Its prompts run on positions 0..T−1, which such a run has hardly seen: a figure that would mislead.
            throw ValidationError("--model \(model) was trained on randomized positions (\(run.positions.text)); passkey "
                                  + "prompts use positions 0..T−1 and are not drawn from that range, so they are not run")
        }
        let codec: any TextCodec = try run.taskOptions.tokenizer.map { try ByteLevelBPE(contentsOf: $0) } ?? ByteCodec()
        let minimum = try Passkey.minimumLength(codec: codec)
        let chosen = given ?? run.evalLengths.filter { $0 >= minimum }
        guard !chosen.isEmpty else {
            throw ValidationError("none of the run's evaluation lengths (\(run.evalLengths.map(String.init).joined(separator: ", "))) "
                                  + "holds a key: give --lengths of at least \(minimum) tokens")
        }
        // Every scheme is swapped (and so checked) before any evaluation.
        let ownSwap = try single ?? (rope == nil ? nil : replacingRope(run.pe, rope: rope))
        var models = [(label: ownSwap == nil ? "\(run.label) (as trained)" : "", run: run, model: trained)]
        if let ownSwap {
            let swapped = try Extension.swap(trained, run: run, to: ownSwap)
            models = [("\(swapped.run.label) (trained as \(run.label))", swapped.run, swapped.model)]
        }
        for method in methods ?? [] {
            let swapped = try Extension.swap(trained, run: run, to: method)
            models.append((swapped.run.label, swapped.run, swapped.model))
        }
        var results: [Passkey.Results] = []
        for entry in models {
            print("\n\(entry.label)  [\(entry.run.pe.description)]")
            var rows: [[String]] = []
            let result = try Passkey.evaluate(model: entry.model, codec: codec, label: entry.label, lengths: chosen, depths: depthValues,
                                              samples: samples, seed: seed) { cell in
                if cell.depth == depthValues.first { rows.append([String(cell.length)]) }
                rows[rows.count - 1].append(String(format: "%.2f", cell.accuracy))
            }
            print(table(["length"] + depthValues.map { String(format: "%.0f%%", $0 * 100) }, rows))
            results.append(result)
        }
        if let out {
            let url = URL(fileURLWithPath: out)
            try AtomicFile.write(prettyJSON(results), to: url)
            let page = url.deletingPathExtension().appendingPathExtension("html")
            try AtomicFile.write(Passkey.page(title: "Passkey retrieval: \(run.label)", reports: results), to: page)
            print("report: \(page.path)")
        }
    }
}
