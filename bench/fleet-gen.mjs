// bench helper: a deterministic synthetic fleet, one day of conntrack events per host, one journal each.
//
// Usage: node bench/fleet-gen.mjs --hosts H --out DIR [--scale X] [--format-version 1|2] [--shard K/N]
//   --hosts H           hosts 0 … H-1 (default 200); host i is the same journal whatever H is, so a
//                       fleet of 25 hosts is the first 25 journals of a fleet of 200
//   --out DIR           writes DIR/<host>.mpk, one journal per host (DIR is created)
//   --scale X           multiplies every event count (default 1: one realistic day)
//   --format-version V  the journal format written (default 1: what every reader reads)
//   --shard K/N         only the hosts i with i % N = K (N processes make a fleet on N cores)
// Prints one `host=` line per journal (index, name, role, events, bytes) and key=value totals.
// Reads dist/ (build first).
//
// The fleet, per day (scale 1), chosen to look like a small data centre's:
// - every 20th host is a busy front (web, DNS or database in turn, ~2 M events/day each: 5 %);
// - every 50th host (from host 1) is a NAT gateway (~500 k events/day: 2 %);
// - the rest are quiet servers (33–78 k events/day, median 55 k), mostly monitoring, DNS and
//   app traffic.
// All hosts share one address plan and one set of services (monitoring, resolvers, NTP, mirror,
// loghost, admin workstations), as a real fleet does. Event rates follow a diurnal curve.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ASSURED,
  BATCH,
  CONFIRMED,
  DES,
  DST_NAT,
  fillCounters,
  JournalWriter,
  makeBatch,
  makeRng,
  NEW,
  prefix6,
  SCRIPTS_BY_NAME,
  SEEN_REPLY,
  SNAP,
  SRC_NAT,
  UPD,
} from './gen-common.mjs';

const SEED = 0xf1ee7026;
const DAY_S = 86_400;
const DAY_US = DAY_S * 1e6;
/** 2026-11-30T00:00:00Z in µs: the day every journal records, from its first second. */
const DAY0_US = Date.UTC(2026, 10, 30) * 1000;
/** Linux's default net.ipv4.ip_local_port_range, in every header (--collapse ephemeral reads it). */
const PORT_RANGE = [32768, 60999];
/** With a nat table loaded the kernel sets both *_NAT_DONE bits on every entry it confirms. */
const NAT_DONE = 0x80 | 0x100;

function fail(message) {
  process.stderr.write(`fleet-gen: ${message}\n`);
  process.exit(2);
}

const { values: opt } = parseArgs({
  options: {
    hosts: { type: 'string', default: '200' },
    out: { type: 'string' },
    scale: { type: 'string', default: '1' },
    'format-version': { type: 'string', default: '1' },
    shard: { type: 'string', default: '0/1' },
  },
});
const HOSTS = Number(opt.hosts);
const SCALE = Number(opt.scale);
const FORMAT = Number(opt['format-version']);
const shard = /^(\d+)\/(\d+)$/.exec(opt.shard);
if (!(Number.isSafeInteger(HOSTS) && HOSTS > 0 && HOSTS <= 1000))
  fail('--hosts must be an integer from 1 to 1000');
if (!(SCALE > 0 && SCALE <= 100)) fail('--scale must be a number in (0, 100]');
if (FORMAT !== 1 && FORMAT !== 2) fail('--format-version must be 1 or 2');
if (shard === null || Number(shard[1]) >= Number(shard[2]))
  fail('--shard must be K/N with 0 ≤ K < N');
if (opt.out === undefined) fail('--out DIR is required');
const SHARD_K = Number(shard[1]);
const SHARD_N = Number(shard[2]);

// ---------------------------------------------------------------- the fleet's address plan
// Drawn once from the fleet seed, before any host: every host (and every shard) sees the same.
const fleetRng = makeRng(SEED);
const u01 = (rng) => rng.rnd() / 4294967296;

const v4 = (text) => Uint8Array.from(text.split('.').map(Number));
/** An IPv6 address from its prefix groups and a small interface id (`2001:db8:9:1::5`). */
function v6(prefix, iid) {
  const b = prefix6(prefix);
  b[12] = (iid >>> 24) & 0xff;
  b[13] = (iid >>> 16) & 0xff;
  b[14] = (iid >>> 8) & 0xff;
  b[15] = iid & 0xff;
  return b;
}
/** A random interface id in a /64 (SLAAC-like), or in a random /64 of a /48 when sub is true. */
function random6(rng, prefix, sub) {
  const b = prefix6(prefix);
  if (sub) {
    b[6] = rng.rnd() & 0xff;
    b[7] = rng.rnd() & 0xff;
  }
  for (let i = 8; i < 16; i++) b[i] = rng.rnd() & 0xff;
  return b;
}

