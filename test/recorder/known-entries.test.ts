// Resync dumps that skip what the journal holds: the same flow table as full dumps, in bounded memory.
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { FlowTable } from '../../analyzer/core/flows.js';
import { type CtEvent, EventType, type EventTypeCode, Status } from '../../journal/event.js';
import { RECORD_SIZE } from '../../native/layout.js';
import { KnownEntries } from '../../recorder/known-entries.js';
import { decodeRecords } from '../../recorder/records.js';
import { packRecords } from '../helpers/records.js';

/** A conntrack entry of the simulated kernel table. */
interface Entry {
  id: number;
  key: number;
  natted: boolean;
  status: number;
  mark: number;
}

/**
 * Four tuples of two sources; keys 0 and 2 have a source port above 1024 per entry, which
 * collapses: several entries, one flow key (where the marks' order matters).
 */
function eventOf(type: EventTypeCode, e: Entry, time: number): CtEvent {
  const src = new Uint8Array([10, 0, 0, 1 + (e.key % 2)]);
  const dst = new Uint8Array([10, 0, 1, 1]);
  const sport = e.key % 2 === 0 ? 40_000 + e.id : 100 + e.key;
  const orig = { src, dst, sport, dport: 53, icmpType: 0, icmpCode: 0, icmpId: 0 };
  const replySrc = e.natted ? new Uint8Array([192, 168, 0, 9]) : dst;
  const reply = { ...orig, src: replySrc, dst: src, sport: 53, dport: sport };
  return {
    type,
    family: 4,
    proto: 17,
    status: e.status | Status.CONFIRMED,
    id: e.id,
    time,
    timeKernel: false,
    orig,
    reply,
    ...(e.mark === 0 ? {} : { mark: e.mark }),
  };
}

type Op =
  | { kind: 'new'; id: number; key: number; natted: boolean; lost: boolean }
  | { kind: 'update'; which: number; bits: number; mark: number; lost: boolean }
  | { kind: 'destroy'; which: number; lost: boolean }
  | { kind: 'dump' }
  | { kind: 'cut' };

const lost = fc.constantFrom(false, false, false, true);
/** Weighted so that dumps return live entries often, some of them known, some not. */
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('new' as const),
      id: fc.integer({ min: 1, max: 8 }),
      key: fc.integer({ min: 0, max: 3 }),
      natted: fc.boolean(),
      lost,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      which: fc.nat(7),
      bits: fc.constantFrom(0, Status.SEEN_REPLY, Status.SEEN_REPLY | Status.ASSURED, 0x200),
      mark: fc.constantFrom(0, 1, 2),
      lost,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('destroy' as const), which: fc.nat(7), lost }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'dump' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'cut' as const }) },
);

/**
 * Runs the ops against a simulated kernel table: events reach the recorder unless lost, a dump
 * returns every live entry. Returns the batches as the addon would hand them over, each with
 * whether it is a resync dump.
 */
function simulate(ops: readonly Op[]): { records: CtEvent[]; dump: boolean }[] {
  const live = new Map<number, Entry>();
  const batches: { records: CtEvent[]; dump: boolean }[] = [];
  let current: CtEvent[] = [];
  let time = 1_000_000;
  const cut = () => {
    if (current.length > 0) batches.push({ records: current, dump: false });
    current = [];
  };
  for (const op of ops) {
    time += 1000;
    const entries = [...live.values()];
    if (op.kind === 'new') {
      if (live.has(op.id)) continue;
      const e = { id: op.id, key: op.key, natted: op.natted, status: 0, mark: 0 };
      live.set(op.id, e);
      if (!op.lost) current.push(eventOf(EventType.NEW, e, time));
    } else if (op.kind === 'update') {
      const e = entries[op.which % Math.max(1, entries.length)];
      if (e === undefined) continue;
      e.status |= op.bits;
      e.mark = op.mark;
      if (!op.lost) current.push(eventOf(EventType.UPDATE, e, time));
    } else if (op.kind === 'destroy') {
      const e = entries[op.which % Math.max(1, entries.length)];
      if (e === undefined) continue;
      live.delete(e.id);
      if (!op.lost) current.push(eventOf(EventType.DESTROY, e, time));
    } else if (op.kind === 'dump') {
      cut();
      batches.push({
        records: entries.map((e) => eventOf(EventType.SNAPSHOT, e, time)),
        dump: true,
      });
    } else {
      cut();
    }
  }
  cut();
  return batches;
}

/** The table a journal of these events gives, lastSeen left out (see the property's note). */
function tableOf(events: readonly CtEvent[]): unknown[] {
  const table = new FlowTable();
  table.addAll(events);
  return [...table.flows()].map(({ lastSeen: _, ...f }) => f);
}

/** What the recorder writes: every batch through sift, dumps between beginDump and endDump. */
function sifted(batches: ReturnType<typeof simulate>, known: KnownEntries): CtEvent[] {
  const out: CtEvent[] = [];
  for (const b of batches) {
    if (b.dump) known.beginDump();
    const buf = packRecords(b.records);
    const kept = known.sift(buf, b.records.length);
    decodeRecords(buf, kept, out);
    if (b.dump) known.endDump();
  }
  return out;
}

