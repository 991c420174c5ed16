#!/usr/bin/env bash
# Installs what PositionLab needs beyond the Swift toolchain: OpenBLAS (Debian's libopenblas-dev), and
# the default text corpus, the King James Bible (bible-kjv, bible-kjv-text; see scripts/install-corpus.sh).
set -euo pipefail
need=()
if ! { [ -f /usr/include/cblas.h ] || [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/aarch64-linux-gnu/cblas.h ] \
       || ls /usr/include/*/openblas*/cblas.h >/dev/null 2>&1; } \
   || ! ldconfig -p 2>/dev/null | grep -q libopenblas; then
  need+=(libopenblas-dev)
fi
if ! command -v bible >/dev/null 2>&1 || [ ! -f /usr/lib/bible.data ]; then
  need+=(bible-kjv bible-kjv-text)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
