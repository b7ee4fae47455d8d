#!/usr/bin/env bash
# Builds the libFuzzer harness for native/parse.cc and fuzzes it for SECONDS over a copy of the
# committed corpus; exits non-zero on any crash, leak, undefined behaviour or broken promise and
# says where the input that did it was saved.
#   bash native/fuzz/run.sh [SECONDS]        default 60; needs clang and libclang-rt-14-dev
#   CT_FUZZ_COVERAGE=1 bash native/fuzz/run.sh 300   also prints parse.cc's line coverage (llvm-14)
# Everything it builds or finds goes to a fresh temporary directory, never into corpus/: that
# directory is kept (and named) when the run fails, removed when it passes.
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: bash native/fuzz/run.sh [SECONDS] (a whole number of seconds, default 60)" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
native=$(dirname "$here")

cxx=${CXX:-}
if [ -z "$cxx" ]; then
  for candidate in clang++-14 clang++; do
    if command -v "$candidate" >/dev/null; then
      cxx=$candidate
      break
    fi
  done
fi
if [ -z "$cxx" ]; then
  echo "run.sh: no clang++ found: apt-get install clang libclang-rt-14-dev" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ct-parse-fuzz.XXXXXX")
mkdir "$work/corpus" "$work/crashes"
cp "$here"/corpus/* "$work/corpus/"
sources=("$native/parse.cc" "$here/parse_fuzz.cc")
common=(-std=c++17 -g -O1 -I "$native")

if ! "$cxx" "${common[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  "${sources[@]}" -o "$work/parse_fuzz" 2>"$work/build.log"; then
  cat "$work/build.log" >&2
  echo "run.sh: the harness did not build (is libclang-rt-14-dev installed?); see above. Kept $work" >&2
  exit 2
fi

seeds=$(ls "$work/corpus" | wc -l)
echo "run.sh: fuzzing ParseMessage for ${seconds}s from $seeds seeds ($cxx, ASan + UBSan)"
# Seeds run first: a committed regression input that fails again fails the run at once.
status=0
"$work/parse_fuzz" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/fuzz.log" 2>&1 ||
  status=$?

grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE))|^stat::|^Done ' "$work/fuzz.log" || true
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/crashes")" ]; then
  tail -n 60 "$work/fuzz.log"
  echo "run.sh: FAILED (libFuzzer exit $status). The input that did it:" >&2
  for f in "$work"/crashes/*; do
    [ -e "$f" ] && echo "  $f  (base64: $(base64 -w0 "$f" | head -c 400))" >&2
  done
  echo "run.sh: reproduce with $work/parse_fuzz FILE; full log $work/fuzz.log. Kept $work" >&2
  exit 1
fi

if [ "${CT_FUZZ_COVERAGE:-0}" = 1 ]; then
  # Replays the grown corpus through an instrumented build: which lines of parse.cc it reaches.
  "$cxx" "${common[@]}" -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
    "${sources[@]}" -o "$work/parse_cov"
  LLVM_PROFILE_FILE="$work/parse.profraw" "$work/parse_cov" -runs=0 "$work/corpus" >/dev/null 2>&1
  llvm-profdata-14 merge -sparse "$work/parse.profraw" -o "$work/parse.profdata"
  llvm-cov-14 report "$work/parse_cov" -instr-profile="$work/parse.profdata" "$native/parse.cc"
fi

echo "run.sh: ok: no crash, leak, undefined behaviour or broken promise in ${seconds}s;" \
  "corpus grew from $seeds to $(ls "$work/corpus" | wc -l) inputs (not kept)"
rm -rf "$work"
