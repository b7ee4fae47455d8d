// What a journal reader hands out: its items, counts and options (journal/reader.ts implements it).
import type { CtEvent } from './event.js';
import type { EventColumns } from './event-columns.js';
import type {
  AddressSet,
  EventCounts,
  JournalCheckpoint,
  JournalGap,
  JournalHeader,
  JournalTrailer,
  RouteSet,
} from './format.js';

/** What the walk fills from an events payload: EventColumns, or a caller's batch (scannedInto). */
export interface ScanBatch {
  n: number;
  type: Uint8Array;
  time: Float64Array;
  fill(events: readonly CtEvent[]): void;
}
/** A fast reader of one format's events payload into a batch: false hands the payload to decode. */
export type ScanInto<B> = (payload: Uint8Array, fields: number, batch: B) => boolean;
export type ScansByFormat<B> = { 1: ScanInto<B>; 2: ScanInto<B> };

/** One frame's worth of journal, in file order. */
export type JournalItem = { kind: 'events'; events: CtEvent[] } | { kind: 'gap'; gap: JournalGap };

/**
 * columns()'s items: an events frame as EventColumns, reused from frame to frame (read it
 * before the next item), or a gap.
 */
export type ColumnsItem =
  | { kind: 'events'; columns: EventColumns }
  | { kind: 'gap'; gap: JournalGap };

/** follow()'s item when it has read everything there is: ask again later for more. */
export type IdleItem = { kind: 'idle' };

/** What a reader has read so far: the trailer's counts, whether or not there is a trailer. */
export interface JournalCounts {
  events: number;
  byType: EventCounts;
  /** Frames read, the header and checkpoints included. */
  frames: number;
  gaps: number;
  /** Sum of the gaps' `lost`. */
  lost: number;
  /** Gaps whose `lost` is only a lower bound (lostKnown false). */
  gapsLostUnknown: number;
  /**
   * Entries resync dumps left out because the journal already held them: the gaps' optional
   * `skipped`, once per dump (the gaps one dump wrote follow each other with the same `to`,
   * `resync` and `skipped`); absent while no gap read carried it (journals from before it).
   */
  resyncSkipped?: number;
  /** The latest event time read (µs), undefined before any event. */
  lastEventTime: number | undefined;
  /** Checkpoint frames read; each one matched the digest and counts of what precedes it. */
  checkpoints: number;
  /** What the last checkpoint vouched for, and its file offset; undefined before the first. */
  verified: (Omit<JournalCheckpoint, 'digest'> & { offset: number }) | undefined;
}

export interface JournalReader {
  readonly path: string;
  readonly header: JournalHeader;
  /**
   * Event batches and gaps in file order, one item per frame. Throws JournalFault ECORRUPT when
   * a damaged frame is followed by a good one, EMODIFIED when a checkpoint's or the trailer's
   * digest or counts disagree with the frames before it; a damaged or short frame at the end is
   * the torn tail. Items before a fault have been yielded already: a caller that must not use
   * unverified data keeps its results until the generator ends. Events are read-only: a reply
   * tuple may share the original tuple's address arrays.
   */
  items(): Generator<JournalItem>;
  /** items() without the gaps (still counted in `counts`): for readers that only want events. */
  batches(): Generator<CtEvent[]>;
  /**
   * items() as columns, the replay hot path: the same frames, checks and counts, no object per
   * event. Each events item's columns are overwritten by the next item.
   */
  columns(opts?: ConstructorParameters<typeof EventColumns>[0]): Generator<ColumnsItem>;
  /**
   * Events frames read by the caller's own scanner of this format into its own batch (the
   * export's every-field one), with the same checks and counts; a payload the scanner
   * declines is decoded and given to batch.fill(). The batch is overwritten by the next frame.
   */
  scannedInto<B extends ScanBatch>(batch: B, scans: ScansByFormat<B>): Generator<B>;
  /**
   * columns() for a journal that is still being written: at the end of what is there (or at a
   * frame not yet wholly written) it yields `idle` instead of ending; the next call looks at
   * the file's size again. It ends at the trailer. A journal that shrinks is an error.
   */
  follow(): Generator<ColumnsItem | IdleItem>;
  /** File offset after the last whole frame read: the progress of a pass. */
  readonly offset: number;
  /** The open file descriptor, for readerOnFd in a decoding thread; undefined once closed. */
  readonly fd: number | undefined;
  /** Counts of what items() or batches() has read so far; final once it is exhausted. */
  readonly counts: JournalCounts;
  /**
   * The host's addresses as read so far, in file order: the header's (from its `start`) when it
   * has them, then each checkpoint's that carries a change. Empty for journals without them.
   * The reader's own array (do not change it); an address that several sets hold is one object,
   * so memory grows with the distinct addresses, not with the checkpoints that repeat them.
   */
  readonly addressSets: readonly AddressSet[];
  /**
   * The host's routes as read so far, as addressSets: the header's, then each checkpoint's that
   * carries a change; a route that several sets hold is one object. Empty without them.
   */
  readonly routeSets: readonly RouteSet[];
  /** After items() is exhausted: the trailer, undefined when the recording did not end cleanly. */
  readonly trailer: JournalTrailer | undefined;
  /** After items() is exhausted: the ignored torn tail, if any. */
  readonly tail: { offset: number; ignoredBytes: number } | undefined;
  /** After items() is exhausted with a trailer: SHA-256 (hex) of the whole file, as sha256sum. */
  readonly sha256: string | undefined;
  /** File size when opened, or as last seen by follow(). */
  readonly size: number;
  close(): void;
}

export interface ReadOptions {
  /** Bytes per read; default 1 MiB. A frame larger than this is read whole anyway. */
  chunkSize?: number;
}
