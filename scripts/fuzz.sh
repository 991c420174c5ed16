#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (with AddressSanitizer) and runs each for SECONDS against
# its committed seed corpus in Fuzz/Corpus/NAME. New inputs go to a scratch corpus, never into the
# committed one; a crash, a leak, an input slower than 10 s or a memory blow-up is a finding: its
# input is kept in Fuzz/findings/ and the script exits non-zero.
#
#   scripts/fuzz.sh                    # every target, 30 s each (what CI runs)
#   scripts/fuzz.sh 600 FuzzSafeTensors   # one target for 10 minutes
#   FUZZ_SEED=0 scripts/fuzz.sh 600    # a new random sequence of inputs (libFuzzer's seed 0)
#
# Leaks inside third-party code (Foundation) are suppressed by Fuzz/lsan.supp, each with its reason.
#
# The default seed is 1: a run then mutates the same sequence of inputs every time, so CI's 30 s
# explore a prefix of what a longer run with that seed has explored (a slower machine, a shorter one).
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(FuzzSafeTensors FuzzRunConfiguration FuzzSweepConfiguration FuzzSchemeSpecification FuzzJSONLines FuzzText FuzzTokenizer FuzzTransformersConfig)
fi
echo "== building ${targets[*]} with -sanitize=fuzzer,address" >&2
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | tail -n 2 >&2
bin=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)
mkdir -p findings
status=0
for target in "${targets[@]}"; do
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/poslab-fuzz-$target.XXXXXX")
  echo "== $target: $seconds s" >&2
  if ! LSAN_OPTIONS="suppressions=$PWD/lsan.supp:print_suppressions=0" "$bin/$target" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=8192 -print_final_stats=1 \
       -artifact_prefix="findings/$target-" "$scratch" "Corpus/$target" 2> "findings/$target.log"; then
    echo "!! $target: a finding; see Fuzz/findings/$target.log and the input beside it" >&2
    grep -E "ERROR|Fatal error|==[0-9]+==|SUMMARY|Test unit written" "findings/$target.log" | head -n 8 >&2 || true
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "findings/$target.log" | sed "s/^/   $target /" >&2 || true
  rm -rf "$scratch"
done
exit $status
