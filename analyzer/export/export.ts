// ct-analyze export: journals → Hive-partitioned part files of events and/or flows, schema.json at the root.
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { CtError, Exit } from '../../common/errors.js';
import { type JournalReader, openJournal } from '../../journal/reader.js';
import { type Collapse, formatCollapse } from '../core/flows.js';
import { analyzeJournalsInParallel } from '../core/replay.js';
import { inWindow, NO_WINDOW, type TimeWindow } from '../core/slice.js';
import type { ExportBatch } from './batch.js';
import { ExportFiles, type FileIo } from './files.js';
import { NdjsonEventPart, NdjsonFlowPart } from './ndjson.js';
import { type Compression, startEncodingThread } from './parquet.js';
import { ParquetEventPart, ParquetFlowPart } from './parquet-parts.js';
import { exportBatches, type ReadEnd, readsInThread } from './read.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import { schemaJson } from './schema.js';
import { AddressCache, hiveEscape, TimeText, US_PER_DAY } from './values.js';

export type ExportFormat = 'ndjson' | 'parquet';
export type ExportWhat = 'events' | 'flows' | 'both';

export interface ExportCommand {
  journals: readonly string[];
  what: ExportWhat;
  format: ExportFormat;
  collapse: Collapse;
  window?: TimeWindow;
  /** The root directory (made if missing). */
  output: string;
  force: boolean;
  /** Parquet pages: GZIP (default) or none. */
  compression?: Compression;
  /** Rows per part file; default PART_ROWS (tests make it small). */
  partRows?: number;
}

export interface ExportIo {
  warn(message: string): void;
  note(message: string): void;
  /** Tests inject a failing disk here. */
  files?: FileIo;
}

export interface ExportResult {
  /** Every file written (final paths), schema.json included when it was (re)written. */
  files: string[];
  events: number;
  flows: number;
}

/** Rows per part file: a part's memory (Parquet buffers a row group) and size stay bounded. */
export const PART_ROWS = 1_000_000;
/** Events handed to the parts between two waits for their writes. */
const SLICE = 1024;
/** Partitions (days) of one journal open at once: events a little out of order cost no part. */
const OPEN_PARTITIONS = 4;

/** The first 16 hex digits of a digest: what names a journal's (or flow set's) part files. */
const tagOf = (sha256: string) => sha256.slice(0, 16);

/** The part writers of a format. */
interface PartMaker {
  readonly ext: string;
  events(files: ExportFiles, rel: string, j: JournalContext): EventPart;
  flows(files: ExportFiles, rel: string, host: string, collapse: Collapse): FlowPart;
}

function partMaker(format: ExportFormat, compression: Compression): PartMaker {
  const addrs = new AddressCache();
  const times = new TimeText();
  if (format === 'ndjson') {
    return {
      ext: 'ndjson',
      events: (files, rel, j) => new NdjsonEventPart(files, rel, j, addrs, times),
      flows: (files, rel, host, collapse) =>
        new NdjsonFlowPart(files, rel, host, collapse, addrs, times),
    };
  }
  return {
    ext: 'parquet',
    events: (files, rel, j) => new ParquetEventPart(files, rel, j, addrs, compression),
    flows: (files, rel, host, collapse) =>
      new ParquetFlowPart(files, rel, host, collapse, addrs, compression),
  };
}

/** Exports the journals; nothing is renamed into place unless every part was written. */
export async function runExport(cmd: ExportCommand, io: ExportIo): Promise<ExportResult> {
  const maker = partMaker(cmd.format, cmd.compression ?? 'gzip');
  const files = new ExportFiles(cmd.output, {
    force: cmd.force,
    ...(io.files === undefined ? {} : { io: io.files }),
  });
  const result: ExportResult = { files: [], events: 0, flows: 0 };
  try {
    const journals = identify(cmd.journals);
    files.writeShared('schema.json', schemaJson());
    if (cmd.what !== 'flows') {
      for (const j of journals) result.events += await exportEvents(j, cmd, files, maker, io);
    }
    if (cmd.what !== 'events') result.flows = await exportFlows(journals, cmd, files, maker, io);
    result.files = files.paths;
    files.commit();
  } catch (err) {
    files.abort();
    throw err;
  }
  return result;
}

interface Identified {
  path: string;
  host: string;
  sha256: string;
}

/**
 * Each journal's host and digest, read before anything is written: a journal given twice
 * (the same bytes under two names) would write its parts twice.
 */
