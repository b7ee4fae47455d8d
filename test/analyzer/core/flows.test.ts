// The flow rules: key, collapsing, confirmation and order, against a naive reference.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import {
  type Collapse,
  collapsePort,
  type Flow,
  FlowTable,
  formatCollapse,
  parseCollapse,
  TABLES,
  type TableName,
  tableIndex,
} from '../../../analyzer/core/flows.js';
import { textLines } from '../../../analyzer/report/text.js';
import type { CtEvent } from '../../../journal/event.js';
import { arbEvent, arbFlowEvents, checkProperty, inverseTuple } from '../../helpers/arbitraries.js';
import { arbMode, MODES } from '../fixtures.js';

const RUNS = { numRuns: 300 };

const lines = (evs: Iterable<CtEvent>, collapse: Collapse): string[] => {
  const table = new FlowTable({ collapse });
  table.addAll(evs);
  return [...textLines(table.flows())];
};

// The reference: a Map keyed by JSON and a sort on BigInt addresses, written the obvious way.
const REF_TABLES: Record<string, TableName> = {
  '4/6': 'TCPv4',
  '4/17': 'UDPv4',
  '4/1': 'ICMPv4',
  '6/6': 'TCPv6',
  '6/17': 'UDPv6',
  '6/58': 'ICMPv6',
};
const num = (b: Uint8Array) => BigInt(`0x0${Buffer.from(b).toString('hex')}`);

/** The documented order: table, then numeric src and dst, then dport, sport (ICMP: type, code). */
const orderKey = (f: Flow) => [
  BigInt(TABLES.indexOf(f.table)),
  num(f.src),
  num(f.dst),
  BigInt(f.dport),
  BigInt(f.sport),
  BigInt(f.icmpType),
  BigInt(f.icmpCode),
];

function referenceFlows(evs: CtEvent[], mode: Collapse): Flow[] {
  const map = new Map<string, Flow & { confirmed: boolean; firstSeen: number; lastSeen: number }>();
  for (const e of evs) {
    const table = REF_TABLES[`${e.family}/${e.proto}`];
    if (table === undefined) continue;
    const icmp = table.startsWith('ICMP');
    let sport = e.orig.sport;
    if (mode.kind === '1024' && sport > 1024) sport = 1024;
    if (mode.kind === 'range' && sport >= mode.lo && sport <= mode.hi) sport = mode.lo;
    const flow = {
      table,
      family: e.family,
      proto: e.proto,
      src: e.orig.src,
      dst: e.orig.dst,
      sport: icmp ? 0 : sport,
      dport: icmp ? 0 : e.orig.dport,
      icmpType: icmp ? e.orig.icmpType : 0,
      icmpCode: icmp ? e.orig.icmpCode : 0,
      confirmed: false,
      hosts: [],
      firstSeen: e.time,
      lastSeen: e.time,
    };
    const key = JSON.stringify([
      table,
      [...flow.src],
      [...flow.dst],
      flow.sport,
      flow.dport,
      flow.icmpType,
      flow.icmpCode,
    ]);
    const seen = map.get(key) ?? flow;
    seen.confirmed ||= (e.status & 2) === 2;
    seen.firstSeen = Math.min(seen.firstSeen, e.time);
    seen.lastSeen = Math.max(seen.lastSeen, e.time);
    map.set(key, seen);
  }
  return [...map.values()].sort((a, b) => {
    const ka = orderKey(a);
    const kb = orderKey(b);
    for (let i = 0; i < ka.length; i++) {
      if ((ka[i] as bigint) !== (kb[i] as bigint))
        return (ka[i] as bigint) < (kb[i] as bigint) ? -1 : 1;
    }
    return 0;
  });
}

t.test('flows: the table equals a naive Map-and-sort reference on random events', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents(), arbMode, (evs, mode) => {
      assert.deepEqual(lines(evs, mode), [...textLines(referenceFlows(evs, mode))]);
      const table = new FlowTable({ collapse: mode });
      table.addAll(evs);
      const times = (fs: Iterable<Flow>) => [...fs].map((f) => [f.firstSeen, f.lastSeen]);
      assert.deepEqual(times(table.flows()), times(referenceFlows(evs, mode)), 'first/last seen');
    }),
    RUNS,
  );
});

