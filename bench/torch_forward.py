"""transformers' side of bench/forward.sh: one forward pass (logits at every position, batch 1)
of a transformers folder at each length, in Float32 (PositionLab widens BFloat16 weights to Float32
on load too), with the process's peak resident memory after each pass. Prints JSON."""
import argparse
import json
import resource
import time

import torch
from transformers import AutoModelForCausalLM

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192])
parser.add_argument("--threads", type=int, required=True)
args = parser.parse_args()
torch.set_num_threads(args.threads)

start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa").eval()
load = time.perf_counter() - start
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rows = []
for length in args.lengths:
    ids = torch.randint(0, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        begin = time.perf_counter()
        model(ids)
        seconds = time.perf_counter() - begin
    rows.append({"length": length, "seconds": seconds, "tokens_per_second": length / seconds,
                 "peak_resident_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
print(json.dumps({"implementation": "transformers", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                  "parameters": sum(p.numel() for p in model.parameters()), "load_seconds": load,
                  "resident_after_load_mib": after_load, "lengths": rows}))
