"""Byte-level BPE tokenizers trained with Hugging Face `tokenizers` on the King James Bible, and
their encodings of a fixture corpus (run by scripts/make_interop_fixtures.sh).

Writes FIXTURES/tokenizers/<name>/tokenizer.json and cases.json (each case: the text, the IDs
`tokenizers` gives with add_special_tokens=False, and the decoded text):
  gpt2-style    ByteLevel pre-tokenizer with GPT-2's pattern, no normalizer, <|endoftext|>
  llama3-style  NFC, Split by Llama 3's pattern then ByteLevel without one, ignore_merges,
                <|begin_of_text|> and <|eot_id|>
"""
import json
import pathlib
import re
import subprocess
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

FIXTURES = pathlib.Path(sys.argv[1]) / "tokenizers"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

bible = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
verses = [re.sub(r"^\S+\s", "", line) for line in bible.splitlines() if line.strip()]

CASES = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.\n\nJesus wept.",
    "It's 1,234,567 o'clock; they'll say we'd re-read it 3.14159 times.",
    "tabs\tand   runs of    spaces \t\n   and trailing spaces   ",
    "Ünïcödé: café, naïve, Ångström — “quotes” and ‘apostrophes’…",
    "Combining: cafe\u0301 vs café; ﬁ ligature; Ⅻ numerals",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "Emoji 🙂👍🏽 and symbols ∑∫√∞ ≠ ≤ ≥ → ⇒",
    "<|endoftext|>The end.<|endoftext|> And again<|begin_of_text|>Hi<|eot_id|>",
    "",
    " leading space and\r\nwindows line ends\r\n",
    "ALL CAPS SHOUTING AND MiXeD cAsE, HE'S HERE, WE'LL SEE",
    "<|eot_id|>\u0301abc <|endoftext|>\u200dx <|begin_of_text|>\ufe0f",
]


def build(name):
    if name == "gpt2-style":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        special = ["<|endoftext|>"]
    else:
        tokenizer = Tokenizer(models.BPE(ignore_merges=True))
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        special = ["<|begin_of_text|>", "<|eot_id|>"]
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(verses, trainer=trainer)
    return tokenizer


for name in ("gpt2-style", "llama3-style"):
    tokenizer = build(name)
    folder = FIXTURES / name
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    cases = []
    for text in CASES + verses[:50:7]:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=False)})
    (folder / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0))
    print(f"{name}: vocabulary {tokenizer.get_vocab_size()}, {len(cases)} cases, "
          f"{sum(len(c['ids']) for c in cases)} tokens")
