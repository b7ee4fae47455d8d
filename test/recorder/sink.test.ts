// The recorder's sink: batches held into frames of HOLD_EVENTS, the live table fed only what each written frame held.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlowTable } from '../../analyzer/core/flows.js';
import { textChunks } from '../../analyzer/report/text.js';
import { openJournal } from '../../journal/reader.js';
import { HOLD_EVENTS, liveTable, RecordingSink } from '../../recorder/sink.js';
import { HEADER, tempDir } from '../helpers/journals.js';
import { tcpNew } from '../journal/fixtures.js';

const dir = tempDir(t, 'sink');

/** Every events frame of a journal, as its length, and the table a replay of it builds. */
function replay(
  path: string,
  collapse: 'none' | '1024' = '1024',
): { frames: number[]; flows: string } {
  const reader = openJournal(path);
  try {
    const table = liveTable({ kind: collapse }, null);
    const frames: number[] = [];
    for (const b of reader.batches()) {
      frames.push(b.length);
      for (const ev of b) table.add(ev);
    }
    return { frames, flows: [...textChunks(table.flows())].join('') };
  } finally {
    reader.close();
  }
}

const flows = (table: FlowTable) => [...textChunks(table.flows())].join('');
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => tcpNew(from + i));

t.test(
  'sink: small batches are one frame at the flush; the table gets them only once written',
  (t) => {
    const table = liveTable({ kind: '1024' }, null);
    const sink = new RecordingSink(table);
    const path = join(dir, 'quiet.mpk');
    const w = sink.open(path, HEADER);
    const reused: ReturnType<typeof batch> = [];
    for (let i = 0; i < 5; i++) {
      // recording.ts empties and refills one array per batch: the writer must keep the events.
      reused.length = 0;
      reused.push(...batch(i * 3, 3));
      sink.accept(reused);
    }
    t.equal(table.size, 0, 'held events are not in the table');
    t.equal(w.events, 0, 'nor counted as recorded');
    w.flush();
    t.equal(table.size, 15, 'the flush wrote them, and the table has them');
    w.close({ stop: HEADER.start + 1 });
    const back = replay(path);
    t.same(back.frames, [15], 'one frame of the five batches');
    t.equal(flows(table), back.flows, 'the live table is the replayed one');
    t.end();
  },
);

t.test('sink: a flood is written every HOLD_EVENTS events without waiting for a flush', (t) => {
  const table = liveTable({ kind: '1024' }, null);
  const sink = new RecordingSink(table);
  const path = join(dir, 'flood.mpk');
  const w = sink.open(path, HEADER);
  for (let i = 0; i < 9; i++) sink.accept(batch(i * 1024, 1024));
  t.equal(w.events, 2 * HOLD_EVENTS, 'two frames written by the count alone');
  t.equal(w.held, 9 * 1024 - 2 * HOLD_EVENTS, 'the rest is held');
  w.close({ stop: HEADER.start + 1 });
  t.same(replay(path).frames, [HOLD_EVENTS, HOLD_EVENTS, 1024], 'the rest before the trailer');
  t.equal(flows(table), replay(path).flows, 'the live table is the replayed one');
  t.end();
});

t.test('sink: held events a full disk refused never enter the live table', (t) => {
  const mnt = join(dir, 'tiny');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'ct-sink-test', mnt]);
  } catch {
    t.comment('skipped: cannot mount a tmpfs here (needs root)');
    t.end();
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', mnt]));
  const table = liveTable({ kind: 'none' }, null);
  const sink = new RecordingSink(table);
  const path = join(mnt, 'full.mpk');
  const w = sink.open(path, HEADER, { formatVersion: 1 });
  t.throws(() => {
    for (let i = 0; ; i += 1024) sink.accept(batch(i, 1024));
  }, /no space left on device/);
  w.closeAfterFailure();
  const back = replay(path, 'none');
  t.ok(back.frames.length > 0, `${back.frames.length} frames fitted`);
  t.equal(table.size, w.events, 'the table holds one flow per event written, no more');
  t.equal(flows(table), back.flows, 'the live table is exactly what reached the journal');
  t.end();
});