/** Host i's own addresses: servers sit in 10.20.0.0/16 and 2001:db8:100::/48, 200 per /24. */
function hostAddr4(i) {
  return Uint8Array.of(10, 20, Math.floor(i / 200), 10 + (i % 200));
}
function hostAddr6(i) {
  return v6(`2001:db8:100:${Math.floor(i / 200).toString(16)}`, 0x10 + (i % 200));
}
/** 60 % of the hosts are dual-stack; the rest are IPv4-only (a fleet half-way through IPv6). */
const dualStack = (i) => i % 5 < 3;

/** The fleet's shared services (one per fleet, as in a real site). v4 and v6 addresses each. */
const SVC = {
  monitor: [v4('10.9.1.5'), v6('2001:db8:9:1', 5)],
  config: [v4('10.9.0.20'), v6('2001:db8:9:0', 0x20)],
  admins: [10, 11, 12].map((h) => [v4(`10.9.0.${h}`), v6('2001:db8:9:0', h)]),
  resolvers: [53, 54].map((h) => [v4(`10.9.0.${h}`), v6('2001:db8:9:0', h)]),
  ntp: [123, 124, 125, 126].map((h) => [v4(`10.9.0.${h}`), v6('2001:db8:9:0', h)]),
  mirror: [v4('10.9.2.80'), v6('2001:db8:9:2', 0x80)],
  loghost: [v4('10.9.3.14'), v6('2001:db8:9:3', 0x14)],
  // The internal services the quiet hosts' applications use: a DB front of the fleet (host
  // 40), a cache and the internal API's load balancer.
  db: [hostAddr4(40), hostAddr6(40)],
  cache: [v4('10.21.0.5'), v6('2001:db8:21:0', 5)],
  api: [v4('10.21.0.10'), v6('2001:db8:21:0', 0x10)],
};

/** True for an IPv4 address a home or office on the internet could have (no private, no reserved). */
function public4(b) {
  const [a, c] = b;
  if (a === 0 || a === 10 || a === 127 || a >= 224) return false;
  if (a === 100 && c >= 64 && c < 128) return false;
  if (a === 169 && c === 254) return false;
  if (a === 172 && c >= 16 && c < 32) return false;
  if (a === 192 && (c === 168 || c === 0)) return false;
  if (a === 198 && (c === 18 || c === 19 || c === 51)) return false;
  if (a === 203 && c === 0) return false;
  return true;
}
/**
 * The internet as the fleet sees it: 150,000 IPv4 addresses scattered over public space, and
 * 50,000 IPv6 ones in 400 provider /48s (privacy addresses: random interface ids).
 */
const INTERNET4 = [];
while (INTERNET4.length < 150_000) {
  const b = Uint8Array.of(
    fleetRng.rnd() & 0xff,
    fleetRng.rnd() & 0xff,
    fleetRng.rnd() & 0xff,
    fleetRng.rnd() & 0xff,
  );
  if (public4(b) && b[3] !== 0 && b[3] !== 255) INTERNET4.push(b);
}
const PROVIDERS6 = [];
for (let k = 0; k < 400; k++) {
  const g1 = 0x2a00 + fleetRng.below(0x10);
  PROVIDERS6.push(
    `${g1.toString(16)}:${fleetRng.below(0x10000).toString(16)}:${fleetRng.below(0x10000).toString(16)}:0`,
  );
}
const INTERNET6 = [];
for (let k = 0; k < 50_000; k++) {
  INTERNET6.push(random6(fleetRng, PROVIDERS6[fleetRng.below(PROVIDERS6.length)], true));
}
/** Offices and VPN users (what the DNS fronts serve): 10.60.0.0/16 and 2001:db8:60::/48. */
const OFFICE4 = [];
for (let k = 0; k < 20_000; k++) {
  OFFICE4.push(Uint8Array.of(10, 60, 1 + (k >> 8), k & 0xff || 1));
}
const OFFICE6 = [];
for (let k = 0; k < 8_000; k++) OFFICE6.push(random6(fleetRng, '2001:db8:60:0', true));
/** Application containers (what the DB fronts serve besides the fleet): 10.30.0.0/20. */
const APPS4 = [];
for (let k = 0; k < 2_000; k++) APPS4.push(Uint8Array.of(10, 30, k >> 8, 1 + (k & 0xff)));
/** Behind the NAT gateways: 10.50.0.0/20 and 2001:db8:50::/48 (routed, never NATed). */
const INSIDE4 = [];
for (let k = 0; k < 4_000; k++) INSIDE4.push(Uint8Array.of(10, 50, k >> 8, 1 + (k & 0xff)));
const INSIDE6 = [];
for (let k = 0; k < 2_000; k++) INSIDE6.push(random6(fleetRng, '2001:db8:50:0', true));
/** The gateways' public addresses (one each) and the peer sites' IPsec gateways. */
const gwPublic4 = (i) => Uint8Array.of(198, 51, 100, 1 + (Math.floor(i / 50) % 250));
const PEERS4 = [v4('203.0.113.10'), v4('203.0.113.20'), v4('203.0.113.30')];

