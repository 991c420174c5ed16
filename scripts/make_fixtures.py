#!/usr/bin/env python3
"""Golden fixtures for PositionLab's positional encodings, computed by the reference code.

Run through scripts/make_fixtures.sh, which makes the pinned virtual environment. Writes small
JSON files under Tests/PositionalEncodingsTests/Fixtures/ that ReferenceFixtureTests.swift reads:

  rope.json        inverse frequencies and attention factor of every rope type in transformers'
                   ROPE_INIT_FUNCTIONS (plus "default"), called the way the library calls them
  rope_apply.json  q/k rotated by transformers' Llama/GPT-NeoX (half-split) and GPT-J (interleaved) code
  t5_buckets.json  T5Attention._relative_position_bucket, causal and bidirectional
  alibi.json       BLOOM's and MPT's ALiBi slopes
  sinusoidal.json  DistilBERT's (interleaved) and Marian's (concatenated) sinusoidal tables

Floats that the reference computes in float32 are written with the shortest decimal that reads
back to the same float32; Python doubles (attention factors) with full precision.
"""

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import GPTNeoXConfig, LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.bloom.modeling_bloom import build_alibi_tensor
from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding
from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb as neox_apply_rotary_pos_emb
from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb as gptj_apply_rotary_pos_emb
from transformers.models.gptj.modeling_gptj import create_sinusoidal_positions
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_apply_rotary_pos_emb
from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding
from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor
from transformers.models.t5.modeling_t5 import T5Attention

OUT = Path(__file__).resolve().parent.parent / "Tests" / "PositionalEncodingsTests" / "Fixtures"
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__}
transformers.logging.set_verbosity_error()  # the deliberately odd configurations below warn
logging.getLogger("transformers").setLevel(logging.ERROR)


def f32(values):
    """Float32 values (tensor or list) as shortest round-tripping decimals."""
    array = np.asarray(values.detach().cpu().numpy() if torch.is_tensor(values) else values, dtype=np.float32)
    return [float(str(v)) for v in array.reshape(-1)]


def write(name, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    document = {"generated_by": "scripts/make_fixtures.py", "versions": VERSIONS, **payload}
    text = json.dumps(document, separators=(",", ":"))
    (OUT / name).write_text(text + "\n")
    print(f"{name}: {len(text) / 1024:.1f} KiB")


# ---------------------------------------------------------------------------------------------- rope.json

def rope_config(head_dim, max_positions, parameters):
    return LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                       max_position_embeddings=max_positions, rope_parameters=copy.deepcopy(parameters))


