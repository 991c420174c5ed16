"""Transformers' side of the interop fixtures (run by scripts/make_interop_fixtures.sh).

For every folder under FIXTURES/exported (written by `poslab export`): loads it with
AutoModelForCausalLM and AutoTokenizer, checks the tokenizer against the run's vocabulary, and
writes logits.json. Then makes FIXTURES/foreign: tiny random models of each supported family,
saved by transformers, with their logits.
"""
import json
import pathlib
import sys

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, GPTNeoXConfig,
                          GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM)

FIXTURES = pathlib.Path(sys.argv[1])
LENGTH = 12


def token_ids(vocabulary, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocabulary, (2, LENGTH), generator=generator)


def write_logits(folder, model, ids):
    model.eval()
    with torch.no_grad():
        logits = model(ids).logits.float()
    record = {"ids": ids.flatten().tolist(), "batch": ids.shape[0], "length": ids.shape[1],
              "vocabulary": logits.shape[-1], "logits": [round(x, 7) for x in logits.flatten().tolist()],
              "transformers_class": type(model).__name__}
    (folder / "logits.json").write_text(json.dumps(record))
    print(f"{folder.name}: {type(model).__name__}, logits {list(logits.shape)}, max |logit| {logits.abs().max():.3f}")


def check_tokenizer(folder, vocabulary):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if vocabulary == 256:
        text = "In the beginning — ünïcode  and\ttabs\n"
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert ids == list(text.encode("utf-8")), ids
        assert tokenizer.decode(ids) == text
    else:
        ids = tokenizer.encode("copy: a b = a b", add_special_tokens=False)
        assert ids == [5, 26, 27, 1, 26, 27], ids


for folder in sorted((FIXTURES / "exported").iterdir()):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    vocabulary = model.config.vocab_size
    check_tokenizer(folder, vocabulary)
    write_logits(folder, model, token_ids(vocabulary, 1))


def randomized(model, seed):
    """Every parameter drawn at random (norm scales near 1), so that biases and norms count."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or name.split(".")[-2] in ("ln_1", "ln_2", "ln_f"):
                parameter.copy_(1 + 0.2 * torch.randn_like(parameter) if name.endswith("weight")
                                else 0.1 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.15 * torch.randn_like(parameter))
    return model


foreign = {
    "llama-gqa": LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0})),
    "gpt_neox-partial": GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=64, hidden_size=16, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=64, hidden_act="gelu", use_parallel_residual=False, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})),
    "gpt_neox-pythia": GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=64, hidden_size=16, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=64, hidden_act="gelu", use_parallel_residual=True, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25})),
    "gpt2": GPT2LMHeadModel(GPT2Config(
        vocab_size=64, n_embd=16, n_layer=2, n_head=4, n_positions=32, activation_function="gelu_new",
        bos_token_id=None, eos_token_id=None)),
}
for seed, (name, model) in enumerate(foreign.items()):
    folder = FIXTURES / "foreign" / name
    randomized(model, seed).save_pretrained(folder)
    write_logits(folder, model, token_ids(64, 2))

# Llama again in BFloat16, in shards listed by model.safetensors.index.json; the reference logits
# are those of the BFloat16 weights widened to Float32, which is what poslab loads.
folder = FIXTURES / "foreign" / "llama-gqa-bf16-sharded"
foreign["llama-gqa"].to(torch.bfloat16).save_pretrained(folder, max_shard_size="8KB")
write_logits(folder, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), token_ids(64, 2))
