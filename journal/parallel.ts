// A journal read, checked and scanned by a second thread while this one builds the flow table.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EventColumns } from './event-columns.js';
import type { AddressSet, JournalGap, JournalTrailer, RouteSet } from './format.js';
import type { ColumnsItem, JournalCounts, JournalReader } from './reader.js';
import { ReadingThread } from './reading-thread.js';

/** What the decoding thread posts (and, as a ThreadFailure, how it fails). */
export type WorkerMessage =
  | { kind: 'events'; bufs: ArrayBuffer[]; ns: number[]; offset: number }
  | { kind: 'gap'; gap: JournalGap; offset: number }
  | ({ kind: 'end' } & JournalEnd);

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
  const thread = new ReadingThread<WorkerMessage>(
    WORKER,
    reader,
    IN_FLIGHT,
    'journal: the decoding thread',
  );
  try {
    for (;;) {
      const m = await thread.next();
      switch (m.kind) {
        case 'events':
          progress.offset = m.offset;
          for (const [i, buf] of m.bufs.entries()) {
            yield { kind: 'events', columns: EventColumns.view(buf, m.ns[i] as number) };
          }
          // Read (the consumer asked for the next item): the buffers go back for reuse.
          thread.used(m.bufs);
          break;
        case 'gap':
          progress.offset = m.offset;
          yield { kind: 'gap', gap: m.gap };
          thread.used([]);
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
      }
    }
  } finally {
    await thread.close();
  }
}