t.test('flows: the table is independent of event order and duplication', async (t) => {
  const arbCase = arbFlowEvents({ minLength: 1 }).chain((evs) =>
    fc.record({
      evs: fc.constant(evs),
      shuffled: fc.shuffledSubarray(evs, { minLength: evs.length, maxLength: evs.length }),
      extra: fc.array(fc.constantFrom(...evs), { maxLength: 40 }),
    }),
  );
  checkProperty(
    t,
    fc.property(arbCase, arbMode, ({ evs, shuffled, extra }, mode) => {
      const expected = lines(evs, mode);
      assert.deepEqual(lines(shuffled, mode), expected);
      assert.deepEqual(lines([...shuffled, ...extra], mode), expected);
      assert.deepEqual(lines([...extra, ...evs, ...shuffled], mode), expected);
    }),
    RUNS,
  );
});

t.test('flows: a flow is confirmed iff some event for its key had SEEN_REPLY', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents({ minLength: 1 }), (evs) => {
      const table = new FlowTable();
      table.addAll(evs);
      for (const f of table.flows()) {
        const replied = evs.some(
          (e) =>
            tableIndex(e.family, e.proto) === TABLES.indexOf(f.table) &&
            Buffer.from(e.orig.src).equals(f.src) &&
            Buffer.from(e.orig.dst).equals(f.dst) &&
            (f.table.startsWith('ICMP')
              ? e.orig.icmpType === f.icmpType && e.orig.icmpCode === f.icmpCode
              : e.orig.dport === f.dport &&
                collapsePort(table.collapse, e.orig.sport) === f.sport) &&
            (e.status & 0x2) !== 0,
        );
        assert.equal(f.confirmed, replied);
      }
    }),
    RUNS,
  );
});

t.test(
  'flows: sorted by table, then numeric src, dst, dport, sport (ICMP: type, code)',
  async (t) => {
    const arbEvents = fc.array(arbEvent({ protos: [1, 6, 17, 58] }), { maxLength: 80 });
    checkProperty(
      t,
      fc.property(arbEvents, arbMode, (evs, mode) => {
        const table = new FlowTable({ collapse: mode });
        table.addAll(evs);
        const fs = [...table.flows()].map(orderKey);
        for (let i = 1; i < fs.length; i++) {
          const a = fs[i - 1] as bigint[];
          const b = fs[i] as bigint[];
          const j = a.findIndex((x, k) => x !== b[k]);
          assert.ok(
            j >= 0 && (a[j] as bigint) < (b[j] as bigint),
            `flow ${i - 1} before flow ${i}`,
          );
        }
      }),
    );
  },
);

t.test('flows: 1024 collapses sports above 1024 to 1024 only; none is the identity', async (t) => {
  checkProperty(
    t,
    fc.property(fc.integer({ min: 0, max: 0xffff }), (p) => {
      assert.equal(collapsePort({ kind: '1024' }, p), Math.min(p, 1024));
      assert.equal(collapsePort({ kind: 'none' }, p), p);
      const inRange = p >= 32768 && p <= 60999;
      assert.equal(collapsePort({ kind: 'range', lo: 32768, hi: 60999 }, p), inRange ? 32768 : p);
    }),
  );
});

t.test('flows: collapsing touches the TCP/UDP source port only, never dport or ICMP', async (t) => {
  checkProperty(
    t,
    fc.property(arbEvent({ protos: [1, 6, 17, 58] }), arbMode, (ev, mode) => {
      const table = new FlowTable({ collapse: mode });
      table.add(ev);
      const fs = [...table.flows()];
      assert.equal(fs.length, tableIndex(ev.family, ev.proto) === undefined ? 0 : 1);
      const f = fs[0];
      if (f === undefined) return;
      const o = ev.orig;
      if (ev.proto === 6 || ev.proto === 17) {
        assert.deepEqual([f.sport, f.dport], [collapsePort(mode, o.sport), o.dport]);
      } else {
        assert.deepEqual(
          [f.icmpType, f.icmpCode, f.sport, f.dport],
          [o.icmpType, o.icmpCode, 0, 0],
        );
      }
    }),
  );
});

