#!/usr/bin/env bash
# bench/filtered.sh: what ct-record's kernel filter (BPF on the event socket) saves when most of
# a UDP flood is filtered out: ct-record's CPU with the filter in the kernel, against recording
# every flow and against the same filter in user space (--no-kernel-filter). docs/bench.md.
#
# Usage: sudo bench/filtered.sh [FLOWS] [--filtered PCT] [--warmup W] [--runs R] [--seconds S]
#                               [--no-build] [--keep]
#   (also: sudo bench/capture.sh --filtered PCT [FLOWS] …, which runs this script)
#   FLOWS          distinct UDP flows per flood (default 1000000)
#   --filtered PCT percent of the flows sent to addresses the filter leaves out (default 90);
#                  the rest go to addresses ct-record keeps (--dst 10.219.2.0/23)
#   --warmup W     flows sent before the measure, in the same mix (to other addresses), so that
#                  ct-record's JavaScript is compiled for it (default 100000; 0: a cold process)
#   --runs R       repetitions (default 3); each runs the three modes in turn, in fresh namespaces
#   --seconds S    each flood stops after S seconds even if not all was sent (default 60)
#   --no-build     skip `npm run build` (dist/ and the addon must be current)
#   --keep         keep the temp dir (journals, logs) and print its path
# The modes, each ct-record -e NEW: all (no filter), kernel (--dst 10.219.2.0/23), user (the
# same with --no-kernel-filter). ev_cpu is ct-record's CPU from just before the flood (after the
# warm-up) to quiescence.
#
# Traffic flows only between the two namespaces this script creates (client → server over one
# veth pair); both are deleted on exit, also on failure or Ctrl-C.
set -euo pipefail

FLOWS=1000000
PCT=90
WARMUP=100000
RUNS=3
SECONDS_MAX=60
BUILD=1
KEEP=0
# Kept: the measured flows to 10.219.2.*, the warm-up's to 10.219.3.1. Left out: the measured
# flows to 10.219.1.*, the warm-up's to 10.219.4.*.
KEEP_PREFIX=10.219.2.0/23

usage() {
  sed -n '5,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
  --filtered) PCT=${2:?--filtered needs a percentage}; shift 2 ;;
  --warmup) WARMUP=${2:?--warmup needs a number}; shift 2 ;;
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --seconds) SECONDS_MAX=${2:?--seconds needs a number}; shift 2 ;;
  --no-build) BUILD=0; shift ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage ;;
  [0-9]*) FLOWS=$1; shift ;;
  *) echo "filtered.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in FLOWS RUNS SECONDS_MAX; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "filtered.sh: $v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
[[ $PCT =~ ^[0-9]+$ ]] && [ "$PCT" -ge 1 ] && [ "$PCT" -le 99 ] ||
  { echo "filtered.sh: --filtered must be a whole percentage from 1 to 99, got '$PCT'" >&2; exit 2; }
OUT_FLOWS=$((FLOWS * PCT / 100))
IN_FLOWS=$((FLOWS - OUT_FLOWS))
[[ $WARMUP =~ ^[0-9]+$ ]] && [ "$WARMUP" -le 640000 ] ||
  { echo "filtered.sh: --warmup must be a number of flows from 0 to 640000, got '$WARMUP'" >&2; exit 2; }
WARM_OUT=$((WARMUP * PCT / 100))
WARM_IN=$((WARMUP - WARM_OUT))
WARM_ADDRS=$(((WARM_OUT + 63999) / 64000))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=filtered.sh
die() {
  echo "$NAME: $*" >&2
  exit 1
}
# shellcheck source=bench/flood-common.sh
. "$ROOT/bench/flood-common.sh"

flood_prepare ctf
flood_build

# 64,000 flows per destination address (bench/flood.c).
ADDRS=$(((OUT_FLOWS + 63999) / 64000))
IN_ADDRS=$(((IN_FLOWS + 63999) / 64000))
[ "$ADDRS" -le 250 ] && [ "$IN_ADDRS" -le 250 ] || die "FLOWS too large"
TOTAL=$((FLOWS + WARMUP))
raise_ct_max $((TOTAL + TOTAL / 10))


RESULTS="$WORK/results.tsv"
printf 'run\tmode\tsent\tcaught\tev_cpu\tdrops\treported\n' >"$RESULTS"

