#!/usr/bin/env bash
# Installs the default text corpus, the King James Bible: Debian's bible-kjv (the `bible` program)
# and bible-kjv-text (its compressed text, /usr/lib/bible.data), then dumps the whole text, one
# verse a line after its reference ("Ge1:1 In the beginning God created the heaven and the earth."),
# to the file TextTask.defaultCorpus() looks for: $1, else $XDG_CACHE_HOME/positionlab/kjv.txt
# (~/.cache/positionlab/kjv.txt). Training holds out the last books (TextTask.kingJamesBible()).
set -euo pipefail
out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/positionlab/kjv.txt}"
if ! command -v bible >/dev/null 2>&1 || [ ! -f /usr/lib/bible.data ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: bible-kjv bible-kjv-text" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bible-kjv bible-kjv-text >/dev/null
fi
mkdir -p "$(dirname "$out")"
bible -f Gen1:1-Rev22:21 > "$out.tmp"
lines=$(wc -l < "$out.tmp")
if [ "$lines" -ne 31102 ]; then
  echo "bible printed $lines verses, not the 31102 of the King James Bible" >&2
  rm -f "$out.tmp"; exit 1
fi
mv "$out.tmp" "$out"
echo "$out"