function identify(paths: readonly string[]): Identified[] {
  const seen = new Map<string, string>();
  return paths.map((path) => {
    const reader = openJournal(path);
    try {
      const sha256 = hashFile(reader);
      const other = seen.get(sha256);
      if (other !== undefined) {
        throw new CtError(
          'EUSAGE',
          `${path} and ${other} are the same journal (SHA-256 ${tagOf(sha256)}…): give each journal once`,
          { exit: Exit.USAGE },
        );
      }
      seen.set(sha256, path);
      return { path, host: reader.header.host, sha256 };
    } finally {
      reader.close();
    }
  });
}

/** SHA-256 of the journal's bytes as opened (what sha256sum prints for a finished file). */
function hashFile(reader: JournalReader): string {
  const fd = reader.fd as number;
  const hash = createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  for (let pos = 0; pos < reader.size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, reader.size - pos), pos);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
  return hash.digest('hex');
}

/** One journal's events into its partitions (host, UTC date), in journal order. */
async function exportEvents(
  id: Identified,
  cmd: ExportCommand,
  files: ExportFiles,
  maker: PartMaker,
  io: ExportIo,
): Promise<number> {
  const reader = openJournal(id.path);
  try {
    const range = reader.header.sysctls.ip_local_port_range;
    const j: JournalContext = {
      host: reader.header.host,
      sha256: id.sha256,
      portLo: range?.[0] ?? null,
      portHi: range?.[1] ?? null,
    };
    // A large journal: its row groups will be encoded on the encoding thread, which boots meanwhile.
    if (cmd.format === 'parquet' && readsInThread(reader)) startEncodingThread();
    const parts = new EventPartitions(files, j, maker, cmd.partRows ?? PART_ROWS);
    const window = cmd.window ?? NO_WINDOW;
    const all = window.since === null && window.until === null;
    let seq = 0;
    let rows = 0;
    const end: { value?: ReadEnd } = {};
    for await (const b of exportBatches(reader, end)) {
      const time = b.time;
      // A slice at a time, the parts' writes on their way in between (NDJSON's areas hold
      // ~1,200 lines each); runs of events in the window go to the parts together.
      for (let from = 0; from < b.n; from += SLICE) {
        const to = Math.min(b.n, from + SLICE);
        for (let i = from; i < to; ) {
          let j = i;
          while (j < to && (all || inWindow(window, time[j] as number))) j++;
          if (j > i) parts.add(b, i, j, seq + i);
          rows += j - i;
          i = j + 1;
        }
        await parts.ready();
      }
      seq += b.n;
    }
    await parts.finish();
    const state = end.value as ReadEnd;
    if (state.sha256 !== undefined && state.sha256 !== id.sha256) {
      throw new CtError(
        'ECHANGED',
        `${id.path} changed while it was exported (its digest is no longer the one its rows name): export it again once it is no longer written`,
      );
    }
    endWarnings(reader.path, state, io);
    return rows;
  } finally {
    reader.close();
  }
}

/** The warnings ct-analyze gives for a journal that did not end cleanly. */
function endWarnings(path: string, end: ReadEnd, io: ExportIo): void {
  const tail = end.tail;
  if (tail !== undefined && tail.ignoredBytes > 0) {
    io.warn(`${path}: ignored ${tail.ignoredBytes} trailing bytes (recording did not end cleanly)`);
  } else if (!end.trailer) {
    io.warn(`${path}: no trailer (recording did not end cleanly); exported the events it holds`);
  }
  const { lost, gaps } = end.counts;
  if (gaps > 0) io.warn(`${path}: ${lost} events lost in ${gaps} gaps: flows may be missing`);
}

/**
 * The open part of each (UTC) day of one journal; a part that reaches partRows rows is
 * finished and the next one of its day started, so memory does not grow with the journal.
 */
class EventPartitions {
  readonly #files: ExportFiles;
  readonly #j: JournalContext;
  readonly #maker: PartMaker;
  readonly #partRows: number;
  readonly #dir: string;
  readonly #open = new Map<number, EventPart>();
  /** The next part number of each day. */
  readonly #next = new Map<number, number>();
  readonly #times = new TimeText();
  #lastDay = Number.NaN;
  #last: EventPart | undefined;
  /** Parts finished while rows came in, their last writes on the way. */
  #closing: Promise<void>[] = [];

  constructor(files: ExportFiles, j: JournalContext, maker: PartMaker, partRows: number) {
    this.#files = files;
    this.#j = j;
    this.#maker = maker;
    this.#partRows = partRows;
    this.#dir = `events/host=${hiveEscape(j.host)}`;
  }

