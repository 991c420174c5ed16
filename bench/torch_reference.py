#!/usr/bin/env python3
"""PyTorch reference for `poslab bench train`: the same decoder-only Transformer, the same
training step, the same timing protocol, in eager PyTorch on the CPU in float32.

The model is PositionLab's (Sources/Models, Sources/NN) with `positionalScheme: .rope` at its
defaults, layer for layer:

* vocabulary 256; token embedding N(0, 0.02); output head tied to the embedding (logits = h·Eᵀ);
* each block pre-norm (GPT-2): h ← h + Attn(LN(h)); h ← h + MLP(LN(h));
* LayerNorm with weight and bias, eps 1e-5;
* attention: query/key/value/output Linear with bias, weights N(0, 0.02), the output projection
  N(0, 0.02/√(2·layers)), biases zero; H heads of D = C/H; RoPE with the half-split pairing
  (GPT-NeoX/Llama `rotate_half`) over the whole head, base 10000, positions 0..T−1; causal
  scaled-dot-product attention through F.scaled_dot_product_attention(is_causal=True), scale 1/√D;
* MLP: Linear(C, F) → GELU (tanh approximation) → Linear(F, C), the second N(0, 0.02/√(2·layers));
* final LayerNorm; mean cross-entropy over every position.

Training step = zero_grad, forward, backward, clip_grad_norm_(1.0), AdamW.step, with AdamW
(lr 3e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on parameters of rank ≥ 2 and 0 on
biases and norm weights) — PyTorch's default AdamW implementation for CPU tensors. PositionLab
runs its warm-up/cosine schedule; the learning rate's value does not change a step's cost, so a
constant 3e-3 is used here.

Data: one fixed batch of random tokens (a seeded torch.Generator), targets = (inputs + 1) % 256,
the batch PositionLab's bench trains on (its own generator draws different tokens; the cost is the same).

Timing protocol, PositionLab's (Sources/poslab/Bench.swift, `bestTime`): one warm-up step, then
five single steps each timed on its own (time.perf_counter), and the best (smallest) of the five is
the step time. tokens_per_second = B·T / seconds_per_step.

Prints one JSON object to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCABULARY = 256
LEARNING_RATE = 3e-3
BETAS = (0.9, 0.95)
EPSILON = 1e-8
WEIGHT_DECAY = 0.1
MAXIMUM_GRADIENT_NORM = 1.0
ROPE_BASE = 10_000.0
WARMUP_STEPS = 1
TIMED_REPEATS = 5

# name, C, layers, heads, T, B, feed-forward F: the three of PositionLab's bench.
CONFIGURATIONS = {
    "small": dict(model_dimension=64, layers=2, heads=4, sequence_length=64, batch_size=64, feed_forward=256),
    "reference": dict(model_dimension=128, layers=4, heads=4, sequence_length=128, batch_size=32, feed_forward=512),
    "large": dict(model_dimension=256, layers=4, heads=4, sequence_length=256, batch_size=32, feed_forward=1024),
}


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x₁, x₂) ↦ (−x₂, x₁) on the two halves of the last axis (GPT-NeoX, Llama)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(length: int, head_dimension: int, base: float = ROPE_BASE) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of m·θ_i, θ_i = base^(−2i/D), for m in 0..T−1, each [T, D] (the D/2 angles
    repeated for both halves). Angles are formed in float64, as PositionLab forms them in Double."""
    inverse = base ** (-torch.arange(0, head_dimension, 2, dtype=torch.float64) / head_dimension)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inverse)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(torch.float32), angles.sin().to(torch.float32)


