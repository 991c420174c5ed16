#!/usr/bin/env bash
# The whole test suite, in release mode (numerical tests are slow in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
swift build -c release --product poslab
swift test -c release "$@"
# PositionLab as a versioned dependency of another package (no unsafe flags, a usable public API).
scripts/consumer-package-test.sh
