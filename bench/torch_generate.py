#!/usr/bin/env python3
"""PyTorch reference for `poslab bench generate`: greedy decoding with a KV cache in eager PyTorch.

The model is bench/torch_reference.py's (PositionLab's reference configuration: C = 128, 4 layers,
4 heads, F = 512, RoPE, tied head), batch 1, float32, under torch.inference_mode(). Its KV cache
is preallocated for the whole context plus the new tokens and appended in place; a step rotates
only the new token's query and key and attends to the cached keys with
F.scaled_dot_product_attention — the way an efficient eager implementation decodes.

Protocol, PositionLab's (Sources/poslab/Bench.swift, BenchGenerate): a warm-up decode on an
8-token prompt; then for each context length N a random prompt of N tokens is prefilled (timed)
and `--tokens` new tokens are decoded greedily (timed together): ms_per_token = time / tokens.

Prints one JSON object to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from torch_reference import CONFIGURATIONS, Transformer, rope_tables, rotate_half


class Decoder:
    """Runs a torch_reference Transformer with a preallocated KV cache of `capacity` positions."""

    def __init__(self, model: Transformer, capacity: int):
        self.model = model
        first = model.blocks[0].attention
        self.heads = first.heads
        dimension = model.token_embedding.weight.shape[1]
        self.head_dimension = dimension // self.heads
        shape = (1, self.heads, capacity, self.head_dimension)
        self.keys = [torch.empty(shape) for _ in model.blocks]
        self.values = [torch.empty(shape) for _ in model.blocks]
        self.cos, self.sin = rope_tables(capacity, self.head_dimension)
        self.length = 0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of the last token; appends the tokens' keys and values to the cache."""
        t, start = ids.shape[1], self.length
        end = start + t
        cos, sin = self.cos[start:end], self.sin[start:end]
        h = self.model.token_embedding(ids)
        for index, block in enumerate(self.model.blocks):
            attention = block.attention
            x = block.attention_norm(h)

            def heads(y: torch.Tensor) -> torch.Tensor:
                return y.view(1, t, self.heads, self.head_dimension).transpose(1, 2)

            q, k, v = heads(attention.query(x)), heads(attention.key(x)), heads(attention.value(x))
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            self.keys[index][:, :, start:end] = k
            self.values[index][:, :, start:end] = v
            context = F.scaled_dot_product_attention(q, self.keys[index][:, :, :end], self.values[index][:, :, :end],
                                                     is_causal=t > 1 and start == 0)
            h = h + attention.output(context.transpose(1, 2).reshape(1, t, -1))
            h = h + block.feed_forward(block.feed_forward_norm(h))
        self.length = end
        return F.linear(self.model.final_norm(h[:, -1:]), self.model.token_embedding.weight)


def measure(model: Transformer, context: int, tokens: int, generator: torch.Generator) -> dict:
    prompt = torch.randint(0, 256, (1, context), generator=generator)
    decoder = Decoder(model, context + tokens)
    start = time.perf_counter()
    logits = decoder.forward(prompt)
    prefill = time.perf_counter() - start
    token = logits.argmax(-1)
    start = time.perf_counter()
    for _ in range(tokens):
        token = decoder.forward(token.view(1, 1)).argmax(-1)
    decode = time.perf_counter() - start
    return {"context": context, "tokens": tokens, "prefill_seconds": prefill, "ms_per_token": decode / tokens * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads); default 2")
    parser.add_argument("--contexts", type=int, nargs="+", default=[512, 2048, 8192], help="prompt lengths")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per prompt")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.tokens < 1 or any(c < 1 for c in args.contexts):
        parser.error("--threads, --tokens and every context must be positive")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = CONFIGURATIONS["reference"]
    model = Transformer(c["model_dimension"], c["layers"], c["heads"], c["feed_forward"], c["sequence_length"]).eval()
    generator = torch.Generator().manual_seed(3)
    results = []
    with torch.inference_mode():
        measure(model, 8, 4, generator)  # warm-up
        for context in args.contexts:
            results.append(measure(model, context, args.tokens, generator))
    print(json.dumps({"implementation": "pytorch", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "contexts": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
