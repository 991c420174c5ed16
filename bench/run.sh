#!/usr/bin/env bash
# PositionLab's training throughput against eager PyTorch on this machine.
#
#   bash bench/run.sh                      # all three configurations
#   CONFIGURATIONS=small,reference bash bench/run.sh   # a subset: passed as --configurations to both sides
#   THREADS=2 bash bench/run.sh            # PyTorch's intra-op threads (default: the cores available, as PositionLab uses)
#   ROUNDS=1 bash bench/run.sh             # rounds of the two sides (default 3; the report quotes the median ratio)
#
# 1. creates bench/.venv (Python 3.11) if it is missing and installs bench/requirements.txt;
# 2. builds `poslab` in release;
# 3. runs `poslab bench train --json`, then bench/torch_reference.py — one after the other, never
#    at the same time, so neither steals the other's cores — ROUNDS times, PositionLab first in odd
#    rounds and PyTorch first in even ones: a machine whose
#    speed drifts by 20–30% within minutes (a shared VM) moved one round's ratio by more than the
#    goals' margins, so each round's ratio is taken within the round and the median of the rounds quoted;
# 4. prints bench/compare.py's Markdown table and keeps the JSON and the table in bench/results/<date>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=bench/.venv
PYTHON=${PYTHON:-python3.11}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
case "$ROUNDS" in
    [1-9]|10) ;;
    *) echo "run.sh: invalid ROUNDS = '$ROUNDS'; allowed: 1 to 10" >&2; exit 2 ;;
esac
SUBSET=()
if [ -n "${CONFIGURATIONS:-}" ]; then SUBSET=(--configurations "$CONFIGURATIONS"); fi
OUT=${BENCH_OUTPUT:-bench/results/$(date +%Y%m%d-%H%M%S)}

if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || { echo "run.sh: $PYTHON not found (torch==2.13.0+cpu needs CPython 3.11); set PYTHON=" >&2; exit 1; }
    echo "== creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$VENV"
fi
echo "== installing bench/requirements.txt" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt

echo "== building poslab (release)" >&2
swift build -c release --product poslab >&2
POSLAB=.build/release/poslab

mkdir -p "$OUT"
PAIRS=()
positionlab() {
    echo "== round $ROUND of $ROUNDS: PositionLab: $POSLAB bench train --json" >&2
    "$POSLAB" bench train --json "${SUBSET[@]}" > "$OUT/positionlab-$ROUND.json"
}
pytorch() {
    echo "== round $ROUND of $ROUNDS: PyTorch: bench/torch_reference.py --threads $THREADS" >&2
    "$VENV/bin/python" bench/torch_reference.py --threads "$THREADS" "${SUBSET[@]}" > "$OUT/pytorch-$ROUND.json"
}
for ROUND in $(seq 1 "$ROUNDS"); do
    # A B, then B A: a steady drift of the machine's speed favours neither side.
    if [ $((ROUND % 2)) -eq 1 ]; then positionlab; pytorch; else pytorch; positionlab; fi
    PAIRS+=("$OUT/positionlab-$ROUND.json" "$OUT/pytorch-$ROUND.json")
done

"$VENV/bin/python" bench/compare.py "${PAIRS[@]}" | tee "$OUT/report.md"
echo "== kept in $OUT/" >&2
