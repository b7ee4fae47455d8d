// The kernel filter (classic BPF) keeps exactly the events the user-space filter keeps, and lets
// every message that is not a conntrack event through.
import fc from 'fast-check';
import t from 'tap';
import { type Cidr, parseCidr } from '../../analyzer/core/prefix.js';
import type { CtEvent } from '../../journal/event.js';
import { BPF, type BpfInsn, compileBpf, packBpf } from '../../recorder/bpf.js';
import {
  collectCidrs,
  compileFilter,
  type EventFilter,
  MAX_PREFIXES,
} from '../../recorder/filter.js';
import { arbEvent, checkProperty } from '../helpers/arbitraries.js';
import { eventMessage, plainMessage, runBpf } from '../helpers/cbpf.js';

const loop4 = Uint8Array.of(127, 0, 0, 1);
const loop6 = Uint8Array.from([...Array(15).fill(0), 1]);

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(text);
  return c;
};

/** A prefix around `addr` (so that some events match), or of a random address. */
function arbPrefixOf(addrs: Uint8Array[]): fc.Arbitrary<Cidr> {
  const around =
    addrs.length === 0
      ? fc.constant(undefined)
      : fc.constantFrom(...addrs).map((a) => a as Uint8Array | undefined);
  return fc
    .tuple(
      around,
      fc.boolean(),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      // Short prefixes often, so that several events fall in one.
      fc.oneof(fc.constantFrom(0, 1, 4, 8), fc.nat(128)),
    )
    .map(([a, v4, rnd, len]) => {
      const bytes = a ?? (v4 ? rnd.subarray(0, 4) : rnd);
      const bits = bytes.length * 8;
      let n = 0n;
      for (const b of bytes) n = (n << 8n) | BigInt(b);
      const prefix = len % (bits + 1);
      const host = (1n << BigInt(bits - prefix)) - 1n;
      return { family: bytes.length === 4 ? 4 : 6, network: n & ~host, prefix } as Cidr;
    });
}

function arbFilterFor(events: CtEvent[]): fc.Arbitrary<EventFilter> {
  const srcs = events.map((e) => e.orig.src);
  const dsts = events.map((e) => e.orig.dst);
  return fc.record(
    {
      protos: fc.uniqueArray(fc.constantFrom(1, 6, 17, 58, ...events.map((e) => e.proto)), {
        minLength: 1,
        maxLength: 4,
      }),
      mark: fc
        .tuple(fc.constantFrom(0, 1, 0x10, 0xff), fc.constantFrom(0xffffffff, 0xf0, 0x0f))
        .map(([v, m]) => ({ value: (v & m) >>> 0, mask: m })),
      noLoopback: fc.boolean(),
      src: fc.array(arbPrefixOf(srcs), { minLength: 1, maxLength: 4 }),
      dst: fc.array(arbPrefixOf(dsts), { minLength: 1, maxLength: 4 }),
    },
    { requiredKeys: [] },
  );
}

// Events on the event socket (NEW, UPDATE, DESTROY), with small marks and loopback addresses.
const arbSocketEvent: fc.Arbitrary<CtEvent> = fc
  .tuple(
    arbEvent(),
    fc.constantFrom(1, 2, 3),
    fc.option(fc.constantFrom(1, 0x10, 0x11, 0xff, 0x1f0), { nil: undefined }),
    fc.nat(3),
  )
  .map(([ev, type, mark, loop]) => {
    const lo = ev.family === 4 ? loop4 : loop6;
    const orig = { ...ev.orig };
    if (loop === 1) orig.src = lo;
    if (loop === 2) orig.dst = lo;
    return { ...ev, type: type as 1 | 2 | 3, orig, mark };
  });

function verdicts(prog: BpfInsn[], events: CtEvent[]): boolean[] {
  return events.map((e) => runBpf(prog, eventMessage(e)) !== 0);
}

t.test('the BPF verdict equals the user-space predicate for every event and filter', (t) => {
  checkProperty(
    t,
    fc.property(
      fc
        .array(arbSocketEvent, { minLength: 1, maxLength: 30 })
        .chain((events) => fc.tuple(fc.constant(events), arbFilterFor(events))),
      ([events, f]) => {
        const keep = compileFilter(f);
        const prog = compileBpf(f);
        if (keep === undefined || prog === undefined) return keep === prog;
        const want = events.map(keep);
        const got = verdicts(prog, events);
        return want.every((w, i) => w === got[i]);
      },
    ),
    { numRuns: 400 },
  );
  t.end();
});

t.test('the property is not vacuous: generated filters both keep and drop events', (t) => {
  let kept = 0;
  let dropped = 0;
  fc.assert(
    fc.property(
      fc
        .array(arbSocketEvent, { minLength: 5, maxLength: 20 })
        .chain((events) => fc.tuple(fc.constant(events), arbFilterFor(events))),
      ([events, f]) => {
        const prog = compileBpf(f);
        if (prog === undefined) return;
        for (const v of verdicts(prog, events)) v ? kept++ : dropped++;
      },
    ),
    { numRuns: 300 },
  );
  t.ok(kept > 40, `kept ${kept}`); // about 150 expected
  t.ok(dropped > 40, `dropped ${dropped}`);
  t.end();
});

