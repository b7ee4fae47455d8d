// bench helper: what the synthetic journal generators share (PRNG, address pools, conntrack scripts).
//
// Imported by bench/replay-gen.mjs and bench/fleet-gen.mjs. Every function that draws numbers
// takes the generator's own PRNG, so each generator's output depends only on its seed and on the
// order of its own draws. Reads dist/ (build first).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const { JournalWriter } = await import(join(ROOT, 'dist', 'journal', 'writer.js'));
// inet_ntop's text, as conntrack prints addresses (test/analyzer/address.test.ts checks it).
export const { formatIPv6 } = await import(join(ROOT, 'dist', 'analyzer', 'core', 'address.js'));

/** What the recorder writes per events frame. */
export const BATCH = 1024;

// ---------------------------------------------------------------- seeded PRNG (sfc32)
/**
 * A seeded sfc32 generator: `rnd()` is a uniform unsigned 32-bit integer, `below(n)` uniform in
 * [0, n) for n ≤ 2^16 (the modulo bias is below 2^-16). Fast, and the same on every platform.
 */
export function makeRng(seed) {
  let ra = seed;
  let rb = 0x9e3779b9;
  let rc = 0x243f6a88;
  let rd = 1;
  function rnd() {
    const t = (((ra + rb) | 0) + rd) | 0;
    rd = (rd + 1) | 0;
    ra = rb ^ (rb >>> 9);
    rb = (rc + (rc << 3)) | 0;
    rc = (rc << 21) | (rc >>> 11);
    rc = (rc + t) | 0;
    return t >>> 0;
  }
  for (let i = 0; i < 20; i++) rnd();
  return { rnd, below: (n) => rnd() % n };
}

// ---------------------------------------------------------------- addresses
/** The 16 bytes of an IPv6 prefix written as full groups, e.g. '2001:db8:1:0' (rest zero). */
export function prefix6(text) {
  const b = new Uint8Array(16);
  text.split(':').forEach((h, k) => {
    const n = Number.parseInt(h, 16);
    b[2 * k] = n >> 8;
    b[2 * k + 1] = n & 0xff;
  });
  return b;
}

/** An address pool: bytes (shared by every event that names the address) and text. */
export function pool() {
  return { bytes: [], text: [] };
}

/** Adds net.host, e.g. add4(p, '10.1.0', 7) → 10.1.0.7. */
export function add4(p, net, host) {
  const b = Uint8Array.from([...net.split('.').map(Number), host]);
  p.bytes.push(b);
  p.text.push(b.join('.'));
}

/**
 * Adds a new address in the /64 `net`: half of the interface ids small (`::1a`, as assigned by
 * hand or DHCPv6), half random (SLAAC). `seen` holds the text of every address made so far.
 */
export function add6(rng, p, net, seen) {
  for (;;) {
    const b = prefix6(net);
    if (rng.rnd() & 1) {
      const small = 1 + rng.below(0xfffe);
      b[14] = small >> 8;
      b[15] = small & 0xff;
    } else {
      for (let i = 8; i < 16; i++) b[i] = rng.rnd() & 0xff;
    }
    const text = formatIPv6(b);
    if (seen.has(text)) continue;
    seen.add(text);
    p.bytes.push(b);
    p.text.push(text);
    return;
  }
}

// ---------------------------------------------------------------- connection scripts
export const CONFIRMED = 0x8;
export const SEEN_REPLY = 0x2;
export const ASSURED = 0x4;
export const SRC_NAT = 0x10;
export const DST_NAT = 0x20;
export const NEW = 1;
export const UPD = 2;
export const DES = 3;
export const SNAP = 4;

