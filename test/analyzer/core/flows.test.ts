// The flow table's own properties: order independence, collapsing, skips (test/analyzer/core/conformance.test.ts holds the reference).
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import {
  type Collapse,
  collapsePort,
  collapseSport,
  compileCollapse,
  FlowTable,
  formatCollapse,
  parseCollapse,
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

t.test(
  'flows: each mode compiles to one rule: 1024 caps at 1024, none is the identity, LO-HI and ephemeral map [LO, HI] to LO',
  async (t) => {
    checkProperty(
      t,
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.nat(0xffff),
        fc.nat(0xffff),
        (p, a, b) => {
          const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
          assert.equal(collapsePort({ kind: '1024' }, p), Math.min(p, 1024));
          assert.equal(collapsePort({ kind: 'none' }, p), p);
          const inRange = p >= lo && p <= hi ? lo : p;
          assert.equal(collapsePort({ kind: 'range', lo, hi }, p), inRange);
          assert.equal(collapsePort({ kind: 'ephemeral', lo, hi }, p), inRange);
          for (const mode of [...MODES, { kind: 'ephemeral', lo, hi } as const]) {
            assert.equal(collapseSport(compileCollapse(mode), p), collapsePort(mode, p));
          }
        },
      ),
    );
  },
);

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
