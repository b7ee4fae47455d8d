#!/usr/bin/env bash
# bench/sustained.sh: does ct-record harm the host it watches under a long flood? A UDP flood at
# the generator's full rate for a minute into a conntrack table held near a million entries,
# ct-record recording everything with a small buffer (so it loses events and resyncs by dumping
# that table), against the same flood with no ct-record running (docs/bench.md, "Sustained").
#
# Usage: sudo bench/sustained.sh [--seconds S] [--table N] [--udp-timeout S] [--buffer-size SIZE]
#                                [--resync-interval S] [--events MODE] [--nice N] [--cpu-quota PCT]
#                                [--tree DIR] [--arms LIST] [--runs R] [--no-build] [--keep]
#   --seconds S        how long each flood runs (default 60)
#   --table N          nf_conntrack_max for the run, restored at exit (default 1000000)
#   --udp-timeout S    the server namespace's nf_conntrack_udp_timeout (default 10): entries
#                      expire (DESTROY events) at the rate they are made, so the table holds
#                      about rate x S entries, up to --table (past that the kernel evicts
#                      unreplied entries early: early_drop)
#   --buffer-size SIZE ct-record's -b (default 64K: small, so it overruns and resyncs)
#   --resync-interval S  ct-record's --resync-interval (default: its own, 30 s)
#   --events MODE      ct-record's -e (default: its own, all)
#   --nice N           the bounded arm's nice level (as systemd's Nice=; default 19)
#   --cpu-quota PCT    the bounded arm's CFS quota, PCT % of one CPU (as systemd's CPUQuota=;
#                      cgroup v2 cpu.max or v1 cpu.cfs_quota_us; default 50)
#   --tree DIR         the before arm's build: a checkout with dist/ and build/ built (e.g. a
#                      git worktree of an earlier commit)
#   --arms LIST        what watches the flood, each its own flood in fresh namespaces:
#                      without (nothing; always run), ct-record, bounded (ct-record at --nice in
#                      a --cpu-quota cgroup), before (--tree's ct-record), conntrack (conntrack
#                      -E, the reference tool, to /dev/null), idle (conntrack -E stopped once
#                      subscribed: what the kernel spends making events nobody reads).
#                      Default without,ct-record
#   --runs R           repetitions of the arms, odd runs in the order given, even runs reversed
#                      (default 1)
#   --no-build         skip `npm run build` (dist/ must be current)
#   --keep             keep the temp dir (journals, logs) and print its path
#
# Reported per flood: its own rate, and for the kernel the entries it created (datagrams that
# reached the server's UDP layer), the table's peak size, early drops and packet drops; for
# ct-record its NEW events against the entries created, its loss (the journal's count against
# its socket's drop counter), resync dumps, dump entries written and left out, journal bytes,
# CPU and peak RSS.
#
# Traffic flows only between the two namespaces this script creates (client -> server over one
# veth pair); both are deleted on exit, also on failure or Ctrl-C.
set -euo pipefail

SECONDS_RUN=60
TABLE=1000000
UDP_TIMEOUT=10
BUFFER=64K
RESYNC=''
EVENTS=''
NICE=''
QUOTA=''
ARMS=without,ct-record
TREE=''
RUNS=1
BUILD=1
KEEP=0

usage() {
  sed -n '7,34p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
  --sustained) shift ;; # as passed on by bench/capture.sh --sustained
  --seconds) SECONDS_RUN=${2:?--seconds needs a number}; shift 2 ;;
  --table) TABLE=${2:?--table needs a number}; shift 2 ;;
  --udp-timeout) UDP_TIMEOUT=${2:?--udp-timeout needs seconds}; shift 2 ;;
  --buffer-size | -b) BUFFER=${2:?--buffer-size needs a size}; shift 2 ;;
  --resync-interval) RESYNC=${2:?--resync-interval needs seconds}; shift 2 ;;
  --events | -e) EVENTS=${2:?--events needs a mode}; shift 2 ;;
  --nice) NICE=${2:?--nice needs a number}; shift 2 ;;
  --cpu-quota) QUOTA=${2:?--cpu-quota needs a percentage}; shift 2 ;;
  --arms) ARMS=${2:?--arms needs a list}; shift 2 ;;
  --tree) TREE=$(cd "${2:?--tree needs a directory}" && pwd); shift 2 ;;
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --no-build) BUILD=0; shift ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage ;;
  *) echo "sustained.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -z $NICE || $NICE =~ ^-?[0-9]+$ ]] || { echo "sustained.sh: --nice takes -20..19" >&2; exit 2; }
