// The reader streams: frames spanning read chunks, a journal larger than one chunk, in each format.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import { JournalWriter } from '../../journal/writer.js';
import { FORMATS, HEADER, plain, readAll, tcpNew, tempDir, writeJournal } from './fixtures.js';

const dir = tempDir(t, 'stream');

function batchesOf(count: number, size: number, from = 0): CtEvent[][] {
  return Array.from({ length: count }, (_, b) =>
    Array.from({ length: size }, (_, i) => tcpNew(from + b * size + i)),
  );
}

for (const format of FORMATS) {
  t.test(`journal: frames spanning tiny read chunks read back in order (format ${format})`, (t) => {
    const path = join(dir, `small-chunks-v${format}.mpk`);
    const batches = batchesOf(7, 13);
    writeJournal(path, batches, true, format);
    for (const chunkSize of [1, 9, 10, 64, 333, 4096]) {
      const { events, batches: n, reader } = readAll(path, { chunkSize });
      t.same(plain(events), plain(batches.flat()), `chunk ${chunkSize}`);
      t.equal(n, 7);
      t.equal(reader.trailer?.events, 91);
    }
    t.end();
  });

  t.test(
    `journal: a journal larger than the default 1 MiB chunk reads whole, torn tail too (format ${format})`,
    (t) => {
      const path = join(dir, `big-v${format}.mpk`);
      // Compressed frames are smaller: write until the file is two chunks, whatever the format.
      const w = JournalWriter.create(path, HEADER, { formatVersion: format });
      let last: CtEvent[] = [];
      let written = 0;
      while (w.bytesWritten <= 2 * 1024 * 1024) {
        for (const batch of batchesOf(16, 1024, written)) {
          w.append(batch);
          last = batch;
        }
        written += 16 * 1024;
      }
      w.closeAfterFailure();
      t.ok(statSync(path).size > 2 * 1024 * 1024, `${statSync(path).size} bytes`);
      const { events, reader } = readAll(path);
      t.equal(events.length, written);
      t.same(plain(events.slice(-3)), plain(last.slice(-3)));
      t.equal(reader.trailer, undefined, 'crashed recording: no trailer');
      t.equal(reader.tail, undefined, 'but no torn bytes either');
      t.end();
    },
  );
}
