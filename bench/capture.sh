#!/usr/bin/env bash
# bench/capture.sh: does ct-record catch every NEW flow of a UDP flood, and at what CPU cost
# next to `conntrack -E -e NEW -b 64MiB` on the same flood? (docs/bench.md)
#
# Usage: sudo bench/capture.sh [FLOWS] [--runs R] [--buffer-size SIZE] [--seconds S]
#                              [--solo | --overrun] [--format-version V] [--no-build] [--keep]
#                              [--resync-interval S] [--linger S] [--baseline DIR]
#                              [--tcp] [--events MODE]
#   FLOWS           distinct UDP flows per run (default 200000); with --tcp, TCP connections
#   --tcp           a TCP-connection flood (bench/tcpflood.c: full handshakes, closed by RST)
#                   instead of UDP datagrams; ct-record records every event type unless
#                   --events, conntrack -E beside it too; created = the server namespace's
#                   table count (conntrack -L, checked against /proc/net/stat/nf_conntrack);
#                   a table of events and bytes per connection, no resync table
#   --events MODE   ct-record's -e: all, minimal, NEW, … (default NEW, all with --tcp);
#                   conntrack -E gets the same types (all for minimal)
#   --runs R        repetitions, each in fresh namespaces (default 3); the median is printed
#   --buffer-size   ct-record's -b (default: its own default; 64K with --overrun)
#   --seconds S     the flood stops after S seconds even if FLOWS were not all sent (default 60)
#   --solo          ct-record alone (no conntrack -E beside it): the flood runs faster
#   --overrun       --solo with a tiny buffer (64K unless --buffer-size): compares the loss the
#                   journal records with the kernel's drop counter of ct-record's socket
#   --format-version V  ct-record's --format-version (journal format 1 or 2; default: its own)
#   --no-build      skip `npm run build` (dist/ must be current)
#   --keep          keep the temp dir (journals, conntrack output, logs) and print its path
#   --resync-interval S  ct-record's --resync-interval (this tree's build only)
#   --linger S      with --solo: keep ct-record running S s after the flood has settled, then
#                   settle again, so a resync dump waiting for its interval gets made
#   --baseline DIR  with --solo: each run also records the same flood with DIR's build (a
#                   checkout with dist/ and build/ built, e.g. a git worktree of main), so
#                   before and after share the machine's load; the report compares the two
#
# Traffic flows only between the two namespaces this script creates (client → server over one
# veth pair); both are deleted on exit, also on failure or Ctrl-C.
set -euo pipefail

# --filtered PCT: the kernel filter's benchmark instead (bench/filtered.sh; FLOWS, --runs,
# --seconds, --no-build and --keep pass on): ct-record's CPU when PCT % of the flood is filtered
# out in the kernel, against recording everything and against filtering in user space.
# --sustained: does ct-record slow the traffic it watches? (bench/sustained.sh; its options
# pass on): a minute of flood into a table of a million entries, with and without ct-record.
for arg in "$@"; do
  if [ "$arg" = --filtered ]; then exec "$(dirname "$0")/filtered.sh" "$@"; fi
  if [ "$arg" = --sustained ]; then exec "$(dirname "$0")/sustained.sh" "$@"; fi
done

FLOWS=200000
RUNS=3
BUFFER=''
FORMAT_VERSION=''
SECONDS_MAX=60
RESYNC=''
LINGER=0
BASELINE=''
OVERRUN=0
SOLO=0
TCP=0
EVENTS=''
BUILD=1
KEEP=0

