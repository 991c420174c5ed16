import ArgumentParser
import Foundation
import Interop
import Lab
import Models
import TensorCore
import Tasks

/// `poslab export`: a trained run as a Hugging Face transformers folder.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a trained run as a transformers folder (config.json, model.safetensors, tokenizer files).",
        discussion: "Python: AutoModelForCausalLM.from_pretrained(DIR) gives the run's logits. RoPE runs export as Llama "
            + "(--feed-forward swiGLU --normalization rmsNorm; HoPE as \"proportional\" RoPE) or GPT-NeoX (the default "
            + "LayerNorm/GELU model, partial rotation too); learned, sinusoidal and NoPE runs as GPT-2 (sinusoidal and "
            + "NoPE as a fixed position table of --max-positions rows: exact up to that length). ALiBi, T5, relative and "
            + "Shaw runs, post-norm, nGPT, cosine attention and position heads have no transformers architecture and are "
            + "refused with the reason. The folder also holds positionlab_run.json, so that poslab eval, generate and "
            + "analyze take it as --model. DIR must not exist; it appears only when complete.")

    @Option(help: "Run folder (config.json and checkpoint.safetensors).") var model: String
    @Option(help: "The folder to write (must not exist).") var out: String
    @Option(help: ArgumentHelp("max_position_embeddings, and the rows of the position table of sinusoidal and NoPE "
                               + "runs (default: the longest of the run's training and evaluation lengths)."))
    var maxPositions: Int?

    func validate() throws {
        if let maxPositions, !(1...1_000_000).contains(maxPositions) {
            throw ValidationError("--max-positions must be from 1 to 1000000, not \(maxPositions)")
        }
    }

    func run() throws {
        let destination = URL(fileURLWithPath: out)
        try TransformersExport.checkDestination(destination)
        let (run, trained) = try loadRun(model)
        let positions = maxPositions ?? ([run.trainLength] + run.evalLengths).max()!
        let export = try TransformersExport(model: trained, maximumPositions: positions)
        let vocabulary: TokenizerFiles.Vocabulary
        switch trained.configuration.vocabularySize {
        case TextTask.byteVocabularySize: vocabulary = .bytes
        case TaskVocabulary.size: vocabulary = .taskSymbols
        case let size: throw ValidationError("--model \(model) has a vocabulary of \(size), which has no tokenizer to export")
        }
        var files = try TokenizerFiles.files(vocabulary, maximumLength: positions)
        files[InteropRun.fileName] = Data(try prettyJSON(run).utf8)
        // Ctrl-C or SIGTERM: stop between files and remove what was written (a second Ctrl-C ends
        // the process at once; the next export to this destination removes its leftovers).
        let stop = StopOnSignal.installed
        do {
            try export.write(to: destination, extraFiles: files, shouldStop: { stop.isRequested })
        } catch let interrupted as TransformersExport.Interrupted {
            FileHandle.standardError.write(Data("\(interrupted)\n".utf8))
            throw ExitCode(130)
        }
        print("\(run.label) → \(export.family.architecture) (\(export.tensors.count) tensors): \(destination.path)")
    }
}

/// The PositionLab run an exported folder came from (its task, lengths and scheme).
enum InteropRun {
    static let fileName = "positionlab_run.json"
}
