#!/usr/bin/env bash
# bench/compare-builds.sh: is a change slower? Replays one journal with two builds of ct-analyze,
# alternating them so that both see the same machine load, and prints each run and the medians.
#
# Usage: bench/compare-builds.sh BEFORE_DIR AFTER_DIR JOURNAL [ROUNDS]
#   BEFORE_DIR, AFTER_DIR  checkouts with dist/ built (e.g. git worktree add /tmp/b REV && cd /tmp/b
#                          && npm ci && npm run build)
#   JOURNAL                the journal to replay, e.g. the one bench/replay.sh --keep leaves in
#                          ${TMPDIR:-/tmp}/ct-bench-replay/n10000000-*/journal.mpk
#   ROUNDS                 runs of each build (default 5)
# Exits 1 if the two builds print different tables. Needs no root; needs GNU time (/usr/bin/time).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
before=$1 after=$2 journal=$3 rounds=${4:-5}
for d in "$before" "$after"; do
  [ -f "$d/dist/analyzer/cli.js" ] || { echo "compare-builds.sh: $d/dist/analyzer/cli.js is missing: build it first" >&2; exit 2; }
done
events=$(node "$after/dist/analyzer/cli.js" verify "$journal" | grep -o '[0-9]* events' | head -1 | cut -d' ' -f1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat "$journal" >/dev/null # into the page cache once, for both
for r in $(seq 1 "$rounds"); do
  for side in before after; do
    dir=$before
    [ "$side" = after ] && dir=$after
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S %M' -o "$out/time" node "$dir/dist/analyzer/cli.js" -q "$journal" >"$out/$side.txt"
    t1=$EPOCHREALTIME
    read -r user sys rss <"$out/time"
    awk -v s="$side" -v r="$r" -v t0="$t0" -v t1="$t1" -v u="$user" -v k="$sys" -v m="$rss" -v n="$events" \
      'BEGIN { w = t1 - t0; printf "%-6s run %d  wall %.3f s  cpu %.2f s  rss %.0f MiB  %.2f M events/s\n", s, r, w, u + k, m / 1024, n / w / 1e6 }' |
      tee -a "$out/runs"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for side in before after; do
  wall=$(grep "^$side " "$out/runs" | awk '{ print $5 }' | median)
  cpu=$(grep "^$side " "$out/runs" | awk '{ print $8 }' | median)
  awk -v s="$side" -v w="$wall" -v c="$cpu" -v n="$events" \
    'BEGIN { printf "%-6s median wall %.3f s (%.2f M events/s), median cpu %.2f s\n", s, w, n / w / 1e6, c }'
done
cmp -s "$out/before.txt" "$out/after.txt" && echo "tables: identical" || { echo "tables: DIFFERENT"; exit 1; }
