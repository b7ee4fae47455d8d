// The decoding thread of a parallel replay: reads, checks and scans a journal, posting columns.
import { parentPort, workerData } from 'node:worker_threads';
import { CtError } from '../common/errors.js';
import { JournalFault } from './fault.js';
import type { WorkerData, WorkerMessage } from './parallel.js';
import { readerOnFd } from './reader.js';

const { path, fd, credits } = workerData as WorkerData;
const port = parentPort;
if (port === null) throw new Error('columns-worker runs as a worker thread only');

const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

/** Waits for the main thread to have room for one more batch (bounded memory in between). */
function takeCredit(): void {
  for (;;) {
    const now = Atomics.load(credits, 0);
    if (now > 0 && Atomics.compareExchange(credits, 0, now, now - 1) === now) return;
    if (now <= 0) Atomics.wait(credits, 0, now, 1000);
  }
}

// Batches go over in groups: one message per ~8 frames costs less than one per frame.
const GROUP = 8;
let bufs: ArrayBuffer[] = [];
let ns: number[] = [];
const flush = (offset: number) => {
  if (bufs.length === 0) return;
  takeCredit();
  post({ kind: 'events', bufs, ns, offset }, bufs);
  bufs = [];
  ns = [];
};

try {
  const reader = readerOnFd(path, fd);
  for (const item of reader.columns({ packed: true })) {
    if (item.kind === 'events') {
      bufs.push(item.columns.buffer);
      ns.push(item.columns.n);
      if (bufs.length === GROUP) flush(reader.offset);
    } else {
      flush(reader.offset);
      takeCredit();
      post({ kind: 'gap', gap: item.gap, offset: reader.offset });
    }
  }
  flush(reader.offset);
  post({
    kind: 'end',
    trailer: reader.trailer,
    tail: reader.tail,
    counts: reader.counts,
    sha256: reader.sha256,
  });
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