def rope_cases():
    """(name, head_dim, max_position_embeddings, rope_parameters, [seq_len, ...])."""
    def longrope_factors(count, start, step, power):
        return [round(start + step * (i ** power), 4) for i in range(count)]

    cases = [
        ("default llama-7b", 128, 4096, {"rope_type": "default", "rope_theta": 10000.0}, [None]),
        ("default theta 5e5 d64", 64, 8192, {"rope_type": "default", "rope_theta": 500000.0}, [None]),
        ("default gpt-neox-20b partial 0.25", 96, 2048, {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}, [None]),
        ("default phi-2 partial 0.4", 80, 2048, {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.4}, [None]),
        ("default d10", 10, 64, {"rope_type": "default", "rope_theta": 100.0}, [None]),

        ("linear factor 2", 64, 4096, {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}, [None]),
        ("linear factor 4 theta 5e5 d128", 128, 16384, {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0}, [None]),
        ("linear factor 8 partial 0.5", 64, 4096, {"rope_type": "linear", "factor": 8.0, "rope_theta": 10000.0, "partial_rotary_factor": 0.5}, [None]),
        ("linear legacy type key", 32, 1024, {"type": "linear", "factor": 3.0, "rope_theta": 10000.0}, [None]),

        ("dynamic factor 2", 64, 2048, {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
         [None, 1, 1000, 2047, 2048, 2049, 3000, 4096, 10000]),
        ("dynamic factor 4 theta 5e5 d128", 128, 4096, {"rope_type": "dynamic", "factor": 4.0, "rope_theta": 500000.0},
         [None, 2000, 4096, 8192, 65536]),
        ("dynamic partial 0.5", 64, 512, {"rope_type": "dynamic", "factor": 3.0, "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
         [None, 100, 513, 1536]),
        # transformers' dynamic reads max_position_embeddings only; an original_max_position_embeddings
        # key in the dictionary is ignored (it warns that the key is unrecognised).
        ("dynamic ignores original key", 64, 2048,
         {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0, "original_max_position_embeddings": 1024}, [None, 1500, 4096]),

        ("yarn factor 4", 64, 8192, {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0, "original_max_position_embeddings": 2048}, [None]),
        ("yarn without original (max used)", 64, 4096, {"rope_type": "yarn", "factor": 2.0, "rope_theta": 10000.0}, [None]),
        ("yarn explicit factor over implicit ratio", 64, 40960,
         {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0, "original_max_position_embeddings": 32768}, [None]),
        ("yarn deepseek-v3", 64, 163840,
         {"rope_type": "yarn", "factor": 40.0, "rope_theta": 10000.0, "original_max_position_embeddings": 4096,
          "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}, [None]),
        ("yarn mscale ratio", 64, 16384,
         {"rope_type": "yarn", "factor": 8.0, "rope_theta": 10000.0, "original_max_position_embeddings": 2048,
          "mscale": 0.707, "mscale_all_dim": 1.0}, [None]),
        ("yarn mscale only", 64, 16384,
         {"rope_type": "yarn", "factor": 8.0, "rope_theta": 10000.0, "original_max_position_embeddings": 2048, "mscale": 0.707}, [None]),
        ("yarn betas qwen d128 no truncate", 128, 131072,
         {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0, "original_max_position_embeddings": 32768,
          "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False}, [None]),
        ("yarn betas truncate", 128, 131072,
         {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0, "original_max_position_embeddings": 32768,
          "beta_fast": 16.0, "beta_slow": 2.0, "truncate": True}, [None]),
        ("yarn gpt-oss", 64, 131072,
         {"rope_type": "yarn", "factor": 32.0, "rope_theta": 150000.0, "original_max_position_embeddings": 4096,
          "beta_fast": 32.0, "beta_slow": 1.0, "truncate": False}, [None]),
        ("yarn attention_factor", 64, 8192,
         {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0, "original_max_position_embeddings": 2048,
          "attention_factor": 1.5}, [None]),
        ("yarn partial 0.5", 128, 8192,
         {"rope_type": "yarn", "factor": 2.0, "rope_theta": 10000.0, "original_max_position_embeddings": 4096,
          "partial_rotary_factor": 0.5}, [None]),
        ("yarn small degenerate ramp", 8, 64,
         {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0, "original_max_position_embeddings": 16}, [None]),

        ("llama3.1 8b", 128, 131072,
         {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192, "rope_theta": 500000.0}, [None]),
        ("llama3.2 1b", 64, 131072,
         {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192, "rope_theta": 500000.0}, [None]),
        ("llama3 wide band", 64, 2048,
         {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 2.0, "high_freq_factor": 8.0,
          "original_max_position_embeddings": 512, "rope_theta": 10000.0}, [None]),
        ("llama3 partial 0.5", 64, 4096,
         {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 1024, "rope_theta": 10000.0, "partial_rotary_factor": 0.5}, [None]),
        ("llama3 without original (max used)", 64, 1024,
         {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "rope_theta": 10000.0}, [None]),

        ("longrope phi-3 style (factor from lengths)", 96, 131072,
         {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 4096,
          "short_factor": longrope_factors(48, 1.0, 0.002, 2.0), "long_factor": longrope_factors(48, 1.0, 0.05, 1.5)},
         [None, 1, 4096, 4097, 100000]),
        ("longrope explicit factor", 64, 131072,
         {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 4096, "factor": 8.0,
          "short_factor": longrope_factors(32, 1.0, 0.01, 1.0), "long_factor": longrope_factors(32, 2.0, 0.3, 1.2)},
         [None, 4096, 5000]),
        ("longrope attention_factor", 64, 32768,
         {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 2048, "attention_factor": 1.2,
          "short_factor": longrope_factors(32, 1.0, 0.0, 1.0), "long_factor": longrope_factors(32, 1.5, 0.1, 1.0)},
         [None, 4000]),
        ("longrope partial 0.5", 64, 16384,
         {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 2048, "partial_rotary_factor": 0.5,
          "short_factor": longrope_factors(16, 1.0, 0.01, 1.0), "long_factor": longrope_factors(16, 1.0, 0.4, 1.0)},
         [None, 2048, 2049]),
        ("longrope without original (max used)", 32, 1024,
         {"rope_type": "longrope", "rope_theta": 10000.0,
          "short_factor": longrope_factors(16, 1.0, 0.02, 1.0), "long_factor": longrope_factors(16, 3.0, 0.1, 1.0)},
         [None, 1024, 1025]),
        ("longrope factor below 1", 32, 1024,
         {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 2048,
          "short_factor": longrope_factors(16, 1.0, 0.0, 1.0), "long_factor": longrope_factors(16, 2.0, 0.0, 1.0)},
         [None, 3000]),

        ("proportional gemma-4 global", 512, 131072,
         {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}, [None]),
        ("proportional factor 2 partial 0.5", 64, 4096,
         {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 10000.0, "factor": 2.0}, [None]),
        ("proportional d10 partial 0.3", 10, 64,
         {"rope_type": "proportional", "partial_rotary_factor": 0.3, "rope_theta": 10000.0}, [None]),
        ("proportional partial 0.7 d20", 20, 64,
         {"rope_type": "proportional", "partial_rotary_factor": 0.7, "rope_theta": 10000.0}, [None]),
        ("proportional without partial", 64, 4096, {"rope_type": "proportional", "rope_theta": 10000.0}, [None]),
    ]
    return cases


def make_rope():
    records = []
    seen_types = set()
    for name, head_dim, max_positions, parameters, seq_lens in rope_cases():
        for seq_len in seq_lens:
            config = rope_config(head_dim, max_positions, parameters)
            rope_type = config.rope_parameters["rope_type"]
            seen_types.add(rope_type)
            if rope_type == "default":
                # "default" is each model's own compute_default_rope_parameters; GPT-NeoX's reads partial_rotary_factor.
                inv_freq, attention = GPTNeoXRotaryEmbedding.compute_default_rope_parameters(config)
            else:
                inv_freq, attention = ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=seq_len)
            records.append({
                "name": name, "rope_type": rope_type, "head_dim": head_dim, "max_position_embeddings": max_positions,
                "rope_parameters": parameters, "standardized_rope_parameters": config.rope_parameters,
                "seq_len": seq_len, "inv_freq": f32(inv_freq), "attention_factor": float(attention),
            })
    missing = set(ROPE_INIT_FUNCTIONS) - seen_types
    assert not missing, f"no fixture for rope types {missing}"
    write("rope.json", {"rope_init_functions": sorted(ROPE_INIT_FUNCTIONS), "cases": records})


# ---------------------------------------------------------------------------------------- rope_apply.json

def make_rope_apply():
    generator = torch.Generator().manual_seed(20240611)
    batch, heads, length, head_dim = 2, 2, 5, 8
    position_ids = torch.tensor([[0, 1, 2, 3, 4], [3, 7, 11, 20, 100]])
    records = []

    def record(name, pairing, rope_parameters, rotary_dim, q, k, cos_half, sin_half, q_out, k_out, max_positions):
        records.append({
            "name": name, "pairing": pairing, "rope_parameters": rope_parameters, "max_position_embeddings": max_positions,
            "shape": [batch, heads, length, head_dim], "rotary_dim": rotary_dim, "position_ids": position_ids.reshape(-1).tolist(),
            "q": f32(q), "k": f32(k), "cos": f32(cos_half), "sin": f32(sin_half), "q_out": f32(q_out), "k_out": f32(k_out),
        })

    # Half-split (Llama's rotate_half), full rotation, through LlamaRotaryEmbedding and apply_rotary_pos_emb.
    for name, parameters in [
        ("llama default", {"rope_type": "default", "rope_theta": 10000.0}),
        ("llama yarn", {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0, "original_max_position_embeddings": 16}),
        ("llama linear theta 100", {"rope_type": "linear", "factor": 2.0, "rope_theta": 100.0}),
    ]:
        config = LlamaConfig(hidden_size=head_dim * heads, num_attention_heads=heads, head_dim=head_dim,
                             max_position_embeddings=64, rope_parameters=copy.deepcopy(parameters))
        q = torch.randn(batch, heads, length, head_dim, generator=generator)
        k = torch.randn(batch, heads, length, head_dim, generator=generator)
        cos, sin = LlamaRotaryEmbedding(config)(q, position_ids)  # [B, T, D], both halves equal
        q_out, k_out = llama_apply_rotary_pos_emb(q, k, cos, sin)
        record(name, "halfSplit", parameters, head_dim, q, k, cos[..., : head_dim // 2], sin[..., : head_dim // 2], q_out, k_out, 64)

    # Half-split, partial rotation: GPT-NeoX rotates the first rotary_dim values and passes the rest.
    parameters = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    config = GPTNeoXConfig(hidden_size=head_dim * heads, num_attention_heads=heads, max_position_embeddings=64,
                           rope_parameters=copy.deepcopy(parameters))
    q = torch.randn(batch, heads, length, head_dim, generator=generator)
    k = torch.randn(batch, heads, length, head_dim, generator=generator)
    cos, sin = GPTNeoXRotaryEmbedding(config)(q, position_ids)
    rotary_dim = cos.shape[-1]
    assert rotary_dim == head_dim // 2
    q_out, k_out = neox_apply_rotary_pos_emb(q, k, cos, sin)
    record("gpt-neox partial 0.5", "halfSplit", parameters, rotary_dim, q, k, cos[..., : rotary_dim // 2], sin[..., : rotary_dim // 2],
           q_out, k_out, 64)

    # Interleaved (GPT-J's rotate_every_two), full and partial: q/k are [B, T, H, D] there.
    for name, rotary_dim in [("gpt-j interleaved", head_dim), ("gpt-j interleaved partial 0.5", head_dim // 2)]:
        q = torch.randn(batch, heads, length, head_dim, generator=generator)
        k = torch.randn(batch, heads, length, head_dim, generator=generator)
        sincos = create_sinusoidal_positions(128, rotary_dim)[position_ids]  # [B, T, R]
        sin, cos = torch.split(sincos, rotary_dim // 2, dim=-1)

        def gptj(x):
            x = x.permute(0, 2, 1, 3)
            rotated = gptj_apply_rotary_pos_emb(x[..., :rotary_dim], sin, cos)
            return torch.cat([rotated, x[..., rotary_dim:]], dim=-1).permute(0, 2, 1, 3)

        parameters = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": rotary_dim / head_dim}
        record(name, "interleaved", parameters, rotary_dim, q, k, cos, sin, gptj(q), gptj(k), 128)
    write("rope_apply.json", {"cases": records})


# ---------------------------------------------------------------------------------------- t5_buckets.json

def make_t5():
    radius = 400
    relative = torch.arange(-radius, radius + 1, dtype=torch.long)  # memory (key) position − query position
    records = []
    for num_buckets, max_distance in [(32, 128), (16, 32), (8, 20), (64, 256), (10, 40), (6, 12)]:
        for bidirectional in (False, True):
            buckets = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=num_buckets,
                                                            max_distance=max_distance)
            records.append({"num_buckets": num_buckets, "max_distance": max_distance, "bidirectional": bidirectional,
                            "buckets": buckets.tolist()})
    write("t5_buckets.json", {"relative_positions": {"from": -radius, "through": radius}, "cases": records})


# --------------------------------------------------------------------------------------------- alibi.json

def make_alibi():
    head_counts = sorted(set(range(1, 17)) | {6, 8, 12, 16, 20, 24, 32, 40, 48, 64, 112})
    records = []
    for heads in head_counts:
        # BLOOM: alibi[h, 0, j] = slope_h · j for a mask of ones, so column 1 is the slope.
        bloom = build_alibi_tensor(torch.ones(1, 2, dtype=torch.long), heads, torch.float32)[:, 0, 1]
        # MPT: alibi[h, 0, j] = slope_h · (j − (T − 1)), so column 0 of T = 2 is −slope.
        mpt = -build_mpt_alibi_tensor(heads, 2)[:, 0, 0]
        records.append({"heads": heads, "bloom": f32(bloom), "mpt": f32(mpt)})
    write("alibi.json", {"cases": records})


# ---------------------------------------------------------------------------------------- sinusoidal.json

def make_sinusoidal():
    positions = 48
    records = []
    for dim in (6, 16, 32):
        distilbert = create_sinusoidal_embeddings(positions, dim, torch.empty(positions, dim))
        marian = MarianSinusoidalPositionalEmbedding(positions, dim).create_weight()
        records.append({"dim": dim, "positions": positions, "distilbert_interleaved": f32(distilbert),
                        "marian_concatenated": f32(marian)})
    write("sinusoidal.json", {
        "layouts": {
            "distilbert_interleaved": "transformers DistilBERT create_sinusoidal_embeddings: P[p, 2i] = sin, P[p, 2i+1] = cos",
            "marian_concatenated": "transformers MarianSinusoidalPositionalEmbedding: sin in columns [0, C/2), cos in [C/2, C)",
        },
        "cases": records,
    })


if __name__ == "__main__":
    torch.manual_seed(0)
    make_rope()
    make_rope_apply()
    make_t5()
    make_alibi()
    make_sinusoidal()
    total = sum(p.stat().st_size for p in OUT.glob("*.json"))
    print(f"total {total / 1024:.1f} KiB in {OUT}")
