// bench helper: a deterministic synthetic journal and the same events as `conntrack -E -o timestamp` text.
//
// Usage: node bench/replay-gen.mjs --events N --flows F --journal J.mpk --text T.txt [--format-version 1|2]
// Prints key=value lines: what it wrote and what a correct analysis must find (flows_seen,
// flows_confirmed). The same F flows for every N: they are drawn first from a fixed seed, then
// N events cycle over them, so a smaller N is a prefix of a larger one. Reads dist/ (build first).
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ASSURED,
  add4,
  add6,
  BATCH,
  DES,
  fillCounters,
  JournalWriter,
  makeBatch,
  makeRng,
  NEW,
  pool,
  SCRIPT,
  SCRIPTS,
  SEEN_REPLY,
  UPD,
} from './gen-common.mjs';

const SEED = 0x5eed2026;
/** Connections open at once, interleaving their events (a power of two: slot = rnd & mask). */
const WINDOW = 64;
/** 2026-11-27T00:00:00Z in µs: a fixed start keeps every byte of the output reproducible. */
const START_US = Date.UTC(2026, 10, 27) * 1000;
/** Conntrack-tools 1.4.7 prints TCP/UDP/ICMP this way: name left-aligned in 8, then the number. */
const PROTO_TEXT = { 1: 'icmp     1', 6: 'tcp      6', 17: 'udp      17', 58: 'icmpv6   58' };
const TAG = [undefined, '    [NEW]', ' [UPDATE]', '[DESTROY]'];
const TCP_STATE_NAME = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
];

function fail(message) {
  process.stderr.write(`replay-gen: ${message}\n`);
  process.exit(2);
}

const { values: opt } = parseArgs({
  options: {
    events: { type: 'string' },
    flows: { type: 'string' },
    journal: { type: 'string' },
    text: { type: 'string' },
    'format-version': { type: 'string' },
  },
});
const N = Number(opt.events);
const F = Number(opt.flows);
if (!(Number.isSafeInteger(N) && N > 0)) fail('--events must be a positive integer');
if (!(Number.isSafeInteger(F) && F > 0)) fail('--flows must be a positive integer');
if (opt.journal === undefined || opt.text === undefined) fail('--journal and --text are required');

const rng = makeRng(SEED);
const { rnd, below } = rng;

// ---------------------------------------------------------------- addresses
const clients4 = pool();
for (const net of ['10.1.0', '10.1.1', '10.2.7', '10.2.8', '192.168.10', '192.168.11']) {
  for (let h = 1; h <= 254; h++) add4(clients4, net, h);
}
const clients6 = pool();
const seen6 = new Set();
for (const net of ['2001:db8:1:0', '2001:db8:1:1', '2001:db8:2:40', 'fd00:ab:cd:10']) {
  for (let k = 0; k < 250; k++) add6(rng, clients6, net, seen6);
}
const servers4 = pool();
for (const net of ['10.20.0', '10.20.1', '172.16.5', '198.51.100', '203.0.113']) {
  for (let h = 1; h <= 254; h++) add4(servers4, net, h);
}
const servers6 = pool();
for (const net of ['2001:db8:100:0', '2001:db8:100:1', 'fd00:ab:cd:1']) {
  for (let k = 0; k < 40; k++) add6(rng, servers6, net, seen6);
}

// ---------------------------------------------------------------- services (dst, dport)
const TCP_PORTS = [
  443, 443, 443, 80, 80, 22, 25, 53, 110, 143, 389, 465, 587, 636, 993, 995, 1433, 2049, 3128, 3306,
  3389, 5432, 5672, 6379, 6443, 8080, 8443, 9090, 9100, 9200, 11211, 27017,
];
/** NTP clients send from port 123 (≤ 1024: kept as it is), every other client from 32768–60999. */
const UDP_PORTS = [53, 53, 53, 123, 123, 161, 514, 443, 500, 1194, 1812, 4500, 4789, 5353, 51820];

/** One class of flows: family, protocol, the clients and the services they reach. */
function makeClass(family, proto, clients, servers, count, ports) {
  const dst = [];
  const dstText = [];
  const dport = [];
  const seen = new Set();
  while (dst.length < count) {
    const s = below(servers.bytes.length);
    const p = ports === undefined ? 0 : ports[below(ports.length)];
    if (seen.has(s * 65536 + p)) continue;
    seen.add(s * 65536 + p);
    dst.push(servers.bytes[s]);
    dstText.push(servers.text[s]);
    dport.push(p);
  }
  return { family, proto, clients, dst, dstText, dport };
}
const CLASSES = [
  // share of the flows: 70 % TCP, 25 % UDP, 5 % ICMP echo; 80 % IPv4, 20 % IPv6
  [0.56, makeClass(4, 6, clients4, servers4, 150, TCP_PORTS)],
  [0.2, makeClass(4, 17, clients4, servers4, 60, UDP_PORTS)],
  [0.04, makeClass(4, 1, clients4, servers4, 40)],
  [0.14, makeClass(6, 6, clients6, servers6, 60, TCP_PORTS)],
  [0.05, makeClass(6, 17, clients6, servers6, 25, UDP_PORTS)],
  [0.01, makeClass(6, 58, clients6, servers6, 15)],
];