class CausalSelfAttention(nn.Module):
    def __init__(self, dimension: int, heads: int, output_std: float):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dimension, dimension)
        self.key = nn.Linear(dimension, dimension)
        self.value = nn.Linear(dimension, dimension)
        self.output = nn.Linear(dimension, dimension)
        for projection in (self.query, self.key, self.value):
            nn.init.normal_(projection.weight, std=0.02)
        nn.init.normal_(self.output.weight, std=output_std)
        for projection in (self.query, self.key, self.value, self.output):
            nn.init.zeros_(projection.bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h, d = self.heads, c // self.heads

        def heads(y: torch.Tensor) -> torch.Tensor:  # [B, T, C] → [B, H, T, D]
            return y.view(b, t, h, d).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.output(context.transpose(1, 2).reshape(b, t, c))


class FeedForward(nn.Module):
    def __init__(self, dimension: int, hidden: int, output_std: float):
        super().__init__()
        self.expansion = nn.Linear(dimension, hidden)
        self.contraction = nn.Linear(hidden, dimension)
        nn.init.normal_(self.expansion.weight, std=0.02)
        nn.init.normal_(self.contraction.weight, std=output_std)
        nn.init.zeros_(self.expansion.bias)
        nn.init.zeros_(self.contraction.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.contraction(F.gelu(self.expansion(x), approximate="tanh"))


class TransformerBlock(nn.Module):
    def __init__(self, dimension: int, heads: int, feed_forward: int, layers: int):
        super().__init__()
        residual_std = 0.02 / math.sqrt(2 * layers)
        self.attention_norm = nn.LayerNorm(dimension, eps=1e-5)
        self.attention = CausalSelfAttention(dimension, heads, residual_std)
        self.feed_forward_norm = nn.LayerNorm(dimension, eps=1e-5)
        self.feed_forward = FeedForward(dimension, feed_forward, residual_std)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.attention_norm(h), cos, sin)
        return h + self.feed_forward(self.feed_forward_norm(h))


class Transformer(nn.Module):
    """Parameter names follow PositionLab's checkpoint names (token_embedding.weight,
    blocks.N.attention.query.weight, …, final_norm.bias)."""

    def __init__(self, dimension: int, layers: int, heads: int, feed_forward: int, length: int):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCABULARY, dimension)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dimension, heads, feed_forward, layers) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dimension, eps=1e-5)
        cos, sin = rope_tables(length, dimension // heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        h = self.token_embedding(ids)
        for block in self.blocks:
            h = block(h, cos, sin)
        return F.linear(self.final_norm(h), self.token_embedding.weight)  # tied output head


def make_optimizer(model: nn.Module) -> torch.optim.AdamW:
    decayed = [p for p in model.parameters() if p.dim() >= 2]
    undecayed = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decayed, "weight_decay": WEIGHT_DECAY}, {"params": undecayed, "weight_decay": 0.0}],
        lr=LEARNING_RATE, betas=BETAS, eps=EPSILON,
    )


def benchmark(name: str, model_dimension: int, layers: int, heads: int, sequence_length: int, batch_size: int,
              feed_forward: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = Transformer(model_dimension, layers, heads, feed_forward, sequence_length)
    model.train()
    optimizer = make_optimizer(model)
    generator = torch.Generator().manual_seed(seed + 2)
    inputs = torch.randint(0, VOCABULARY, (batch_size, sequence_length), generator=generator)
    targets = (inputs + 1) % VOCABULARY

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = F.cross_entropy(logits.view(-1, VOCABULARY), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAXIMUM_GRADIENT_NORM)
        optimizer.step()
        return loss.item()

    # PositionLab's protocol: one warm-up step, then the best of five single-step timings.
    for _ in range(WARMUP_STEPS):
        step()
    best = math.inf
    for _ in range(TIMED_REPEATS):
        start = time.perf_counter()
        loss = step()
        best = min(best, time.perf_counter() - start)
    if not math.isfinite(loss):
        raise RuntimeError(f"{name}: the loss is not finite ({loss})")
    parameters = sum(p.numel() for p in model.parameters())  # the tied matrix counts once
    print(f"{name}: {best * 1e3:.1f} ms/step, {batch_size * sequence_length / best:.0f} tokens/s, "
          f"{parameters} parameters, loss {loss:.4f}", file=sys.stderr)
    return {
        "name": name,
        "model_dimension": model_dimension,
        "layers": layers,
        "heads": heads,
        "sequence_length": sequence_length,
        "batch_size": batch_size,
        "feed_forward": feed_forward,
        "ms_per_step": round(best * 1e3, 3),
        "tokens_per_second": round(batch_size * sequence_length / best, 1),
        "parameters": parameters,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads); default 2")
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS),
                        help="comma-separated subset of: " + ", ".join(CONFIGURATIONS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and of the batch")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.configurations.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGURATIONS]
    if unknown or not names:
        parser.error(f"unknown configuration(s) {', '.join(unknown) or '(none given)'}; "
                     f"allowed: {', '.join(CONFIGURATIONS)}")
    if args.threads < 1:
        parser.error("--threads must be at least 1")

    torch.set_num_threads(args.threads)
    results = [benchmark(name, seed=args.seed, **CONFIGURATIONS[name]) for name in names]
    print(json.dumps({
        "implementation": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "configurations": results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
