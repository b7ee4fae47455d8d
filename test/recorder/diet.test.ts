// The event diet (--events minimal): the flow table from the kept events equals the one from all of them.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { type Collapse, type Flow, FlowTable } from '../../analyzer/core/flows.js';
import { type CtEvent, EventType, type EventTypeCode, Status } from '../../journal/event.js';
import { EventDiet } from '../../recorder/diet.js';
import { arbFlowEvents, checkProperty } from '../helpers/arbitraries.js';

const MODES: Collapse[] = [
  { kind: '1024' },
  { kind: 'none' },
  { kind: 'range', lo: 1000, hi: 40_000 },
  { kind: 'ephemeral', lo: 32_768, hi: 60_999 },
];

function flowsOf(evs: readonly CtEvent[], collapse: Collapse): Flow[] {
  const table = new FlowTable({ collapse });
  table.addAll(evs);
  return [...table.flows()];
}

function diet(evs: readonly CtEvent[], max = 1 << 20): CtEvent[] {
  const batch = [...evs];
  new EventDiet(max).siftInPlace(batch);
  return batch;
}

/** Every field but lastSeen: what the diet claims identical for any events. */
function withoutLastSeen(flows: Flow[]): Omit<Flow, 'lastSeen'>[] {
  return flows.map(({ lastSeen: _, ...rest }) => rest);
}

/**
 * arbFlowEvents with each event's time and mark drawn anew from small pools: entries of one key
 * marked differently and interleaved (whose latest mark wins), and times out of order (firstSeen).
 */
const arbMixed = arbFlowEvents({ maxLength: 80 }).chain((evs) =>
  fc
    .tuple(
      ...evs.map(() =>
        fc.tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom(undefined, undefined, 1, 2)),
      ),
    )
    .map((picks) =>
      evs.map((ev, i) => {
        const [time, mark] = picks[i] as [number, number | undefined];
        const { mark: _, ...rest } = ev;
        return { ...rest, time, ...(mark === undefined ? {} : { mark }) };
      }),
    ),
);

/** Events of a recording: one after the other in time, in the order the reader sees them. */
const arbRecorded = arbFlowEvents({ maxLength: 80 }).map((evs) =>
  evs.map((ev, i) => ({ ...ev, time: 1_000_000 + i * 1000 })),
);

/**
 * A DESTROY after everything else for each conntrack entry that occurs (an id with its tuples:
 * a reused id is another connection): every entry has ended.
 */
function closeAll(evs: readonly CtEvent[]): CtEvent[] {
  const last = new Map<string, CtEvent>();
  const tuple = (u: CtEvent['orig']) =>
    [...u.src, ...u.dst, u.sport, u.dport, u.icmpType, u.icmpCode, u.icmpId].join();
  for (const ev of evs) last.set(`${ev.id} ${ev.zone} ${tuple(ev.orig)} ${tuple(ev.reply)}`, ev);
  let time = Math.max(0, ...evs.map((e) => e.time)) + 1;
  const ends = [...last.values()].map((ev) => ({ ...ev, type: EventType.DESTROY, time: time++ }));
  return [...evs, ...ends];
}

t.test(
  'the diet keeps every flow, confirmed, assured, firstSeen, mark, NAT and direction, in every collapse mode, for any events',
  async (t) => {
    checkProperty(
      t,
      fc.property(fc.oneof(arbFlowEvents({ maxLength: 80 }), arbMixed), (evs) => {
        const kept = diet(evs);
        for (const collapse of MODES) {
          assert.deepStrictEqual(
            withoutLastSeen(flowsOf(kept, collapse)),
            withoutLastSeen(flowsOf(evs, collapse)),
          );
        }
      }),
      { numRuns: 300 },
    );
  },
);

t.test('lastSeen is identical too once every entry has ended with a DESTROY', async (t) => {
  checkProperty(
    t,
    fc.property(arbRecorded, (evs) => {
      const all = closeAll(evs);
      const kept = diet(all);
      for (const collapse of MODES) {
        assert.deepStrictEqual(flowsOf(kept, collapse), flowsOf(all, collapse));
      }
    }),
    { numRuns: 300 },
  );
});

