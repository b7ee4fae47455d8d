// A journal read, checked and scanned by a second thread while this one builds the flow table.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CtError, type ExitCode } from '../common/errors.js';
import { EventColumns } from './event-columns.js';
import { JournalFault } from './fault.js';
import type { AddressSet, JournalGap, JournalTrailer, RouteSet } from './format.js';
import type { ColumnsItem, JournalCounts, JournalReader } from './reader.js';

/** What the decoding thread is given: the opened journal's fd is shared, not reopened. */
export interface WorkerData {
  path: string;
  fd: number;
  /** Batches the main thread has room for; the worker waits at 0 (bounded memory). */
  credits: Int32Array;
}

export type WorkerMessage =
  | { kind: 'events'; bufs: ArrayBuffer[]; ns: number[]; offset: number }
  | { kind: 'gap'; gap: JournalGap; offset: number }
  | ({ kind: 'end' } & JournalEnd)
  | { kind: 'fault'; code: 'ECORRUPT' | 'EMODIFIED'; offset: number; why: string; atFrame: boolean }
  | { kind: 'error'; code: string; message: string; exit: ExitCode }
  | { kind: 'bug'; message: string };

/** What a reader knows once columns() has ended: the same, from the decoding thread. */
export interface JournalEnd {
  trailer: JournalTrailer | undefined;
  tail: { offset: number; ignoredBytes: number } | undefined;
  counts: JournalCounts;
  sha256: string | undefined;
  addressSets: readonly AddressSet[];
  routeSets: readonly RouteSet[];
}

const WORKER = new URL('./columns-worker.js', import.meta.url);

/**
 * The worker is JavaScript only in the built package (dist/); run from TypeScript sources
 * (tests), callers read on one thread, which gives the same results.
 */
export const parallelAvailable: boolean = existsSync(fileURLToPath(WORKER));

/** Messages (up to 8 batches of ~1,000 events, 53 bytes each) between the threads, at most. */
const IN_FLIGHT = 16;

/**
 * reader.columns(), produced by a worker thread over the reader's fd: the same items, checks,
 * counts and errors (a JournalFault stays a JournalFault). `progress.offset` follows the items;
 * `progress.end` is set when the generator ends normally.
 */
export async function* columnsInWorker(
  reader: JournalReader,
  progress: { offset: number; end?: JournalEnd },
): AsyncGenerator<ColumnsItem> {
  const fd = reader.fd;
  if (fd === undefined) throw new Error('journal: reader is closed');
  const credits = new Int32Array(new SharedArrayBuffer(4));
  credits[0] = IN_FLIGHT;
  const data: WorkerData = { path: reader.path, fd, credits };
  const worker = new Worker(WORKER, { workerData: data });
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let exited = false;
  worker.on('message', (m: WorkerMessage) => {
    queue.push(m);
    wake?.();
  });
  worker.on('error', (err) => {
    failure = err;
    wake?.();
  });
  worker.on('exit', () => {
    exited = true;
    wake?.();
  });
  const release = () => {
    Atomics.add(credits, 0, 1);
    Atomics.notify(credits, 0);
  };
  try {
    for (;;) {
      while (queue.length === 0) {
        if (failure !== undefined) throw failure;
        if (exited) throw new Error('journal: the decoding thread ended without a result');
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      const m = queue.shift() as WorkerMessage;
      switch (m.kind) {
        case 'events':
          progress.offset = m.offset;
          for (const [i, buf] of m.bufs.entries()) {
            yield { kind: 'events', columns: EventColumns.view(buf, m.ns[i] as number) };
          }
          // Read (the consumer asked for the next item): the buffers go back for reuse.
          worker.postMessage(m.bufs, m.bufs);
          release();
          break;
        case 'gap':
          progress.offset = m.offset;
          yield { kind: 'gap', gap: m.gap };
          release();
          break;
        case 'end':
          progress.end = {
            trailer: m.trailer,
            tail: m.tail,
            counts: m.counts,
            sha256: m.sha256,
            addressSets: m.addressSets,
            routeSets: m.routeSets,
          };
          return;
        case 'fault':
          throw new JournalFault(m.code, reader.path, m.offset, m.why, m.atFrame);
        case 'error':
          throw new CtError(m.code, m.message, { exit: m.exit });
        case 'bug':
          throw new Error(`journal: the decoding thread failed: ${m.message}`);
      }
    }
  } finally {
    await worker.terminate();
  }
}
