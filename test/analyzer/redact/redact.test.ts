// ct-analyze redact: the keyed prefix-preserving mapping, the journal it writes, and its CLI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { runRedact } from '../../../analyzer/commands/run/redact.js';
import { addressBytes, formatAddress } from '../../../analyzer/core/address.js';
import {
  compareFlows,
  type Flow,
  isLoopback,
  type NatTarget,
} from '../../../analyzer/core/flows.js';
import { analyzeJournals, type JournalSummary } from '../../../analyzer/core/replay.js';
import {
  AddressPseudonymizer,
  KEPT_BLOCKS_V4,
  KEPT_BLOCKS_V6,
} from '../../../analyzer/redact/pseudonym.js';
import {
  type RedactIo,
  redactedName,
  redactJournal,
  redactRun,
  UNKNOWN_PREVIOUS,
} from '../../../analyzer/redact/redact.js';
import {
  chainLine,
  checkChains,
  verifyExit,
  verifyJournal,
} from '../../../analyzer/verify/verify.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import type { CtEvent } from '../../../journal/event.js';
import type {
  HostAddress,
  JournalChain,
  JournalGap,
  JournalHeaderInput,
} from '../../../journal/format.js';
import { FrameKind, RUN_ID_SIZE, sequencePath } from '../../../journal/format.js';
import { encodeFrame } from '../../../journal/frame.js';
import { encodeMap } from '../../../journal/meta-codec.js';
import { openJournal } from '../../../journal/reader.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER, readWhole, tempDir } from '../../helpers/journals.js';

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);

// --- an independent reference: bit strings, one AES call per bit -------------------------

const bitsOf = (a: Uint8Array) => [...a].map((b) => b.toString(2).padStart(8, '0')).join('');
const bytesOf = (bits: string) =>
  Uint8Array.from(bits.match(/.{8}/g) ?? [], (b) => Number.parseInt(b, 2));

function blockBits(text: string): string {
  const [addr = '', len = ''] = text.split('/');
  const bytes = addressBytes(addr);
  return bitsOf(bytes).slice(0, Number(len));
}

const BITS_V4 = KEPT_BLOCKS_V4.map(blockBits);
const BITS_V6 = KEPT_BLOCKS_V6.map(blockBits);
const MAPPED = bitsOf(addressBytes('::ffff:0:0')).slice(0, 96);

/**
 * Crypto-PAn as docs/redact.md states it: bit i is kept when the bits before it are a proper
 * prefix of a kept block's, else XORed with the first bit of AES-128(bits before it, then the
 * pad's bits from i on); subkey and pad are HMAC-SHA256(key, "cryptopan-v1 ipv4\0") (or ipv6).
 */
function reference(key: Uint8Array, addr: Uint8Array): Uint8Array {
  const bits = bitsOf(addr);
  if (addr.length === 16 && bits.startsWith(MAPPED)) {
    return Uint8Array.from([...addr.subarray(0, 12), ...reference(key, addr.subarray(12))]);
  }
  const family = addr.length === 4 ? 'ipv4' : 'ipv6';
  const secret = createHmac('sha256', key).update(`cryptopan-v1 ${family}\0`).digest();
  const pad = bitsOf(secret.subarray(16));
  const blocks = family === 'ipv4' ? BITS_V4 : BITS_V6;
  let out = '';
  for (let i = 0; i < bits.length; i++) {
    const before = bits.slice(0, i);
    if (blocks.some((b) => i < b.length && b.startsWith(before))) {
      out += bits[i];
      continue;
    }
    const aes = createCipheriv('aes-128-ecb', secret.subarray(0, 16), null);
    aes.setAutoPadding(false);
    const enc = aes.update(bytesOf(before + pad.slice(i)));
    out += String(Number(bits[i]) ^ ((enc[0] as number) >> 7));
  }
  return bytesOf(out);
}

function commonBits(a: Uint8Array, b: Uint8Array): number {
  const x = bitsOf(a);
  const y = bitsOf(b);
  let n = 0;
  while (n < x.length && x[n] === y[n]) n++;
  return n;
}

/** Addresses anywhere, inside the kept blocks, or beside them (a bit of the block flipped). */
function arbNear(bytes: 4 | 16): fc.Arbitrary<Uint8Array> {
  const blocks = bytes === 4 ? BITS_V4 : [...BITS_V6, MAPPED, `${MAPPED}${BITS_V4[1]}`];
  const random = fc.uint8Array({ minLength: bytes, maxLength: bytes });
  const near = fc
    .record({ b: fc.constantFrom(...blocks), cut: fc.nat(128), flip: fc.boolean(), rnd: random })
    .map(({ b, cut, flip, rnd }) => {
      const k = Math.min(cut, b.length);
      let head = b.slice(0, k);
      if (flip && k > 0) head = head.slice(0, -1) + (head.endsWith('0') ? '1' : '0');
      return bytesOf(head + bitsOf(rnd).slice(k));
    });
  return fc.oneof(random, near);
}

/** Pairs of one family, some sharing a random number of leading bits exactly. */
function arbPair(bytes: 4 | 16): fc.Arbitrary<[Uint8Array, Uint8Array]> {
  const free = fc.tuple(arbNear(bytes), arbNear(bytes));
  const shared = fc
    .record({ a: arbNear(bytes), n: fc.nat(8 * bytes - 1), rnd: arbNear(bytes) })
    .map(({ a, n, rnd }): [Uint8Array, Uint8Array] => {
      const x = bitsOf(a);
      const flipped = x[n] === '0' ? '1' : '0';
      return [a, bytesOf(x.slice(0, n) + flipped + bitsOf(rnd).slice(n + 1))];
    });
  return fc.oneof(free, shared);
}

const hex = (a: Uint8Array) => Buffer.from(a).toString('hex');

// --- the mapping ---------------------------------------------------------------------------

t.test('redact: the mapping is the bit-by-bit Crypto-PAn reference, v4, v6 and ::ffff:v4', (t) => {
  const p = new AddressPseudonymizer(KEY);
  checkProperty(
    t,
    fc.property(fc.oneof(arbNear(4), arbNear(16)), (a) => {
      assert.equal(hex(p.map(a)), hex(reference(KEY, a)), formatAddress(a));
    }),
    { numRuns: 300 },
  );
  t.end();
});

