// The reader streams: frames spanning read chunks, a journal larger than one chunk.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import { plain, readAll, tcpNew, tempDir, writeJournal } from './fixtures.js';

const dir = tempDir(t, 'stream');

function batchesOf(count: number, size: number): CtEvent[][] {
  return Array.from({ length: count }, (_, b) =>
    Array.from({ length: size }, (_, i) => tcpNew(b * size + i)),
  );
}

t.test('journal: frames spanning tiny read chunks read back in order', (t) => {
  const path = join(dir, 'small-chunks.mpk');
  const batches = batchesOf(7, 13);
  writeJournal(path, batches);
  for (const chunkSize of [1, 9, 10, 64, 333, 4096]) {
    const { events, batches: n, reader } = readAll(path, { chunkSize });
    t.same(plain(events), plain(batches.flat()), `chunk ${chunkSize}`);
    t.equal(n, 7);
    t.equal(reader.trailer?.events, 91);
  }
  t.end();
});

t.test('journal: a journal larger than the default 1 MiB chunk reads whole, torn tail too', (t) => {
  const path = join(dir, 'big.mpk');
  const batches = batchesOf(80, 1024);
  writeJournal(path, batches, false);
  t.ok(statSync(path).size > 2 * 1024 * 1024, `${statSync(path).size} bytes`);
  const { events, reader } = readAll(path);
  t.equal(events.length, 80 * 1024);
  t.same(plain(events.slice(-3)), plain(batches.flat().slice(-3)));
  t.equal(reader.trailer, undefined, 'crashed recording: no trailer');
  t.equal(reader.tail, undefined, 'but no torn bytes either');
  t.end();
});
