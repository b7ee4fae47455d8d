// The kernel filter (classic BPF) keeps exactly the events the user-space filter keeps, and lets
// every message that is not a conntrack event through.
import fc from 'fast-check';
import t from 'tap';
import { type Cidr, parseCidr } from '../../analyzer/core/prefix.js';
import { type CtEvent, EventType, Status } from '../../journal/event.js';
import {
  BPF,
  type BpfInsn,
  compileBpf,
  kernelFilterLine,
  packBpf,
  planKernelFilter,
} from '../../recorder/bpf.js';
import { EventDiet } from '../../recorder/diet.js';
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

// The event diet in the kernel (-e minimal): the stateless part of recorder/diet.ts.

const SR_AS = Status.SEEN_REPLY | Status.ASSURED;
/** enum tcp_conntrack */
const TCP = { SYN_SENT: 1, SYN_RECV: 2, ESTABLISHED: 3, FIN_WAIT: 4, TIME_WAIT: 7, CLOSE: 8 };

const dietOnly = compileBpf({}, { diet: true });
if (dietOnly === undefined) throw new Error('-e minimal alone compiles to no program');

/** Whether the kernel leaves `ev` out (the event socket: NEW, UPDATE and DESTROY only). */
const rejects = (prog: BpfInsn[], ev: CtEvent, flags?: number) =>
  runBpf(prog, eventMessage(ev, flags)) === 0;

/** What conntrack would tie together: the diet's entry (id and both tuples). */
const entryKey = (e: CtEvent) =>
  [e.id, e.family, e.proto, e.zone ?? 0, ...[e.orig, e.reply].flatMap(Object.values)].join(' ');

/**
 * Event sequences over a few conntrack entries (mostly TCP), in time order, with any type,
 * status, TCP state and mark, under the one kernel fact the rule relies on: TCP sets
 * IPS_ASSURED on the way into ESTABLISHED, after the reply was seen, so an entry's first UPDATE
 * carrying both IPS_SEEN_REPLY and IPS_ASSURED (since its last DESTROY) has a TCP state before
 * FIN_WAIT, or none (an UPDATE without CTA_PROTOINFO); a NEW starts another entry.
 * An entry may be older than the recording (its UPDATE with both bits was sent before: its
 * first event here can be one the kernel rejects) and ids are reused after DESTROY.
 */
const arbDietSequence: fc.Arbitrary<CtEvent[]> = fc
  .tuple(
    fc.array(arbEvent({ small: true, protos: [6, 6, 6, 17, 1] }), { minLength: 1, maxLength: 5 }),
    fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
    fc.array(
      fc.record({
        entry: fc.nat(4),
        type: fc.constantFrom(1, 2, 2, 2, 2, 2, 3, 4),
        seen: fc.boolean(),
        assured: fc.boolean(),
        state: fc.option(fc.nat(10), { nil: undefined, freq: 5 }),
        mark: fc.option(fc.constantFrom(0, 1, 0x10), { nil: undefined, freq: 2 }),
      }),
      { minLength: 10, maxLength: 60, size: 'max' },
    ),
  )
  .map(([bases, older, steps]) => {
    // The status bits each entry has: IPS_SEEN_REPLY and IPS_ASSURED are never cleared.
    const bits = bases.map((_, i) => (older[i] ? SR_AS : 0));
    return steps.map((s, time): CtEvent => {
      const i = s.entry % bases.length;
      const base = bases[i] as CtEvent;
      const type = s.type as CtEvent['type'];
      let tcpState = base.proto === 6 ? s.state : undefined;
      // A NEW is another entry (a reused id: its DESTROY was lost).
      const had = type === EventType.NEW ? 0 : (bits[i] as number);
      const status = had | (s.seen ? Status.SEEN_REPLY : 0) | (s.assured ? Status.ASSURED : 0);
      if (
        type === EventType.UPDATE &&
        (had & SR_AS) !== SR_AS &&
        (status & SR_AS) === SR_AS &&
        tcpState !== undefined &&
        tcpState >= TCP.FIN_WAIT
      ) {
        tcpState = TCP.ESTABLISHED;
      }
      bits[i] = type === EventType.DESTROY ? 0 : status;
      const { tcpState: _s, mark: _m, ...rest } = base;
      const ev: CtEvent = {
        ...rest,
        id: i + 1,
        type,
        time,
        status: Status.CONFIRMED | status,
      };
      if (tcpState !== undefined) ev.tcpState = tcpState;
      if (s.mark !== undefined) ev.mark = s.mark;
      return ev;
    });
  });

