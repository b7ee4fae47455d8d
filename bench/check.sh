#!/usr/bin/env bash
# bench/check.sh: how fast does `ct-analyze check` judge a kube-proxy-sized ruleset (both shapes
# kube-proxy writes) against 100,000 recorded connections, and where does the time go? (docs/bench.md)
#
# Usage: bench/check.sh [--rules R] [--flows F] [--runs N] [--profile] [--keep] [--no-build]
#   --rules R     rules in each ruleset, at least (default 5000)
#   --flows F     recorded connections in the journal (default 100000)
#   --runs N      timed runs of each stage per ruleset (default 3); the median is printed
#   --profile     a CPU profile of one evaluate stage per ruleset, and its top functions
#   --keep        keep the generated data, outputs and profiles, and print where
#   --no-build    skip `npm run build` (dist/ must be current)
#
# Root (or an unprivileged user namespace for small sizes: nft 1.0.6 cannot send a 5,000-rule
# batch from one). Needs nft, iptables-nft, Node.js and GNU /usr/bin/time.
set -euo pipefail

RULES=5000
FLOWS=100000
RUNS=3
PROFILE=0
KEEP=0
BUILD=1

usage() {
  sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while [ $# -gt 0 ]; do
  case "$1" in
  --rules) RULES=${2:?--rules needs a number}; shift 2 ;;
  --flows) FLOWS=${2:?--flows needs a number}; shift 2 ;;
  --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
  --profile) PROFILE=1; shift ;;
  --keep) KEEP=1; shift ;;
  --no-build) BUILD=0; shift ;;
  -h | --help) usage 0 ;;
  *) echo "check.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for val in "$RULES" "$FLOWS" "$RUNS"; do
  if ! [[ $val =~ ^[1-9][0-9]*$ ]]; then
    echo "check.sh: --rules, --flows and --runs must be positive integers, got '$val'" >&2
    exit 2
  fi
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() {
  echo "check.sh: $*" >&2
  exit 1
}
for cmd in node nft iptables-nft-restore unshare; do
  command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get install nftables iptables util-linux, and Node.js >= 20"
done
if [ ! -x /usr/bin/time ]; then
  echo "check.sh: installing GNU time (Debian package 'time') for peak RSS and CPU seconds" >&2
  apt-get install -y -q time >/dev/null || die "cannot install the Debian package 'time' (as root)"
fi
if [ "$BUILD" = 1 ]; then
  echo "check.sh: npm run build" >&2
  (cd "$ROOT" && npm run build >/dev/null) || die "npm run build failed"
fi
[ -f "$ROOT/dist/analyzer/check/connection.js" ] || die "dist/ is missing: run npm run build (or drop --no-build)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ct-bench-check.XXXXXX")
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "check.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "check.sh: generating $RULES rules and $FLOWS connections" >&2
node "$ROOT/bench/check-gen.mjs" --rules "$RULES" --flows "$FLOWS" --out "$WORK" >"$WORK/gen.txt"
gen() { sed -n "s/^$1=//p" "$WORK/gen.txt"; }
JOURNAL="$WORK/journal.mpk"