t.test('an empty filter compiles to no program', (t) => {
  t.equal(compileBpf({}), undefined);
  t.equal(compileBpf({ noLoopback: false }), undefined);
  t.end();
});

t.test('messages that are not conntrack events pass a filter that drops every event', (t) => {
  // Keeps only protocol 200 and mark 0x5: no generated event passes.
  const prog = compileBpf({
    protos: [200],
    mark: { value: 5, mask: 0xff },
    noLoopback: true,
    src: [cidr('192.0.2.0/24')],
    dst: [cidr('2001:db8::/32')],
  });
  if (prog === undefined) throw new Error('no program');
  const ev: CtEvent = {
    type: 1,
    family: 4,
    proto: 6,
    status: 8,
    id: 1,
    time: 0,
    timeKernel: false,
    orig: { src: loop4, dst: loop4, sport: 1, dport: 2, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: { src: loop4, dst: loop4, sport: 2, dport: 1, icmpType: 0, icmpCode: 0, icmpId: 0 },
  };
  t.equal(runBpf(prog, eventMessage(ev)), 0, 'the event itself is dropped');
  t.not(runBpf(prog, plainMessage(2)), 0, 'NLMSG_ERROR passes');
  t.not(runBpf(prog, plainMessage(3)), 0, 'NLMSG_DONE passes');
  t.not(runBpf(prog, plainMessage(1)), 0, 'NLMSG_NOOP passes');
  t.not(runBpf(prog, plainMessage((2 << 8) | 0)), 0, 'an expectation event passes');
  t.not(runBpf(prog, plainMessage((1 << 8) | 1)), 0, 'a GET message passes');
  const bridge = eventMessage(ev);
  bridge[16] = 7; // AF_BRIDGE: the parser skips other families
  t.not(runBpf(prog, bridge), 0, 'an event of another family passes to the parser');
  const bare = eventMessage(ev).subarray(0, 20);
  new DataView(bare.buffer, bare.byteOffset).setUint32(0, 20, true);
  t.not(
    runBpf(prog, bare),
    0,
    'an event without its tuple passes (the parser counts it malformed)',
  );
  t.end();
});

t.test('many prefixes make a program over 256 instructions whose far jumps still land', (t) => {
  const src = Array.from({ length: MAX_PREFIXES }, (_, i) =>
    cidr(`2001:db8:${i.toString(16)}::/48`),
  );
  const dst = Array.from({ length: MAX_PREFIXES }, (_, i) => cidr(`10.${i}.0.0/16`));
  const f: EventFilter = { src, dst, noLoopback: true, protos: [6, 17] };
  const prog = compileBpf(f);
  if (prog === undefined) throw new Error('no program');
  t.ok(prog.length > 256 && prog.length <= BPF.MAXINSNS, `${prog.length} instructions`);
  const keep = compileFilter(f);
  if (keep === undefined) throw new Error('no predicate');
  checkProperty(
    t,
    fc.property(arbSocketEvent, fc.nat(MAX_PREFIXES - 1), fc.boolean(), (e, i, hit) => {
      // A hit puts the source (IPv6) or the destination (IPv4) inside the i-th prefix.
      const ev = { ...e, orig: { ...e.orig } };
      if (hit && ev.family === 6) {
        ev.orig.src = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, i, ...e.orig.src.subarray(6));
      }
      if (hit && ev.family === 4) ev.orig.dst = Uint8Array.of(10, i, 7, 7);
      return (runBpf(prog, eventMessage(ev)) !== 0) === keep(ev);
    }),
    { numRuns: 300 },
  );
  t.end();
});

t.test('packBpf lays out struct sock_filter in the host byte order', (t) => {
  const prog = [{ code: 0x15, jt: 1, jf: 2, k: 0x01020304 }];
  t.same([...packBpf(prog, 'LE')], [0x15, 0, 1, 2, 4, 3, 2, 1]);
  t.same([...packBpf(prog, 'BE')], [0, 0x15, 1, 2, 1, 2, 3, 4]);
  t.end();
});

t.test('--src and --dst read prefixes, repeated or comma-separated, and refuse the rest', (t) => {
  const got = collectCidrs('fd00::/8', collectCidrs('10.1.2.3/8,192.0.2.7', undefined));
  t.same(
    got.map((c) => [c.family, c.prefix]),
    [
      [4, 8],
      [4, 32],
      [6, 8],
    ],
  );
  t.equal(got[0]?.network, 0x0a000000n, 'host bits are cleared');
  t.same(collectCidrs('10.0.0.0/8', got).length, 3, 'a repeated prefix is kept once');
  for (const bad of ['10.0.0.0/33', 'x', '10.0.0.0/8/1', 'fd00::/129', '']) {
    t.throws(() => collectCidrs(bad, undefined), /not an address prefix/, `refuses '${bad}'`);
  }
  let many: Cidr[] = [];
  for (let i = 0; i < MAX_PREFIXES; i++) many = collectCidrs(`10.${i}.0.0/16`, many);
  t.throws(() => collectCidrs('11.0.0.0/8', many), /at most/);
  t.end();
});
