// The reading thread of an export: reads, checks and scans a journal, posting every event's fields as export batches.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { CtError } from '../../common/errors.js';
import { JournalFault } from '../../journal/fault.js';
import { readerOnFd } from '../../journal/reader.js';
import { ExportBatch } from './batch.js';
import { EXPORT_SCANS, endOf, type ReadMessage, type ReadWorkerData } from './read.js';

const { path, fd, credits } = workerData as ReadWorkerData;
const port = parentPort;
if (port === null) throw new Error('read-worker runs as a worker thread only');

const post = (m: ReadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

// Buffers the main thread is done with come back and are reused.
const pool: ArrayBuffer[] = [];
function alloc(bytes: number): ArrayBuffer {
  const p = port as NonNullable<typeof port>;
  for (let m = receiveMessageOnPort(p); m !== undefined; m = receiveMessageOnPort(p)) {
    pool.push(m.message as ArrayBuffer);
  }
  const i = pool.findIndex((b) => b.byteLength >= bytes);
  return i >= 0 ? (pool.splice(i, 1)[0] as ArrayBuffer) : new ArrayBuffer(bytes);
}

/** Waits for the main thread to have room for one more batch (bounded memory in between). */
function takeCredit(): void {
  for (;;) {
    const now = Atomics.load(credits, 0);
    if (now > 0 && Atomics.compareExchange(credits, 0, now, now - 1) === now) return;
    if (now <= 0) Atomics.wait(credits, 0, now, 1000);
  }
}

try {
  const reader = readerOnFd(path, fd);
  // Each frame's buffer is handed over (release), so the next frame gets a pooled one.
  for (const batch of reader.scannedInto(new ExportBatch(alloc), EXPORT_SCANS)) {
    takeCredit();
    const n = batch.n;
    const buf = batch.release();
    post({ kind: 'events', buf, n }, [buf]);
  }
  post({ kind: 'end', ...endOf(reader) });
} catch (err) {
  if (err instanceof JournalFault) {
    post({
      kind: 'fault',
      code: err.code as 'ECORRUPT' | 'EMODIFIED',
      offset: err.offset,
      why: err.why,
      atFrame: err.atFrame,
    });
  } else if (err instanceof CtError) {
    post({ kind: 'error', code: err.code, message: err.message, exit: err.exit });
  } else {
    const e = err as Error;
    post({ kind: 'bug', message: e?.stack ?? String(err) });
  }
}