t.test('redact: known answers pin cryptopan-v1 (the same key maps alike in every version)', (t) => {
  const p = new AddressPseudonymizer(KEY);
  const cases: [Uint8Array, string][] = [
    [Uint8Array.of(192, 0, 2, 1), '192.31.130.25'],
    [Uint8Array.of(10, 0, 0, 1), '10.31.190.249'],
    [Uint8Array.of(127, 0, 0, 1), '127.96.128.30'],
    [addressBytes('2001:db8::1'), '2033:df6:fe0f:fbf0:1fbe:15f9:e48:fde'],
    [addressBytes('fe80::1'), 'feac:83e0:f110:17f1:e041:f043:e48:4ffe'],
    [
      Uint8Array.of(...addressBytes('::ffff:0:0').subarray(0, 12), 198, 51, 100, 7),
      '::ffff:196.76.228.5',
    ],
  ];
  for (const [a, want] of cases) t.equal(formatAddress(p.map(a)), want, formatAddress(a));
  t.equal(p.keyId, '70f394ea');
  t.equal(p.hostName('fw1.example.org'), 'host-c4cd65c0');
  t.equal(p.interfaceName('eth0'), 'if-dd9a5026');
  t.equal(p.interfaceName('lo'), 'lo', 'lo says loopback and nothing else: it stays');
  t.end();
});

t.test('redact: deterministic per key (cached or fresh), different under another key', (t) => {
  const a = new AddressPseudonymizer(KEY);
  const b = new AddressPseudonymizer(Uint8Array.from(KEY));
  const c = new AddressPseudonymizer(OTHER_KEY);
  checkProperty(
    t,
    fc.property(fc.array(fc.oneof(arbNear(4), arbNear(16)), { minLength: 1 }), (addrs) => {
      for (const x of addrs) {
        const first = a.map(x);
        assert.equal(hex(a.map(x)), hex(first), 'the cached answer is the first one');
        assert.equal(hex(b.map(x)), hex(first), 'another instance, same key');
      }
    }),
  );
  const buffers = [
    Buffer.from(addressBytes('::ffff:0:0')),
    Buffer.from(addressBytes('2001:db8::1')),
    Buffer.of(1, 2, 3, 4),
  ];
  buffers[0]?.set([10, 0, 0, 1], 12);
  for (const buf of buffers) {
    const copy = Buffer.from(buf);
    a.map(buf);
    t.strictSame(buf, copy, `map leaves its input (a Buffer, as the reader decodes) alone`);
  }
  const publics = Array.from({ length: 64 }, (_, i) => Uint8Array.of(34, 71, i, 200 - i));
  const differ = publics.filter((x) => hex(a.map(x)) !== hex(c.map(x))).length;
  t.ok(differ >= 60, `another key maps ${differ} of 64 public addresses elsewhere`);
  t.not(a.keyId, c.keyId, 'and has another key id');
  t.not(a.hostName('fw1'), c.hostName('fw1'), 'and other host names');
  t.throws(() => new AddressPseudonymizer(new Uint8Array(15)), RangeError, 'a short key');
  t.end();
});

t.test('redact: injective on 20,000 IPv4 and 5,000 IPv6 addresses', (t) => {
  const p = new AddressPseudonymizer(KEY);
  for (const [bytes, n] of [
    [4, 20_000],
    [16, 5_000],
  ] as const) {
    const sample = fc.sample(arbNear(bytes), { numRuns: n, seed: 7 });
    const ins = new Set(sample.map(hex));
    const outs = new Set([...ins].map((h) => hex(p.map(Buffer.from(h, 'hex')))));
    t.equal(outs.size, ins.size, `${ins.size} distinct IPv${bytes === 4 ? 4 : 6} in, as many out`);
  }
  t.end();
});

t.test('redact: two addresses share exactly as many leading bits after as before', (t) => {
  const p = new AddressPseudonymizer(KEY);
  for (const bytes of [4, 16] as const) {
    checkProperty(
      t,
      fc.property(arbPair(bytes), ([a, b]) => {
        const before = commonBits(a, b);
        const after = commonBits(p.map(a), p.map(b));
        assert.equal(after, before, `${formatAddress(a)} ~ ${formatAddress(b)}`);
      }),
      { numRuns: 2000 },
    );
  }
  t.end();
});

t.test('redact: special blocks stay in their block; loopback, ::1, 0.0.0.0 stay', (t) => {
  const p = new AddressPseudonymizer(KEY);
  for (const [bytes, blocks] of [
    [4, BITS_V4],
    [16, BITS_V6],
  ] as const) {
    checkProperty(
      t,
      fc.property(
        fc.constantFrom(...blocks),
        fc.uint8Array({ minLength: bytes, maxLength: bytes }),
        (b, rnd) => {
          const a = bytesOf(b + bitsOf(rnd).slice(b.length));
          const out = p.map(a);
          assert.ok(bitsOf(out).startsWith(b), `${formatAddress(a)} → ${formatAddress(out)}`);
          assert.equal(isLoopback(out), isLoopback(a));
        },
      ),
    );
  }
  for (const fixed of ['::1', '::']) t.equal(formatAddress(p.map(addressBytes(fixed))), fixed);
  for (const fixed of ['0.0.0.0', '255.255.255.255']) {
    t.equal(formatAddress(p.map(Uint8Array.from(fixed.split('.').map(Number)))), fixed);
  }
  t.not(formatAddress(p.map(Uint8Array.of(127, 0, 0, 1))), '127.0.0.1', 'the rest is mapped');
  t.end();
});

t.test('redact: ::ffff:a.b.c.d maps to ::ffff: and the IPv4 mapping of a.b.c.d', (t) => {
  const p = new AddressPseudonymizer(KEY);
  checkProperty(
    t,
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (v4) => {
      const mapped = Uint8Array.from([...addressBytes('::ffff:0:0').subarray(0, 12), ...v4]);
      assert.equal(hex(p.map(mapped)), `00000000000000000000ffff${hex(p.map(v4))}`);
    }),
  );
  t.end();
});

// --- the journal ---------------------------------------------------------------------------

const quiet = (): RedactIo & { warnings: string[]; notes: string[] } => {
  const io = {
    warnings: [] as string[],
    notes: [] as string[],
    warn: (m: string) => io.warnings.push(m),
    note: (m: string) => io.notes.push(m),
  };
  return io;
};

const dir = tempDir(t, 'redact');
const keyFile = join(dir, 'redact.key');
writeFileSync(keyFile, KEY, { mode: 0o600 });
const otherKeyFile = join(dir, 'other.key');
writeFileSync(otherKeyFile, OTHER_KEY, { mode: 0o600 });
let serial = 0;
/** n events of a few flows, the same for a given seed. */
const someEvents = (n: number, seed: number): CtEvent[] =>
  fc.sample(arbFlowEvents({ minLength: n, maxLength: n }), { numRuns: 1, seed })[0] ?? [];
const fresh = (tag: string) => join(dir, `${tag}-${serial++}.mpk`);

interface Plan {
  header?: Partial<JournalHeaderInput>;
  batches: CtEvent[][];
  gaps?: { after: number; gap: JournalGap }[];
  /** Address sets noted after the batch of that index. */
  changes?: { after: number; addresses: HostAddress[] }[];
  trailer?: boolean;
}

function writePlan(path: string, plan: Plan): void {
  const w = JournalWriter.create(path, { ...HEADER, ...plan.header });
  plan.batches.forEach((b, i) => {
    w.append(b);
    for (const g of plan.gaps ?? []) if (g.after === i) w.appendGap(g.gap);
    for (const c of plan.changes ?? []) {
      if (c.after === i) w.noteAddresses({ time: HEADER.start + i, addresses: c.addresses });
    }
  });
  if (plan.trailer === false) w.closeAfterFailure();
  else w.close({ stop: HEADER.start + 90_000_000 });
}