t.test(
  'property: skipping known dump entries gives the flow table of full dumps (lastSeen aside)',
  async (t) => {
    let skipped = 0;
    fc.assert(
      fc.property(
        fc.array(arbOp, { minLength: 20, maxLength: 80 }),
        fc.integer({ min: 1, max: 10 }),
        (ops, max) => {
          const batches = simulate(ops);
          const full = batches.flatMap((b) => b.records);
          const known = new KnownEntries(max);
          const written = sifted(batches, known);
          const dumped = batches.filter((b) => b.dump).reduce((n, b) => n + b.records.length, 0);
          skipped += known.skipped;
          return (
            known.size <= max &&
            full.length - written.length === known.skipped &&
            known.skipped <= dumped &&
            isDeepStrictEqual(tableOf(written), tableOf(full))
          );
        },
      ),
      { numRuns: 1000 },
    );
    t.ok(skipped > 1000, `held for 1000 runs, which left out ${skipped} dump entries`);
    t.end();
  },
);

t.test('two entries of one collapsed flow key, marked differently: the same mark wins', (t) => {
  const ops: Op[] = [
    { kind: 'new', id: 1, key: 0, natted: false, lost: false },
    { kind: 'new', id: 2, key: 0, natted: false, lost: false },
    { kind: 'update', which: 0, bits: 0, mark: 2, lost: false },
    { kind: 'update', which: 1, bits: 0, mark: 1, lost: false },
    { kind: 'dump' },
  ];
  const batches = simulate(ops);
  const written = sifted(batches, new KnownEntries(10));
  t.same(tableOf(written), tableOf(batches.flatMap((b) => b.records)));
  t.end();
});

/** A NEW event for id `id` then a dump returning it: the dump's entry is already held. */
function newThenDump(id: number, status = 0): { ev: CtEvent; snap: CtEvent } {
  const e = { id, key: 4, natted: false, status, mark: 0 };
  return { ev: eventOf(EventType.NEW, e, 1), snap: eventOf(EventType.SNAPSHOT, e, 2) };
}

t.test('a dump entry whose id and state are known is left out, a changed one is kept', (t) => {
  const known = new KnownEntries(100);
  const a = newThenDump(7);
  const b = newThenDump(8);
  known.sift(packRecords([a.ev, b.ev]), 2);
  const replied = { ...b.snap, status: b.snap.status | Status.SEEN_REPLY };
  const buf = packRecords([a.snap, replied]);
  known.beginDump();
  t.equal(known.sift(buf, 2), 1, 'one of two kept');
  known.endDump();
  const out: CtEvent[] = [];
  decodeRecords(buf, 1, out);
  t.equal(out[0]?.id, 8, 'the entry that became confirmed moved down into the first slot');
  t.equal(known.skipped, 1);
  t.end();
});

t.test('a reused id with another tuple is written', (t) => {
  const known = new KnownEntries(100);
  const first = newThenDump(5);
  known.sift(packRecords([first.ev]), 1);
  const other = eventOf(EventType.SNAPSHOT, { id: 5, key: 1, natted: true, status: 0, mark: 0 }, 3);
  t.equal(known.sift(packRecords([other]), 1), 1);
  t.equal(known.skipped, 0);
  t.end();
});

t.test('a DESTROY forgets the entry; a dump forgets entries it did not return', (t) => {
  const known = new KnownEntries(100);
  const a = newThenDump(1);
  const b = newThenDump(2);
  known.sift(packRecords([a.ev, b.ev]), 2);
  known.sift(packRecords([{ ...a.ev, type: EventType.DESTROY }]), 1);
  t.equal(known.size, 1, 'destroyed: gone');
  known.beginDump();
  known.sift(packRecords([]), 0);
  known.endDump();
  t.equal(known.size, 0, 'not in the dump: its DESTROY was lost, gone too');
  t.equal(known.swept, 1);
  t.end();
});

t.test('many entries: deletions keep every other entry findable, bounded bytes', (t) => {
  const n = 20_000;
  const known = new KnownEntries(n);
  const evs = Array.from({ length: n }, (_, i) => newThenDump(i + 1).ev);
  for (let i = 0; i < n; i += 1000) known.sift(packRecords(evs.slice(i, i + 1000)), 1000);
  t.equal(known.size, n);
  const gone = evs.filter((_, i) => i % 3 === 0).map((e) => ({ ...e, type: EventType.DESTROY }));
  known.sift(packRecords(gone), gone.length);
  t.equal(known.size, n - gone.length);
  const snaps = evs.map((e) => ({ ...e, type: EventType.SNAPSHOT as EventTypeCode }));
  const kept = known.sift(packRecords(snaps), n);
  t.equal(kept, gone.length, 'exactly the destroyed ones are unknown again');
  t.ok(known.bytes / known.size <= 128, `${(known.bytes / known.size).toFixed(1)} B per entry`);
  t.ok(known.bytes <= 16 * 2 ** Math.ceil(Math.log2(2 * n + 2)), 'slots bounded by the max');
  t.end();
});

t.test('the record layout the sift reads: a whole number of 32-bit words', (t) => {
  t.equal(RECORD_SIZE % 4, 0);
  t.end();
});
