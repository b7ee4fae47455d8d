// The decoding thread of a parallel replay: reads, checks and scans a journal, posting columns.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { CtError } from '../common/errors.js';
import { BYTES_PER_EVENT } from './event-columns.js';
import { JournalFault } from './fault.js';
import type { WorkerData, WorkerMessage } from './parallel.js';
import { readerOnFd } from './reader.js';

const { path, fd, credits } = workerData as WorkerData;
const port = parentPort;
if (port === null) throw new Error('columns-worker runs as a worker thread only');

const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

// Buffers the main thread is done with come back and are reused: fresh memory for every batch
// cost page faults that showed up as a tenth of the replay.
const pool: ArrayBuffer[] = [];
function alloc(bytes: number): ArrayBuffer {
  const p = port as NonNullable<typeof port>;
  for (let m = receiveMessageOnPort(p); m !== undefined; m = receiveMessageOnPort(p)) {
    pool.push(...(m.message as ArrayBuffer[]));
  }
  const i = pool.findIndex((b) => b.byteLength >= bytes);
  return i >= 0
    ? (pool.splice(i, 1)[0] as ArrayBuffer)
    : new ArrayBuffer(Math.max(bytes, BYTES_PER_EVENT * 1024));
}

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
  for (const item of reader.columns({ packed: true, alloc })) {
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
    addressSets: reader.addressSets,
    routeSets: reader.routeSets,
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
