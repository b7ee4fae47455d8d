// One rules suite, two implementations: the recorder's live table equals the replayed journal's.
import fc from 'fast-check';
import t from 'tap';
import { type Collapse, FlowTable } from '../../analyzer/core/flows.js';
import { analyzeJournals } from '../../analyzer/core/replay.js';
import { textLines } from '../../analyzer/report/text.js';
import type { CtEvent } from '../../journal/event.js';
import { openJournal } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import { RecordingSink } from '../../recorder/sink.js';
import { arbEvent, arbFlowEvents, checkProperty } from '../helpers/arbitraries.js';
import { HEADER, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'live-replay');
let n = 0;

/** Cuts events into batches at the given points, as the native reader would hand them over. */
function split<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let from = 0;
  for (const p of [...points, items.length]) {
    out.push(items.slice(from, p));
    from = p;
  }
  return out;
}

function liveAndReplayed(batches: CtEvent[][], collapse: Collapse) {
  const path = `${dir}/j${n++}.mpk`;
  const writer = JournalWriter.create(path, HEADER);
  const live = new FlowTable({ collapse });
  const sink = new RecordingSink(writer, live);
  for (const b of batches) sink.accept(b);
  writer.close({ stop: HEADER.start + 1 });
  const replayed = analyzeJournals([path], { collapse, warn: () => {} }).table;
  return {
    live: [...textLines(live.flows())],
    replayed: [...textLines(replayed.flows())],
    writer,
    path,
  };
}

for (const collapse of [{ kind: '1024' }, { kind: 'none' }] as const) {
  t.test(
    `live table equals replayed table for any events and batching (collapse ${collapse.kind})`,
    (t) => {
      const events = fc.oneof(
        arbFlowEvents({ maxLength: 60 }),
        fc.array(arbEvent(), { maxLength: 40 }),
      );
      checkProperty(
        t,
        fc.property(events, fc.array(fc.nat(), { maxLength: 6 }), (evs, cuts) => {
          const { live, replayed } = liveAndReplayed(split(evs, cuts), collapse);
          return JSON.stringify(live) === JSON.stringify(replayed);
        }),
        { numRuns: 150 },
      );
      t.end();
    },
  );
}

t.test('the counts ct-record reports equal the events of each type in the journal', (t) => {
  const events = fc.sample(arbEvent(), { numRuns: 50, seed: 7 });
  const { writer, path } = liveAndReplayed(split(events, [10, 30]), { kind: '1024' });
  const byType = { new: 0, update: 0, destroy: 0, snapshot: 0 };
  const names = ['new', 'update', 'destroy', 'snapshot'] as const;
  for (const e of events) byType[names[e.type - 1] as keyof typeof byType]++;
  t.equal(writer.events, 50);
  t.same(writer.byType, byType);
  const reader = openJournal(path);
  let read = 0;
  for (const b of reader.batches()) read += b.length;
  t.equal(read, 50);
  t.same(reader.trailer?.byType, byType);
  reader.close();
  t.end();
});
