#!/usr/bin/env bash
# bench/fleet.sh: a fleet's day of journals, analyzed by ct-analyze merging them all, next to DuckDB
# running docs/sql/flows.duckdb.sql over their `ct-analyze export`. (docs/bench.md, "Fleet")
#
# Usage: bench/fleet.sh [--hosts H] [--sizes "A B ..."] [--scale X] [--runs R] [--keep] [--no-build]
#   --hosts H          the fleet: hosts 0 … H-1 of bench/fleet-gen.mjs (default 200)
#   --sizes "A B ..."  fleet sizes measured, the first A hosts, … (default: H/8 H/4 H/2 H)
#   --scale X          each host's events × X (default 1: one realistic day)
#   --runs R           timed runs of each step per size (default 3); the median is printed
#   --export-format F  what the engine reads: parquet (default) or ndjson
#   --ndjson-bytes     also export the whole fleet as NDJSON once, for its bytes on disk
#   --keep             keep the generated fleet for later runs, and this run's outputs; print where
#   --no-build         skip `npm run build` (dist/ must be current)
#
# The fleet (v1 and v2 journals) is made once per hosts, scale and generator version in
# ${TMPDIR:-/tmp}/ct-bench-fleet/ and reused while it is there; without --keep, what this run
# made is deleted at exit. Needs no root.
set -euo pipefail

HOSTS=200
SIZES_ARG=''
SCALE=1
RUNS=3
EXPORT_FORMAT=parquet
NDJSON_BYTES=0
BUILD=1
KEEP=0

usage() {
  sed -n '5,18p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while [ $# -gt 0 ]; do
  case "$1" in
  --hosts) HOSTS=${2:?--hosts needs a number}; shift 2 ;;
  --sizes) SIZES_ARG=${2:?--sizes needs a list}; shift 2 ;;
  --scale) SCALE=${2:?--scale needs a number}; shift 2 ;;
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --export-format) EXPORT_FORMAT=${2:?--export-format needs parquet or ndjson}; shift 2 ;;
  --ndjson-bytes) NDJSON_BYTES=1; shift ;;
  --no-build) BUILD=0; shift ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage 0 ;;
  *) echo "fleet.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
die() {
  echo "fleet.sh: $*" >&2
  exit 1
}
for val in "$HOSTS" "$RUNS"; do
  [[ $val =~ ^[1-9][0-9]*$ ]] || { echo "fleet.sh: --hosts and --runs must be positive integers, got '$val'" >&2; exit 2; }
done
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "fleet.sh: --scale must be a positive number, got '$SCALE'" >&2; exit 2; }
[[ $EXPORT_FORMAT =~ ^(parquet|ndjson)$ ]] || { echo "fleet.sh: --export-format must be parquet or ndjson" >&2; exit 2; }
if [ -n "$SIZES_ARG" ]; then
  read -r -a SIZES <<<"$SIZES_ARG"
else
  SIZES=($((HOSTS / 8)) $((HOSTS / 4)) $((HOSTS / 2)) "$HOSTS")
  # A fleet of fewer than 8 hosts: its smaller sizes are 0 and leave out.
  mapfile -t SIZES < <(printf '%s\n' "${SIZES[@]}" | awk '$1 >= 1')
fi
for s in "${SIZES[@]}"; do
  [[ $s =~ ^[0-9]+$ ]] || { echo "fleet.sh: sizes must be integers, got '$s'" >&2; exit 2; }
