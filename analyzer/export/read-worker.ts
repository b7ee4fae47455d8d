// The reading thread of an export: reads, checks and scans a journal, posting every event's fields as export batches.
import { readerOnFd } from '../../journal/reader.js';
import { threadSide } from '../../journal/reading-thread.js';
import { ExportBatch } from './batch.js';
import { EXPORT_SCANS, endOf, type ReadMessage } from './read.js';

const side = threadSide<ReadMessage>(0);

try {
  const reader = readerOnFd(side.path, side.fd);
  // Each frame's buffer is handed over (release), so the next frame gets a pooled one.
  for (const batch of reader.scannedInto(new ExportBatch(side.alloc), EXPORT_SCANS)) {
    side.takeCredit();
    const n = batch.n;
    const buf = batch.release();
    side.post({ kind: 'events', buf, n }, [buf]);
  }
  side.post({ kind: 'end', ...endOf(reader) });
} catch (err) {
  side.fail(err);
}