const hostAddress = (address: Uint8Array, i: number): HostAddress => ({
  ifname: i === 0 ? 'lo' : `eth${i}`,
  family: address.length === 4 ? 4 : 6,
  address,
  prefix: address.length === 4 ? 24 : 64,
});

/** A flow with every address and host name mapped: what the redacted journal must give. */
function mapFlow(f: Flow, p: AddressPseudonymizer): Flow {
  const nat = f.nat && {
    ...(f.nat.dst ? { dst: { ...f.nat.dst, address: p.map(f.nat.dst.address) } } : {}),
    ...(f.nat.src ? { src: { ...f.nat.src, address: p.map(f.nat.src.address) } } : {}),
  };
  return {
    ...f,
    src: p.map(f.src),
    dst: p.map(f.dst),
    hosts: f.hosts.map((h) => p.hostName(h)).sort(),
    ...(nat ? { nat } : {}),
  };
}

/** Flows as plain data (addresses as text), in the table's order. */
const plainFlows = (flows: Flow[]) =>
  [...flows].sort(compareFlows).map((f) => {
    const nat = (n: NatTarget | undefined) => n && { ...n, address: formatAddress(n.address) };
    return {
      ...f,
      src: formatAddress(f.src),
      dst: formatAddress(f.dst),
      ...(f.nat ? { nat: { dst: nat(f.nat.dst), src: nat(f.nat.src) } } : {}),
    };
  });

const summaryFacts = (j: JournalSummary) => ({ ...j, path: '', host: '' });

t.test(
  'redact: a redacted journal analyzes to the same table, up to the mapping (flows, NAT, direction, hosts, coverage)',
  (t) => {
    const p = new AddressPseudonymizer(KEY);
    const arbPlan = fc
      .record({
        events: arbFlowEvents({ minLength: 1, maxLength: 50 }),
        cuts: fc.uniqueArray(fc.nat(50), { maxLength: 3 }),
        gaps: fc.array(
          fc.record({
            after: fc.nat(3),
            lost: fc.nat(500),
            lostKnown: fc.boolean(),
            cause: fc.constantFrom('ENOBUFS', 'QUEUE', 'EIO'),
          }),
          { maxLength: 2 },
        ),
        local: fc.array(fc.nat(), { maxLength: 4 }),
        later: fc.option(
          fc.record({ after: fc.nat(3), picks: fc.array(fc.nat(), { maxLength: 3 }) }),
        ),
        trailer: fc.boolean(),
      })
      .map((r): Plan => {
        const cuts = [0, ...r.cuts.filter((c) => c < r.events.length).sort((a, b) => a - b)];
        const batches = cuts.map((c, i) => r.events.slice(c, cuts[i + 1] ?? r.events.length));
        const seen = r.events.flatMap((e) => [e.orig.src, e.orig.dst, e.reply.src, e.reply.dst]);
        const pick = (n: number, i: number) => hostAddress(seen[n % seen.length] as Uint8Array, i);
        const dedupe = (list: HostAddress[]) =>
          list.filter((a, i) => list.findIndex((b) => hex(b.address) === hex(a.address)) === i);
        return {
          header: { addresses: dedupe(r.local.map(pick)) },
          batches: batches.filter((b) => b.length > 0),
          gaps: r.gaps.map((g) => ({
            after: g.after,
            gap: {
              from: HEADER.start + 10,
              to: HEADER.start + 20,
              lost: g.lost,
              lostKnown: g.lostKnown,
              cause: g.cause,
              resync: -1,
            },
          })),
          changes: r.later
            ? [{ after: r.later.after, addresses: dedupe(r.later.picks.map(pick)) }]
            : [],
          trailer: r.trailer,
        };
      });
    checkProperty(
      t,
      fc.property(arbPlan, (plan) => {
        const input = fresh('in');
        const output = fresh('out');
        writePlan(input, plan);
        const io = quiet();
        const result = redactJournal({ input, output, keyFile, force: false }, io);
        const before = analyzeJournals([input]);
        const after = analyzeJournals([output]);
        const want = plainFlows([...before.table.flows()].map((f) => mapFlow(f, p)));
        assert.deepEqual(plainFlows([...after.table.flows()]), want);
        assert.deepEqual(after.table.skipped, before.table.skipped);
        const [b, a] = [before.journals[0], after.journals[0]] as [JournalSummary, JournalSummary];
        assert.deepEqual(summaryFacts(a), summaryFacts(b), 'same coverage, counts, completeness');
        assert.equal(a.host, p.hostName(b.host));
        assert.equal(result.events, b.events);
        assert.equal(result.complete, plan.trailer !== false);
        assert.equal(io.warnings.length, plan.trailer === false ? 1 : 0, io.warnings.join('\n'));
      }),
      { numRuns: 60 },
    );
    t.end();
  },
);

for (const format of [1, 2] as const) {
  t.test(`redact: the output header is marked, scrubbed, and keeps format ${format}`, (t) => {
    const input = fresh('in');
    const output = fresh('out');
    writePlan(input, {
      header: {
        format,
        host: 'fw1.example.org',
        kernel: '6.8.0-45-generic',
        options: {
          collapse: '1024',
          table: '/var/lib/fw1/table.txt',
          user: 'alice',
          events: { new: true, update: true, destroy: false },
          filter: { protos: [6, 17], mark: null, noLoopback: true },
          snapshot: true,
          nickname: 'fw1',
        },
        addresses: [hostAddress(Uint8Array.of(127, 0, 0, 1), 0)],
      },
      batches: [],
    });
    const io = quiet();
    const r = redactJournal({ input, output, keyFile, force: false }, io);
    const p = new AddressPseudonymizer(KEY);
    const got = readWhole(output);
    t.equal(got.header.format, format, 'the input’s format');
    t.equal(got.header.host, p.hostName('fw1.example.org'));
    t.equal(got.header.kernel, '6.8.0-45-generic', 'a distribution kernel release stays');
    t.strictSame(got.header.options, {
      collapse: '1024',
      table: 'redacted',
      user: 'redacted',
      events: { new: true, update: true, destroy: false },
      filter: { protos: [6, 17], mark: null, noLoopback: true },
      snapshot: true,
      redacted: { scheme: 'cryptopan-v1', keyId: p.keyId },
    });
    t.strictSame(r.dropped, ['nickname'], 'an option this version does not know is dropped');
    t.match(io.warnings.join('\n'), /dropped header options .*: nickname/);
    t.equal(r.scrubbed, 2);
    t.equal(got.header.addresses?.[0]?.ifname, 'lo');
    t.match(
      io.notes[0],
      /^redacted 0 events, 0 gaps and 1 host address sets from .* \(key id [0-9a-f]{8}\)$/,
    );

    const again = fresh('again');
    t.throws(() => redactJournal({ input: output, output: again, keyFile, force: false }, io), {
      code: 'EREDACTED',
      exit: 2,
      message: new RegExp(`redacted already \\(scheme cryptopan-v1, key id ${p.keyId}\\)`),
    });
    t.notOk(existsSync(again), 'nothing written for an already redacted journal');
    t.end();
  });
}

