# bench/flood-common.sh: what bench/capture.sh, filtered.sh and sustained.sh share, sourced by
# them (not run): the checks, this run's work dir and two namespaces with their cleanup at exit
# (also on failure or Ctrl-C), the build, nf_conntrack_max for the run, starting and watching a
# recorder (its process, event socket and CPU), and the results' TSV rows. The caller sets NAME (its name in messages), ROOT, BUILD and KEEP, and defines
# die(). It also gets bench/common.sh's helpers (kv, median, need_gnu_time).
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

# flood_prepare TAG: root and the commands, then WORK (/tmp/TAG.XXXXXX), NS_C and NS_S (TAG-PID-c
# and -s), PIDS (processes to kill at exit), NODE; cleanup at exit.
flood_prepare() {
  local cmd
  [ "$(id -u)" = 0 ] || die "run as root (sudo): it creates network namespaces"
  for cmd in ip nft conntrack gcc node; do
    command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get install iproute2 nftables conntrack gcc, and Node.js >= 20"
  done
  NODE=$(command -v node)
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  NS_C="$1-$$-c"
  NS_S="$1-$$-s"
  PIDS=()
  CT_MAX_OLD=''
  trap flood_cleanup EXIT
  trap 'exit 130' INT TERM
}

flood_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  delete_namespaces
  if [ -n "$CT_MAX_OLD" ]; then
    sysctl -qw "net.netfilter.nf_conntrack_max=$CT_MAX_OLD" || true
    echo "$NAME: nf_conntrack_max restored to $CT_MAX_OLD" >&2
  fi
  if [ "$KEEP" = 1 ]; then echo "$NAME: kept $WORK" >&2; else rm -rf "$WORK"; fi
}

delete_namespaces() {
  local ns pid
  for ns in "$NS_C" "$NS_S"; do
    if ip netns list | grep -qx "$ns\( .*\)\?"; then
      # Only our own children run in there; kill them so the namespace really goes away.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# npm run build unless --no-build; ct-record and its addon must be there; the flood generator.
flood_build() {
  if [ "$BUILD" = 1 ]; then (cd "$ROOT" && npm run -s build) || die "npm run build failed"; fi
  [ -f "$ROOT/dist/recorder/cli.js" ] || die "dist/recorder/cli.js missing: run npm run build"
  [ -f "$ROOT/build/Release/ct_native.node" ] || die "the native addon is not built: run npm rebuild"
  gcc -O2 -Wall -Wextra -o "$WORK/flood" "$ROOT/bench/flood.c" || die "cannot build bench/flood.c"
}

# raise_ct_max N: room for N entries. nf_conntrack_max is read-only inside a non-init namespace
# (mode 0444 there) but bounds each namespace's table: the init namespace's value is raised for
# the run and restored at exit.
raise_ct_max() {
  local want=$1 max
  modprobe nf_conntrack 2>/dev/null || true
  max=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo 0)
  if [ "$max" -gt 0 ] && [ "$max" -lt "$want" ]; then
    CT_MAX_OLD=$max
    sysctl -qw "net.netfilter.nf_conntrack_max=$want" ||
      die "cannot raise nf_conntrack_max to $want (it is $max): use fewer flows"
    echo "$NAME: nf_conntrack_max raised from $max to $want for the run" >&2
  fi
}

# The server namespace tracks connections (a rule that needs conntrack) for the flood.
TRACK_RULES='table inet ctbench {
  chain pre { type filter hook prerouting priority raw; ct state new,established,related accept; }
  chain out { type filter hook output priority raw; ct state new,established,related accept; }
}'

# "rmem drops portid" of PID's netfilter netlink socket subscribed to a multicast group, if any.
# /proc/PID/net/netlink lists the sockets of PID's namespace; the inode ties one to PID.
event_socket() {
  local pid=$1 inodes
  inodes=$(find "/proc/$pid/fd" -maxdepth 1 -lname 'socket:*' -printf '%l\n' 2>/dev/null |
    tr -dc '0-9\n' | paste -sd' ' -)
  [ -n "$inodes" ] || return 1
  awk -v inodes="$inodes" 'BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    $2 == 12 && ($10 in want) && $4 != "00000000" { print $5, $9, $3; found = 1; exit }
    END { exit !found }' "/proc/$pid/net/netlink"
}