[[ -z $QUOTA || $QUOTA =~ ^[1-9][0-9]*$ ]] || { echo "sustained.sh: --cpu-quota takes a percentage, e.g. 50" >&2; exit 2; }
A='(without|ct-record|bounded|before|conntrack|idle)'
[[ $ARMS =~ ^$A(,$A)*$ ]] ||
  { echo "sustained.sh: --arms takes a comma-separated list of without, ct-record, bounded, before, conntrack, idle" >&2; exit 2; }
[[ ,$ARMS, != *,before,* || -n $TREE ]] || { echo "sustained.sh: the before arm needs --tree DIR" >&2; exit 2; }
NICE=${NICE:-19}
QUOTA=${QUOTA:-50}
[[ ,$ARMS, == *,without,* ]] || ARMS=without,$ARMS
for v in SECONDS_RUN TABLE UDP_TIMEOUT RUNS; do
  if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
    echo "sustained.sh: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=sustained.sh
die() {
  echo "$NAME: $*" >&2
  exit 1
}
# shellcheck source=bench/flood-common.sh
. "$ROOT/bench/flood-common.sh"

flood_prepare cts
need_gnu_time
flood_build

# --cpu-quota: a cgroup of its own for ct-record, removed at exit (after flood_cleanup's kills).
CG=''
if [[ ,$ARMS, == *,bounded,* ]]; then
  if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    CG=/sys/fs/cgroup/ctbench-$$
    mkdir "$CG" || die "cannot create the cgroup $CG"
    echo "$((QUOTA * 1000)) 100000" >"$CG/cpu.max"
  elif [ -d /sys/fs/cgroup/cpu ]; then
    CG=/sys/fs/cgroup/cpu/ctbench-$$
    mkdir "$CG" || die "cannot create the cgroup $CG"
    echo 100000 >"$CG/cpu.cfs_period_us"
    echo $((QUOTA * 1000)) >"$CG/cpu.cfs_quota_us"
  else
    die "--cpu-quota needs the cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us)"
  fi
fi

# Destinations for the whole run even at 270k flows/s (64,000 per address, bench/flood.c; at
# most 254 addresses, 10.219.1.1-254): the flood stops at SECONDS_RUN, not at the count (the
# flood alone ran at 228k flows/s here).
ADDRS=$(((270000 * SECONDS_RUN + 63999) / 64000))
[ "$ADDRS" -le 254 ] || ADDRS=254
FLOWS=$((ADDRS * 64000))
raise_ct_max "$TABLE"
# As many hash buckets as entries, as the kernel sizes its default table (nf_conntrack_max equals
# nf_conntrack_buckets unless set): chains stay short, as on a firewall set up for this size.
BUCKETS_OLD=$(sysctl -n net.netfilter.nf_conntrack_buckets)
if [ "$BUCKETS_OLD" -lt "$TABLE" ]; then
  sysctl -qw "net.netfilter.nf_conntrack_buckets=$TABLE" || die "cannot set nf_conntrack_buckets to $TABLE"
  echo "$NAME: nf_conntrack_buckets raised from $BUCKETS_OLD to $TABLE for the run" >&2
else
  BUCKETS_OLD=''
fi
sustained_cleanup() {
  flood_cleanup
  if [ -n "$BUCKETS_OLD" ]; then
    sysctl -qw "net.netfilter.nf_conntrack_buckets=$BUCKETS_OLD" || true
    echo "$NAME: nf_conntrack_buckets restored to $BUCKETS_OLD" >&2
  fi
  if [ -n "$CG" ]; then
    sleep 0.2
    rmdir "$CG" 2>/dev/null || true
  fi
}
trap sustained_cleanup EXIT