usage() {
  sed -n '5,32p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --buffer-size | -b) BUFFER=${2:?--buffer-size needs a size}; shift 2 ;;
  --format-version) FORMAT_VERSION=${2:?--format-version needs 1 or 2}; shift 2 ;;
  --seconds) SECONDS_MAX=${2:?--seconds needs a number}; shift 2 ;;
  --resync-interval) RESYNC=${2:?--resync-interval needs seconds}; shift 2 ;;
  --linger) LINGER=${2:?--linger needs seconds}; shift 2 ;;
  --baseline) BASELINE=$(cd "${2:?--baseline needs a directory}" && pwd); shift 2 ;;
  --overrun) OVERRUN=1; SOLO=1; shift ;;
  --solo) SOLO=1; shift ;;
  --tcp) TCP=1; shift ;;
  --events | -e) EVENTS=${2:?--events needs a mode: all, minimal, NEW, …}; shift 2 ;;
  --no-build) BUILD=0; shift ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage ;;
  [0-9]*) FLOWS=$1; shift ;;
  *) echo "capture.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in FLOWS RUNS SECONDS_MAX; do
  if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
    echo "capture.sh: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done
if [ "$OVERRUN" = 1 ] && [ -z "$BUFFER" ]; then BUFFER=64K; fi
[[ $LINGER =~ ^[0-9]+$ ]] || { echo "capture.sh: --linger must be a whole number of seconds" >&2; exit 2; }
# ct-record's event types: NEW for the UDP flood (its NEW events are what is counted), all for
# the TCP one (a connection's whole life); conntrack -E beside it gets the same types.
if [ -z "$EVENTS" ]; then
  if [ "$TCP" = 1 ]; then EVENTS=all; else EVENTS=NEW; fi
fi
CT_EVENTS=()
case "$EVENTS" in all | minimal) ;; *) CT_EVENTS=(-e "$EVENTS") ;; esac
if [ -n "$BASELINE" ] || [ "$LINGER" != 0 ]; then
  [ "$SOLO" = 1 ] || { echo "capture.sh: --baseline and --linger need --solo or --overrun" >&2; exit 2; }
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=capture.sh
die() {
  echo "$NAME: $*" >&2
  exit 1
}
# shellcheck source=bench/flood-common.sh
. "$ROOT/bench/flood-common.sh"

flood_prepare ctb
need_gnu_time

# ---------------------------------------------------------------- build
flood_build
if [ -n "$BASELINE" ]; then
  [ -f "$BASELINE/dist/recorder/cli.js" ] && [ -f "$BASELINE/build/Release/ct_native.node" ] ||
    die "--baseline $BASELINE: build its dist/ (npm run build) and its addon first"
fi

# 64,000 flows per destination address (bench/flood.c), per destination (address, port) with
# --tcp (bench/tcpflood.c, TCP_PORTS listening ports); the server holds them all.
TCP_PORTS=4
UNIT=flows
if [ "$TCP" = 1 ]; then
  UNIT=connections
  gcc -O2 -Wall -Wextra -o "$WORK/tcpflood" "$ROOT/bench/tcpflood.c" || die "cannot build bench/tcpflood.c"
  ADDRS=$(((FLOWS + 64000 * TCP_PORTS - 1) / (64000 * TCP_PORTS)))
else
  ADDRS=$(((FLOWS + 63999) / 64000))
fi
[ "$ADDRS" -le 200 ] || die "FLOWS too large: at most 12800000"

# ---------------------------------------------------------------- conntrack table size
raise_ct_max $((FLOWS + FLOWS / 10))

# ---------------------------------------------------------------- process helpers
# The receive buffer the kernel really gives PID's event socket (ss shows the port id signed).
rcvbuf_of() {
  local port
  port=$(event_socket "$1" | awk '{ p = $3; if (p >= 2147483648) p -= 4294967296; printf "%d", p }')
  ip netns exec "$NS_S" ss -f netlink -a -m -e 2>/dev/null |
    awk -v port="$port" '{
      # "nft:PORT", or "nft:COMM/PORT" when the port id is the process id
      for (i = 1; i <= 6; i++) if ($i == "nft:" port || $i ~ ("^nft:[^ ]*/" port "$")) {
        if (match($0, /rb[0-9]+/)) print substr($0, RSTART + 2, RLENGTH - 2)
        exit
      }
    }'
}

cpu_seconds() { tail -n 1 "$1" | awk '{ printf "%.2f", $1 + $2 }'; }