t.test('redact: no original address or host name is left anywhere in the bytes', (t) => {
  const secrets4 = [
    [203, 0, 113, 77],
    [198, 51, 100, 23],
    [192, 168, 77, 12],
    [10, 77, 88, 99],
  ].map((a) => Uint8Array.from(a));
  const secrets6 = ['2001:db8:dead:beef::77', 'fd12:3456:789a::1', 'fe80::a8bb:ccff:fedd:eeff'].map(
    (a) => addressBytes(a),
  );
  const mapped = Uint8Array.from([...addressBytes('::ffff:0:0').subarray(0, 12), 100, 64, 3, 4]);
  const ev = (src: Uint8Array, dst: Uint8Array, nat?: Uint8Array): CtEvent => ({
    type: 1,
    family: src.length === 4 ? 4 : 6,
    proto: 6,
    status: 0xe,
    id: 5,
    time: HEADER.start + 5,
    timeKernel: false,
    orig: { src, dst, sport: 40000, dport: 443, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: {
      src: nat ?? dst,
      dst: src,
      sport: 443,
      dport: 40000,
      icmpType: 0,
      icmpCode: 0,
      icmpId: 0,
    },
  });
  const [a, b, c, d] = secrets4 as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const [e, f, g] = secrets6 as [Uint8Array, Uint8Array, Uint8Array];
  const input = fresh('leaky');
  const output = fresh('shared');
  writePlan(input, {
    header: {
      host: 'leaky-fw.corp.example',
      kernel: '6.1.0-leaky-fw',
      netns: 'net:[4026531840]',
      options: {
        importedFrom: { tool: 'conntrack -E', file: '/home/alice/leaky.txt', lines: 3 },
        table: '/srv/leaky-fw/flows.txt',
      },
      addresses: [hostAddress(a, 1), { ...hostAddress(e, 2), ifname: 'wg-alice' }],
    },
    batches: [
      [ev(a, b, c), ev(d, a)],
      [ev(e, f, g), ev(mapped, e)],
    ],
    gaps: [
      {
        after: 0,
        gap: {
          from: HEADER.start,
          to: HEADER.start + 1,
          lost: 1,
          lostKnown: true,
          cause: '203.0.113.77',
          resync: -1,
        },
      },
    ],
    changes: [{ after: 1, addresses: [hostAddress(c, 3), hostAddress(f, 4)] }],
  });
  redactJournal({ input, output, keyFile, force: false }, quiet());
  const bytes = readFileSync(output);
  const text = bytes.toString('latin1').toLowerCase();
  for (const s of [...secrets4, ...secrets6, mapped.subarray(12)]) {
    t.equal(bytes.indexOf(Buffer.from(s)), -1, `raw bytes of ${formatAddress(s)}`);
    t.notOk(text.includes(formatAddress(s)), `text of ${formatAddress(s)}`);
  }
  for (const word of ['leaky', 'corp.example', 'alice', '/srv', '/home', 'wg-', 'eth1']) {
    t.notOk(text.includes(word), `no "${word}"`);
  }
  const got = readWhole(output);
  t.equal(got.gaps[0]?.cause, 'REDACTED', 'a gap cause that could hold an address is replaced');
  t.equal(got.header.kernel, 'redacted', 'a kernel release naming the host is scrubbed');
  t.strictSame(got.header.options.importedFrom, {
    tool: 'conntrack -E',
    file: 'redacted',
    lines: 3,
  });
  const p = new AddressPseudonymizer(KEY);
  t.equal(
    hex(got.events[0]?.reply.src ?? new Uint8Array()),
    hex(p.map(c)),
    'the NAT address is mapped',
  );
  t.end();
});

t.test('redact: the same key maps a host shared by two journals alike', (t) => {
  const shared = Uint8Array.of(198, 51, 100, 9);
  const j1 = fresh('mon');
  const j2 = fresh('tue');
  const ev = (src: Uint8Array): CtEvent => ({
    type: 1,
    family: 4,
    proto: 17,
    status: 0xa,
    id: 1,
    time: HEADER.start + 1,
    timeKernel: false,
    orig: { src, dst: shared, sport: 5353, dport: 53, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: { src: shared, dst: src, sport: 53, dport: 5353, icmpType: 0, icmpCode: 0, icmpId: 0 },
  });
  writePlan(j1, { header: { host: 'dns1' }, batches: [[ev(Uint8Array.of(192, 0, 2, 1))]] });
  writePlan(j2, { header: { host: 'dns1' }, batches: [[ev(Uint8Array.of(192, 0, 2, 200))]] });
  const [o1, o2, o3] = [fresh('r'), fresh('r'), fresh('r')];
  redactJournal({ input: j1, output: o1, keyFile, force: false }, quiet());
  redactJournal({ input: j2, output: o2, keyFile, force: false }, quiet());
  redactJournal({ input: j2, output: o3, keyFile: otherKeyFile, force: false }, quiet());
  const [r1, r2, r3] = [o1, o2, o3].map(readWhole) as [
    ReturnType<typeof readWhole>,
    ReturnType<typeof readWhole>,
    ReturnType<typeof readWhole>,
  ];
  const dst = (r: typeof r1) => hex(r.events[0]?.orig.dst ?? new Uint8Array());
  t.equal(dst(r1), dst(r2), 'the shared server has one pseudonym in both journals');
  t.not(dst(r1), hex(shared));
  t.equal(r1.header.host, r2.header.host, 'and so has the host: reports still merge by host');
  t.strictSame(r1.header.options.redacted, r2.header.options.redacted, 'same key id');
  t.not(dst(r3), dst(r2), 'another key, another pseudonym');
  t.not(
    (r3.header.options.redacted as { keyId: string }).keyId,
    (r2.header.options.redacted as { keyId: string }).keyId,
  );
  const merged = analyzeJournals([o1, o2]);
  t.equal(merged.table.size, 2, 'two clients, one server');
  t.strictSame(
    [...merged.table.flows()].map((f) => f.hosts),
    [[r1.header.host], [r1.header.host]],
  );
  t.end();
});

t.test('redact: an input without trailer gives an output without trailer, and says so', (t) => {
  const input = fresh('crashed');
  const output = fresh('out');
  writePlan(input, {
    batches: [someEvents(5, 3)],
    trailer: false,
  });
  // A torn tail: half a frame after the last complete one.
  writeFileSync(input, Buffer.concat([readFileSync(input), Buffer.from([9, 0, 0, 0, 1, 2])]));
  const io = quiet();
  const r = redactJournal({ input, output, keyFile, force: false }, io);
  t.equal(r.complete, false);
  t.equal(readWhole(output).complete, false, 'no trailer in the output');
  t.match(io.warnings[0], /has no trailer .*\(6 torn bytes at its end left out\).* INCOMPLETE/);
  t.end();
});

t.test('redact: a modified or corrupt input is an error and leaves no file behind', (t) => {
  // Every frame valid, but the trailer's digest is not the file's: frames were replaced.
  const modified = fresh('modified');
  const w = JournalWriter.create(modified, HEADER);
  w.append(someEvents(3, 4));
  const counts = { events: w.events, byType: w.byType, frames: w.frames, gaps: 0, lost: 0 };
  w.closeAfterFailure();
  const trailer = { stop: HEADER.start + 1, ...counts, digest: new Uint8Array(32) };
  const frame = encodeFrame(FrameKind.TRAILER, encodeMap(trailer));
  writeFileSync(modified, Buffer.concat([readFileSync(modified), frame]));
  // A damaged header with valid frames after it.
  const corrupt = fresh('corrupt');
  const bytes = Buffer.from(readFileSync(modified));
  bytes[20] = (bytes[20] as number) ^ 0x55;
  writeFileSync(corrupt, bytes);
  for (const [input, code] of [
    [modified, 'EMODIFIED'],
    [corrupt, 'ECORRUPT'],
  ] as const) {
    const before = readdirSync(dir).sort();
    const out = fresh('out');
    t.throws(() => redactJournal({ input, output: out, keyFile, force: false }, quiet()), {
      code,
      exit: 1,
    });
    t.strictSame(readdirSync(dir).sort(), before, `${code}: no output, no temporary file`);
  }
  t.end();
});

t.test('redact: key and output checks come first and say what to do', (t) => {
  const input = fresh('in');
  writePlan(input, { batches: [] });
  const out = fresh('out');
  const short = join(dir, 'short.key');
  writeFileSync(short, 'secret\n', { mode: 0o600 });
  t.throws(() => redactJournal({ input, output: out, keyFile: undefined, force: false }, quiet()), {
    code: 'ENOKEY',
    exit: 2,
    message: /head -c 32 \/dev\/urandom/,
  });
  t.throws(() => redactJournal({ input, output: out, keyFile: short, force: false }, quiet()), {
    code: 'EKEY',
    exit: 2,
    message: /holds 7 bytes; a key needs at least 16 random bytes/,
  });
  t.throws(
    () =>
      redactJournal({ input, output: out, keyFile: join(dir, 'none.key'), force: false }, quiet()),
    { code: 'ENOENT', exit: 2 },
  );
  t.throws(() => redactJournal({ input, output: out, keyFile: dir, force: false }, quiet()), {
    code: 'EKEY',
    exit: 2,
    message: /not a regular file/,
  });
  const open = join(dir, 'open.key');
  writeFileSync(open, KEY);
  chmodSync(open, 0o644);
  const io = quiet();
  redactJournal({ input, output: out, keyFile: open, force: false }, io);
  t.match(io.warnings[0], /readable by group or others \(mode 644\).*chmod 600/);
  t.throws(() => redactJournal({ input, output: out, keyFile, force: false }, quiet()), {
    code: 'EEXIST',
    message: /pass --force/,
  });
  const ino = statSync(out).ino;
  t.equal(redactJournal({ input, output: out, keyFile, force: true }, quiet()).complete, true);
  t.not(statSync(out).ino, ino, '--force replaces it with a new file');
  t.throws(() => redactJournal({ input, output: input, keyFile, force: true }, quiet()), {
    code: 'ESAMEFILE',
    exit: 2,
  });
  t.end();
});

// --- rotated runs --------------------------------------------------------------------------

let runs = 0;
const runId = () => Buffer.alloc(RUN_ID_SIZE, 0x40 + ++runs);

/** A header as ct-record --rotate writes it: table dumped at the run's start, host addresses. */
const RUN_HEADER: JournalHeaderInput = {
  ...HEADER,
  host: 'fw1.example.org',
  options: { ...HEADER.options, snapshot: true, rotate: true, table: '/srv/fw1/table' },
  sysctls: { ...HEADER.sysctls, nf_conntrack_events: 2 },
  addresses: [
    hostAddress(Uint8Array.of(127, 0, 0, 1), 0),
    hostAddress(Uint8Array.of(198, 51, 100, 7), 1),
  ],
};

/**
 * Journals 1…n of one run named as ct-record names them (`fw1-N-000001.mpk`, …), chained as it
 * chains them: each with events of its own, a trailer naming the next one but on the last.
 */
function writeRun(n: number, run: Uint8Array = runId(), seed = runs): string[] {
  const output = join(dir, `fw1-${serial++}.mpk`);
  const paths: string[] = [];
  let previous: JournalChain['previous'] = null;
  for (let seq = 1; seq <= n; seq++) {
    const path = sequencePath(output, seq);
    const w = JournalWriter.create(path, {
      ...RUN_HEADER,
      start: HEADER.start + seq * 1_000_000,
      chain: { run, sequence: seq, previous },
    });
    w.append(someEvents(12, seed * 100 + seq));
    const next = seq < n ? { next: basename(sequencePath(output, seq + 1)) } : {};
    w.close({ stop: HEADER.start + (seq + 1) * 1_000_000, ...next });
    previous = { sha256: Buffer.from(w.sha256, 'hex'), file: basename(path) };
    paths.push(path);
  }
  return paths;
}

const freshDir = (tag: string) => {
  const d = join(dir, `${tag}-${serial++}`);
  mkdirSync(d);
  return d;
};

/** The kind of a checkChains fault, whatever the names in it. */
function faultKind(fault: string): string {
  if (/says the run goes on in it/.test(fault)) return 'end missing';
  if (/is missing|are missing/.test(fault)) return 'hole';
  if (/previous sha256 differs/.test(fault)) return 'link broken';
  if (/cannot check/.test(fault)) return 'link unchecked';
  return fault;
}

/** verify as the CLI runs it: per-run verdicts and their faults by kind. */
function chainVerdicts(paths: readonly string[]) {
  const results = paths.map(verifyJournal);
  const chains = checkChains(results);
  return {
    exit: verifyExit(results, chains),
    chains: chains.map((c) => ({
      journals: c.journals,
      open: c.open,
      faults: c.faults.map(faultKind),
    })),
    lines: chains.map(chainLine),
  };
}

/** The run a journal belongs to. */
function runOf(path: string): Uint8Array {
  const r = openJournal(path);
  r.close();
  const run = r.header.chain?.run;
  assert.ok(run !== undefined, `${path} is chained`);
  return run;
}

t.test('redact: a 3-journal run redacted together verifies complete, chained anew', (t) => {
  const run = runId();
  const inputs = writeRun(3, run);
  const out = freshDir('run');
  const io = quiet();
  // Any order: the chain, not the command line, says which comes first.
  const results = redactRun(
    {
      inputs: [inputs[2], inputs[0], inputs[1]] as string[],
      outputDir: out,
      keyFile,
      force: false,
    },
    io,
  );
  const names = [1, 2, 3].map((s) => redactedName(run, s));
  t.strictSame(
    names,
    ['000001', '000002', '000003'].map((n) => `run-${hex(run).slice(0, 8)}-${n}.mpk`),
  );
  t.strictSame(readdirSync(out).sort(), names, 'one journal per input, named by run and place');
  t.strictSame(
    results.map((r) => [r.input, r.output, r.chain?.sequence, r.chain?.previous, r.chain?.next]),
    [
      [inputs[0], join(out, names[0] as string), 1, 'none', names[1]],
      [inputs[1], join(out, names[1] as string), 2, 'linked', names[2]],
      [inputs[2], join(out, names[2] as string), 3, 'linked', null],
    ],
  );
  t.strictSame(io.warnings, [], 'nothing to warn about');
  t.equal(io.notes.length, 3);
  t.match(io.notes[1], new RegExp(`, journal 2 of run ${hex(run).slice(0, 8)} \\(key id`));

  const outputs = names.map((n) => join(out, n));
  const original = chainVerdicts(inputs);
  const redacted = chainVerdicts(outputs);
  t.strictSame(
    original.chains,
    [{ journals: 3, open: false, faults: [] }],
    'the original is whole',
  );
  t.strictSame(redacted.chains, original.chains, 'and so is the redacted run');
  t.equal(redacted.exit, 0);
  t.match(redacted.lines[0], `chain ${hex(run).slice(0, 8)}: 3 journals, complete`);

  // The links are real: each previous is the digest of the redacted file before it.
  for (let i = 1; i < 3; i++) {
    const r = openJournal(outputs[i] as string);
    const chain = r.header.chain;
    r.close();
    t.equal(hex(chain?.run ?? new Uint8Array()), hex(run), 'the run id is kept');
    t.equal(chain?.previous?.file, names[i - 1]);
    const digest = createHash('sha256')
      .update(readFileSync(outputs[i - 1] as string))
      .digest();
    t.equal(hex(chain?.previous?.sha256 ?? new Uint8Array()), digest.toString('hex'));
  }
  for (const path of outputs) {
    const bytes = readFileSync(path);
    for (const secret of ['fw1', 'srv', basename(inputs[0] as string)]) {
      t.notOk(bytes.includes(secret), `${basename(path)} holds no "${secret}" (names included)`);
    }
  }
  t.end();
});

t.test(
  'redact: a redacted run analyzes as the original run, up to the mapping, with no missing-dump warning',
  (t) => {
    const inputs = writeRun(3);
    const out = freshDir('analyze');
    const outputs = redactRun({ inputs, outputDir: out, keyFile, force: false }, quiet()).map(
      (r) => r.output,
    );
    const p = new AddressPseudonymizer(KEY);
    const before = analyzeJournals(inputs);
    const after = analyzeJournals(outputs);
    t.ok(before.table.size > 3, 'flows from every journal');
    t.strictSame(
      plainFlows([...after.table.flows()]),
      plainFlows([...before.table.flows()].map((f) => mapFlow(f, p))),
    );
    t.strictSame(after.journals.map(summaryFacts), before.journals.map(summaryFacts));
    t.strictSame(
      after.journals.map((j) => j.coverage.snapshotDumped),
      [true, false, false],
      'the run dumped its table once, in journal 1',
    );
    for (const j of after.journals) {
      t.notOk(
        j.coverage.warnings.some((w) => /no table dump|analyzed without/.test(w)),
        `${basename(j.path)}: no missing-dump warning`,
      );
    }
    // Journal 2 alone lacks journal 1, in the copy as in the original.
    const alone = analyzeJournals([outputs[1] as string]).journals[0]?.coverage.warnings ?? [];
    const name = redactedName(runOf(outputs[0] as string), 1);
    t.match(alone.join('\n'), `analyzed without journal 1 (${name})`);
    t.end();
  },
);

t.test('redact: verify says of a redacted run what it says of the original', (t) => {
  const whole = writeRun(4);
  // Journal 2 replaced by a well-formed journal with the same place in the run.
  const replaced = [...whole];
  const impostor = writeRun(2, runOf(whole[0] as string), 99)[1] as string;
  replaced[1] = impostor;
  const cases: [string, string[], string[]][] = [
    ['the whole run', whole, []],
    ['a hole (journal 3 not given)', [whole[0], whole[1], whole[3]] as string[], ['hole']],
    ['the run from its middle', whole.slice(1), ['hole']],
    ['without its end (journal 4 not given)', whole.slice(0, 3), ['end missing']],
    // The impostor does not follow journal 1, and journal 3 does not follow the impostor.
    ['journal 2 replaced', replaced, ['link broken', 'link broken']],
  ];
  for (const [what, inputs, faults] of cases) {
    const out = freshDir('faithful');
    const io = quiet();
    const outputs = redactRun({ inputs, outputDir: out, keyFile, force: false }, io).map(
      (r) => r.output,
    );
    const original = chainVerdicts(inputs);
    const redacted = chainVerdicts(outputs);
    t.strictSame(original.chains[0]?.faults, faults, `${what}: the original's faults`);
    t.equal(redacted.exit, original.exit, `${what}: the same exit`);
    t.strictSame(redacted.chains, original.chains, `${what}: the same verdict, the same faults`);
    const links = original.chains.flatMap((c) => c.faults).filter((f) => f !== 'end missing');
    t.equal(io.warnings.length, links.length, `${what}: one warning per link not recomputed`);
  }
  t.end();
});

t.test('redact: a failure on journal 3 of a run leaves none of its outputs', (t) => {
  const run = runId();
  const inputs = writeRun(2, run);
  // Journal 3: a good header and events, then a trailer whose digest is not the file's.
  const third = sequencePath((inputs[0] as string).replace(/-000001\.mpk$/, '.mpk'), 3);
  const prev = openJournal(inputs[1] as string);
  for (const _ of prev.items()) {
    // Read to the end for the whole-file digest.
  }
  const w = JournalWriter.create(third, {
    ...RUN_HEADER,
    chain: {
      run,
      sequence: 3,
      previous: {
        sha256: Buffer.from(prev.sha256 as string, 'hex'),
        file: basename(inputs[1] as string),
      },
    },
  });
  prev.close();
  w.append(someEvents(6, 33));
  const counts = { events: w.events, byType: w.byType, frames: w.frames, gaps: 0, lost: 0 };
  w.closeAfterFailure();
  const trailer = { stop: HEADER.start + 1, ...counts, digest: new Uint8Array(32) };
  writeFileSync(
    third,
    Buffer.concat([readFileSync(third), encodeFrame(FrameKind.TRAILER, encodeMap(trailer))]),
  );
  const out = freshDir('midway');
  t.throws(
    () => redactRun({ inputs: [...inputs, third], outputDir: out, keyFile, force: false }, quiet()),
    { code: 'EMODIFIED', exit: 1 },
  );
  t.strictSame(
    readdirSync(out),
    [],
    'journals 1 and 2 were redacted, then removed; no temporary file',
  );

  // A check that fails comes before any work: an existing output, an unchained journal.
  const taken = freshDir('taken');
  writeFileSync(join(taken, redactedName(run, 2)), 'mine');
  t.throws(() => redactRun({ inputs, outputDir: taken, keyFile, force: false }, quiet()), {
    code: 'EEXIST',
    message: /run-[0-9a-f]{8}-000002\.mpk exists; .*--force/,
  });
  t.strictSame(readdirSync(taken), [redactedName(run, 2)], 'nothing written, the file untouched');
  t.equal(readFileSync(join(taken, redactedName(run, 2)), 'utf8'), 'mine');
  const plainJournal = fresh('plain');
  writePlan(plainJournal, { batches: [someEvents(3, 1)] });
  const refusals: [string, string[], string, RegExp][] = [
    [
      'an unchained journal',
      [...inputs, plainJournal],
      'ENOCHAIN',
      /not a journal of a rotated run.*-o FILE/,
    ],
    ['one journal twice', [inputs[0] as string, ...inputs], 'EDUPLICATE', /give it once/],
    [
      'two journals in one place',
      [inputs[0] as string, inputs[1] as string, writeRun(2, run, 7)[1] as string],
      'EDUPLICATE',
      /both journal 2 of run/,
    ],
  ];
  for (const [what, list, code, message] of refusals) {
    const d = freshDir('refused');
    t.throws(
      () => redactRun({ inputs: list, outputDir: d, keyFile, force: false }, quiet()),
      {
        code,
        exit: 2,
        message,
      },
      what,
    );
    t.strictSame(readdirSync(d), [], `${what}: nothing written`);
  }
  t.end();
});

t.test(
  'redact: a chained journal redacted alone keeps its place; its link is honestly unknown',
  (t) => {
    const run = runId();
    const inputs = writeRun(3, run);
    const output = fresh('alone');
    const io = quiet();
    const r = redactJournal({ input: inputs[1] as string, output, keyFile, force: false }, io);
    t.strictSame(r.chain, {
      run: hex(run),
      sequence: 2,
      previous: 'unknown',
      next: redactedName(run, 3),
    });
    const got = openJournal(output);
    for (const _ of got.items()) {
      // To the trailer.
    }
    t.strictSame(
      {
        run: hex(got.header.chain?.run ?? new Uint8Array()),
        sequence: got.header.chain?.sequence,
        sha256: hex(got.header.chain?.previous?.sha256 ?? new Uint8Array(1)),
        file: got.header.chain?.previous?.file,
        next: got.trailer?.next,
      },
      {
        run: hex(run),
        sequence: 2,
        sha256: hex(UNKNOWN_PREVIOUS),
        file: redactedName(run, 1),
        next: redactedName(run, 3),
      },
    );
    got.close();
    t.match(
      io.warnings.join('\n'),
      /journal 2 of run .* cannot be recomputed: it was redacted alone.*redact its journals together/,
    );
    // With journal 1 redacted on its own too, verify calls the link broken: it is.
    const first = fresh('alone');
    redactJournal({ input: inputs[0] as string, output: first, keyFile, force: false }, quiet());
    const v = chainVerdicts([first, output]);
    t.equal(v.exit, 1);
    t.match(v.lines[0], /BROKEN — .*does not follow .*previous sha256 differs/);
    // Given alone to the run form (-o DIR), it is named by its place.
    const d = freshDir('alone-dir');
    const [viaDir] = runRedact(
      { inputs: [inputs[1] as string], output: d, keyFile, force: false },
      quiet(),
    );
    t.equal(viaDir?.output, join(d, redactedName(run, 2)));
    t.equal(viaDir?.chain?.previous, 'unknown');
    t.end();
  },
);

t.test('redact: several journals need -o to be an existing directory', (t) => {
  const inputs = writeRun(2);
  const notDir = fresh('not-a-dir');
  t.throws(() => runRedact({ inputs, output: notDir, keyFile, force: false }, quiet()), {
    code: 'ENOTDIR',
    exit: 2,
    message: /2 journals are given and .* is not a directory.*mkdir/,
  });
  t.notOk(existsSync(notDir));
  t.end();
});

// --- the CLI -------------------------------------------------------------------------------

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const BUILT = join(PACKAGE_ROOT, 'dist', 'analyzer', 'redact', 'redact.js');

function staleBuild(): string | undefined {
  for (const [src, out] of [
    ['analyzer/redact/redact.ts', BUILT],
    ['analyzer/cli.ts', CLI],
  ] as const) {
    const built = statSync(out, { throwIfNoEntry: false });
    if (built === undefined) return `${out} is missing: run npm run build first`;
    if (statSync(join(PACKAGE_ROOT, src)).mtimeMs > built.mtimeMs) {
      return `${src} is newer than ${out}: run npm run build first`;
    }
  }
  return undefined;
}

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const STACK = /\n\s+at /;

t.test('cli: redact writes a journal verify calls OK; every refusal has its exit code', (t) => {
  const stale = staleBuild();
  if (stale !== undefined) {
    t.fail(stale);
    t.end();
    return;
  }
  const input = fresh('cli-in');
  writePlan(input, {
    header: { host: 'cli-host' },
    batches: [someEvents(10, 5)],
  });
  const out = fresh('cli-out');
  const ok = cli('redact', '--key', keyFile, '-o', out, input);
  t.equal(ok.code, 0, 'redact exits 0');
  t.match(
    ok.err,
    /^ct-analyze: note: redacted 10 events, 0 gaps and 0 host address sets from .* \(key id [0-9a-f]{8}\)\n$/,
  );
  const verdict = cli('verify', out);
  t.equal(verdict.code, 0);
  t.match(verdict.out, `${out}: OK — `);
  t.match(cli(out).out, /host host-[0-9a-f]{8}/, 'the report names the pseudonym');

  const refusals: [string, string[], number, RegExp][] = [
    ['no key', ['redact', '-o', fresh('x'), input], 2, /--key FILE.*head -c 32 \/dev\/urandom/],
    [
      'a missing key file',
      ['redact', '--key', join(dir, 'none.key'), '-o', fresh('x'), input],
      2,
      /cannot read the key file/,
    ],
    [
      'an existing output',
      ['redact', '--key', keyFile, '-o', out, input],
      1,
      /exists; choose another path or pass --force/,
    ],
    [
      'a redacted input',
      ['redact', '--key', keyFile, '-o', fresh('x'), out],
      2,
      /redacted already/,
    ],
  ];
  const shortKey = join(dir, 'cli-short.key');
  writeFileSync(shortKey, Buffer.alloc(8, 1), { mode: 0o600 });
  refusals.push([
    'a short key',
    ['redact', '--key', shortKey, '-o', fresh('x'), input],
    2,
    /holds 8 bytes/,
  ]);
  const corrupt = fresh('cli-corrupt');
  const bytes = readFileSync(input);
  bytes[20] = (bytes[20] as number) ^ 0x55; // inside the header, a valid frame after it
  writeFileSync(corrupt, bytes);
  refusals.push([
    'a damaged input',
    ['redact', '--key', keyFile, '-o', fresh('x'), corrupt],
    1,
    /corrupt|modified/,
  ]);
  for (const [what, args, code, message] of refusals) {
    const before = readdirSync(dir).sort();
    const r = cli(...args);
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.match(r.err, message, `${what}: says why`);
    t.notMatch(r.err, STACK, `${what}: no stack trace`);
    t.strictSame(readdirSync(dir).sort(), before, `${what}: no file left behind`);
  }
  const forced = cli('redact', '--key', keyFile, '-o', out, '--force', input);
  t.equal(forced.code, 0, '--force replaces the output');

  const help = cli('redact', '--help');
  t.equal(help.code, 0);
  t.match(help.out, /\$ ct-analyze redact --key redact\.key -o fw1-shared\.mpk fw1\.mpk/);
  t.match(
    cli('--help').out,
    /ct-analyze redact --key <file> -o <journal\|dir> \[options\] <journal\.\.\.>/,
  );
  t.end();
});

t.test(
  'cli: redact -o DIR of a run gives a run verify calls complete; -o FILE for several is exit 2',
  (t) => {
    const stale = staleBuild();
    if (stale !== undefined) {
      t.fail(stale);
      t.end();
      return;
    }
    const run = runId();
    const inputs = writeRun(3, run);
    const out = freshDir('cli-run');
    const ok = cli('redact', '--key', keyFile, '-o', out, ...[...inputs].reverse());
    t.equal(ok.code, 0, ok.err);
    t.equal(ok.err.match(/^ct-analyze: note: redacted /gm)?.length, 3, 'one summary per journal');
    const outputs = [1, 2, 3].map((s) => join(out, redactedName(run, s)));
    const verdict = cli('verify', ...outputs);
    t.equal(verdict.code, 0, verdict.out);
    t.match(verdict.out, `chain ${hex(run).slice(0, 8)}: 3 journals, complete`);
    const partial = cli('verify', outputs[0] as string, outputs[2] as string);
    t.equal(partial.code, 1, 'a journal left out is a hole, as in the original');
    t.match(partial.out, /BROKEN — .*run-[0-9a-f]{8}-000002\.mpk is missing/);

    const before = readdirSync(dir).sort();
    const notDir = cli('redact', '--key', keyFile, '-o', fresh('cli-x'), ...inputs);
    t.equal(notDir.code, 2);
    t.match(notDir.err, /3 journals are given and .* is not a directory/);
    t.notMatch(notDir.err, STACK);
    t.strictSame(readdirSync(dir).sort(), before, 'nothing written');
    t.match(
      cli('redact', '--help').out,
      /\$ mkdir shared && ct-analyze redact --key redact\.key -o shared fw1-\*\.mpk/,
    );
    t.end();
  },
);

// --- the order of redacted address sets ----------------------------------------------------

/** Byte order of a host address as the journal holds it: family, address, prefix, interface. */
const byBytes = (a: HostAddress, b: HostAddress) =>
  a.family - b.family ||
  Buffer.compare(Buffer.from(a.address), Buffer.from(b.address)) ||
  a.prefix - b.prefix ||
  (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0);

/** Every host address set of a journal, the header's first, each as its list of addresses. */
function addressLists(path: string): HostAddress[][] {
  const reader = openJournal(path);
  try {
    for (const _ of reader.items()) {
      // Reading the frames reads the checkpoints' address sets.
    }
    return reader.addressSets.map((s) => [...s.addresses]);
  } finally {
    reader.close();
  }
}

/** Distinct addresses of one /16 (v4) or /48 (v6): neighbours whose order hides key bits. */
const arbNeighbours = fc.uniqueArray(
  fc.oneof(
    fc.tuple(fc.nat(255), fc.nat(255)).map(([c, d]) => Uint8Array.of(10, 20, c, d)),
    fc
      .uint8Array({ minLength: 10, maxLength: 10 })
      .map((tail) => Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 1, ...tail])),
  ),
  { minLength: 2, maxLength: 12, selector: (a) => hex(a) },
);

