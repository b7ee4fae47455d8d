// A journal's events as export batches: read and scanned by a second thread when the built worker is there, else here.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JournalCounts, JournalReader, ScansByFormat } from '../../journal/reader.js';
import { ReadingThread } from '../../journal/reading-thread.js';
import { ExportBatch } from './batch.js';
import { scanExportV1 } from './scan-v1.js';
import { scanExportV2 } from './scan-v2.js';

/** What the reader knows at the end: the warnings and the digest check need it. */
export interface ReadEnd {
  trailer: boolean;
  tail: { offset: number; ignoredBytes: number } | undefined;
  counts: JournalCounts;
  sha256: string | undefined;
}

/** What the reading thread posts (and, as a ThreadFailure, how it fails). */
export type ReadMessage =
  | { kind: 'events'; buf: ArrayBuffer; n: number }
  | ({ kind: 'end' } & ReadEnd);

const WORKER = new URL('./read-worker.js', import.meta.url);

/** The worker is JavaScript only in the built package (dist/); from sources, read here. */
export const workerAvailable: boolean = existsSync(fileURLToPath(WORKER));

/** The export's every-field readers of each format's events payload (decode where they decline). */
export const EXPORT_SCANS: ScansByFormat<ExportBatch> = { 1: scanExportV1, 2: scanExportV2 };

/** Journals smaller than this are read on this thread: a worker costs ~0.1 s to start. */
const WORKER_MIN_BYTES = 1024 * 1024;
/** Batches (up to 8,192 events each, read-worker.ts joins small frames) between the threads at most. */
const IN_FLIGHT = 8;

/** Whether exportBatches() reads the journal on a second thread: a large one, in the built package. */
export function readsInThread(reader: JournalReader): boolean {
  return workerAvailable && reader.size >= WORKER_MIN_BYTES;
}

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
  if (!readsInThread(reader)) {
    yield* reader.scannedInto(new ExportBatch(), EXPORT_SCANS);
    end.value = endOf(reader);
    return;
  }
  yield* inWorker(reader, end);
}

async function* inWorker(reader: JournalReader, end: { value?: ReadEnd }) {
  const thread = new ReadingThread<ReadMessage>(
    WORKER,
    reader,
    IN_FLIGHT,
    'export: the reading thread',
  );
  try {
    for (;;) {
      const m = await thread.next();
      if (m.kind === 'end') {
        end.value = { trailer: m.trailer, tail: m.tail, counts: m.counts, sha256: m.sha256 };
        return;
      }
      yield ExportBatch.view(m.buf, m.n);
      // Used: the buffer goes back for reuse, and the worker may read one batch more.
      thread.used([m.buf]);
    }
  } finally {
    await thread.close();
  }
}