# Six significant digits in the report (bench/common.sh's median gives ten).
median() {
  sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-"; else printf "%.6g\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}


# ---------------------------------------------------------------- one run
# One TSV row per run; the first line names the columns (the reports look them up by name).
RESULTS="$WORK/results.tsv"
COLUMNS_SIDE='run sent created rate r_new r_distinct r_cpu r_evcpu r_drops r_enobufs r_qdrops r_rcvbuf r_bpe c_new c_cpu c_evcpu c_drops c_enobufs c_rcvbuf'
COLUMNS_SOLO='run build sent created rate r_new r_distinct r_cpu r_evcpu r_drops r_enobufs r_qdrops r_rcvbuf r_bpe t_gaps t_lost read_gaps read_lost r_bytes r_snap r_all r_dumps r_skipped'
if [ "$SOLO" = 1 ]; then COLUMNS=$COLUMNS_SOLO; else COLUMNS=$COLUMNS_SIDE; fi
# --tcp: handshakes completed and failed, the table count's growth, all events written by type,
# distinct 4-tuples of the NEW events, and conntrack -E's lines.
if [ "$TCP" = 1 ]; then
  COLUMNS+=' conns failed entries r_events r_update r_destroy r_tuples c_events'
  [ "$SOLO" = 1 ] || COLUMNS+=' r_bytes'
fi
tr ' ' '\t' <<<"$COLUMNS" >"$RESULTS"

declare -A V