t.test(
  'redact: every host address set comes out sorted by its pseudonyms, byte order, header and checkpoints alike',
  (t) => {
    const p = new AddressPseudonymizer(KEY);
    checkProperty(
      t,
      fc.property(arbNeighbours, arbNeighbours, (first, later) => {
        // The original order is the sorted one (as ip addr often gives it): the one to hide.
        const asSet = (list: Uint8Array[]) =>
          list.map((a, i) => hostAddress(a, i + 1)).sort(byBytes);
        const input = fresh('order-in');
        const output = fresh('order-out');
        writePlan(input, {
          header: { addresses: asSet(first) },
          batches: [someEvents(3, first.length)],
          changes: [{ after: 0, addresses: asSet(later) }],
        });
        redactJournal({ input, output, keyFile, force: false }, quiet());
        const lists = addressLists(output);
        assert.equal(lists.length, 2, 'the header set and the checkpoint set');
        for (const [i, list] of lists.entries()) {
          assert.deepEqual(list, [...list].sort(byBytes), `set ${i} sorted by its new values`);
          // Exactly the pseudonyms of the input set, in their own order, not the input's.
          const want = (i === 0 ? first : later).map((a) => hex(p.map(a))).sort();
          const v4first = (x: string, y: string) => x.length - y.length;
          assert.deepEqual(
            list.map((a) => hex(a.address)),
            want.sort((x, y) => v4first(x, y) || (x < y ? -1 : x > y ? 1 : 0)),
          );
        }
      }),
      { numRuns: 40 },
    );
    t.end();
  },
);

t.test(
  'redact: the original order of an address set cannot be recovered: any order in, one order out',
  (t) => {
    checkProperty(
      t,
      fc.property(
        arbNeighbours.chain((list) =>
          fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length })),
        ),
        ([sorted, shuffled]) => {
          const outputs = [sorted, shuffled].map((list) => {
            // The same interface for the same address: only the order differs between the two.
            const byAddress = new Map(sorted.map((a, i) => [hex(a), hostAddress(a, i + 1)]));
            const input = fresh('perm-in');
            const output = fresh('perm-out');
            writePlan(input, {
              header: { addresses: list.map((a) => byAddress.get(hex(a)) as HostAddress) },
              batches: [],
            });
            redactJournal({ input, output, keyFile, force: false }, quiet());
            return addressLists(output)[0]?.map((a) => `${a.ifname} ${hex(a.address)}`);
          });
          assert.deepEqual(outputs[1], outputs[0]);
        },
      ),
      { numRuns: 40 },
    );
    t.end();
  },
);
