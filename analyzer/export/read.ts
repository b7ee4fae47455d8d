// A journal's events as export batches: read and scanned by a second thread when the built worker is there, else here.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CtError, type ExitCode } from '../../common/errors.js';
import { JournalFault } from '../../journal/fault.js';
import type { JournalCounts, JournalReader, ScansByFormat } from '../../journal/reader.js';
import { ExportBatch } from './batch.js';
import { scanExportV1 } from './scan-v1.js';
import { scanExportV2 } from './scan-v2.js';

/** What the reading thread is given: the opened journal's fd is shared, not reopened. */
export interface ReadWorkerData {
  path: string;
  fd: number;
  /** Batches the main thread has room for; the worker waits at 0 (bounded memory). */
  credits: Int32Array;
}

/** What the reader knows at the end: the warnings and the digest check need it. */
export interface ReadEnd {
  trailer: boolean;
  tail: { offset: number; ignoredBytes: number } | undefined;
  counts: JournalCounts;
  sha256: string | undefined;
}

export type ReadMessage =
  | { kind: 'events'; buf: ArrayBuffer; n: number }
  | ({ kind: 'end' } & ReadEnd)
  | { kind: 'fault'; code: 'ECORRUPT' | 'EMODIFIED'; offset: number; why: string; atFrame: boolean }
  | { kind: 'error'; code: string; message: string; exit: ExitCode }
  | { kind: 'bug'; message: string };

const WORKER = new URL('./read-worker.js', import.meta.url);

/** The worker is JavaScript only in the built package (dist/); from sources, read here. */
export const workerAvailable: boolean = existsSync(fileURLToPath(WORKER));

/** The export's every-field readers of each format's events payload (decode where they decline). */
export const EXPORT_SCANS: ScansByFormat<ExportBatch> = { 1: scanExportV1, 2: scanExportV2 };

/** Journals smaller than this are read on this thread: a worker costs ~0.1 s to start. */
const WORKER_MIN_BYTES = 1024 * 1024;
/** Batches (a frame's events each) between the threads at most. */
const IN_FLIGHT = 64;

/** The end state of a reader that read here. */
export function endOf(reader: JournalReader): ReadEnd {
  return {
    trailer: reader.trailer !== undefined,
    tail: reader.tail,
    counts: reader.counts,
    sha256: reader.sha256,
  };
}

/**
 * The journal's events, one batch per events frame, with the reader's checks and errors;
 * `end` is set once the last batch was given. A batch is valid until the next is asked for.
 */
export async function* exportBatches(
  reader: JournalReader,
  end: { value?: ReadEnd },
): AsyncGenerator<ExportBatch> {
  if (!workerAvailable || reader.size < WORKER_MIN_BYTES) {
    yield* reader.scannedInto(new ExportBatch(), EXPORT_SCANS);
    end.value = endOf(reader);
    return;
  }
  yield* inWorker(reader, end);
}

async function* inWorker(reader: JournalReader, end: { value?: ReadEnd }) {
  const fd = reader.fd;
  if (fd === undefined) throw new Error('export: reader is closed');
  const credits = new Int32Array(new SharedArrayBuffer(4));
  credits[0] = IN_FLIGHT;
  const data: ReadWorkerData = { path: reader.path, fd, credits };
  const worker = new Worker(WORKER, { workerData: data });
  const queue: ReadMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let exited = false;
  worker.on('message', (m: ReadMessage) => {
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
  try {
    for (;;) {
      while (queue.length === 0) {
        if (failure !== undefined) throw failure;
        if (exited) throw new Error('export: the reading thread ended without a result');
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      const m = queue.shift() as ReadMessage;
      switch (m.kind) {
        case 'events':
          yield ExportBatch.view(m.buf, m.n);
          // Used: the buffer goes back for reuse, and the worker may read one batch more.
          worker.postMessage(m.buf, [m.buf]);
          Atomics.add(credits, 0, 1);
          Atomics.notify(credits, 0);
          break;
        case 'end':
          end.value = { trailer: m.trailer, tail: m.tail, counts: m.counts, sha256: m.sha256 };
          return;
        case 'fault':
          throw new JournalFault(m.code, reader.path, m.offset, m.why, m.atFrame);
        case 'error':
          throw new CtError(m.code, m.message, { exit: m.exit });
        case 'bug':
          throw new Error(`export: the reading thread failed: ${m.message}`);
      }
    }
  } finally {
    await worker.terminate();
  }
}