// ---------------------------------------------------------------- roles
const BUSY_ROLES = ['web', 'dns', 'db'];
const QUIET_ROLES = ['app', 'app', 'app', 'batch', 'cache', 'ci', 'mail', 'build'];
function roleOf(i) {
  if (i % 20 === 0) return BUSY_ROLES[(i / 20) % 3];
  if (i % 50 === 1) return 'gw';
  return 'quiet';
}
function nameOf(i) {
  const role = roleOf(i);
  const kind = role === 'quiet' ? QUIET_ROLES[i % QUIET_ROLES.length] : role;
  return `${kind}-${String(i).padStart(3, '0')}.dc1.example.net`;
}

// ---------------------------------------------------------------- scripts and their timing
// The shared conntrack scripts, plus what only a fleet has: entries the start-up dump finds
// (snapshot, then closed later in the day) and a generic-protocol tunnel (IPsec ESP, proto 50:
// conntrack tracks it with ports 0; ct-analyze and the SQL skip it).
const step = (type, state, timeout, status) => ({ type, state, timeout, status });
const R = CONFIRMED | SEEN_REPLY;
const RA = R | ASSURED;
const SCRIPT_LIST = {
  ...SCRIPTS_BY_NAME,
  snapTcp: [
    step(SNAP, 3, '432000', RA),
    step(UPD, 4, '120', RA),
    step(UPD, 6, '30', RA),
    step(UPD, 7, '120', RA),
    step(DES, 7, '', RA),
  ],
  snapUdp: [step(SNAP, 0, '120', RA), step(DES, 0, '', RA)],
  generic: [step(NEW, 0, '600', CONFIRMED), step(UPD, 0, '600', R), step(DES, 0, '', R)],
};
/**
 * When each step happens after the one before: 0 (at the start), 'rtt' (one round trip: the
 * answer to a SYN or a datagram), 'dur' (the connection's life: data until the close), 'to' (the
 * timeout the previous step set: the kernel destroys the entry when it expires).
 */
const DELAYS = {
  tcpClose: ['0', 'rtt', 'rtt', 'dur', 'rtt', 'rtt', 'to'],
  tcpReset: ['0', 'rtt', 'rtt', 'dur', 'to'],
  tcpScan: ['0', 'to'],
  udpAnswer: ['0', 'rtt', 'to'],
  udpStream: ['0', 'rtt', 'dur', 'to'],
  udpScan: ['0', 'to'],
  echo: ['0', 'rtt', 'to'],
  echoScan: ['0', 'to'],
  snapTcp: ['0', 'dur', 'rtt', 'rtt', 'to'],
  snapUdp: ['0', 'to'],
  generic: ['0', 'rtt', 'to'],
};
const NAMES = Object.keys(SCRIPT_LIST);
const STEPS = NAMES.map((n) => SCRIPT_LIST[n]);
const DELAY = NAMES.map((n) => DELAYS[n]);
const SC = Object.fromEntries(NAMES.map((n, k) => [n, k]));

// ---------------------------------------------------------------- one host's connections
/** Diurnal load: 30 % at 04:00 UTC, 100 % at 16:00 UTC (a working day in Europe); mean 0.65. */
const curve = (t) =>
  0.3 + 0.7 * (0.5 - 0.5 * Math.cos((2 * Math.PI * (t / DAY_US - 4 / 24)) % (2 * Math.PI)));

/** The connections of one host, as columns (a busy host has ~400,000). */
class Conns {
  constructor() {
    this.n = 0;
    this.cap = 0;
    this.grow(1024);
    // Addresses are shared Uint8Arrays: one reference per connection and tuple side.
    this.osrc = [];
    this.odst = [];
    this.rsrc = [];
    this.rdst = [];
  }
  grow(cap) {
    const cols = {
      start: Float64Array,
      rtt: Float64Array,
      dur: Float64Array,
      script: Uint8Array,
      family: Uint8Array,
      proto: Uint8Array,
      osport: Uint16Array,
      odport: Uint16Array,
      rsport: Uint16Array,
      rdport: Uint16Array,
      icmpId: Uint16Array,
      nat: Uint16Array,
      id: Uint32Array,
    };
    for (const [k, T] of Object.entries(cols)) {
      const a = new T(cap);
      if (this[k] !== undefined) a.set(this[k]);
      this[k] = a;
    }
    this.cap = cap;
  }
}