t.test(
  'flows: the key is the original tuple; the reply tuple and ICMP id are ignored',
  async (t) => {
    const arbCase = fc.tuple(
      arbEvent({ protos: [1, 6, 17, 58] }),
      fc.integer({ min: 0, max: 0xffff }),
    );
    checkProperty(
      t,
      fc.property(arbCase, ([ev, id]) => {
        const other: CtEvent = {
          ...ev,
          reply: inverseTuple(ev.reply),
          orig: { ...ev.orig, icmpId: id },
        };
        const one = new FlowTable();
        one.add(ev);
        const both = new FlowTable();
        both.addAll([ev, other]);
        assert.equal(both.size, one.size);
      }),
    );
  },
);

const ev4 = (proto: number, status: number, sport = 40000): CtEvent => ({
  type: 1,
  family: 4,
  proto,
  status,
  id: 1,
  time: 0,
  timeKernel: false,
  orig: {
    src: Uint8Array.of(10, 0, 0, 1),
    dst: Uint8Array.of(10, 0, 0, 2),
    sport,
    dport: 443,
    icmpType: 0,
    icmpCode: 0,
    icmpId: 0,
  },
  reply: {
    src: Uint8Array.of(10, 0, 0, 2),
    dst: Uint8Array.of(10, 0, 0, 1),
    sport: 443,
    dport: sport,
    icmpType: 0,
    icmpCode: 0,
    icmpId: 0,
  },
});

t.test('flows: a flow whose first event is already replied is kept and confirmed', async (t) => {
  const table = new FlowTable();
  table.add(ev4(6, 0x0e));
  table.add(ev4(6, 0x08));
  const [f] = [...table.flows()];
  t.equal(table.size, 1);
  t.equal(f?.confirmed, true);
  t.equal(f?.sport, 1024);
});

t.test(
  'flows: other protocols and family/ICMP mismatches are skipped and counted per reason',
  async (t) => {
    const table = new FlowTable();
    table.addAll([ev4(47, 0), ev4(47, 2), ev4(132, 0), ev4(58, 0), { ...ev4(1, 0), family: 6 }]);
    table.add({ ...ev4(6, 0), orig: { ...ev4(6, 0).orig, src: new Uint8Array(16) } });
    table.add({ ...ev4(17, 0), orig: { ...ev4(17, 0).orig, dport: 70000 } });
    t.equal(table.size, 0);
    t.strictSame(table.skipped, {
      'IPv4 proto 47': 2,
      'IPv4 proto 132': 1,
      'IPv4 proto 58': 1,
      'IPv6 proto 1': 1,
      'address length does not match the family': 1,
      'port or ICMP type/code out of range': 1,
    });
    t.equal(table.skippedTotal, 7);
  },
);

t.test('flows: flow addresses are copies, not views of the event buffers', async (t) => {
  const ev = ev4(6, 0);
  const table = new FlowTable();
  table.add(ev);
  ev.orig.src[3] = 99;
  t.equal([...table.flows()][0]?.src[3], 1);
});

t.test(
  'flows: parseCollapse reads 1024, none, ephemeral and LO-HI, and rejects the rest with exit 2',
  async (t) => {
    t.strictSame(parseCollapse('1024'), { kind: '1024' });
    t.strictSame(parseCollapse('none'), { kind: 'none' });
    t.strictSame(parseCollapse('32768-60999'), { kind: 'range', lo: 32768, hi: 60999 });
    t.strictSame(parseCollapse('ephemeral'), { kind: 'ephemeral', lo: 32768, hi: 60999 });
    for (const m of MODES) t.strictSame(parseCollapse(formatCollapse(m)), m);
    for (const bad of ['', '1023', 'NONE', '5-4', '1-65536', '-1-5', '1-2-3', 'EPHEMERAL']) {
      t.throws(() => parseCollapse(bad), { name: 'CtError', exit: 2 }, `rejects '${bad}'`);
    }
  },
);
