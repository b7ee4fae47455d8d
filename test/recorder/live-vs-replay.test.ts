// What ct-record counts equals what its journal holds (the live table's flow rules: test/analyzer/core/conformance.test.ts).
import fc from 'fast-check';
import t from 'tap';
import { openJournal } from '../../journal/reader.js';
import { liveTable, RecordingSink } from '../../recorder/sink.js';
import { arbEvent } from '../helpers/arbitraries.js';
import { HEADER, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'live-replay');

t.test('the counts ct-record reports equal the events of each type in the journal', (t) => {
  const events = fc.sample(arbEvent(), { numRuns: 50, seed: 7 });
  const path = `${dir}/counts.mpk`;
  const sink = new RecordingSink(liveTable({ kind: '1024' }, null));
  const writer = sink.open(path, HEADER);
  for (const batch of [events.slice(0, 10), events.slice(10, 30), events.slice(30)]) {
    sink.accept(batch);
  }
  writer.close({ stop: HEADER.start + 1 });
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