t.test(
  'an entry still open at the end has the lastSeen of its last state change, never later than all events give',
  async (t) => {
    checkProperty(
      t,
      fc.property(arbRecorded, (evs) => {
        const kept = diet(evs);
        const full = flowsOf(evs, { kind: 'none' });
        const mine = flowsOf(kept, { kind: 'none' });
        assert.equal(mine.length, full.length);
        for (const [i, f] of full.entries()) assert.ok((mine[i] as Flow).lastSeen <= f.lastSeen);
      }),
      { numRuns: 200 },
    );
    // The documented difference, on one connection: NEW, confirmed, assured, then two plain UPDATEs.
    const evs = [
      tcp(EventType.NEW, 0, 1),
      tcp(EventType.UPDATE, Status.SEEN_REPLY, 2),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 3),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 4),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 5),
    ];
    const [full] = flowsOf(evs, { kind: '1024' });
    const [mine] = flowsOf(diet(evs), { kind: '1024' });
    t.equal(full?.lastSeen, 5, 'all events: the last UPDATE');
    t.equal(mine?.lastSeen, 3, 'the diet: the UPDATE that made it assured');
  },
);

function tcp(type: EventTypeCode, status: number, time: number, id = 7, mark?: number): CtEvent {
  const src = new Uint8Array([10, 0, 0, 1]);
  const dst = new Uint8Array([10, 0, 0, 2]);
  const orig = { src, dst, sport: 40_000, dport: 80, icmpType: 0, icmpCode: 0, icmpId: 0 };
  const reply = {
    src: dst,
    dst: src,
    sport: 80,
    dport: 40_000,
    icmpType: 0,
    icmpCode: 0,
    icmpId: 0,
  };
  return {
    type,
    family: 4,
    proto: 6,
    status: status | Status.CONFIRMED,
    id,
    time,
    timeKernel: false,
    orig,
    reply,
    ...(mark === undefined ? {} : { mark }),
  };
}

t.test(
  'a TCP connection keeps NEW, confirmation, assured and DESTROY; plain UPDATEs go',
  async (t) => {
    const d = new EventDiet(100);
    const evs = [
      tcp(EventType.NEW, 0, 1),
      tcp(EventType.UPDATE, Status.SEEN_REPLY, 2),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 3),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 4),
      tcp(EventType.UPDATE, Status.SEEN_REPLY | Status.ASSURED, 5),
      tcp(EventType.DESTROY, Status.SEEN_REPLY | Status.ASSURED, 6),
    ];
    const batch = [...evs];
    t.equal(d.siftInPlace(batch), 2);
    t.same(
      batch.map((e) => e.time),
      [1, 2, 3, 6],
    );
    t.equal(d.leftOut, 2);
    t.equal(d.size, 0, 'DESTROY forgets the entry');
    t.ok(d.keeps(tcp(EventType.NEW, 0, 7)));
    t.notOk(d.keeps(tcp(EventType.UPDATE, 0, 8)));
    d.clear();
    t.ok(d.keeps(tcp(EventType.UPDATE, 0, 9)), 'after clear() (a rotation): each entry once again');
  },
);

t.test(
  'marked UPDATEs, a reused id with new tuples, events without an id and earlier ones are kept',
  async (t) => {
    const d = new EventDiet(100);
    t.ok(d.keeps(tcp(EventType.NEW, 0, 1)));
    t.ok(d.keeps(tcp(EventType.UPDATE, 0, 2, 7, 5)), 'marked');
    t.ok(
      d.keeps(tcp(EventType.UPDATE, 0, 3, 7, 5)),
      'marked again: another entry of the key may have won meanwhile',
    );
    t.notOk(d.keeps(tcp(EventType.UPDATE, 0, 4)));
    const moved = tcp(EventType.UPDATE, 0, 5);
    moved.orig = { ...moved.orig, sport: 40_001 };
    t.ok(d.keeps(moved), 'same id, other tuple: another connection');
    t.ok(d.keeps(tcp(EventType.UPDATE, 0, 6, 0)), 'id 0');
    t.ok(d.keeps(tcp(EventType.UPDATE, 0, 6, 0)), 'id 0 again');
    const e = new EventDiet(100);
    t.ok(e.keeps(tcp(EventType.NEW, 0, 10)));
    t.notOk(e.keeps(tcp(EventType.UPDATE, 0, 11)));
    t.ok(e.keeps(tcp(EventType.UPDATE, 0, 9)), 'earlier than the entry so far: firstSeen');
  },
);

t.test(
  'state is bounded: past max entries an entry is not remembered and all its events are kept',
  async (t) => {
    const d = new EventDiet(2);
    for (let id = 1; id <= 5; id++) t.ok(d.keeps(tcp(EventType.NEW, 0, id, id)));
    t.equal(d.size, 2);
    t.notOk(d.keeps(tcp(EventType.UPDATE, 0, 10, 1)), 'a remembered entry: its plain UPDATE goes');
    t.ok(d.keeps(tcp(EventType.UPDATE, 0, 10, 5)), 'a forgotten one: kept');
    t.throws(() => new EventDiet(0), RangeError);
  },
);
