#!/usr/bin/env bash
# The main job on built-in defaults: install what is missing, build in release mode, run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
swift build -c release --product poslab
.build/release/poslab quickstart "$@"
