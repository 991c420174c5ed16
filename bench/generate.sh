#!/usr/bin/env bash
# Greedy decoding with a KV cache: PositionLab (`poslab bench generate`) and eager PyTorch
# (bench/torch_generate.py), one after the other in one run, at contexts 512, 2048 and 8192
# (CONTEXTS="512 2048" to choose), 64 new tokens each; prints the ratio of time per token.
# Uses bench/.venv (made by bench/run.sh, or here). Keeps the JSON in bench/results/generate-<date>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=bench/.venv
PYTHON=${PYTHON:-python3.11}
THREADS=${THREADS:-$(nproc)}
CONTEXTS=${CONTEXTS:-512 2048 8192}
OUT=${BENCH_OUTPUT:-bench/results/generate-$(date +%Y%m%d-%H%M%S)}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
swift build -c release --product poslab >&2
mkdir -p "$OUT"
echo "== PositionLab: poslab bench generate --contexts $CONTEXTS" >&2
# shellcheck disable=SC2086
.build/release/poslab bench generate --json --contexts $CONTEXTS > "$OUT/positionlab.json"
echo "== PyTorch: bench/torch_generate.py --threads $THREADS" >&2
# shellcheck disable=SC2086
(cd bench && "../$VENV/bin/python" torch_generate.py --threads "$THREADS" --contexts $CONTEXTS) > "$OUT/pytorch.json"
"$VENV/bin/python" - "$OUT/positionlab.json" "$OUT/pytorch.json" <<'PY' | tee "$OUT/report.md"
import json, sys
ours, theirs = (json.load(open(p)) for p in sys.argv[1:3])
rows = {r["context"]: r for r in theirs["contexts"]}
print("| context | PositionLab ms/token | PyTorch ms/token | ratio (PyTorch / PositionLab) | prefill s (PositionLab / PyTorch) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for r in ours["contexts"]:
    p = rows.get(r["context"])
    if p:
        print(f"| {r['context']:.0f} | {r['ms_per_token']:.2f} | {p['ms_per_token']:.2f} | {p['ms_per_token'] / r['ms_per_token']:.2f}× "
              f"| {r['prefill_seconds']:.3f} / {p['prefill_seconds']:.3f} |")
print(f"\nPositionLab: {ours['blas']}; PyTorch {theirs['torch_version']}, {theirs['threads']} threads. Ratio above 1: PositionLab is faster.")
PY
