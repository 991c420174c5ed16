#!/usr/bin/env bash
# Inference on an imported model: PositionLab (`poslab bench forward`) and transformers
# (bench/torch_forward.py), one after the other in one run, on the same transformers folder: one
# forward pass at 2048 and 8192 tokens (LENGTHS="2048 8192"), tokens/s and peak resident memory.
# MODEL=DIR to use a folder of your own; by default a random model of SmolLM-135M's shape
# (bench/make_forward_model.py, BFloat16) in bench/.models/. Uses bench/.venv with transformers.
# Keeps the JSON in bench/results/forward-<date>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=bench/.venv
PYTHON=${PYTHON:-python3.11}
THREADS=${THREADS:-$(nproc)}
LENGTHS=${LENGTHS:-2048 8192}
OUT=${BENCH_OUTPUT:-bench/results/forward-$(date +%Y%m%d-%H%M%S)}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
"$VENV/bin/python" -c "import transformers" 2>/dev/null \
    || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "transformers==5.24.0"
MODEL=${MODEL:-bench/.models/smollm-135m-shape}
if [ ! -f "$MODEL/config.json" ]; then
    "$VENV/bin/python" bench/make_forward_model.py "$MODEL"
fi
swift build -c release --product poslab >&2
mkdir -p "$OUT"
echo "== PositionLab: poslab bench forward --model $MODEL --lengths $LENGTHS" >&2
# shellcheck disable=SC2086
.build/release/poslab bench forward --json --model "$MODEL" --lengths $LENGTHS > "$OUT/positionlab.json"
echo "== transformers: bench/torch_forward.py --threads $THREADS" >&2
# shellcheck disable=SC2086
"$VENV/bin/python" bench/torch_forward.py --model "$MODEL" --threads "$THREADS" --lengths $LENGTHS > "$OUT/transformers.json"
"$VENV/bin/python" - "$OUT/positionlab.json" "$OUT/transformers.json" <<'PY' | tee "$OUT/report.md"
import json, sys
ours, theirs = (json.load(open(p)) for p in sys.argv[1:3])
rows = {r["length"]: r for r in theirs["lengths"]}
print("| tokens | PositionLab tokens/s | transformers tokens/s | ratio | peak MiB (PositionLab / transformers) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for r in ours["lengths"]:
    p = rows.get(r["length"])
    if p:
        print(f"| {r['length']:.0f} | {r['tokens_per_second']:.0f} | {p['tokens_per_second']:.0f} | "
              f"{r['tokens_per_second'] / p['tokens_per_second']:.2f}× | {r['peak_resident_mib']:.0f} / {p['peak_resident_mib']:.0f} |")
print(f"\n{ours['parameters'] / 1e6:.1f}M parameters; load {ours['load_seconds']:.1f} s / {theirs['load_seconds']:.1f} s. "
      f"PositionLab: {ours['blas']}; torch {theirs['torch_version']}, {theirs['threads']} threads. Ratio above 1: PositionLab is faster.")
PY