/**
 * Runs the user-space diet over the whole sequence (what `-e minimal` keeps without the kernel
 * rule) beside the kernel's verdicts: each event's verdicts and whether it is its entry's first
 * event in the journal (no event of its id and tuples since the last DESTROY).
 */
function dietBeside(prog: BpfInsn[], events: readonly CtEvent[]) {
  const diet = new EventDiet(1 << 20);
  const held = new Map<number, string>();
  return events.map((ev) => {
    const first = held.get(ev.id) !== entryKey(ev);
    if (ev.type === EventType.DESTROY) held.delete(ev.id);
    else held.set(ev.id, entryKey(ev));
    // Dump entries come on the dump socket: the program never sees them.
    const rejected = ev.type !== EventType.SNAPSHOT && rejects(prog, ev);
    return { ev, kept: diet.keeps(ev), rejected, first };
  });
}

t.test(
  'kernel diet: every event it rejects is one the user-space diet leaves out, but for an entry’s first event',
  (t) => {
    let rejected = 0;
    let firsts = 0;
    checkProperty(
      t,
      fc.property(arbDietSequence, (events) => {
        const seen = dietBeside(dietOnly, events);
        for (const v of seen) {
          if (v.rejected && v.kept && !v.first) return false;
          if (v.rejected) rejected++;
          if (v.rejected && v.first) firsts++;
        }
        // When no first event was rejected, the journals are the same: the diet after the
        // kernel keeps exactly what the diet alone keeps.
        if (seen.some((v) => v.rejected && v.first)) return true;
        const after = new EventDiet(1 << 20);
        const fromKernel = seen.filter((v) => !v.rejected && after.keeps(v.ev)).map((v) => v.ev);
        const alone = seen.filter((v) => v.kept).map((v) => v.ev);
        return fromKernel.length === alone.length && fromKernel.every((e, i) => e === alone[i]);
      }),
      { numRuns: 500 },
    );
    // Not vacuous: the generated sequences hold events the kernel rejects, first ones too.
    t.ok(rejected > 200, `rejected ${rejected}`);
    t.ok(firsts > 10, `rejected as an entry's first event ${firsts}`);
    t.end();
  },
);

t.test(
  'kernel diet: with a filter, an event passes only when both the filter and the diet pass it',
  (t) => {
    checkProperty(
      t,
      fc.property(
        fc
          .array(arbSocketEvent, { minLength: 1, maxLength: 20 })
          .chain((events) => fc.tuple(fc.constant(events), arbFilterFor(events))),
        fc.array(fc.constantFrom(TCP.ESTABLISHED, TCP.FIN_WAIT, TCP.TIME_WAIT), { minLength: 20 }),
        ([events, f], states) => {
          const both = compileBpf(f, { diet: true });
          const alone = compileBpf(f);
          if (both === undefined) return false;
          return events.every((e0, i) => {
            // Often one the diet rejects: an assured TCP UPDATE, unmarked.
            const e =
              e0.proto === 6 && i % 2 === 0
                ? { ...e0, type: 2 as const, status: SR_AS, tcpState: states[i], mark: undefined }
                : e0;
            const filterKeeps = alone === undefined || !rejects(alone, e);
            return !rejects(both, e) === (filterKeeps && !rejects(dietOnly, e));
          });
        },
      ),
      { numRuns: 300 },
    );
    t.end();
  },
);

/** A TCP UPDATE as the kernel sends it once the entry is confirmed and assured. */
function closing(state: number, extra: Partial<CtEvent> = {}): CtEvent {
  const a = Uint8Array.of(192, 0, 2, 1);
  const b = Uint8Array.of(192, 0, 2, 80);
  return {
    type: 2,
    family: 4,
    proto: 6,
    status: SR_AS | Status.CONFIRMED,
    id: 7,
    time: 0,
    timeKernel: false,
    orig: { src: a, dst: b, sport: 40000, dport: 80, ...none },
    reply: { src: b, dst: a, sport: 80, dport: 40000, ...none },
    tcpState: state,
    ...extra,
  };
}