// ---------------------------------------------------------------- the F flows
// A flow is one client reaching one service; all its connections share one flow line.
const flowClass = new Uint8Array(F);
const flowClient = new Uint32Array(F);
const flowSvc = new Uint16Array(F);
const flowScan = new Uint8Array(F);
{
  // At most half of each class's client × service pairs, so drawing distinct pairs stays quick.
  const most = Math.min(
    ...CLASSES.map(([share, cls]) => (cls.clients.bytes.length * cls.dst.length) / 2 / share),
  );
  if (F > most)
    fail(`--flows ${F} is more than the address pools hold: at most ${Math.floor(most)}`);
  const counts = CLASSES.map(([share]) => Math.floor(share * F));
  counts[0] += F - counts.reduce((a, b) => a + b, 0);
  let f = 0;
  CLASSES.forEach(([, cls], c) => {
    const nc = cls.clients.bytes.length;
    const ns = cls.dst.length;
    const taken = new Set();
    for (let k = 0; k < counts[c]; k++, f++) {
      let pair;
      do pair = below(nc) * ns + below(ns);
      while (taken.has(pair));
      taken.add(pair);
      flowClass[f] = c;
      flowClient[f] = Math.floor(pair / ns);
      flowSvc[f] = pair % ns;
      // Never answered (scans, dead services): about 5 % of the flows, every connection of them.
      flowScan[f] = below(100) < 5 ? 1 : 0;
    }
  });
  // Shuffle so that the cycle over flows is not in class or address order.
  for (let i = F - 1; i > 0; i--) {
    const j = rnd() % (i + 1);
    for (const a of [flowClass, flowClient, flowSvc, flowScan]) {
      const x = a[i];
      a[i] = a[j];
      a[j] = x;
    }
  }
}
/** Address text of each flow's original and reply tuple, made once. */
const origAddr = new Array(F);
const replyAddr = new Array(F);
for (let f = 0; f < F; f++) {
  const cls = CLASSES[flowClass[f]][1];
  const c = cls.clients.text[flowClient[f]];
  const s = cls.dstText[flowSvc[f]];
  origAddr[f] = `src=${c} dst=${s}`;
  replyAddr[f] = `src=${s} dst=${c}`;
}

/** Which script the next connection of flow f follows. */
function scriptFor(f) {
  const proto = CLASSES[flowClass[f]][1].proto;
  const scan = flowScan[f] === 1;
  if (proto === 6)
    return scan ? SCRIPT.tcpScan : below(4) === 0 ? SCRIPT.tcpReset : SCRIPT.tcpClose;
  if (proto === 17) {
    return scan ? SCRIPT.udpScan : below(5) === 0 ? SCRIPT.udpStream : SCRIPT.udpAnswer;
  }
  return scan ? SCRIPT.echoScan : SCRIPT.echo;
}

// ---------------------------------------------------------------- output
const textFd = openSync(opt.text, 'w', 0o644);
let textBuf = '';
const TEXT_FLUSH = 1 << 20;

const writer = JournalWriter.create(
  opt.journal,
  {
    tool: { name: 'conntracker bench/replay-gen', version: '1' },
    host: 'bench-replay',
    kernel: 'synthetic',
    netns: 'synthetic',
    start: START_US,
    options: { synthetic: { events: N, flows: F, seed: SEED } },
    sysctls: {
      nf_conntrack_events: 1,
      nf_conntrack_timestamp: 0,
      nf_conntrack_acct: 1,
      ip_local_port_range: [32768, 60999],
    },
  },
  // Checkpoints by frame count only (not by wall time): the same parameters, the same bytes.
  {
    force: true,
    clock: () => 0,
    // The journal format (1 or 2); the writer's default (the newest) when not given.
    ...(opt['format-version'] === undefined
      ? {}
      : { formatVersion: Number(opt['format-version']) }),
  },
);

/** One reusable event object per batch position: append() encodes them before returning. */
const { events: batch, counters: batchCounters } = makeBatch();
let filled = 0;

// Open connections, one per slot.
const slotFlow = new Int32Array(WINDOW);
const slotScript = new Uint8Array(WINDOW);
const slotStep = new Uint8Array(WINDOW);
const slotSport = new Uint16Array(WINDOW);
const slotId = new Uint32Array(WINDOW);
const slotIcmpId = new Uint16Array(WINDOW);
let nextConn = 0;

function open(slot) {
  const f = nextConn % F;
  nextConn++;
  slotFlow[slot] = f;
  slotScript[slot] = scriptFor(f);
  slotStep[slot] = 0;
  const cls = CLASSES[flowClass[f]][1];
  slotSport[slot] = cls.proto === 17 && cls.dport[flowSvc[f]] === 123 ? 123 : 32768 + below(28232);
  slotId[slot] = rnd();
  slotIcmpId[slot] = below(65536);
}
for (let s = 0; s < WINDOW; s++) open(s);