# One flood recorded by ct-record in MODE (all, kernel, user).
run_mode() {
  local run=$1 mode=$2 journal="$WORK/$1-$2.mpk" args=() ctr_t ctr cpu0 cpu1 drops out_a in_a rc
  case "$mode" in
  kernel) args=(--dst "$KEEP_PREFIX") ;;
  user) args=(--dst "$KEEP_PREFIX" --no-kernel-filter) ;;
  esac
  flood_namespaces "10.219.1:$ADDRS" "10.219.2:$IN_ADDRS" 10.219.3:1 "10.219.4:$WARM_ADDRS"
  ip netns exec "$NS_S" "$NODE" "$ROOT/dist/recorder/cli.js" -o "$journal" -e NEW "${args[@]}" \
    2>"$WORK/$run-$mode.err" &
  ctr_t=$!
  PIDS+=("$ctr_t")
  ctr=$ctr_t # ip netns exec execs node: the job is the recorder itself
  for ((i = 0; i < 200; i++)); do
    grep -q 'capturing conntrack events' "$WORK/$run-$mode.err" && break
    kill -0 "$ctr" 2>/dev/null || die "ct-record ($mode) exited: $(cat "$WORK/$run-$mode.err")"
    sleep 0.05
  done
  grep -q 'capturing conntrack events' "$WORK/$run-$mode.err" || die "ct-record ($mode) did not start"
  sleep 0.5 # the start-up table dump (empty) is done
  if [ "$WARM_IN" -gt 0 ] && [ "$WARM_OUT" -gt 0 ]; then
    # The same mix as the measure, so the code is compiled for kept and left-out events alike:
    # after a warm-up of kept flows only, the user-space mode measured 2-3x slower (V8
    # deoptimising the filter, we suppose; not investigated).
    ip netns exec "$NS_C" "$WORK/flood" 10.219.3.1 "$WARM_IN" "$SECONDS_MAX" >/dev/null &
    in_a=$!
    ip netns exec "$NS_C" "$WORK/flood" 10.219.4.1 "$WARM_OUT" "$SECONDS_MAX" >/dev/null
    wait "$in_a"
    wait_quiescent "$ctr"
  fi
  cpu0=$(cpu_now "$ctr")
  # The kept and the left-out flows at once, interleaved as a real mix would be.
  ip netns exec "$NS_C" "$WORK/flood" 10.219.2.1 "$IN_FLOWS" "$SECONDS_MAX" >"$WORK/in.out" &
  in_a=$!
  ip netns exec "$NS_C" "$WORK/flood" 10.219.1.1 "$OUT_FLOWS" "$SECONDS_MAX" >"$WORK/out.out"
  wait "$in_a"
  wait_quiescent "$ctr"
  cpu1=$(cpu_now "$ctr")
  drops=$(event_socket "$ctr" | cut -d' ' -f2)
  kill -TERM "$ctr"
  rc=0
  wait "$ctr_t" || rc=$?
  [ "$rc" = 0 ] || die "ct-record ($mode) exited with status $rc: $(cat "$WORK/$run-$mode.err")"
  PIDS=()
  delete_namespaces
  "$NODE" "$ROOT/bench/journal-stats.mjs" "$journal" >"$WORK/stats.txt"
  out_a=$(($(grep -o 'sent=[0-9]*' "$WORK/in.out" | cut -d= -f2) + $(grep -o 'sent=[0-9]*' "$WORK/out.out" | cut -d= -f2)))
  local lost
  lost=$(grep -o '[0-9]* events were lost' "$WORK/$run-$mode.err" | cut -d' ' -f1 || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$mode" "$out_a" "$(kv new "$WORK/stats.txt")" \
    "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" "$drops" "${lost:-0}" >>"$RESULTS"
  rm -f "$journal"
}

echo "bench/filtered: $FLOWS flows per flood, $PCT % to addresses the filter leaves out ($IN_FLOWS kept), warm-up $WARMUP flows of the same mix, $RUNS runs on $(nproc) CPUs, kernel $(uname -r), $(date -u +%FT%TZ)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
for ((r = 1; r <= RUNS; r++)); do
  for mode in all kernel user; do run_mode "$r" "$mode"; done
done

echo
echo "(caught = NEW events in the journal; ev_cpu = ct-record's CPU seconds from just before the"
echo " flood to quiescence; drops = its event socket's kernel drop counter; lost = its summary's)"
printf '%-4s %-7s %8s %8s %7s %6s %5s\n' run mode sent caught ev_cpu drops lost
tail -n +2 "$RESULTS" | while IFS=$'\t' read -r run mode sent caught cpu drops lost; do
  printf '%-4s %-7s %8s %8s %7s %6s %5s\n' "$run" "$mode" "$sent" "$caught" "$cpu" "$drops" "$lost"
done
col() { awk -F'\t' -v m="$1" -v c="$2" 'NR > 1 && $2 == m { print $c }' "$RESULTS"; }
# Per run: kernel / all and kernel / user, then the median of those ratios.
ratios() {
  awk -F'\t' -v a="$1" -v b="$2" 'NR > 1 { cpu[$1, $2] = $5; runs[$1] = 1 }
    END { for (r in runs) if (cpu[r, b] > 0) printf "%.3f\n", cpu[r, a] / cpu[r, b] }' "$RESULTS" | median
}
echo
echo "median ev_cpu: all $(col all 5 | median) s, kernel $(col kernel 5 | median) s, user $(col user 5 | median) s"
echo "median caught (warm-up included): all $(col all 4 | median), kernel $(col kernel 4 | median), user $(col user 4 | median) (kept flows sent: $IN_FLOWS + $WARM_IN)"
echo "ev_cpu ratio (median of per-run ratios): kernel / all $(ratios kernel all), kernel / user $(ratios kernel user), user / all $(ratios user all)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