  /** Events from … to-1 of the batch, numbered seq, seq + 1, …, into their days' parts. */
  add(b: ExportBatch, from: number, to: number, seq: number): void {
    const time = b.time;
    for (let i = from; i < to; ) {
      const day = TimeText.day(time[i] as number);
      let part = day === this.#lastDay ? this.#last : this.#open.get(day);
      if (part === undefined || part.rows >= this.#partRows) part = this.#start(day, part);
      this.#lastDay = day;
      this.#last = part;
      // The run of events of this day that still fit in the part.
      const first = day * US_PER_DAY;
      const stop = Math.min(to, i + this.#partRows - part.rows);
      let j = i + 1;
      while (j < stop && (time[j] as number) >= first && (time[j] as number) < first + US_PER_DAY)
        j++;
      if (part.addRange !== undefined) part.addRange(b, i, j, seq + (i - from));
      else for (let k = i; k < j; k++) part.add(b, k, seq + (k - from));
      i = j;
    }
  }

  #start(day: number, full: EventPart | undefined): EventPart {
    if (full !== undefined) {
      this.#close(full);
      this.#open.delete(day);
    }
    if (this.#open.size >= OPEN_PARTITIONS) {
      // The day opened longest ago: a journal moves forward in time.
      const [oldDay, oldPart] = this.#open.entries().next().value as [number, EventPart];
      this.#close(oldPart);
      this.#open.delete(oldDay);
    }
    const n = this.#next.get(day) ?? 0;
    this.#next.set(day, n + 1);
    const rel = `${this.#dir}/date=${this.#times.date(day)}/part-${tagOf(this.#j.sha256)}-${n}.${this.#maker.ext}`;
    const part = this.#maker.events(this.#files, rel, this.#j);
    this.#open.set(day, part);
    return part;
  }

  /**
   * Starts finishing a part; ready() awaits it. A failure meanwhile is raised there, not as an
   * unhandled rejection (which ends the process before the export can clean up).
   */
  #close(part: EventPart): void {
    const done = part.finish();
    done.catch(() => {});
    this.#closing.push(done);
  }

  /** Writes what the parts have ready (between batches: bounded memory). */
  async ready(): Promise<void> {
    if (this.#closing.length > 0) {
      const closing = this.#closing;
      this.#closing = [];
      await Promise.all(closing);
    }
    for (const part of this.#open.values()) await part.ready();
  }

  async finish(): Promise<void> {
    for (const part of this.#open.values()) this.#close(part);
    this.#open.clear();
    this.#last = undefined;
    this.#lastDay = Number.NaN;
    await this.ready();
  }
}

/**
 * The flow table of each host's journals (ct-analyze over them alone), one row per flow in
 * the table's order. Grouping these rows by everything but host gives ct-analyze's table of
 * all the journals: a merged flow is confirmed when any host's is, first and last seen are the
 * extremes, exactly the union FlowTable makes.
 */
async function exportFlows(
  journals: readonly Identified[],
  cmd: ExportCommand,
  files: ExportFiles,
  maker: PartMaker,
  io: ExportIo,
): Promise<number> {
  const byHost = new Map<string, Identified[]>();
  for (const j of journals) byHost.set(j.host, [...(byHost.get(j.host) ?? []), j]);
  let rows = 0;
  for (const [host, group] of byHost) {
    const analysis = await analyzeJournalsInParallel(
      group.map((j) => j.path),
      {
        collapse: cmd.collapse,
        ...(cmd.window === undefined ? {} : { window: cmd.window }),
        // The events pass said these already.
        warn: cmd.what === 'both' ? () => {} : io.warn,
      },
    );
    // The same journals, collapsing and window give the same name: a re-export is refused.
    const id = createHash('sha256')
      .update(
        group
          .map((j) => j.sha256)
          .sort()
          .join(','),
      )
      .update(
        `|${formatCollapse(cmd.collapse)}|${cmd.window?.since ?? ''}|${cmd.window?.until ?? ''}`,
      )
      .digest('hex');
    const partRows = cmd.partRows ?? PART_ROWS;
    const dir = `flows/host=${hiveEscape(host)}`;
    let part: FlowPart | undefined;
    let n = 0;
    for (const flow of analysis.table.flows()) {
      if (part === undefined || part.rows >= partRows) {
        await part?.finish();
        part = maker.flows(
          files,
          `${dir}/part-${tagOf(id)}-${n++}.${maker.ext}`,
          host,
          cmd.collapse,
        );
      }
      part.add(flow);
      rows++;
    }
    await part?.finish();
  }
  return rows;
}
