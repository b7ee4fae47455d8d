// What a part file is given: a journal's constant columns, and the writer interface both formats implement.
import type { Flow } from '../core/flows.js';
import type { ExportBatch } from './batch.js';

/** The columns every event of one journal shares, and what names its part files. */
export interface JournalContext {
  readonly host: string;
  /** SHA-256 (hex) of the whole journal file. */
  readonly sha256: string;
  /** ip_local_port_range from the journal's header; null when it does not record it. */
  readonly portLo: number | null;
  readonly portHi: number | null;
}

/** One part file of events, rows appended in journal order. */
export interface EventPart {
  readonly rows: number;
  /** Event i of the batch, the journal's event number seq. */
  add(b: ExportBatch, i: number, seq: number): void;
  /** Events from … to-1 of the batch, numbered seq, seq + 1, …, where a part takes them at once. */
  addRange?(b: ExportBatch, from: number, to: number, seq: number): void;
  /** Writes what is ready (Parquet: row groups whose compression is done). */
  ready(): Promise<void>;
  /** Writes what is buffered and the file's end; the file then waits for commit. */
  finish(): Promise<void>;
}

/** One part file of flows of one host. */
export interface FlowPart {
  readonly rows: number;
  add(flow: Flow): void;
  finish(): Promise<void>;
}