const none = { icmpType: 0, icmpCode: 0, icmpId: 0 };
const v6 = (() => {
  const a = Uint8Array.of(0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 1);
  const b = Uint8Array.of(0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 2);
  return {
    family: 6 as const,
    orig: { src: a, dst: b, sport: 40000, dport: 80, ...none },
    reply: { src: b, dst: a, sport: 80, dport: 40000, ...none },
  };
})();

t.test('kernel diet: rejects the assured, unmarked UPDATEs from FIN_WAIT on', (t) => {
  for (const state of [4, 5, 6, 7, 8, 9, 10]) {
    t.ok(rejects(dietOnly, closing(state)), `TCP state ${state}`);
  }
  t.ok(rejects(dietOnly, closing(7, { mark: 0 })), 'a CTA_MARK of 0 (the mark was cleared)');
  t.ok(rejects(dietOnly, closing(7, v6)), 'IPv6 alike');
  // native/parse.cc reads a CT_NEW message without both NLM_F_CREATE and NLM_F_EXCL as UPDATE.
  t.ok(rejects(dietOnly, closing(7), 0x400), 'NLM_F_CREATE alone: an UPDATE to the parser');
  t.end();
});

t.test(
  'kernel diet: passes NEW, DESTROY, dump replies, marked UPDATEs and the UPDATEs that can add a flag',
  (t) => {
    const time = closing(TCP.TIME_WAIT);
    t.notOk(rejects(dietOnly, { ...time, type: 1 }), 'NEW (NLM_F_CREATE | NLM_F_EXCL)');
    t.notOk(rejects(dietOnly, { ...time, type: 3 }), 'DESTROY');
    t.notOk(rejects(dietOnly, time, 0x2), 'a dump reply (NLM_F_MULTI)');
    t.notOk(rejects(dietOnly, { ...time, mark: 0x10 }), 'a marked UPDATE');
    t.notOk(rejects(dietOnly, closing(TCP.ESTABLISHED)), 'ESTABLISHED: the UPDATE that assures');
    t.notOk(rejects(dietOnly, closing(TCP.SYN_RECV)), 'SYN_RECV');
    t.notOk(rejects(dietOnly, { ...time, status: Status.SEEN_REPLY }), 'not assured');
    t.notOk(rejects(dietOnly, { ...time, status: Status.ASSURED }), 'no reply seen');
    t.notOk(rejects(dietOnly, { ...time, tcpState: undefined }), 'no CTA_PROTOINFO: no state');
    t.notOk(rejects(dietOnly, { ...time, proto: 17, tcpState: undefined }), 'UDP');
    const bridge = eventMessage(time);
    bridge[16] = 7; // AF_BRIDGE
    t.not(runBpf(dietOnly, bridge), 0, 'another family: the parser skips it');
    t.end();
  },
);

t.test('kernel diet: -e minimal alone attaches a program; none without it', (t) => {
  t.same(planKernelFilter({}, true), { where: 'none' });
  t.same(planKernelFilter({}, false, { diet: true }), { where: 'user' }, '--no-kernel-filter');
  const p = planKernelFilter({}, true, { diet: true });
  t.ok('program' in p && p.instructions === dietOnly.length, `${dietOnly.length} instructions`);
  t.match(
    kernelFilterLine({ where: 'kernel', instructions: 50, diet: true })?.text,
    /in the kernel \(a 50-instruction socket filter\): events it leaves out \(with -e minimal's: closing TCP UPDATEs that add no flag\) are never read/,
    'the log line says what the diet leaves out there',
  );
  // The largest filter the options allow, with the diet: still within the kernel's limit.
  const f: EventFilter = {
    src: Array.from({ length: MAX_PREFIXES }, (_, i) => cidr(`2001:db8:${i.toString(16)}::/48`)),
    dst: Array.from({ length: MAX_PREFIXES }, (_, i) => cidr(`10.${i}.0.0/16`)),
    noLoopback: true,
    protos: [6, 17],
    mark: { value: 1, mask: 0xff },
  };
  const both = compileBpf(f, { diet: true });
  const alone = compileBpf(f);
  t.ok(
    both !== undefined && alone !== undefined && both.length <= BPF.MAXINSNS,
    `the largest filter with the diet: ${both?.length} instructions, ${alone?.length} without`,
  );
  t.end();
});