// One step per event: type, TCP state (0 none), timeout text ('' on DESTROY, as conntrack
// prints it for an expired entry), status bits. Shapes as captured from conntrack 1.4.7.
const step = (type, state, timeout, status) => ({ type, state, timeout, status });
const R = CONFIRMED | SEEN_REPLY;
const RA = R | ASSURED;
export const SCRIPTS_BY_NAME = {
  tcpClose: [
    step(NEW, 1, '120', CONFIRMED),
    step(UPD, 2, '60', R),
    step(UPD, 3, '432000', RA),
    step(UPD, 4, '120', RA),
    step(UPD, 6, '30', RA),
    step(UPD, 7, '120', RA),
    step(DES, 7, '', RA),
  ],
  tcpReset: [
    step(NEW, 1, '120', CONFIRMED),
    step(UPD, 2, '60', R),
    step(UPD, 3, '432000', RA),
    step(UPD, 8, '10', RA),
    step(DES, 8, '', RA),
  ],
  tcpScan: [step(NEW, 1, '120', CONFIRMED), step(DES, 1, '', CONFIRMED)],
  udpAnswer: [step(NEW, 0, '30', CONFIRMED), step(UPD, 0, '30', R), step(DES, 0, '', R)],
  udpStream: [
    step(NEW, 0, '30', CONFIRMED),
    step(UPD, 0, '30', R),
    step(UPD, 0, '120', RA),
    step(DES, 0, '', RA),
  ],
  udpScan: [step(NEW, 0, '30', CONFIRMED), step(DES, 0, '', CONFIRMED)],
  echo: [step(NEW, 0, '30', CONFIRMED), step(UPD, 0, '30', R), step(DES, 0, '', R)],
  echoScan: [step(NEW, 0, '30', CONFIRMED), step(DES, 0, '', CONFIRMED)],
};
/** The scripts as an array, and each name's index in it. */
export const SCRIPTS = Object.values(SCRIPTS_BY_NAME);
export const SCRIPT = Object.fromEntries(Object.keys(SCRIPTS_BY_NAME).map((k, i) => [k, i]));

/** Realistic DESTROY counters (nf_conntrack_acct=1): packets and IP bytes per direction. */
export function fillCounters(rng, c, proto, v6, replied) {
  const { below } = rng;
  const ip = v6 ? 40 : 20;
  if (proto === 6) {
    const hdr = ip + 32; // TCP with timestamps
    c.origPackets = replied ? 5 + below(40) : 1 + below(3);
    // An unanswered SYN is 40 bytes of TCP header with options (captured: 60 B over IPv4).
    c.origBytes = replied ? c.origPackets * hdr + below(20000) : c.origPackets * (ip + 40);
    c.replyPackets = replied ? 4 + below(60) : 0;
    c.replyBytes = replied ? c.replyPackets * hdr + below(200000) : 0;
  } else if (proto === 17) {
    c.origPackets = 1 + (replied ? below(3) : 0);
    c.origBytes = c.origPackets * (ip + 8) + 20 + below(500);
    c.replyPackets = replied ? c.origPackets : 0;
    c.replyBytes = replied ? c.replyPackets * (ip + 8) + 40 + below(1400) : 0;
  } else {
    c.origPackets = 1;
    c.origBytes = ip + 64;
    c.replyPackets = replied ? 1 : 0;
    c.replyBytes = replied ? ip + 64 : 0;
  }
}

// ---------------------------------------------------------------- event batches
function blankTuple() {
  return { src: null, dst: null, sport: 0, dport: 0, icmpType: 0, icmpCode: 0, icmpId: 0 };
}

/**
 * BATCH reusable event objects and their counters: JournalWriter.append() encodes events before
 * it returns, so one set serves every frame (no garbage per event).
 */
export function makeBatch() {
  const events = [];
  const counters = [];
  for (let i = 0; i < BATCH; i++) {
    events.push({
      type: 1,
      family: 4,
      proto: 6,
      status: 0,
      id: 0,
      time: 0,
      timeKernel: false,
      orig: blankTuple(),
      reply: blankTuple(),
      tcpState: undefined,
      counters: undefined,
    });
    counters.push({ origPackets: 0, origBytes: 0, replyPackets: 0, replyBytes: 0 });
  }
  return { events, counters };
}