/** Uniform on a log scale between lo and hi (durations: many short, a few long). */
const logUniform = (rng, lo, hi) => lo * (hi / lo) ** u01(rng);
/** A pool index skewed to the head (a few clients make much of the traffic, as on the web). */
const popular = (rng, n) => Math.floor(n * u01(rng) ** 2.5);
/** A client's source port: Linux's ephemeral range, or Windows' (49152–65535) for some. */
const ephemeral = (rng) =>
  (rng.rnd() & 3) === 0 ? 49152 + rng.below(16384) : 32768 + rng.below(28232);

function hostPlan(i) {
  const rng = makeRng((SEED ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const role = roleOf(i);
  const dual = dualStack(i);
  const me = [hostAddr4(i), dual ? hostAddr6(i) : undefined];
  const c = new Conns();
  const natAll = role === 'gw' ? NAT_DONE : 0;

  /** Appends one connection. f: family; src/dst as seen in the original direction. */
  function add(start, script, family, proto, src, dst, sport, dport, o = {}) {
    if (c.n === c.cap) c.grow(c.cap * 2);
    const k = c.n++;
    c.start[k] = start;
    c.script[k] = SC[script];
    c.family[k] = family;
    c.proto[k] = proto;
    c.osrc[k] = src;
    c.odst[k] = dst;
    c.osport[k] = sport;
    c.odport[k] = dport;
    // Without NAT the reply tuple is the original one reversed.
    c.rsrc[k] = o.rsrc ?? dst;
    c.rdst[k] = o.rdst ?? src;
    c.rsport[k] = o.rsport ?? dport;
    c.rdport[k] = o.rdport ?? sport;
    c.icmpId[k] = proto === 1 || proto === 58 ? rng.below(65536) : 0;
    c.nat[k] = natAll | (o.nat ?? 0);
    c.rtt[k] = o.rtt ?? 100 + rng.below(900); // inside the data centre: 0.1–1 ms
    c.dur[k] = o.dur ?? 0;
    c.id[k] = rng.rnd();
  }
  /** n arrival times over the day, following the diurnal curve (rejection sampling). */
  function diurnal(n, fn) {
    for (let k = 0; k < n; k++) {
      let t;
      do t = u01(rng) * DAY_US;
      while (u01(rng) > curve(t));
      fn(Math.floor(t));
    }
  }
  /** n times evenly over the day from a random phase, ±10 % jitter (timers, not people). */
  function periodic(n, fn) {
    const period = DAY_US / n;
    const phase = u01(rng) * period;
    for (let k = 0; k < n; k++)
      fn(Math.max(0, Math.floor(phase + period * (k + 0.2 * u01(rng) - 0.1))));
  }
  const scaled = (n) => Math.round(n * SCALE);
  const fam = (v6share) => (dual && u01(rng) < v6share ? 6 : 4);
  const pick = (pair, f) => pair[f === 6 ? 1 : 0];
  const mine = (f) => me[f === 6 ? 1 : 0];

  // ---- snapshot at start: what ct-record's table dump finds when it starts at 00:00. Each
  // entry is closed later in the day (TCP) or expires (UDP), as the connection it stands for.
  let snaps = 0;
  const snapshot = (script, f, proto, src, dst, sport, dport, o = {}) => {
    add(1000 + 7 * snaps++, script, f, proto, src, dst, sport, dport, {
      dur: u01(rng) * DAY_US * 0.9,
      ...o,
    });
  };
  // The scraper's keep-alive connection, the syslog stream, a DB pool, maybe an admin's ssh.
  const quietSnaps = Math.max(1, scaled(4 + rng.below(8)));
  for (let k = 0; k < quietSnaps; k++) {
    const f = fam(0.3);
    const what = k % 4;
    if (what === 0) snapshot('snapTcp', f, 6, pick(SVC.monitor, f), mine(f), ephemeral(rng), 9100);
    else if (what === 1)
      snapshot('snapUdp', f, 17, mine(f), pick(SVC.loghost, f), ephemeral(rng), 514);
    else if (what === 2) snapshot('snapTcp', f, 6, mine(f), pick(SVC.db, f), ephemeral(rng), 5432);
    else snapshot('snapTcp', f, 6, pick(SVC.admins[k % 3], f), mine(f), ephemeral(rng), 22);
  }

  // ---- what every host does (the quiet ones do nothing else)
  // Blackbox ICMP probe from the monitoring host every 15 s: 5,760 echo entries a day, over
  // IPv6 every other time on dual-stack hosts. Timers know no diurnal curve.
  let probe = 0;
  periodic(scaled(5760), (t) => {
    const f = dual && probe++ % 2 === 1 ? 6 : 4;
    add(
      t,
      u01(rng) < 0.002 ? 'echoScan' : 'echo',
      f,
      f === 6 ? 58 : 1,
      pick(SVC.monitor, f),
      mine(f),
      0,
      0,
    );
  });
  // node_exporter scraped every 15 s over a keep-alive connection that the scraper re-opens
  // every 5 minutes (idle and max-age limits), so one connection per 20 scrapes.
  periodic(scaled(288), (t) => {
    const f = fam(0.5);
    add(t, 'tcpClose', f, 6, pick(SVC.monitor, f), mine(f), ephemeral(rng), 9100, { dur: 299e6 });
  });
  // ssh: a few admin sessions in working hours, and the config-management run every 30 min.
  diurnal(scaled(2 + rng.below(12)), (t) => {
    const f = fam(0.5);
    add(t, 'tcpClose', f, 6, pick(SVC.admins[rng.below(3)], f), mine(f), ephemeral(rng), 22, {
      dur: logUniform(rng, 60e6, 7200e6),
    });
  });
  periodic(scaled(48), (t) => {
    const f = fam(0.5);
    add(t, 'tcpClose', f, 6, pick(SVC.config, f), mine(f), ephemeral(rng), 22, {
      dur: logUniform(rng, 5e6, 40e6),
    });
  });
  // DNS lookups to the two resolvers: 0.02–0.12 queries/s on average, 3 % never answered
  // (the resolver timed out: the stub retries from a new port).
  const dnsRate = 0.02 + 0.1 * u01(rng);
  diurnal(scaled(dnsRate * DAY_S), (t) => {
    const f = fam(0.5);
    const r = SVC.resolvers[rng.below(2)];
    add(
      t,
      u01(rng) < 0.03 ? 'udpScan' : 'udpAnswer',
      f,
      17,
      mine(f),
      pick(r, f),
      ephemeral(rng),
      53,
    );
  });
  // NTP: 4 servers polled every 1024 s, ntpd-style from port 123.
  periodic(scaled(4 * 84), (t) => {
    const f = fam(0.5);
    add(t, 'udpAnswer', f, 17, mine(f), pick(SVC.ntp[rng.below(4)], f), 123, 123);
  });
  // Package mirror: apt runs twice a day (timer at 06:00 and 18:00, randomized by an hour),
  // 3 connections each (index, packages, security).
  for (let run = 0; run < scaled(2); run++) {
    const base = ((6 + 12 * (run % 2)) * 3600 + u01(rng) * 3600) * 1e6;
    for (let k = 0; k < 3; k++) {
      const f = fam(0.5);
      add(
        base + k * 2e6,
        'tcpClose',
        f,
        6,
        mine(f),
        pick(SVC.mirror, f),
        ephemeral(rng),
        k === 0 ? 80 : 443,
        {
          dur: logUniform(rng, 1e6, 30e6),
        },
      );
    }
  }
  // syslog over UDP: one entry while lines keep coming; it expires after 120 s of quiet and the
  // next line makes a new one, about every 10 minutes.
  periodic(scaled(144), (t) => {
    const f = fam(0.3);
    add(t, 'udpStream', f, 17, mine(f), pick(SVC.loghost, f), ephemeral(rng), 514, {
      dur: logUniform(rng, 30e6, 400e6),
    });
  });
  // Applications: DB front, cache and internal API, 0.005–0.05 connections/s; 2 % never
  // answered (a pod restarting), 13 % closed by a reset (clients dropping pooled connections).
  const appRate = 0.005 + 0.045 * u01(rng);
  diurnal(scaled(appRate * DAY_S), (t) => {
    const f = fam(0.25);
    const x = rng.below(10);
    const [svc, port] = x < 4 ? [SVC.db, 5432] : x < 7 ? [SVC.cache, 6379] : [SVC.api, 443];
    const y = rng.below(100);
    add(
      t,
      y < 2 ? 'tcpScan' : y < 15 ? 'tcpReset' : 'tcpClose',
      f,
      6,
      mine(f),
      pick(svc, f),
      ephemeral(rng),
      port,
      {
        dur: logUniform(rng, 5e3, 2e6),
      },
    );
  });

  // ---- busy fronts and gateways: an event budget for the day, ±30 % between hosts.
  const budget = (mean) => mean * (0.7 + 0.6 * u01(rng)) * SCALE;
  if (role === 'web') {
    // HTTPS (85 %) and HTTP from the internet, 30 % over IPv6 (the front is dual-stack);
    // 20 % reset, 5 % spoofed SYNs that never get an answer back (floods, scanners).
    const conns = Math.round(budget(2e6) / (0.75 * 7 + 0.2 * 5 + 0.05 * 2));
    for (let k = 0; k < Math.max(1, scaled(800 + rng.below(1200))); k++) {
      const f = u01(rng) < 0.3 ? 6 : 4;
      const cl =
        f === 6
          ? INTERNET6[popular(rng, INTERNET6.length)]
          : INTERNET4[popular(rng, INTERNET4.length)];
      snapshot('snapTcp', f, 6, cl, hostAddr(i, f), ephemeral(rng), 443, {
        rtt: 10e3 + rng.below(140e3),
        dur: logUniform(rng, 1e6, 600e6),
      });
    }
    diurnal(conns, (t) => {
      const f = u01(rng) < 0.3 ? 6 : 4;
      const y = rng.below(100);
      const spoofed = y < 5;
      const cl = spoofed
        ? f === 6
          ? INTERNET6[rng.below(INTERNET6.length)]
          : INTERNET4[rng.below(INTERNET4.length)]
        : f === 6
          ? INTERNET6[popular(rng, INTERNET6.length)]
          : INTERNET4[popular(rng, INTERNET4.length)];
      add(
        t,
        spoofed ? 'tcpScan' : y < 25 ? 'tcpReset' : 'tcpClose',
        f,
        6,
        cl,
        hostAddr(i, f),
        ephemeral(rng),
        rng.below(100) < 85 ? 443 : 80,
        {
          rtt: 10e3 + rng.below(140e3),
          dur: logUniform(rng, 50e3, 30e6),
        },
      );
    });
  } else if (role === 'dns') {
    // Recursive DNS for the offices and the fleet: 98 % answered, 2 % over TCP (large answers).
    const conns = Math.round(budget(2e6) / 3);
    diurnal(conns, (t) => {
      const want = u01(rng) < 0.35 ? 6 : 4;
      const office = rng.below(10) < 7;
      const cl = office
        ? want === 6
          ? OFFICE6[popular(rng, OFFICE6.length)]
          : OFFICE4[popular(rng, OFFICE4.length)]
        : hostAddrAny(rng.below(200), want);
      // An IPv4-only fleet host asks over IPv4 whatever was wanted.
      const f = cl.length === 16 ? 6 : 4;
      if (rng.below(100) < 2) {
        add(t, 'tcpClose', f, 6, cl, hostAddr(i, f), ephemeral(rng), 53, {
          dur: logUniform(rng, 1e3, 50e3),
        });
      } else {
        add(
          t,
          rng.below(100) < 2 ? 'udpScan' : 'udpAnswer',
          f,
          17,
          cl,
          hostAddr(i, f),
          ephemeral(rng),
          53,
        );
      }
    });
  } else if (role === 'db') {
    // PostgreSQL for the app containers and the fleet, short-lived connections (workers
    // without a pooler), plus the pools the dump finds open at midnight.
    for (let k = 0; k < Math.max(1, scaled(50 + rng.below(250))); k++) {
      snapshot('snapTcp', 4, 6, APPS4[rng.below(APPS4.length)], me[0], ephemeral(rng), 5432);
    }
    const conns = Math.round(budget(2e6) / (0.85 * 7 + 0.15 * 5));
    diurnal(conns, (t) => {
      const want = u01(rng) < 0.15 ? 6 : 4;
      const cl =
        want === 4 && rng.below(10) < 6
          ? APPS4[popular(rng, APPS4.length)]
          : hostAddrAny(rng.below(200), want);
      const f = cl.length === 16 ? 6 : 4;
      add(
        t,
        rng.below(100) < 15 ? 'tcpReset' : 'tcpClose',
        f,
        6,
        cl,
        hostAddr(i, f),
        ephemeral(rng),
        5432,
        {
          dur: logUniform(rng, 2e3, 5e6),
        },
      );
    });
  } else if (role === 'gw') {
    // Masquerade for 4,000 inside clients (reply goes to the gateway's public address, the
    // source port kept unless taken: 5 % remapped), IPv6 routed without NAT, a port forward
    // (DNAT 443 → an inside server's 8443), and IPsec to three peer sites.
    const pub = gwPublic4(i);
    const conns = Math.round(budget(4e5) / 6);
    diurnal(conns, (t) => {
      const x = rng.below(100);
      const rtt = 10e3 + rng.below(140e3);
      if (x < 10) {
        const cl = INTERNET4[popular(rng, INTERNET4.length)];
        const inner = hostAddr4(2 + rng.below(40));
        const sp = ephemeral(rng);
        add(t, 'tcpClose', 4, 6, cl, pub, sp, 443, {
          rsrc: inner,
          rdst: cl,
          rsport: 8443,
          rdport: sp,
          nat: DST_NAT,
          rtt,
          dur: logUniform(rng, 50e3, 30e6),
        });
        return;
      }
      const f = x < 30 ? 6 : 4;
      const cl =
        f === 6 ? INSIDE6[popular(rng, INSIDE6.length)] : INSIDE4[popular(rng, INSIDE4.length)];
      const remote =
        f === 6
          ? INTERNET6[popular(rng, INTERNET6.length)]
          : INTERNET4[popular(rng, INTERNET4.length)];
      const sp = ephemeral(rng);
      const nat =
        f === 4
          ? { rdst: pub, rdport: rng.below(100) < 5 ? 1024 + rng.below(64512) : sp, nat: SRC_NAT }
          : {};
      if (x < 90) {
        add(t, x < 85 ? 'tcpClose' : 'tcpReset', f, 6, cl, remote, sp, x < 80 ? 443 : 80, {
          ...nat,
          rtt,
          dur: logUniform(rng, 50e3, 60e6),
        });
      } else {
        add(t, 'udpAnswer', f, 17, cl, remote, sp, x < 97 ? 53 : 443, { ...nat, rtt });
      }
    });
    periodic(Math.max(1, scaled(72)), (t) => {
      add(t, 'generic', 4, 50, pub, PEERS4[rng.below(3)], 0, 0, { rtt: 20e3 });
    });
  }
  return c;
}
function hostAddr(i, f) {
  return f === 6 ? hostAddr6(i) : hostAddr4(i);
}
/** A fleet host's address in family f (IPv4 for an IPv4-only host). */
function hostAddrAny(j, f) {
  return f === 6 && dualStack(j) ? hostAddr6(j) : hostAddr4(j);
}

// ---------------------------------------------------------------- events, in time order
/** Min-heap of (time, connection) for the next event of every open connection. */
class Heap {
  constructor() {
    this.t = new Float64Array(1024);
    this.c = new Int32Array(1024);
    this.n = 0;
  }
  push(t, c) {
    if (this.n === this.t.length) {
      const t2 = new Float64Array(this.n * 2);
      t2.set(this.t);
      const c2 = new Int32Array(this.n * 2);
      c2.set(this.c);
      this.t = t2;
      this.c = c2;
    }
    let k = this.n++;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (this.t[p] < t || (this.t[p] === t && this.c[p] < c)) break;
      this.t[k] = this.t[p];
      this.c[k] = this.c[p];
      k = p;
    }
    this.t[k] = t;
    this.c[k] = c;
  }
  /** Removes the minimum (read it first from t[0], c[0]). */
  pop() {
    const n = --this.n;
    const t = this.t[n];
    const c = this.c[n];
    let k = 0;
    for (;;) {
      let m = 2 * k + 1;
      if (m >= n) break;
      if (
        m + 1 < n &&
        (this.t[m + 1] < this.t[m] || (this.t[m + 1] === this.t[m] && this.c[m + 1] < this.c[m]))
      )
        m++;
      if (t < this.t[m] || (t === this.t[m] && c < this.c[m])) break;
      this.t[k] = this.t[m];
      this.c[k] = this.c[m];
      k = m;
    }
    this.t[k] = t;
    this.c[k] = c;
  }
}

/** The time of step s of connection k, given the time of step s-1. */
function stepTime(c, k, s, prev) {
  const d = DELAY[c.script[k]][s];
  if (d === 'rtt') return prev + c.rtt[k];
  if (d === 'dur') return prev + c.dur[k];
  return prev + Number(STEPS[c.script[k]][s - 1].timeout) * 1e6;
}

const { events: batch, counters: batchCounters } = makeBatch();

function writeHost(i) {
  const name = nameOf(i);
  const c = hostPlan(i);
  const rng = makeRng((SEED ^ Math.imul(i + 7, 0x85ebca6b)) >>> 0);
  const order = new Uint32Array(c.n);
  for (let k = 0; k < c.n; k++) order[k] = k;
  order.sort((a, b) => c.start[a] - c.start[b] || a - b);
  const stepOf = new Uint8Array(c.n);
  const addresses = [{ ifname: 'eth0', family: 4, address: hostAddr4(i), prefix: 16 }];
  if (dualStack(i))
    addresses.push({ ifname: 'eth0', family: 6, address: hostAddr6(i), prefix: 64 });
  if (roleOf(i) === 'gw')
    addresses.push({ ifname: 'wan0', family: 4, address: gwPublic4(i), prefix: 24 });
  const path = join(opt.out, `${name}.mpk`);
  const writer = JournalWriter.create(
    path,
    {
      tool: { name: 'conntracker bench/fleet-gen', version: '1' },
      host: name,
      kernel: '6.1.0-28-amd64',
      netns: 'net:[4026531840]',
      start: DAY0_US,
      options: { snapshot: true, synthetic: { fleet: SEED, host: i, scale: SCALE } },
      sysctls: {
        nf_conntrack_events: 1,
        nf_conntrack_timestamp: 0,
        nf_conntrack_acct: 1,
        ip_local_port_range: PORT_RANGE,
      },
      addresses,
    },
    // Checkpoints by frame count only (not by wall time): the same parameters, the same bytes.
    { force: true, clock: () => 0, formatVersion: FORMAT },
  );
  // A dist/ from before format 2 ignores formatVersion and writes format 1.
  if ((writer.formatVersion ?? 1) !== FORMAT) {
    writer.abandon?.();
    fail(`dist/journal/writer.js cannot write format ${FORMAT}: build a tree that has it`);
  }
  const heap = new Heap();
  let filled = 0;
  let events = 0;
  let last = DAY0_US;
  const emit = (k, s, t) => {
    const st = STEPS[c.script[k]][s];
    const ev = batch[filled];
    const proto = c.proto[k];
    const fam6 = c.family[k] === 6;
    ev.type = st.type;
    ev.family = c.family[k];
    ev.proto = proto;
    ev.status = st.status | c.nat[k];
    ev.id = c.id[k];
    // Never earlier than the event before: the recorder stamps events as it receives them.
    last = Math.max(last, DAY0_US + Math.round(t));
    ev.time = last;
    const o = ev.orig;
    const r = ev.reply;
    o.src = c.osrc[k];
    o.dst = c.odst[k];
    r.src = c.rsrc[k];
    r.dst = c.rdst[k];
    if (proto === 1 || proto === 58) {
      o.sport = o.dport = r.sport = r.dport = 0;
      o.icmpType = fam6 ? 128 : 8;
      r.icmpType = fam6 ? 129 : 0;
      o.icmpCode = r.icmpCode = 0;
      o.icmpId = r.icmpId = c.icmpId[k];
    } else {
      o.sport = c.osport[k];
      o.dport = c.odport[k];
      r.sport = c.rsport[k];
      r.dport = c.rdport[k];
      o.icmpType = o.icmpCode = o.icmpId = r.icmpType = r.icmpCode = r.icmpId = 0;
    }
    ev.tcpState = proto === 6 ? st.state : undefined;
    if (st.type === DES) {
      const cnt = batchCounters[filled];
      fillCounters(rng, cnt, proto, fam6, (st.status & SEEN_REPLY) !== 0);
      ev.counters = cnt;
    } else {
      ev.counters = undefined;
    }
    events++;
    if (++filled === BATCH) {
      writer.append(batch);
      filled = 0;
    }
  };
  let next = 0;
  while (next < c.n || heap.n > 0) {
    // Start the next connection when it begins before every pending event of the open ones.
    if (next < c.n && (heap.n === 0 || c.start[order[next]] <= heap.t[0])) {
      const k = order[next++];
      emit(k, 0, c.start[k]);
      stepOf[k] = 1;
      heap.push(stepTime(c, k, 1, c.start[k]), k);
      continue;
    }
    const t = heap.t[0];
    const k = heap.c[0];
    heap.pop();
    const s = stepOf[k]++;
    emit(k, s, t);
    if (s + 1 < STEPS[c.script[k]].length) heap.push(stepTime(c, k, s + 1, t), k);
  }
  if (filled > 0) writer.append(batch.slice(0, filled));
  writer.close({ stop: Math.max(last + 1000, DAY0_US + DAY_US) });
  return { name, role: roleOf(i), events, bytes: statSync(path).size };
}

// ---------------------------------------------------------------- main
mkdirSync(opt.out, { recursive: true });
const t0 = process.hrtime.bigint();
let total = 0;
let bytes = 0;
let made = 0;
for (let i = SHARD_K; i < HOSTS; i += SHARD_N) {
  const h = writeHost(i);
  total += h.events;
  bytes += h.bytes;
  made++;
  process.stdout.write(`host=${i}\t${h.name}\t${h.role}\t${h.events}\t${h.bytes}\n`);
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(
  [
    `hosts=${made}`,
    `events=${total}`,
    `journal_bytes=${bytes}`,
    `format=${FORMAT}`,
    `scale=${SCALE}`,
    `seconds=${seconds.toFixed(1)}`,
    '',
  ].join('\n'),
);
