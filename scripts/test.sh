#!/usr/bin/env bash
# The whole test suite, in release mode (numerical tests are slow in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
swift build -c release --product poslab
swift test -c release "$@"