# Sum of one column (by its header name) of /proc/net/stat/nf_conntrack in the server namespace:
# one hex row per CPU.
ct_stat() {
  local line c=-1 i s=0
  local -a f
  while read -r line; do
    read -ra f <<<"$line"
    if [ "$c" = -1 ]; then
      for i in "${!f[@]}"; do [ "${f[$i]}" = "$1" ] && c=$i; done
      [ "$c" != -1 ] || die "no column $1 in /proc/net/stat/nf_conntrack"
      continue
    fi
    s=$((s + 16#${f[$c]}))
  done < <(ip netns exec "$NS_S" cat /proc/net/stat/nf_conntrack)
  echo "$s"
}
# Datagrams that reached the server's UDP layer (InDatagrams + NoPorts + InErrors of
# /proc/net/snmp): each passed conntrack's confirmation, so each is an entry created. (The
# `insert` column of /proc/net/stat/nf_conntrack would say so directly, but this kernel leaves
# it at 0.)
udp_in() {
  ip netns exec "$NS_S" awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
    print $c["InDatagrams"] + $c["NoPorts"] + $c["InErrors"] }' /proc/net/snmp
}
ct_count() { ip netns exec "$NS_S" cat /proc/sys/net/netfilter/nf_conntrack_count; }

# Peak of the server namespace's table size, sampled every 0.5 s until the file STOP exists.
sample_table() {
  local peak=0 n
  while [ ! -e "$WORK/stop-sampling" ]; do
    n=$(ct_count 2>/dev/null || echo 0)
    [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.5
  done
  echo "$peak" >"$WORK/peak"
}

RESULTS="$WORK/results.tsv"
COLUMNS='run arm sent seconds rate created peak early drop r_new r_snap r_events r_bytes r_lost r_drops r_dumps r_skipped r_cpu r_cpu_all r_rss_kb'
tr ' ' '\t' <<<"$COLUMNS" >"$RESULTS"
declare -A V

# start_ct_record JOURNAL TREE BOUNDED: TREE's ct-record; BOUNDED=1 puts it (and every child) in
# the quota's cgroup at the nice level asked for.
start_ct_record() {
  local cg='' nice=0
  if [ "$3" = 1 ]; then cg=$CG; nice=$NICE; fi
  sh -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs"; fi; shift; exec "$@"' sh "$cg" \
    nice -n "$nice" ip netns exec "$NS_S" /usr/bin/time -f '%U %S %M' -o "$WORK/ctr.time" \
    "$NODE" "$2/dist/recorder/cli.js" -o "$1" -b "$BUFFER" \
    ${EVENTS:+-e "$EVENTS"} ${RESYNC:+--resync-interval "$RESYNC"} 2>"$WORK/ctr.err" &
  LISTENER_T=$!
  PIDS+=("$LISTENER_T")
  LISTENER=$(child_of "$LISTENER_T") || die "ct-record did not start (see $WORK/ctr.err)"
  PIDS+=("$LISTENER")
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q 'capturing conntrack events' "$WORK/ctr.err" && return 0
    kill -0 "$LISTENER" 2>/dev/null || die "ct-record exited: $(cat "$WORK/ctr.err")"
    sleep 0.05
  done
  die "ct-record never said it was capturing: $(cat "$WORK/ctr.err")"
}

# conntrack -E, the reference tool, printing every event to /dev/null with a 64 MiB buffer.
start_conntrack() {
  ip netns exec "$NS_S" conntrack -E -b 67108864 >/dev/null 2>"$WORK/ctr.err" &
  LISTENER=$!
  LISTENER_T=$LISTENER
  PIDS+=("$LISTENER")
  wait_subscribed "$LISTENER" 'conntrack -E'
}

# run_once RUN ARM: the flood alone (without), or watched by ct-record, by conntrack -E, or by a
# listener that never reads (idle: conntrack -E stopped once subscribed; what the kernel spends
# making events that nobody takes).
run_once() {
  local run=$1 arm=$2 journal="$WORK/run$1.mpk" out rc ins0 early0 drop0 cpu0
  V=([run]=$run [arm]=$arm)
  LISTENER=''
  rm -f "$WORK"/*.mpk "$WORK"/ctr.* "$WORK/stop-sampling" "$WORK/peak"
  flood_namespaces "10.219.1:$ADDRS"
  ip netns exec "$NS_S" sysctl -qw "net.netfilter.nf_conntrack_udp_timeout=$UDP_TIMEOUT"
  case "$arm" in
  ct-record) start_ct_record "$journal" "$ROOT" 0 ;;
  bounded) start_ct_record "$journal" "$ROOT" 1 ;;
  before) start_ct_record "$journal" "$TREE" 0 ;;
  conntrack) start_conntrack ;;
  idle) start_conntrack; kill -STOP "$LISTENER" ;;
  esac
  [ -n "$LISTENER" ] && cpu0=$(cpu_now "$LISTENER")

  ins0=$(udp_in)
  early0=$(ct_stat early_drop)
  drop0=$(ct_stat drop)
  sample_table &
  local sampler=$!
  PIDS+=("$sampler")
  out=$(ip netns exec "$NS_C" "$WORK/flood" 10.219.1.1 "$FLOWS" "$SECONDS_RUN")
  V[created]=$(($(udp_in) - ins0))
  V[early]=$(($(ct_stat early_drop) - early0))
  V[drop]=$(($(ct_stat drop) - drop0))
  touch "$WORK/stop-sampling"
  wait "$sampler" || true
  V[peak]=$(cat "$WORK/peak")
  V[sent]=$(grep -o 'sent=[0-9]*' <<<"$out" | cut -d= -f2)
  V[seconds]=$(grep -o 'seconds=[0-9.]*' <<<"$out" | cut -d= -f2)
  V[rate]=$(grep -o 'rate=[0-9]*' <<<"$out" | cut -d= -f2)

  if [ -n "$LISTENER" ]; then
    # Expiring entries keep sending DESTROY events; stop 2 s after the flood, as an admin would.
    sleep 2
    V[r_drops]=$(event_socket "$LISTENER" | cut -d' ' -f2)
    # The listener's CPU from just before the flood (ct-record's start-up is not the flood's).
    V[r_cpu]=$(awk -v a="$cpu0" -v b="$(cpu_now "$LISTENER")" 'BEGIN { printf "%.2f", b - a }')
  fi
  if [[ $arm == ct-record || $arm == bounded || $arm == before ]]; then
    kill -TERM "$LISTENER"
    rc=0
    wait "$LISTENER_T" || rc=$?
    [ "$rc" = 0 ] || die "ct-record exited with status $rc: $(cat "$WORK/ctr.err")"
    read -r u s rss < <(tail -n 1 "$WORK/ctr.time")
    V[r_cpu_all]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    V[r_rss_kb]=$rss
    V[r_dumps]=$(grep -o '[0-9]* resync table dumps' "$WORK/ctr.err" | cut -d' ' -f1 || true)
    V[r_skipped]=$(grep -o '[0-9]* dump entries the journal already held' "$WORK/ctr.err" | cut -d' ' -f1 || true)
    # A build before rate-limited resyncs says nothing of dumps: it made one per gap.
    V[r_dumps]=${V[r_dumps]:-}
    V[r_skipped]=${V[r_skipped]:-0}
    "$NODE" "$ROOT/bench/journal-stats.mjs" "$journal" >"$WORK/stats.txt"
    V[r_new]=$(kv new "$WORK/stats.txt")
    V[r_snap]=$(kv snapshot "$WORK/stats.txt")
    V[r_events]=$(kv events "$WORK/stats.txt")
    V[r_bytes]=$(kv bytes "$WORK/stats.txt")
    V[r_lost]=$(kv trailer_lost "$WORK/stats.txt")
    V[r_dumps]=${V[r_dumps]:-$(kv resync_gaps "$WORK/stats.txt")}
    echo "  ct-record: $(grep -E 'stopped:' "$WORK/ctr.err" | sed 's/^ct-record: //')"
  elif [ -n "$LISTENER" ]; then
    kill -KILL "$LISTENER" 2>/dev/null || true
    wait "$LISTENER" 2>/dev/null || true
  fi
  PIDS=()
  delete_namespaces
  echo "  run $run, $arm: flood ${V[rate]} flows/s (${V[sent]} in ${V[seconds]} s);" \
    "kernel created ${V[created]}, table peak ${V[peak]}, early drops ${V[early]}, drops ${V[drop]}"
  row
}

# Values of column NAME for ARM, one per line.
values() {
  awk -F'\t' -v col="$1" -v arm="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["arm"] == arm { print $idx[col] }' "$RESULTS"
}
med() { values "$1" "$2" | grep -v '^-$' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.3f", a / b; else print "-" }'; }

echo "bench/sustained: ${SECONDS_RUN} s floods, $RUNS run(s) of the arms $ARMS, on $(nproc) CPUs, kernel $(uname -r), $(date -u +%FT%TZ)"
echo "table: nf_conntrack_max $(sysctl -n net.netfilter.nf_conntrack_max), buckets" \
  "$(sysctl -n net.netfilter.nf_conntrack_buckets), udp timeout ${UDP_TIMEOUT} s;" \
  "ct-record -b $BUFFER${EVENTS:+ -e $EVENTS}${RESYNC:+ --resync-interval $RESYNC}" \
  "$([[ ,$ARMS, == *,bounded,* ]] && echo "(bounded: nice $NICE, ${QUOTA} % CPU quota)")" \
  "$([ -n "$TREE" ] && echo "(before: $TREE at $(git -C "$TREE" log --format=%h -1 2>/dev/null))")"
echo "load: $(uptime | sed 's/.*load average/load average/')"
read -ra ARM_LIST <<<"${ARMS//,/ }"
for ((r = 1; r <= RUNS; r++)); do
  # Odd runs take the arms in the order given, even runs in reverse: neither order is favoured.
  if [ $((r % 2)) = 1 ]; then order=("${ARM_LIST[@]}"); else order=(); for a in "${ARM_LIST[@]}"; do order=("$a" "${order[@]}"); done; fi
  for a in "${order[@]}"; do run_once "$r" "$a"; done
done

FMT='%-4s %-9s %8s %8s %8s %8s %6s %6s %9s %8s %9s %5s %8s %8s %9s %7s %6s %6s %6s\n'
echo
echo "(rate = the flood's own flows/s; vs_alone = rate / the rate of the same run's flood alone;"
echo " created = entries the kernel made (datagrams reaching the server's UDP layer); peak = the"
echo " table's largest size seen; early = entries evicted early (table full), drops = packets the"
echo " kernel dropped; caught = NEW events in the journal; lost = events the journal says were"
echo " lost, sk_drops = the event socket's drop counter; snap = dump entries written, skipped ="
echo " left out as known; cpu = the listener's user+sys from the flood's start to 2 s after its"
echo " end, cpu_all = ct-record's from start to exit; rss = ct-record's peak RSS)"
# The flood alone, per run: each arm is compared with its own run's.
declare -A ALONE_OF
while IFS=$'\t' read -r run arm _ _ rate _; do
  [ "$arm" = without ] && ALONE_OF[$run]=$rate
done <"$RESULTS"
ALONE=$(med rate without)
# shellcheck disable=SC2059
printf "$FMT" run arm rate vs_alone created peak early drops caught lost sk_drops dumps snap skipped \
  bytes B/flow cpu_s cpu_all rss_MB
while IFS=$'\t' read -r run arm _ _ rate created peak early kdrop new snap _ bytes lost drops dumps skipped cpu cpu_all rss; do
  [ "$run" = run ] && continue
  # shellcheck disable=SC2059
  printf "$FMT" "$run" "$arm" "$rate" "$(ratio "$rate" "${ALONE_OF[$run]}")" "$created" "$peak" "$early" "$kdrop" \
    "$new" "$lost" "$drops" "$dumps" "$snap" "$skipped" "$bytes" "$(ratio "$bytes" "$created")" "$cpu" \
    "$cpu_all" "$(awk -v k="$rss" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.0f", k / 1024; else print "-" }')"
done <"$RESULTS"
echo
# Per run, each arm's rate over the same run's flood alone; the median of those.
vs_alone() {
  awk -F'\t' -v arm="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $idx["arm"] == "without" { alone[$idx["run"]] = $idx["rate"] }
    $idx["arm"] == arm { rate[$idx["run"]] = $idx["rate"] }
    END { for (r in rate) if (alone[r] > 0) printf "%.4f\n", rate[r] / alone[r] }' "$RESULTS" | median
}
echo "median of $RUNS run(s); the flood alone ran at $ALONE flows/s:"
for a in "${ARM_LIST[@]}"; do
  [ "$a" = without ] && continue
  echo "  $a: the flood at $(med rate "$a") flows/s, $(vs_alone "$a")× its own run's flood alone;" \
    "the listener's CPU $(med r_cpu "$a") s"
  if [[ $a == ct-record || $a == bounded || $a == before ]]; then
    echo "    caught $(med r_new "$a") NEW of $(med created "$a") entries created, lost $(med r_lost "$a") events;" \
      "$(med r_dumps "$a") dumps writing $(med r_snap "$a") entries; journal $(med r_bytes "$a") bytes;" \
      "peak RSS $(awk -v k="$(med r_rss_kb "$a")" 'BEGIN { printf "%.0f", k / 1024 }') MB"
  fi
done
echo "load: $(uptime | sed 's/.*load average/load average/')"