# user+sys CPU seconds PID has used so far (all its threads).
cpu_now() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Quiescent: every watched PID's event socket queue is empty and no output file in WORK
# (*.out, *.mpk) grew for 1 s.
wait_quiescent() {
  local stable=0 last='' now queued pid f i sock
  for ((i = 0; i < 240; i++)); do
    now=''
    queued=0
    for pid in "$@"; do
      sock=$(event_socket "$pid" || echo '0 gone')
      queued=$((queued + ${sock%% *}))
      now+="$sock "
    done
    for f in "$WORK"/*.out "$WORK"/*.mpk; do
      if [ -e "$f" ]; then now+="$(file_size "$f") "; fi
    done
    if [ "$now" = "$last" ] && [ "$queued" = 0 ]; then
      stable=$((stable + 1))
      [ "$stable" -ge 4 ] && return 0
    else
      stable=0
    fi
    last=$now
    sleep 0.25
  done
  echo "$NAME: warning: not quiescent after 60 s, stopping anyway" >&2
}

# flood_namespaces NET:COUNT…: the client NS_C (10.219.0.1/16 on veth vc) and the server NS_S
# (veth vs) holding NET.1 … NET.COUNT for each argument (e.g. 10.219.1:4), connection tracking on
# in the server. 64,000 flows go to one destination address (bench/flood.c).
flood_namespaces() {
  local ns k spec net count mac_s mac_c
  for ns in "$NS_C" "$NS_S"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # No IPv6 on the link: its neighbour discovery would add events that are not the flood's.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip -n "$NS_C" link add vc type veth peer name vs netns "$NS_S"
  ip -n "$NS_C" addr add 10.219.0.1/16 dev vc
  for spec in "$@"; do
    for ((k = 1; k <= ${spec#*:}; k++)); do ip -n "$NS_S" addr add "${spec%:*}.$k/16" dev vs; done
  done
  ip -n "$NS_C" link set vc up
  ip -n "$NS_S" link set vs up
  # Static neighbours: no ARP round trip, so no datagram waits in (or falls out of) the
  # unresolved queue at the start of the flood.
  mac_s=$(ip -n "$NS_S" -o link show vs | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  mac_c=$(ip -n "$NS_C" -o link show vc | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  for spec in "$@"; do
    net=${spec%:*}
    count=${spec#*:}
    for ((k = 1; k <= count; k++)); do
      ip -n "$NS_C" neigh replace "$net.$k" lladdr "$mac_s" dev vc nud permanent
    done
  done
  ip -n "$NS_S" neigh replace 10.219.0.1 lladdr "$mac_c" dev vs nud permanent
  echo "$TRACK_RULES" | ip netns exec "$NS_S" nft -f -
  # Unreplied UDP entries live 30 s by default; 300 s keeps every entry of the run in the table,
  # so the kernel's own count of what it created stays exact until we have read it.
  ip netns exec "$NS_S" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=300
}

# flood_tcp_server TCPFLOOD PORTS: for a TCP-connection flood (bench/tcpflood.c), after
# flood_namespaces: keeps every entry of the run in the server's table (a connection closed by an
# RST sits in CLOSE, 10 s by default; a graceful one in TIME_WAIT, 120 s), room for handshakes in
# flight, and the server listening there (its pid in TCP_SERVER and PIDS, its output in
# WORK/tcpserver.out).
flood_tcp_server() {
  local i
  ip netns exec "$NS_S" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=300 \
    net.netfilter.nf_conntrack_tcp_timeout_time_wait=300 net.netfilter.nf_conntrack_tcp_timeout_fin_wait=300 \
    net.netfilter.nf_conntrack_tcp_timeout_close_wait=300 net.netfilter.nf_conntrack_tcp_timeout_last_ack=300 \
    net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192
  ip netns exec "$NS_S" "$1" serve "$2" >"$WORK/tcpserver.out" 2>&1 &
  TCP_SERVER=$!
  PIDS+=("$TCP_SERVER")
  for ((i = 0; i < 100; i++)); do
    # The background shell may not have opened the file yet.
    grep -qs '^listening' "$WORK/tcpserver.out" && return 0
    kill -0 "$TCP_SERVER" 2>/dev/null || die "the TCP flood's server exited: $(cat "$WORK/tcpserver.out")"
    sleep 0.05
  done
  die "the TCP flood's server did not listen within 5 s"
}

# The server namespace's conntrack table size: /proc/net/stat/nf_conntrack's `entries` column
# (the same on every row, hex). Its `insert` column stays 0 on 6.18, so the count of entries
# created is `entries` after the flood minus before, with nothing expiring meanwhile.
ct_entries() { printf '%d\n' "0x$(ip netns exec "$NS_S" awk 'NR == 2 { print $1 }' /proc/net/stat/nf_conntrack)"; }

# The process /usr/bin/time runs (its only child), once it exists.
child_of() {
  local i c
  for ((i = 0; i < 200; i++)); do
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
    if [ -n "$c" ]; then
      echo "${c%% *}"
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# wait_subscribed PID NAME: until PID has subscribed to conntrack events (its event socket is
# listed); dies when it exits first or takes over 10 s.
wait_subscribed() {
  local pid=$1 name=$2 i
  for ((i = 0; i < 200; i++)); do
    if event_socket "$pid" >/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$name exited before subscribing (see $WORK)"
    sleep 0.05
  done
  die "$name did not subscribe to conntrack events within 10 s"
}

# One TSV line to RESULTS: the caller's V (an associative array) in the order of COLUMNS, "-"
# for a value not set.
row() {
  local c line=''
  for c in $COLUMNS; do line+="${V[$c]:--}"$'\t'; done
  printf '%s\n' "${line%$'\t'}" >>"$RESULTS"
}