done
# Ascending, without repeats: the bytes on disk are printed for the largest.
mapfile -t SIZES < <(printf '%s\n' "${SIZES[@]}" | sort -n -u)
for s in "${SIZES[@]}"; do
  [ "$s" -ge 1 ] && [ "$s" -le "$HOSTS" ] ||
    { echo "fleet.sh: sizes must be from 1 to --hosts ($HOSTS), got '$s'" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
for cmd in node sha256sum du awk; do
  command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get install coreutils gawk, and Node.js >= 20"
done
if [ ! -x /usr/bin/time ]; then
  echo "fleet.sh: installing GNU time (Debian package 'time') for peak RSS and CPU seconds" >&2
  apt-get install -y -q time >/dev/null || die "cannot install the Debian package 'time' (as root)"
fi
NODE=$(command -v node)
CLI="$ROOT/dist/analyzer/cli.js"

if [ "$BUILD" = 1 ]; then
  echo "fleet.sh: npm run build" >&2
  (cd "$ROOT" && npm run build >/dev/null) || die "npm run build failed"
fi
[ -f "$CLI" ] && [ -f "$ROOT/dist/journal/writer.js" ] ||
  die "dist/ is missing: run npm run build (or drop --no-build)"
[ -f "$ROOT/dist/analyzer/commands/export.js" ] ||
  die "this build has no \`ct-analyze export\`: build a tree that has analyzer/commands/export.ts"
[ -f "$ROOT/docs/sql/flows.duckdb.sql" ] || die "docs/sql/flows.duckdb.sql is missing"
DUCKDB_PKG=$("$NODE" -p "require('$ROOT/node_modules/@duckdb/node-api/package.json').version" 2>/dev/null) ||
  die "@duckdb/node-api is missing: run npm ci (it is a devDependency)"

# ---------------------------------------------------------------- cleanup of all we create
TMP=${TMPDIR:-/tmp}
CACHE="$TMP/ct-bench-fleet"
mkdir -p "$CACHE"
WORK=$(mktemp -d "$TMP/ct-bench-fleet-run.XXXXXX")
MADE=()
KEEP_WORK=0
cleanup() {
  local d
  rm -rf "$CACHE"/*/*.tmp-$$
  if [ "$KEEP" = 1 ]; then
    echo "fleet.sh: kept this run's outputs in $WORK and the fleet in $CACHE" >&2
    return
  fi
  if [ "$KEEP_WORK" = 1 ]; then
    echo "fleet.sh: kept this run's outputs in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  for d in "${MADE[@]}"; do rm -rf "$d"; done
  rmdir "$CACHE" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
kv() { grep -m1 "^$1=" "$2" | cut -d= -f2-; }
now() { echo "${EPOCHREALTIME/,/.}"; }
calc() { awk "BEGIN { $1 }"; }
median() {
  sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else printf "%.10g\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
mib() { calc "printf \"%.1f\", $1 / 1048576"; }
# Bytes of files (not blocks: a fleet's many small files would round up to 4 KiB each).
bytes_of() { du -sb "$@" | awk '{ s += $1 } END { print s + 0 }'; }

# The fleet in format V (1 or 2), made once: two generator processes (one per core, hosts split
# by index) into $CACHE/KEY/vV, with manifest.tsv (index, host, role, events, bytes) in host
# order. v2's key also names the codec (dist/journal/events-v2.js): its bytes depend on it.
GEN_HASH=$(cat "$ROOT/bench/fleet-gen.mjs" "$ROOT/bench/gen-common.mjs" | sha256sum | cut -c1-12)
fleet_for() {
  local v=$1 key dir tmp k need avail codec=''
  [ "$v" = 1 ] || codec="-c$(sha256sum "$ROOT/dist/journal/events-v2.js" 2>/dev/null | cut -c1-8)"
  key="h$HOSTS-s$SCALE-g$GEN_HASH$codec"
  dir="$CACHE/$key/v$v"
  FLEET_DIR=$dir
  if [ -f "$dir/manifest.tsv" ]; then
    echo "data: reusing $dir (generated by an earlier run)"
    return 0
  fi
  # About 150,000 events per host a day and 45 B per v1 event: refuse early, not a full disk.
  need=$(calc "printf \"%d\", $HOSTS * 150000 * $SCALE * 45 / 1024")
  avail=$(df -Pk "$CACHE" | awk 'NR == 2 { print $4 }')
  [ "$avail" -gt "$need" ] ||
    die "the fleet needs about $((need / 1024)) MiB in $CACHE, only $((avail / 1024)) MiB free: set TMPDIR to a larger disk"
  tmp="$dir.tmp-$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "data: generating $HOSTS hosts × one day (scale $SCALE) as format $v journals into $dir ..."
  local t0 pids=()
  t0=$(now)
  for k in 0 1; do
    "$NODE" "$ROOT/bench/fleet-gen.mjs" --hosts "$HOSTS" --scale "$SCALE" --format-version "$v" \
      --shard "$k/2" --out "$tmp" >"$tmp/gen-$k.txt" 2>"$tmp/gen-$k.err" &
    pids+=($!)
  done
  for k in 0 1; do
    if ! wait "${pids[$k]}"; then
      sed 's/^/  /' "$tmp/gen-$k.err"
      wait
      rm -rf "$tmp"
      return 1
    fi
  done
  grep -h '^host=' "$tmp"/gen-*.txt | sed 's/^host=//' | sort -n -k1,1 >"$tmp/manifest.tsv"
  rm -f "$tmp"/gen-*
  mkdir -p "$(dirname "$dir")"
  mv "$tmp" "$dir"
  MADE+=("$(dirname "$dir")")
  echo "data: generated in $(calc "printf \"%.1f\", $(now) - $t0") s"
}

# One timed run of a command, its output to file $2: wall seconds (measured here), CPU seconds of
# the process and its children (GNU time %U+%S, every thread), peak RSS in KiB of the largest
# single process (%M), into file $1.
timed() {
  local out=$1 stdout=$2 t0 t1 rc=0 user sys rss
  shift 2
  t0=$(now)
  /usr/bin/time -f '%U %S %M' -o "$WORK/time.txt" "$@" >"$stdout" 2>"$WORK/stderr.txt" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    KEEP_WORK=1
    sed 's/^/  /' "$WORK/stderr.txt" >&2
    die "$* exited with status $rc (see $WORK)"
  fi
  read -r user sys rss <"$WORK/time.txt"
  printf '%s %s %s\n' "$(calc "printf \"%.3f\", $t1 - $t0")" "$(calc "printf \"%.2f\", $user + $sys")" "$rss" >"$out"
}

# One row per run: hosts step run wall_s cpu_s rss_kib
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
col() {
  awk -F'\t' -v n="$1" -v s="$2" -v c="$3" '$1 == n && $2 == s { print $c }' "$RESULTS" | median
}
FMT='%-4s %-22s %9s %8s %9s\n'
# Times step $2 for fleet size $1, RUNS times, its output to file $3; the rest is the command.
# Prints a row per run.
measure() {
  local n=$1 step=$2 stdout=$3 r wall cpu rss
  shift 3
  for ((r = 1; r <= RUNS; r++)); do
    [ -z "${BEFORE_RUN:-}" ] || "$BEFORE_RUN"
    timed "$WORK/m.txt" "$stdout" "$@"
    read -r wall cpu rss <"$WORK/m.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$step" "$r" "$wall" "$cpu" "$rss" >>"$RESULTS"
    # shellcheck disable=SC2059
    printf "$FMT" "$r" "$step" "$wall" "$cpu" "$(calc "printf \"%.1f\", $rss / 1024")"
  done
}
table_lines() { grep -v '^#' "$1" || true; }

# ---------------------------------------------------------------- the fleet
echo "bench/fleet: $HOSTS hosts × one day (scale $SCALE), sizes ${SIZES[*]}, $RUNS runs, $(nproc) CPUs," \
  "kernel $(uname -r), node $("$NODE" --version), @duckdb/node-api $DUCKDB_PKG, $(date -u +%FT%TZ)"
echo "baseline: ct-analyze J1 … JN (every journal merged into one flow table, --collapse 1024)"

fleet_for 1 || die "generating the v1 fleet failed"
V1=$FLEET_DIR
V2=''
if fleet_for 2; then
  V2=$FLEET_DIR
else
  echo "data: no v2 fleet: this build's JournalWriter cannot write format 2 (v2 is not measured)"
fi
MANIFEST="$V1/manifest.tsv"
[ "$(wc -l <"$MANIFEST")" = "$HOSTS" ] || die "$MANIFEST does not list $HOSTS hosts"
# Engine's input: the journals ct-record writes by default (v2), else v1.
SRC=${V2:-$V1}
echo "data: $(awk -F'\t' '{ e += $4 } END { print e }' "$MANIFEST") events;" \
  "roles: $(cut -f3 "$MANIFEST" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')"
# Every journal from the page cache, for every run alike.
cat "$V1"/*.mpk ${V2:+"$V2"/*.mpk} >/dev/null

declare -A EVENTS B_V1 B_V2 B_EXPORT
SHA=''
bench_size() {
  local n=$1 files_v1=() files_v2=() files_src=() name exp
  while IFS=$'\t' read -r _ name _ _ _; do
    files_v1+=("$V1/$name.mpk")
    [ -z "$V2" ] || files_v2+=("$V2/$name.mpk")
    files_src+=("$SRC/$name.mpk")
  done < <(head -n "$n" "$MANIFEST")
  EVENTS[$n]=$(head -n "$n" "$MANIFEST" | awk -F'\t' '{ e += $4 } END { print e }')
  B_V1[$n]=$(bytes_of "${files_v1[@]}")
  B_V2[$n]=-
  [ -z "$V2" ] || B_V2[$n]=$(bytes_of "${files_v2[@]}")
  echo
  echo "== $n hosts: ${EVENTS[$n]} events; journals v1 $(mib "${B_V1[$n]}") MiB${V2:+, v2 $(mib "${B_V2[$n]}") MiB}"
  # shellcheck disable=SC2059
  printf "$FMT" run step wall_s cpu_s rss_MiB

  measure "$n" ct-analyze-v1 "$WORK/ct-v1.out" "$NODE" "$CLI" "${files_v1[@]}"
  table_lines "$WORK/ct-v1.out" >"$WORK/ct-v1-$n.txt"
  if [ -n "$V2" ]; then
    measure "$n" ct-analyze-v2 "$WORK/ct-v2.out" "$NODE" "$CLI" "${files_v2[@]}"
    table_lines "$WORK/ct-v2.out" >"$WORK/ct-v2-$n.txt"
  fi

  # Each run exports into an empty directory (an export refuses to overwrite without --force).
  exp="$WORK/export-$n"
  clear_export() { rm -rf "$exp"; }
  BEFORE_RUN=clear_export
  measure "$n" "export-$EXPORT_FORMAT" /dev/null "$NODE" "$CLI" export --format "$EXPORT_FORMAT" -o "$exp" "${files_src[@]}"
  BEFORE_RUN=''
  B_EXPORT[$n]=$(bytes_of "$exp")

  measure "$n" duckdb-sql "$WORK/sql-meta.txt" "$NODE" "$ROOT/bench/fleet-sql.mjs" --format "$EXPORT_FORMAT" --export "$exp" \
    --out "$WORK/sql-$n.txt"
  DUCKDB_VERSION=$(kv duckdb "$WORK/sql-meta.txt")
  DUCKDB_THREADS=$(kv threads "$WORK/sql-meta.txt")
  rm -rf "$exp"

  # The engine's table must be ct-analyze's, byte for byte; and v2 must read as v1.
  local s1 s2 sq lines
  s1=$(sha256sum <"$WORK/ct-v1-$n.txt" | cut -c1-64)
  sq=$(sha256sum <"$WORK/sql-$n.txt" | cut -c1-64)
  lines=$(wc -l <"$WORK/ct-v1-$n.txt")
  if [ -n "$V2" ]; then
    s2=$(sha256sum <"$WORK/ct-v2-$n.txt" | cut -c1-64)
    if [ "$s2" != "$s1" ]; then
      KEEP_WORK=1
      die "ct-analyze's table from the v2 journals differs from the v1 one at $n hosts (sha256 $s2 vs $s1; see $WORK/ct-v1-$n.txt, ct-v2-$n.txt)"
    fi
  fi
  if [ "$sq" != "$s1" ]; then
    KEEP_WORK=1
    echo "tables: MISMATCH at $n hosts: ct-analyze sha256 $s1 ($lines lines), DuckDB sha256 $sq ($(wc -l <"$WORK/sql-$n.txt") lines)"
    # Into a file first: diff | head would end diff by SIGPIPE, and pipefail end the script.
    diff "$WORK/ct-v1-$n.txt" "$WORK/sql-$n.txt" >"$WORK/diff-$n.txt" || true
    head -n 10 "$WORK/diff-$n.txt" | sed 's/^/  /'
    die "DuckDB's flow table differs from ct-analyze's at $n hosts (outputs in $WORK)"
  fi
  echo "tables: identical at $n hosts: ct-analyze v1${V2:+ = v2} = DuckDB, $lines lines, sha256 $s1"
  SHA=$s1

  echo "median of $RUNS runs, $n hosts (${EVENTS[$n]} events):"
  local base=ct-analyze-v1 st
  [ -z "$V2" ] || base=ct-analyze-v2
  for st in ct-analyze-v1 ${V2:+ct-analyze-v2} "export-$EXPORT_FORMAT" duckdb-sql; do
    printf '  %-20s wall %8s s, cpu %8s s, peak RSS %8s MiB\n' "$st" "$(col "$n" "$st" 4)" \
      "$(col "$n" "$st" 5)" "$(calc "printf \"%.1f\", $(col "$n" "$st" 6) / 1024")"
  done
  echo "  ratio duckdb-sql / $base: wall $(calc "printf \"%.2f\", $(col "$n" duckdb-sql 4) / $(col "$n" "$base" 4)")," \
    "cpu $(calc "printf \"%.2f\", $(col "$n" duckdb-sql 5) / $(col "$n" "$base" 5)")," \
    "peak RSS $(calc "printf \"%.2f\", $(col "$n" duckdb-sql 6) / $(col "$n" "$base" 6)")"
}

for n in "${SIZES[@]}"; do bench_size "$n"; done

# ---------------------------------------------------------------- summary
BASE=ct-analyze-v1
[ -z "$V2" ] || BASE=ct-analyze-v2
big=${SIZES[-1]}
echo
echo "bytes on disk, the first $big hosts (${EVENTS[$big]} events):"
row() { printf '  %-26s %12s B  %9s MiB  %6s B/event  %6s x v1\n' "$1" "$2" "$(mib "$2")" \
  "$(calc "printf \"%.1f\", $2 / ${EVENTS[$big]}")" "$(calc "printf \"%.3f\", $2 / ${B_V1[$big]}")"; }
row 'journals, format 1' "${B_V1[$big]}"
if [ -n "$V2" ]; then row 'journals, format 2' "${B_V2[$big]}"; fi
row "export, $EXPORT_FORMAT (events)" "${B_EXPORT[$big]}"
if [ "$NDJSON_BYTES" = 1 ] && [ "$EXPORT_FORMAT" != ndjson ]; then
  exp="$WORK/export-ndjson"
  mapfile -t all < <(cut -f2 "$MANIFEST" | sed "s|.*|$SRC/&.mpk|")
  "$NODE" "$CLI" export --format ndjson -o "$exp" "${all[@]}" 2>/dev/null || die "the NDJSON export failed"
  row 'export, ndjson (events)' "$(bytes_of "$exp")"
  rm -rf "$exp"
fi

echo
echo "engine vs baseline ($BASE), medians of $RUNS runs; DuckDB $DUCKDB_VERSION, $DUCKDB_THREADS threads:"
SFMT='%6s %11s %9s %9s %9s %9s %9s %8s %8s %8s\n'
# shellcheck disable=SC2059
printf "$SFMT" hosts events ct_wall ct_rss_M export_w sql_wall sql_rss_M 'wall_x' 'cpu_x' 'rss_x'
WIN=''
WIN_CPU=''
WIN_ALL=''
for n in "${SIZES[@]}"; do
  ctw=$(col "$n" "$BASE" 4)
  sqw=$(col "$n" duckdb-sql 4)
  exw=$(col "$n" "export-$EXPORT_FORMAT" 4)
  # shellcheck disable=SC2059
  printf "$SFMT" "$n" "${EVENTS[$n]}" "$ctw" "$(calc "printf \"%.1f\", $(col "$n" "$BASE" 6) / 1024")" "$exw" "$sqw" \
    "$(calc "printf \"%.1f\", $(col "$n" duckdb-sql 6) / 1024")" \
    "$(calc "printf \"%.2f\", $sqw / $ctw")" \
    "$(calc "printf \"%.2f\", $(col "$n" duckdb-sql 5) / $(col "$n" "$BASE" 5)")" \
    "$(calc "printf \"%.2f\", $(col "$n" duckdb-sql 6) / $(col "$n" "$BASE" 6)")"
  if [ -z "$WIN" ] && calc "exit !($sqw < $ctw)"; then WIN=$n; fi
  if [ -z "$WIN_CPU" ] && calc "exit !($(col "$n" duckdb-sql 5) < $(col "$n" "$BASE" 5))"; then WIN_CPU=$n; fi
  if [ -z "$WIN_ALL" ] && calc "exit !($sqw + $exw < $ctw)"; then WIN_ALL=$n; fi
done
echo "  (x: duckdb-sql / $BASE; below 1 the engine is faster or smaller)"
hosts() { if [ "$1" = 1 ]; then echo '1 host'; else echo "$1 hosts"; fi; }
smallest=''
[ "$WIN" != "${SIZES[0]}" ] || smallest=', the smallest size measured: try smaller ones with --sizes'
if [ -n "$WIN" ]; then
  echo "where the engine starts to win: the SQL over the export beats $BASE in wall time from $(hosts "$WIN") on (of ${SIZES[*]}$smallest)"
else
  echo "where the engine starts to win: not within ${SIZES[*]} hosts: $BASE is faster at every size measured"
fi
# CPU seconds too: on a busy machine wall time also counts waiting for a core.
if [ -n "$WIN_CPU" ]; then
  echo "  in CPU seconds from $(hosts "$WIN_CPU") on"
else
  echo "  in CPU seconds: at no size measured"
fi
if [ -n "$WIN_ALL" ]; then
  echo "  export + SQL together beat it from $(hosts "$WIN_ALL") on"
else
  echo "  export + SQL together: slower than $BASE at every size measured (the export is paid once per journal)"
fi
echo "tables: the same at each size (largest: sha256 $SHA)"
