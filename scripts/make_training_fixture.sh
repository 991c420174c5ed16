#!/usr/bin/env bash
# Regenerates the training-parity fixtures in Tests/ModelsTests/Fixtures/training/ (20 AdamW steps of
# PositionLab's model in PyTorch, per positional scheme; see scripts/make_training_fixture.py) in the
# virtual environment scripts/.venv (not committed), at pinned versions. Needs PyPI the first time;
# `torch==2.13.0+cpu` is a CPU-only build for CPython 3.11 (from /opt/wheels when it is there).
#
#   scripts/make_training_fixture.sh                   # (re)writes the fixtures; same bytes every run
#   scripts/make_training_fixture.sh --float64-check   # how far PyTorch's float32 run lies from float64
#
# PYTHON=python3.11 chooses the interpreter that creates the venv. The Swift side:
#   swift test -c release --filter TrainingParityTests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=scripts/.venv
PINS=(
  "torch==2.13.0+cpu"
  "numpy==2.4.6"
  "safetensors==0.8.0"
)
FIND_LINKS=()
[ -d /opt/wheels ] && FIND_LINKS=(--find-links /opt/wheels)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${FIND_LINKS[@]}" "${PINS[@]}"
exec "$VENV/bin/python" scripts/make_training_fixture.py "$@"
