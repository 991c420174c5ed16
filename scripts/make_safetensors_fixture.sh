#!/usr/bin/env bash
# safetensors fixtures and checks with the Python `safetensors` package, at pinned versions, in
# bench/.venv (created here if missing; bench/run.sh adds torch to the same venv).
#
#   scripts/make_safetensors_fixture.sh                      # (re)writes Tests/ModelsTests/Fixtures/python.safetensors
#                                                            # and python_safetensors.json
#   scripts/make_safetensors_fixture.sh --verify FILE        # Python reads a file PositionLab wrote
#   scripts/make_safetensors_fixture.sh --verify FILE --expect Tests/ModelsTests/Fixtures/python_safetensors.json
#
# PYTHON=python3.11 chooses the interpreter that creates the venv. Needs PyPI the first time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=bench/.venv
PINS=(
  "safetensors==0.8.0"
  "numpy==2.4.6"
)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
exec "$VENV/bin/python" scripts/make_safetensors_fixture.py "$@"
