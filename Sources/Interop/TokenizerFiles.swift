import Foundation
import PositionalEncodings
import Tasks

/// The tokenizer of a PositionLab vocabulary as Hugging Face `tokenizers` files (tokenizer.json
/// and tokenizer_config.json), so that `AutoTokenizer.from_pretrained` reads an exported folder.
public enum TokenizerFiles {
    /// Byte-level runs (text, JSON lines; vocabulary 256): a byte-level BPE with no merges whose
    /// token i is byte i, written in GPT-2's byte-to-character alphabet. Symbolic tasks (the shared
    /// layout of `TaskVocabulary`, vocabulary 90): a word-level tokenizer over the rendered symbols
    /// ("copy:", "a", "=", digits), split at whitespace, as `TaskVocabulary.render` writes them.
    public enum Vocabulary: Sendable {
        case bytes
        case taskSymbols
    }

    /// tokenizer.json and tokenizer_config.json, by file name.
    public static func files(_ vocabulary: Vocabulary, maximumLength: Int) throws -> [String: Data] {
        let model: JSONValue, preTokenizer: JSONValue, decoder: JSONValue
        switch vocabulary {
        case .bytes:
            let alphabet = ByteLevelAlphabet.characters
            model = .object([
                "type": .string("BPE"), "dropout": .null, "unk_token": .null, "continuing_subword_prefix": .null,
                "end_of_word_suffix": .null, "fuse_unk": .bool(false), "byte_fallback": .bool(false), "ignore_merges": .bool(false),
                "vocab": .object(Dictionary(uniqueKeysWithValues: (0..<256).map { (String(alphabet[$0]), .number(Double($0))) })),
                "merges": .array([]),
            ])
            let byteLevel: JSONValue = .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false),
                                                "trim_offsets": .bool(false), "use_regex": .bool(false)])
            (preTokenizer, decoder) = (byteLevel, byteLevel)
        case .taskSymbols:
            let vocabulary = (0..<TaskVocabulary.size).map { (TaskVocabulary.render($0), JSONValue.number(Double($0))) }
            model = .object(["type": .string("WordLevel"), "vocab": .object(Dictionary(uniqueKeysWithValues: vocabulary)),
                             "unk_token": .string(TaskVocabulary.render(TaskVocabulary.padding))])
            preTokenizer = .object(["type": .string("WhitespaceSplit")])
            decoder = .null
        }
        let tokenizer: JSONValue = .object([
            "version": .string("1.0"), "truncation": .null, "padding": .null, "added_tokens": .array([]), "normalizer": .null,
            "pre_tokenizer": preTokenizer, "post_processor": .null, "decoder": decoder, "model": model,
        ])
        let config: JSONValue = .object(["tokenizer_class": .string("PreTrainedTokenizerFast"),
                                         "model_max_length": .number(Double(maximumLength)),
                                         "clean_up_tokenization_spaces": .bool(false)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ["tokenizer.json": try encoder.encode(tokenizer), "tokenizer_config.json": try encoder.encode(config)]
    }
}
