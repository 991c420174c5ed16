#!/usr/bin/env bash
# Regenerates the golden fixtures in Tests/PositionalEncodingsTests/Fixtures/ from the reference
# implementations (PyTorch and Hugging Face transformers), at pinned versions, in a virtual
# environment of its own (scripts/.venv, not committed). Needs PyPI; `torch==2.13.0+cpu` is a
# CPU-only build (pip's find-links may point at a local wheel for it; it is built for CPython 3.11).
# Usage: scripts/make_fixtures.sh            (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=scripts/.venv
PINS=(
  "torch==2.13.0+cpu"
  "transformers==5.24.0"
  "numpy==2.4.6"
)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
"$VENV/bin/python" scripts/make_fixtures.py