# key=value of one split run's output
val() { sed -n "s/^$1=//p" "$2" | head -1; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "conntracker bench/check: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), node $(node --version), $(nft --version), $(iptables-nft-restore --version 2>&1 | head -1)"
echo "data: $(gen services) services ($(gen services_without_endpoints) without endpoints), $FLOWS connections: $(gen flows_cluster) pod->ClusterIP, $(gen flows_noEndpoints) to services without endpoints, $(gen flows_nodePort) to node ports, $(gen flows_loadBalancer) to LoadBalancer IPs, $(gen flows_unrelated) unrelated"
echo "  nftables mode: $(gen nft_rules) rules in $(gen nft_chains) chains; sets: cluster-ips $(gen nft_elements_cluster-ips), service-ips $(gen nft_elements_service-ips), service-nodeports $(gen nft_elements_service-nodeports), firewall-ips $(gen nft_elements_firewall-ips), no-endpoint-services $(gen nft_elements_no-endpoint-services)"
echo "  iptables mode: $(gen iptables_rules) rules ($(gen iptables_filter_rules) filter, $(gen iptables_nat_rules) nat)"

FAIL=0
for shape in nft iptables; do
  case $shape in
  nft) RULESET="$WORK/kube-nft.nft" ;;
  iptables) RULESET="$WORK/kube-iptables.rules" ;;
  esac
  echo
  echo "== $shape mode: $(basename "$RULESET")"
  printf '%-4s %9s %9s %9s %9s %9s %9s %9s\n' run load_ms compile_ms comp_cpu replay_ms eval_ms eval_cpu e2e_s
  for run in $(seq 1 "$RUNS"); do
    out="$WORK/$shape-split-$run.txt"
    node "$ROOT/bench/check-split.mjs" --ruleset "$RULESET" --journal "$JOURNAL" >"$out" ||
      die "the split run failed on $RULESET (see above)"
    # End to end, as a user runs it: the exit status is 0 or 1 (--exit-code is not given: 0).
    e2e="$WORK/$shape-e2e-$run"
    start=$(date +%s.%N)
    if /usr/bin/time -f '%e %U %S %M' -o "$e2e.time" node "$ROOT/dist/analyzer/cli.js" check --ruleset "$RULESET" "$JOURNAL" >"$e2e.out" 2>"$e2e.err"; then
      e2e_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
    else
      e2e_s=failed
    fi
    echo "$e2e_s" >"$e2e.wall"
    printf '%-4s %9s %9s %9s %9s %9s %9s %9s\n' "$run" "$(fmt "$(val load_ms "$out")")" "$(fmt "$(val compile_ms "$out")")" \
      "$(fmt "$(val compile_cpu_ms "$out")")" "$(fmt "$(val replay_ms "$out")")" "$(fmt "$(val evaluate_ms "$out")")" \
      "$(fmt "$(val evaluate_cpu_ms "$out")")" "$e2e_s"
  done
  first="$WORK/$shape-split-1.txt"
  # Sanity: every flow has a fate, and the services without endpoints block some.
  flows=$(val flows "$first")
  fated=$(($(val fate_accepted "$first") + $(val fate_blocked "$first") + $(val fate_breaks "$first") + $(val fate_undetermined "$first")))
  echo "  rules $(val rules "$first") (via $(val load_via "$first")), flows $flows: accepted $(val fate_accepted "$first"), blocked $(val fate_blocked "$first"), breaks $(val fate_breaks "$first"), undetermined $(val fate_undetermined "$first"); rules hit $(val rules_hit "$first")"
  for i in 1 2 3; do
    u=$(val "undetermined_$i" "$first")
    [ -z "$u" ] || echo "  undetermined #$i: ${u:0:150}"
  done
  if [ "$fated" != "$flows" ] || [ "$(val fate_blocked "$first")" = 0 ]; then
    echo "  NOT SANE: $fated fates for $flows flows, $(val fate_blocked "$first") blocked"
    FAIL=1
  fi
  if [ "$(cat "$WORK/$shape-e2e-1.wall")" = failed ]; then
    echo "  end to end: ct-analyze check failed: $(head -c 300 "$WORK/$shape-e2e-1.err" | head -3)"
  fi
  m() { for r in $(seq 1 "$RUNS"); do val "$1" "$WORK/$shape-split-$r.txt"; done | median; }
  load=$(m load_ms) compile=$(m compile_ms) compile_cpu=$(m compile_cpu_ms) replay=$(m replay_ms)
  evaluate=$(m evaluate_ms) evaluate_cpu=$(m evaluate_cpu_ms)
  e2e=$(for r in $(seq 1 "$RUNS"); do grep -v failed "$WORK/$shape-e2e-$r.wall" || :; done | median)
  # GNU time's user + system seconds and peak RSS of the end-to-end runs that succeeded.
  e2e_times() { for r in $(seq 1 "$RUNS"); do grep -qv failed "$WORK/$shape-e2e-$r.wall" && awk "$1" "$WORK/$shape-e2e-$r.time"; done; }
  e2e_cpu=$(e2e_times '{ printf "%.2f\n", $2 + $3 }' | median)
  e2e_rss=$(e2e_times '{ printf "%.0f\n", $4 / 1024 }' | median)
  # The named baseline, once per ruleset: the same evaluator without its per-chain key index.
  node "$ROOT/bench/check-split.mjs" --ruleset "$RULESET" --journal "$JOURNAL" --plain >"$WORK/$shape-plain.txt"
  plain=$(val evaluate_ms "$WORK/$shape-plain.txt") plain_cpu=$(val evaluate_cpu_ms "$WORK/$shape-plain.txt")
  # And the journal alone through ct-analyze (its flow report): what check adds to reading it.
  start=$(date +%s.%N)
  node "$ROOT/dist/analyzer/cli.js" "$JOURNAL" >/dev/null
  analyze=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
  echo "  median of $RUNS: load $(fmt "$load") ms, compile $(fmt "$compile") ms (cpu $(fmt "$compile_cpu")), replay $(fmt "$replay") ms, evaluate $(fmt "$evaluate") ms (cpu $(fmt "$evaluate_cpu")); end to end ${e2e} s (cpu ${e2e_cpu} s, peak RSS ${e2e_rss} MiB)"
  echo "  baseline, evaluate without the chain index (--plain): $(fmt "$plain") ms (cpu $(fmt "$plain_cpu")); index speed-up $(ratio "$plain" "$evaluate") (cpu $(ratio "$plain_cpu" "$evaluate_cpu"))"
  echo "  baseline, ct-analyze on the journal alone: $analyze s; check end to end / analyze $(ratio "$e2e" "$analyze")"
  judged=$(awk -v a="$compile" -v b="$evaluate" 'BEGIN { printf "%.2f", (a + b) / 1000 }')
  judged_cpu=$(awk -v a="$compile_cpu" -v b="$evaluate_cpu" 'BEGIN { printf "%.2f", (a + b) / 1000 }')
  verdict=$(awk -v x="$judged" 'BEGIN { print (x < 2 ? "met" : "NOT met") }')
  echo "  target: compile + evaluate of $(val rules "$first") rules against $flows flows ($FLOWS connections) < 2 s: $judged s (cpu $judged_cpu s): $verdict"
  if [ "$PROFILE" = 1 ]; then
    node "$ROOT/bench/check-split.mjs" --ruleset "$RULESET" --journal "$JOURNAL" --profile "$WORK/$shape-evaluate.cpuprofile" >/dev/null
    echo "  profile of the evaluate stage ($WORK/$shape-evaluate.cpuprofile):"
    node "$ROOT/bench/cpuprofile-top.mjs" "$WORK/$shape-evaluate.cpuprofile" --top 12 | sed 's/^/    /'
    KEEP=1
  fi
done
exit "$FAIL"
