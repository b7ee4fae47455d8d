// The reading thread of an export: reads, checks and scans a journal, posting every event's fields as export batches.
import { readerOnFd } from '../../journal/reader.js';
import { threadSide } from '../../journal/reading-thread.js';
import { ExportBatch } from './batch.js';
import { EXPORT_SCANS, endOf, type ReadMessage } from './read.js';

const side = threadSide<ReadMessage>(0);

/**
 * Events per batch handed over, at most: small frames (a quiet host's, ct-record's flush
 * interval) are joined, so the export's thread takes a message per thousands of events.
 */
const JOIN = 8192;

try {
  const reader = readerOnFd(side.path, side.fd);
  const joined = new ExportBatch(side.alloc);
  joined.reset(JOIN);
  // The buffer is handed over (release); the batch then takes a pooled one.
  const post = (batch: ExportBatch) => {
    side.takeCredit();
    const n = batch.n;
    const buf = batch.release();
    side.post({ kind: 'events', buf, n }, [buf]);
  };
  for (const batch of reader.scannedInto(new ExportBatch(side.alloc), EXPORT_SCANS)) {
    if (joined.n > 0 && joined.n + batch.n > JOIN) {
      post(joined);
      joined.reset(JOIN);
    }
    if (batch.n > JOIN) post(batch);
    else joined.append(batch);
  }
  if (joined.n > 0) post(joined);
  side.post({ kind: 'end', ...endOf(reader) });
} catch (err) {
  side.fail(err);
}