run_once() {
  local run=$1 build=${2:-this} tree=$ROOT journal ctr_t ctr ct_t=0 ct=0 flood_out rc f
  local r_cpu0 c_cpu0=0 r_cpu1 c_cpu1=0 resync=()
  if [ "$build" = base ]; then tree=$BASELINE; elif [ -n "$RESYNC" ]; then resync=(--resync-interval "$RESYNC"); fi
  journal="$WORK/run$run.mpk"
  V=([run]=$run [build]=$build)
  rm -f "$WORK"/*.out "$WORK"/*.mpk "$WORK"/*.err "$WORK"/*.time
  flood_namespaces "10.219.1:$ADDRS"
  local entries0=0
  if [ "$TCP" = 1 ]; then
    flood_tcp_server "$WORK/tcpflood" "$TCP_PORTS"
    entries0=$(ct_entries)
  fi

  ip netns exec "$NS_S" /usr/bin/time -f '%U %S' -o "$WORK/ctr.time" \
    "$NODE" "$tree/dist/recorder/cli.js" -o "$journal" -e "$EVENTS" ${BUFFER:+-b "$BUFFER"} \
    ${FORMAT_VERSION:+--format-version "$FORMAT_VERSION"} "${resync[@]}" \
    2>"$WORK/ctr.err" &
  ctr_t=$!
  PIDS+=("$ctr_t")
  if [ "$SOLO" = 0 ]; then
    ip netns exec "$NS_S" /usr/bin/time -f '%U %S' -o "$WORK/ct.time" \
      conntrack -E "${CT_EVENTS[@]}" -b 67108864 >"$WORK/ct.out" 2>"$WORK/ct.err" &
    ct_t=$!
    PIDS+=("$ct_t")
  fi
  ctr=$(child_of "$ctr_t") || die "ct-record did not start (see $WORK/ctr.err)"
  PIDS+=("$ctr")
  wait_subscribed "$ctr" ct-record
  local watch=("$ctr")
  if [ "$SOLO" = 0 ]; then
    ct=$(child_of "$ct_t") || die "conntrack -E did not start (see $WORK/ct.err)"
    PIDS+=("$ct")
    wait_subscribed "$ct" 'conntrack -E'
    watch+=("$ct")
  fi
  for ((f = 0; f < 100; f++)); do
    grep -q 'capturing conntrack events' "$WORK/ctr.err" && break
    sleep 0.05
  done
  grep -q 'capturing conntrack events' "$WORK/ctr.err" ||
    die "ct-record never said it was capturing: $(cat "$WORK/ctr.err")"
  V[r_rcvbuf]=$(rcvbuf_of "$ctr")
  [ "$SOLO" = 0 ] && V[c_rcvbuf]=$(rcvbuf_of "$ct")

  r_cpu0=$(cpu_now "$ctr")
  [ "$SOLO" = 0 ] && c_cpu0=$(cpu_now "$ct")
  if [ "$TCP" = 1 ]; then
    flood_out=$(ip netns exec "$NS_C" "$WORK/tcpflood" 10.219.1.1 "$FLOWS" "$SECONDS_MAX" "$TCP_PORTS")
  else
    flood_out=$(ip netns exec "$NS_C" "$WORK/flood" 10.219.1.1 "$FLOWS" "$SECONDS_MAX")
  fi
  wait_quiescent "${watch[@]}"
  if [ "$LINGER" != 0 ]; then
    # A resync dump that waits for its interval is made meanwhile; its CPU counts too.
    sleep "$LINGER"
    wait_quiescent "${watch[@]}"
  fi
  r_cpu1=$(cpu_now "$ctr")
  [ "$SOLO" = 0 ] && c_cpu1=$(cpu_now "$ct")

  # The kernel's truth, read while both readers still hold their sockets.
  if [ "$TCP" = 1 ]; then
    V[created]=$(ip netns exec "$NS_S" conntrack -L -p tcp -s 10.219.0.1 2>/dev/null | wc -l)
    V[entries]=$(($(ct_entries) - entries0))
  else
    V[created]=$(ip netns exec "$NS_S" conntrack -L -p udp -s 10.219.0.1 2>/dev/null | wc -l)
  fi
  V[r_drops]=$(event_socket "$ctr" | cut -d' ' -f2)
  [ "$SOLO" = 0 ] && V[c_drops]=$(event_socket "$ct" | cut -d' ' -f2)

  kill -TERM "$ctr"
  [ "$SOLO" = 0 ] && kill -TERM "$ct"
  rc=0
  wait "$ctr_t" || rc=$?
  [ "$rc" = 0 ] || die "ct-record exited with status $rc: $(cat "$WORK/ctr.err")"
  if [ "$SOLO" = 0 ]; then wait "$ct_t" || true; fi
  if [ "$TCP" = 1 ]; then
    kill -TERM "$TCP_SERVER"
    wait "$TCP_SERVER" || true
  fi
  PIDS=()
  delete_namespaces

  V[sent]=$(grep -o 'sent=[0-9]*' <<<"$flood_out" | cut -d= -f2)
  V[rate]=$(grep -o 'rate=[0-9]*' <<<"$flood_out" | cut -d= -f2)
  if [ "$TCP" = 1 ]; then
    V[conns]=$(grep -o 'connected=[0-9]*' <<<"$flood_out" | cut -d= -f2)
    V[failed]=$(grep -o 'failed=[0-9]*' <<<"$flood_out" | cut -d= -f2)
    echo "  run $run: flood made ${V[conns]} connections of ${V[sent]} attempts (${V[failed]} failed) in" \
      "$(grep -o 'seconds=[0-9.]*' <<<"$flood_out" | cut -d= -f2) s (${V[rate]}/s); the kernel created" \
      "${V[created]} entries (conntrack -L), its table grew by ${V[entries]}"
  else
    echo "  run $run: flood sent ${V[sent]} flows in $(grep -o 'seconds=[0-9.]*' <<<"$flood_out" | cut -d= -f2) s" \
      "(${V[rate]}/s); the kernel created ${V[created]} entries"
  fi

  "$NODE" "$ROOT/bench/journal-stats.mjs" "$journal" >"$WORK/stats.txt"
  V[r_new]=$(kv new "$WORK/stats.txt")
  V[r_distinct]=$(kv distinct_new "$WORK/stats.txt")
  V[r_cpu]=$(cpu_seconds "$WORK/ctr.time")
  V[r_evcpu]=$(awk -v a="$r_cpu0" -v b="$r_cpu1" 'BEGIN { printf "%.2f", b - a }')
  # What ct-record's own summary says it lost: "WARNING: N events were lost in G gaps".
  V[r_enobufs]=$(grep -o '[0-9]* events were lost' "$WORK/ctr.err" | cut -d' ' -f1 || true)
  V[r_qdrops]=$(grep -o 'lost in [0-9]* gaps' "$WORK/ctr.err" | cut -d' ' -f3 || true)
  V[r_enobufs]=${V[r_enobufs]:-0}
  V[r_qdrops]=${V[r_qdrops]:-0}
  V[r_bpe]=$(awk -v b="$(kv bytes "$WORK/stats.txt")" -v e="$(kv trailer_events "$WORK/stats.txt")" \
    'BEGIN { if (e > 0) printf "%.1f", b / e; else print "-" }')
  if [ "$TCP" = 1 ]; then
    V[r_events]=$(kv events "$WORK/stats.txt")
    V[r_update]=$(kv update "$WORK/stats.txt")
    V[r_destroy]=$(kv destroy "$WORK/stats.txt")
    V[r_tuples]=$(kv distinct_new_tuples "$WORK/stats.txt")
    V[r_bytes]=$(kv bytes "$WORK/stats.txt")
    # Every connection has its own 4-tuple: the destination alone names 4 flows per address.
    V[r_distinct]=${V[r_tuples]}
  fi
  [ "${V[r_distinct]}" = "${V[r_new]}" ] ||
    echo "  warning: ct-record's ${V[r_new]} NEW events name only ${V[r_distinct]} distinct flows"
  echo "  ct-record: $(grep -E 'stopped:|WARNING' "$WORK/ctr.err" | sed 's/^ct-record: //' | paste -sd' ' -)"

  if [ "$SOLO" = 1 ]; then
    local coverage
    V[t_gaps]=$(kv trailer_gaps "$WORK/stats.txt")
    V[t_lost]=$(kv trailer_lost "$WORK/stats.txt")
    V[read_gaps]=$(kv read_gaps "$WORK/stats.txt")
    V[read_lost]=$(kv read_lost "$WORK/stats.txt")
    V[r_bytes]=$(kv bytes "$WORK/stats.txt")
    V[r_snap]=$(kv snapshot "$WORK/stats.txt")
    V[r_all]=$(kv distinct_all "$WORK/stats.txt")
    # "N resync table dumps; K dump entries … left out" (a build before it: a dump per gap).
    V[r_dumps]=$(grep -o '[0-9]* resync table dumps' "$WORK/ctr.err" | cut -d' ' -f1 || true)
    V[r_skipped]=$(grep -o '[0-9]* dump entries the journal already held' "$WORK/ctr.err" | cut -d' ' -f1 || true)
    V[r_dumps]=${V[r_dumps]:-$(kv resync_gaps "$WORK/stats.txt")}
    V[r_skipped]=${V[r_skipped]:-0}
    coverage=$("$NODE" "$ROOT/dist/analyzer/cli.js" "$journal" 2>&1 | grep -E '^#' || true)
    if [ -n "$coverage" ]; then
      echo "  ct-analyze says:"
      sed 's/^/    /' <<<"$coverage"
    else
      echo "  ct-analyze prints no coverage line for this journal (no '#' line in its report)"
    fi
    row
    return 0
  fi

  if [ "$TCP" = 1 ]; then
    V[c_new]=$(grep -c '\[NEW\] tcp' "$WORK/ct.out" || true)
    V[c_events]=$(grep -c '^ *\[' "$WORK/ct.out" || true)
  else
    V[c_new]=$(grep -c '\[NEW\] udp' "$WORK/ct.out" || true)
  fi
  V[c_enobufs]=$(grep -c 'ENOBUFS' "$WORK/ct.err" || true)
  V[c_cpu]=$(cpu_seconds "$WORK/ct.time")
  V[c_evcpu]=$(awk -v a="$c_cpu0" -v b="$c_cpu1" 'BEGIN { printf "%.2f", b - a }')
  row
}

# ---------------------------------------------------------------- report
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", 100 * a / b; else print "-" }'; }
per_event() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * c / n; else print "-" }'; }
legend() {
  echo "(caught = NEW events written out; cpu_s = user+sys of the whole process, start to exit;"
  echo " ev_cpu = its CPU from just before the flood to quiescence, us/ev = ev_cpu per caught event;"
  echo " drops = the kernel's drop counter of its event socket (/proc/net/netlink); rcvbuf = the"
  echo " receive buffer the kernel really gave that socket (ss -m); B/ev = journal bytes / events;"
  echo " reported = loss the tool itself reported: ct-record's events lost, conntrack's ENOBUFS lines)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Prints, one per line, the values of column NAME over all runs, or of A/B, A%B (percent) or
# A@B (micro-units of A per B) for columns A and B.
values() {
  awk -F'\t' -v expr="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    {
      n = split(expr, p, /[\/%@]/)
      a = $idx[p[1]]
      if (n == 1) { print a; next }
      b = $idx[p[2]]
      if (b == 0 || b == "-") { print "-"; next }
      if (index(expr, "%")) printf "%.4f\n", 100 * a / b
      else if (index(expr, "@")) printf "%.4f\n", 1e6 * a / b
      else printf "%.4f\n", a / b
    }' "$RESULTS"
}
med() { values "$1" | grep -v '^-$' | median; }

FMT='%-4s %-10s %7s %7s %7s %7s %8s %6s %6s %5s %6s %7s %9s %5s\n'
report_side_by_side() {
  echo
  echo "ct-record -e $EVENTS${BUFFER:+ -b $BUFFER} vs conntrack -E${CT_EVENTS[*]:+ ${CT_EVENTS[*]}} -b 67108864, $FLOWS $UNIT per run"
  legend
  # shellcheck disable=SC2059
  printf "$FMT" run tool sent created caught '%sent' '%created' cpu_s ev_cpu us/ev drops reported rcvbuf B/ev
  local -a h r
  local line i
  {
    read -r line
    read -ra h <<<"$line"
    while IFS=$'\t' read -ra r; do
      declare -A R=()
      for i in "${!h[@]}"; do R[${h[$i]}]=${r[$i]}; done
      # shellcheck disable=SC2059
      printf "$FMT" "${R[run]}" ct-record "${R[sent]}" "${R[created]}" "${R[r_new]}" \
        "$(pct "${R[r_new]}" "${R[sent]}")" "$(pct "${R[r_new]}" "${R[created]}")" "${R[r_cpu]}" \
        "${R[r_evcpu]}" "$(per_event "${R[r_evcpu]}" "${R[r_new]}")" "${R[r_drops]}" "${R[r_enobufs]}" "${R[r_rcvbuf]}" "${R[r_bpe]}"
      # shellcheck disable=SC2059
      printf "$FMT" '' conntrack "${R[sent]}" "${R[created]}" "${R[c_new]}" \
        "$(pct "${R[c_new]}" "${R[sent]}")" "$(pct "${R[c_new]}" "${R[created]}")" "${R[c_cpu]}" \
        "${R[c_evcpu]}" "$(per_event "${R[c_evcpu]}" "${R[c_new]}")" "${R[c_drops]}" "${R[c_enobufs]}" "${R[c_rcvbuf]}" -
      echo "     cpu ct-record / conntrack: $(ratio "${R[r_cpu]}" "${R[c_cpu]}") (ev_cpu $(ratio "${R[r_evcpu]}" "${R[c_evcpu]}")); flood ${R[rate]} flows/s"
    done
  } <"$RESULTS"
  echo
  echo "median of $RUNS runs:"
  echo "  ct-record: caught $(med r_new%sent) % of sent, $(med r_new%created) % of created;" \
    "cpu $(med r_cpu) s (ev_cpu $(med r_evcpu) s, $(med r_evcpu@r_new) us/event); $(med r_bpe) B/event"
  echo "  conntrack: caught $(med c_new%sent) % of sent, $(med c_new%created) % of created;" \
    "cpu $(med c_cpu) s (ev_cpu $(med c_evcpu) s, $(med c_evcpu@c_new) us/event)"
  echo "  cpu ratio ct-record / conntrack: $(med r_cpu/c_cpu) (ev_cpu $(med r_evcpu/c_evcpu));" \
    "flood $(med rate) flows/s"
}

OFMT='%-4s %7s %7s %7s %8s %7s %7s %7s %7s %6s %5s %7s %6s %6s %5s %9s\n'
report_solo() {
  echo
  echo "$([ "$OVERRUN" = 1 ] && echo 'overrun: ')ct-record -e $EVENTS${BUFFER:+ -b $BUFFER} alone, $FLOWS $UNIT per run"
  legend
  echo "(missing = created - caught; rep_lost, rep_gaps = ct-record's summary; gaps, j_lost ="
  echo " the journal trailer's loss fields)"
  # shellcheck disable=SC2059
  printf "$OFMT" run sent created caught '%created' missing drops rep_lost rep_gaps gaps j_lost \
    cpu_s ev_cpu us/ev B/ev rcvbuf
  local -a h r
  local line i
  {
    read -r line
    read -ra h <<<"$line"
    while IFS=$'\t' read -ra r; do
      declare -A R=()
      for i in "${!h[@]}"; do R[${h[$i]}]=${r[$i]}; done
      # shellcheck disable=SC2059
      printf "$OFMT" "${R[run]}" "${R[sent]}" "${R[created]}" "${R[r_new]}" \
        "$(pct "${R[r_new]}" "${R[created]}")" "$((R[created] - R[r_new]))" "${R[r_drops]}" \
        "${R[r_enobufs]}" "${R[r_qdrops]}" "${R[t_gaps]}" "${R[t_lost]}" "${R[r_cpu]}" \
        "${R[r_evcpu]}" "$(per_event "${R[r_evcpu]}" "${R[r_new]}")" "${R[r_bpe]}" "${R[r_rcvbuf]}"
      if [ "${R[t_lost]}" = absent ]; then
        echo "     the journal has no loss fields (this build writes no gap records)"
      else
        echo "     journal lost ${R[t_lost]} vs kernel drops ${R[r_drops]}:" \
          "$([ "${R[t_lost]}" = "${R[r_drops]}" ] && echo equal || echo DIFFERENT);" \
          "created - caught = $((R[created] - R[r_new]))"
      fi
      echo "     flood ${R[rate]} flows/s"
    done
  } <"$RESULTS"
  echo
  echo "median of $RUNS runs: caught $(med r_new%created) % of created, $(med r_new%sent) % of sent;" \
    "cpu $(med r_cpu) s (ev_cpu $(med r_evcpu) s, $(med r_evcpu@r_new) us/event);" \
    "$(med r_bpe) B/event; flood $(med rate) flows/s"
}

# --tcp: every event of a connection's life, per connection the kernel created.
TFMT='%-4s %7s %7s %7s %7s %8s %8s %6s %6s %6s %6s %9s %6s %6s %6s %6s %6s\n'
report_tcp() {
  echo
  echo "TCP connections: ct-record -e $EVENTS, events and journal bytes per connection"
  echo "(conns = handshakes the client completed; created = conntrack -L's tcp entries from the"
  echo " client; grown = the table's growth (/proc/net/stat/nf_conntrack entries); NEW/UPD/DES ="
  echo " events by type in the journal; ev/conn, B/conn = all events, journal bytes per entry"
  echo " created; ct_ev/c = conntrack -E's event lines per entry created (side by side only);"
  echo " us/ev, us/conn = ct-record's ev_cpu per event written, per entry created)"
  # shellcheck disable=SC2059
  printf "$TFMT" run conns failed created grown caught '%created' NEW/c UPD/c DES/c ev/conn bytes B/conn \
    ct_ev/c drops us/ev us/conn
  local -a h r
  local line i
  {
    read -r line
    read -ra h <<<"$line"
    while IFS=$'\t' read -ra r; do
      declare -A R=()
      for i in "${!h[@]}"; do R[${h[$i]}]=${r[$i]}; done
      # shellcheck disable=SC2059
      printf "$TFMT" "${R[run]}" "${R[conns]}" "${R[failed]}" "${R[created]}" "${R[entries]}" "${R[r_new]}" \
        "$(pct "${R[r_new]}" "${R[created]}")" "$(ratio "${R[r_new]}" "${R[created]}")" \
        "$(ratio "${R[r_update]}" "${R[created]}")" "$(ratio "${R[r_destroy]}" "${R[created]}")" \
        "$(ratio "${R[r_events]}" "${R[created]}")" "${R[r_bytes]}" \
        "$(ratio "${R[r_bytes]}" "${R[created]}")" "$([ "${R[c_events]}" = - ] && echo - || ratio "${R[c_events]}" "${R[created]}")" \
        "${R[r_drops]}" "$(per_event "${R[r_evcpu]}" "${R[r_events]}")" \
        "$(per_event "${R[r_evcpu]}" "${R[created]}")"
    done
  } <"$RESULTS"
  echo
  echo "median of $RUNS runs: caught $(med r_new%created) % of created; $(med r_events/created) events and" \
    "$(med r_bytes/created) journal bytes per connection; drops $(med r_drops); ct-record" \
    "$(med r_evcpu@r_events) us/event, $(med r_evcpu@created) us/connection; flood $(med rate) connections/s"
}

# The resync's cost, per build: dumps, snapshot entries written and left out, journal bytes per
# flow the kernel created, flows the journal misses entirely (no NEW, no snapshot).
RFMT='%-4s %-5s %7s %6s %8s %8s %10s %7s %7s %8s %8s %7s\n'
report_resync() {
  echo
  echo "resync: ${RESYNC:+this build --resync-interval $RESYNC; }linger ${LINGER} s after the flood settled"
  echo "(dumps = resync table dumps; snap = snapshot entries written; skipped = dump entries left"
  echo " out as known; B/flow = journal bytes / entries created; missing = created flows with"
  echo " neither a NEW event nor a snapshot entry in the journal; us/ev = ev_cpu per NEW event"
  echo " written, us/flow = ev_cpu per entry created)"
  # shellcheck disable=SC2059
  printf "$RFMT" run build created dumps snap skipped bytes B/flow missing us/ev us/flow lost
  local -a h r
  local line i
  {
    read -r line
    read -ra h <<<"$line"
    while IFS=$'\t' read -ra r; do
      declare -A R=()
      for i in "${!h[@]}"; do R[${h[$i]}]=${r[$i]}; done
      # shellcheck disable=SC2059
      printf "$RFMT" "${R[run]}" "${R[build]}" "${R[created]}" "${R[r_dumps]}" "${R[r_snap]}" \
        "${R[r_skipped]}" "${R[r_bytes]}" "$(ratio "${R[r_bytes]}" "${R[created]}")" \
        "$((R[created] - R[r_all]))" "$(per_event "${R[r_evcpu]}" "${R[r_new]}")" \
        "$(per_event "${R[r_evcpu]}" "${R[created]}")" "${R[t_lost]}"
    done
  } <"$RESULTS"
}

echo "bench/capture: $FLOWS $UNIT x $RUNS runs on $(nproc) CPUs, kernel $(uname -r), $(date -u +%FT%TZ)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
for ((r = 1; r <= RUNS; r++)); do
  run_once "$r" this
  if [ -n "$BASELINE" ]; then run_once "$r" base; fi
done
if [ "$SOLO" = 1 ]; then
  report_solo
  # The resync table counts flows by destination (journal-stats' distinct_all): not the TCP
  # flood's, whose connections share 4 destinations per address.
  [ "$TCP" = 1 ] || report_resync
else
  report_side_by_side
fi
[ "$TCP" = 0 ] || report_tcp
echo "load: $(uptime | sed 's/.*load average/load average/')"
