# bench/common.sh: what bench/replay.sh and bench/fleet.sh share, sourced by both (not run):
# GNU time, the build, the cache of generated data and this run's work dir with their cleanup at
# exit, and the number helpers. The caller sets NAME (its name in messages), ROOT, BUILD (1: npm
# run build) and KEEP (1: --keep), and defines die().

# GNU time gives peak RSS and CPU seconds; installed once if the machine lacks it.
need_gnu_time() {
  if [ ! -x /usr/bin/time ]; then
    echo "$NAME: installing GNU time (Debian package 'time') for peak RSS and CPU seconds" >&2
    apt-get install -y -q time >/dev/null || die "cannot install the Debian package 'time' (as root)"
  fi
}

# npm run build unless --no-build; either way dist/ must be there.
build_dist() {
  if [ "$BUILD" = 1 ]; then
    echo "$NAME: npm run build" >&2
    (cd "$ROOT" && npm run build >/dev/null) || die "npm run build failed"
  fi
  [ -f "$ROOT/dist/analyzer/cli.js" ] && [ -f "$ROOT/dist/journal/writer.js" ] ||
    die "dist/ is missing: run npm run build (or drop --no-build)"
}

# bench_dirs DIR WHAT: the data cache ${TMPDIR:-/tmp}/DIR (CACHE) and this run's work dir (WORK).
# At exit, unless --keep, the work dir goes (KEEP_WORK=1 keeps it for a look after a failure)
# and so does the data this run made (each added to MADE); WHAT names that data in messages.
bench_dirs() {
  TMP=${TMPDIR:-/tmp}
  CACHE="$TMP/$1"
  CACHED=$2
  mkdir -p "$CACHE"
  WORK=$(mktemp -d "$TMP/$1-run.XXXXXX")
  MADE=()
  KEEP_WORK=0
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local d
  # A generation this process left half done (data sets are made as NAME.tmp-PID, then moved).
  rm -rf "$CACHE"/*.tmp-$$ "$CACHE"/*/*.tmp-$$
  if [ "$KEEP" = 1 ]; then
    echo "$NAME: kept this run's outputs in $WORK and $CACHED in $CACHE" >&2
    return
  fi
  if [ "$KEEP_WORK" = 1 ]; then
    echo "$NAME: kept this run's outputs in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  for d in "${MADE[@]}"; do rm -rf "$d"; done
  rmdir "$CACHE" 2>/dev/null || true
}

# KEY=value lines (a generator's meta.txt): the value of key $1 in file $2.
kv() { grep -m1 "^$1=" "$2" | cut -d= -f2-; }
now() { echo "${EPOCHREALTIME/,/.}"; }
calc() { awk "BEGIN { $1 }"; }
median() {
  sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else printf "%.10g\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