const flowSeen = new Uint8Array(F);
const flowConfirmed = new Uint8Array(F);
let sec = Math.floor(START_US / 1e6);
let usec = 0;
let secText = String(sec);
const byType = [0, 0, 0, 0];

const t0 = process.hrtime.bigint();
for (let n = 0; n < N; n++) {
  const slot = rnd() & (WINDOW - 1);
  const f = slotFlow[slot];
  const script = SCRIPTS[slotScript[slot]];
  const st = script[slotStep[slot]];
  const cls = CLASSES[flowClass[f]][1];
  const proto = cls.proto;
  const icmp = proto === 1 || proto === 58;
  const v6 = cls.family === 6;
  const cAddr = cls.clients.bytes[flowClient[f]];
  const sAddr = cls.dst[flowSvc[f]];
  const dport = cls.dport[flowSvc[f]];
  const sport = slotSport[slot];

  usec += 1 + below(2000);
  if (usec >= 1e6) {
    usec -= 1e6;
    sec++;
    secText = String(sec);
  }

  const ev = batch[filled];
  ev.type = st.type;
  ev.family = cls.family;
  ev.proto = proto;
  ev.status = st.status;
  ev.id = slotId[slot];
  ev.time = sec * 1e6 + usec;
  const o = ev.orig;
  const r = ev.reply;
  o.src = cAddr;
  o.dst = sAddr;
  r.src = sAddr;
  r.dst = cAddr;
  let l4orig;
  let l4reply;
  if (icmp) {
    const id = slotIcmpId[slot];
    const req = v6 ? 128 : 8;
    const rep = v6 ? 129 : 0;
    o.sport = o.dport = r.sport = r.dport = 0;
    o.icmpType = req;
    r.icmpType = rep;
    o.icmpCode = r.icmpCode = 0;
    o.icmpId = r.icmpId = id;
    l4orig = ` type=${req} code=0 id=${id}`;
    l4reply = ` type=${rep} code=0 id=${id}`;
  } else {
    o.sport = r.dport = sport;
    o.dport = r.sport = dport;
    o.icmpType = o.icmpCode = o.icmpId = r.icmpType = r.icmpCode = r.icmpId = 0;
    l4orig = ` sport=${sport} dport=${dport}`;
    l4reply = ` sport=${dport} dport=${sport}`;
  }
  ev.tcpState = st.state === 0 ? undefined : st.state;
  let cntOrig = '';
  let cntReply = '';
  if (st.type === DES) {
    const c = batchCounters[filled];
    fillCounters(rng, c, proto, v6, (st.status & SEEN_REPLY) !== 0);
    ev.counters = c;
    cntOrig = ` packets=${c.origPackets} bytes=${c.origBytes}`;
    cntReply = ` packets=${c.replyPackets} bytes=${c.replyBytes}`;
  } else {
    ev.counters = undefined;
  }
  byType[st.type]++;
  flowSeen[f] = 1;
  if ((st.status & SEEN_REPLY) !== 0) flowConfirmed[f] = 1;

  textBuf +=
    `[${secText}.${String(usec).padStart(6, '0')}]\t${TAG[st.type]} ${PROTO_TEXT[proto]}` +
    (st.timeout === '' ? '' : ` ${st.timeout}`) +
    (st.state === 0 ? '' : ` ${TCP_STATE_NAME[st.state]}`) +
    ` ${origAddr[f]}${l4orig}${cntOrig}` +
    ((st.status & SEEN_REPLY) === 0 ? ' [UNREPLIED]' : '') +
    ` ${replyAddr[f]}${l4reply}${cntReply}` +
    ((st.status & ASSURED) !== 0 ? ' [ASSURED]\n' : '\n');
  if (textBuf.length >= TEXT_FLUSH) {
    // The text is ASCII: latin1 encodes it byte for byte, without UTF-8's scan.
    writeSync(textFd, Buffer.from(textBuf, 'latin1'));
    textBuf = '';
  }

  filled++;
  if (filled === BATCH) {
    writer.append(batch);
    filled = 0;
  }
  slotStep[slot]++;
  if (slotStep[slot] === script.length) open(slot);
}
if (filled > 0) writer.append(batch.slice(0, filled));
writer.close({ stop: sec * 1e6 + usec });
writeSync(textFd, Buffer.from(textBuf, 'latin1'));
closeSync(textFd);

let seen = 0;
let confirmed = 0;
let scans = 0;
for (let f = 0; f < F; f++) {
  seen += flowSeen[f];
  confirmed += flowConfirmed[f];
  scans += flowScan[f];
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(
  [
    `events=${N}`,
    `flows=${F}`,
    `scan_flows=${scans}`,
    `flows_seen=${seen}`,
    `flows_confirmed=${confirmed}`,
    `new=${byType[NEW]}`,
    `update=${byType[UPD]}`,
    `destroy=${byType[DES]}`,
    `journal_bytes=${statSync(opt.journal).size}`,
    `text_bytes=${statSync(opt.text).size}`,
    `seconds=${seconds.toFixed(1)}`,
    '',
  ].join('\n'),
);
