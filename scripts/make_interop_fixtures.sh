#!/usr/bin/env bash
# Regenerates the transformers interop fixtures in Tests/InteropTests/Fixtures/ (CI only reads them):
#   exported/<name>/   tiny PositionLab runs (trained here for 40 steps) written by `poslab export`,
#                      with source.safetensors (the run's weights before export, optimiser state dropped)
#   tokenizers/<name>/ byte-level BPE tokenizers trained with `tokenizers` on the King James Bible, and
#                      their token IDs for a fixture corpus (make_tokenizer_fixtures.py)
#   foreign/<name>/    tiny random models made by transformers itself (Llama with grouped-query heads
#                      and no biases, GPT-NeoX with partial rotation, GPT-2; Llama again in BFloat16,
#                      sharded with an index)
# and in each folder logits.json: transformers' logits for fixed token IDs. The Python side runs in
# a virtual environment of its own (scripts/.venv-interop, not committed) at pinned versions.
# Usage: scripts/make_interop_fixtures.sh     (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=scripts/.venv-interop
PINS=(
  "torch==2.13.0+cpu"
  "transformers==5.24.0"
  "tokenizers==0.23.3"
  "safetensors==0.8.0"
  "numpy==2.4.6"
)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --find-links /opt/wheels "${PINS[@]}"

swift build -c release --product poslab
POSLAB="$(swift build -c release --show-bin-path)/poslab"
FIXTURES=Tests/InteropTests/Fixtures
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$FIXTURES/exported" "$FIXTURES/foreign"
mkdir -p "$FIXTURES/exported" "$FIXTURES/foreign"

COMMON=(--model-dimension 16 --layers 2 --heads 2 --steps 40 --batch-size 8 --train-length 16
        --eval-lengths 16 --eval-samples 4 --checkpoint-every 40 --log-every 40)
run() {  # name, then train options
  local name="$1"; shift
  "$POSLAB" train "${COMMON[@]}" "$@" --out "$WORK/$name" > /dev/null
  "$POSLAB" export --model "$WORK/$name" --out "$FIXTURES/exported/$name" --max-positions 32
  "$VENV/bin/python" - "$WORK/$name/checkpoint.safetensors" "$FIXTURES/exported/$name/source.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import save_file
with safe_open(sys.argv[1], "numpy") as f:
    tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optimizer.")}
    metadata = {k: v for k, v in f.metadata().items() if k in ("format", "positionlab.configuration")}
save_file(tensors, sys.argv[2], metadata=metadata)
PY
}
run gpt_neox-rope-interleaved --task copy --pe 'rope{"pairing": "interleaved", "partial_rotary_factor": 0.5}'
run gpt_neox-parallel --task copy --pe rope --placement parallel
run llama-yarn-gqa --task copy --pe rope --rope '{"rope_type": "yarn", "factor": 2, "original_max_position_embeddings": 16}' \
    --feed-forward swiGLU --normalization rmsNorm --kv-heads 1 --untied
run llama-hope --task copy --pe 'hope{"keep": 2}' --feed-forward swiGLU --normalization rmsNorm
run gpt2-learned --task copy --pe learned
run gpt2-sinusoidal --task text --pe sinusoidal
run gpt2-nope --task copy --pe nope

"$VENV/bin/python" scripts/make_interop_fixtures.py "$FIXTURES"
# Byte-level BPE tokenizers trained on the King James Bible (Debian's bible-kjv: scripts/install-corpus.sh).
"$VENV/bin/python" scripts/make_tokenizer_fixtures.py "$FIXTURES"
