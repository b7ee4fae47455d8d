# bench/replay.awk: the flow table a user would script from `conntrack -E -o timestamp` text,
# the baseline of bench/replay.sh: `LC_ALL=C awk -f bench/replay.awk TEXT | LC_ALL=C sort -u`.
#
# Same rules as ct-analyze (docs/rules.md): the original tuple only (the fields before the
# second src=); key = protocol, src, dst, then for TCP/UDP the source port collapsed (above
# 1024 → 1024) and the destination port, for ICMP the type and code; a key is confirmed once
# any of its events lacks [UNREPLIED]. Prints "proto src dst sport|type dport|code confirmed".
{
  # $1 the timestamp, $2 the event tag, $3 the protocol name, $4 its number
  src = ""; dst = ""; a = ""; b = ""
  for (i = 5; i <= NF; i++) {
    f = $i
    if (f ~ /^src=/) {
      if (src != "") break
      src = substr(f, 5)
    } else if (f ~ /^dst=/) dst = substr(f, 5)
    else if (f ~ /^sport=/) { a = substr(f, 7) + 0; if (a > 1024) a = 1024 }
    else if (f ~ /^dport=/) b = substr(f, 7)
    else if (f ~ /^type=/) a = substr(f, 6)
    else if (f ~ /^code=/) b = substr(f, 6)
  }
  key = $3 " " src " " dst " " a " " b
  if (index($0, "[UNREPLIED]") == 0) confirmed[key] = 1
  else if (!(key in confirmed)) confirmed[key] = 0
}
END { for (key in confirmed) print key, confirmed[key] }
