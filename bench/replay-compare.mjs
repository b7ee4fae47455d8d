// bench helper: do ct-analyze and the awk|sort pipeline name the same flows? (bench/replay.sh)
//
// Usage: node bench/replay-compare.mjs CT_ANALYZE_OUTPUT AWK_OUTPUT [FLOWS CONFIRMED]
// Both outputs become lines "proto src dst sport|type dport|code confirmed" with IPv6 written
// out in full (the two tools need not compress an address the same way), then must be the same
// set; FLOWS and CONFIRMED, when given, are what the generator says a correct analysis finds.
// Prints one "fairness: …" line; on a mismatch also the first differences, and exits 1.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

const SHOWN = 10;
const [ctPath, awkPath, wantFlows, wantConfirmed] = process.argv.slice(2);
if (ctPath === undefined || awkPath === undefined) {
  process.stderr.write(
    'usage: node bench/replay-compare.mjs CT_OUTPUT AWK_OUTPUT [FLOWS CONFIRMED]\n',
  );
  process.exit(2);
}

/** Any IPv6 text form → eight groups of four lowercase hex digits; IPv4 unchanged. */
function canonical(addr) {
  if (!isIPv6(addr)) return addr;
  let s = addr.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

const PORTS =
  /^ ?(TCP|UDP)v[46] \[ *\d+\] src = (\S+) \(port=(\d+)\) to dst = (\S+) \(port=(\d+)\)( \(confirmed\))?$/;
const ICMP =
  /^ICMPv([46]) \[ *\d+\] src = (\S+) to dst = (\S+) \(type=(\d+) \| code=(\d+)\)( \(confirmed\))?$/;

/** ct-analyze's text report: `#` lines are its coverage block, every other line a flow. */
function fromCtAnalyze(text, bad) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    let m = PORTS.exec(line);
    if (m !== null) {
      const [, proto, src, sport, dst, dport, conf] = m;
      out.push(key(proto.toLowerCase(), src, dst, sport, dport, conf !== undefined));
      continue;
    }
    m = ICMP.exec(line);
    if (m !== null) {
      const [, fam, src, dst, type, code, conf] = m;
      out.push(key(fam === '4' ? 'icmp' : 'icmpv6', src, dst, type, code, conf !== undefined));
      continue;
    }
    bad.push(`ct-analyze: ${line}`);
  }
  return out;
}

/** The awk script's lines: "proto src dst a b confirmed". */
function fromAwk(text, bad) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    if (f.length !== 6 || !/^\d+$/.test(f[3]) || !/^\d+$/.test(f[4]) || !/^[01]$/.test(f[5])) {
      bad.push(`awk|sort: ${line}`);
      continue;
    }
    out.push(key(f[0], f[1], f[2], f[3], f[4], f[5] === '1'));
  }
  return out;
}

function key(proto, src, dst, a, b, confirmed) {
  return `${proto} ${canonical(src)} ${canonical(dst)} ${Number(a)} ${Number(b)} ${confirmed ? 1 : 0}`;
}

const bad = [];
const ct = fromCtAnalyze(readFileSync(ctPath, 'utf8'), bad);
const awk = fromAwk(readFileSync(awkPath, 'utf8'), bad);
const ctSet = new Set(ct);
const awkSet = new Set(awk);
const problems = [...bad.map((b) => `unreadable line from ${b}`)];
if (ctSet.size !== ct.length)
  problems.push(`ct-analyze printed ${ct.length - ctSet.size} flows twice`);
if (awkSet.size !== awk.length)
  problems.push(`awk|sort printed ${awk.length - awkSet.size} flows twice`);
const onlyCt = ct.filter((k) => !awkSet.has(k));
const onlyAwk = awk.filter((k) => !ctSet.has(k));
const confirmed = ct.filter((k) => k.endsWith(' 1')).length;
if (wantFlows !== undefined && Number(wantFlows) !== ctSet.size) {
  problems.push(`the generator made ${wantFlows} flows, ct-analyze found ${ctSet.size}`);
}
if (wantConfirmed !== undefined && Number(wantConfirmed) !== confirmed) {
  problems.push(`the generator confirmed ${wantConfirmed} flows, ct-analyze ${confirmed}`);
}

if (onlyCt.length === 0 && onlyAwk.length === 0 && problems.length === 0) {
  process.stdout.write(
    `fairness: same ${ctSet.size} flows (${confirmed} confirmed) from ct-analyze and awk|sort` +
      `${wantFlows === undefined ? '' : ', as generated'}\n`,
  );
  process.exit(0);
}
process.stdout.write(
  `fairness: MISMATCH: ct-analyze ${ctSet.size} flows, awk|sort ${awkSet.size}; ` +
    `${onlyCt.length} only in ct-analyze, ${onlyAwk.length} only in awk|sort ` +
    '(as "proto src dst sport|type dport|code confirmed")\n',
);
for (const p of problems.slice(0, SHOWN)) process.stdout.write(`  ${p}\n`);
onlyCt.sort();
onlyAwk.sort();
for (const k of onlyCt.slice(0, SHOWN)) process.stdout.write(`  only in ct-analyze: ${k}\n`);
for (const k of onlyAwk.slice(0, SHOWN)) process.stdout.write(`  only in awk|sort:   ${k}\n`);
process.exit(1);
