// NDJSON part files: one JSON object per line, column names as schema.ts, ClickHouse JSONEachRow and jq read them.
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import { ExportBatch } from './batch.js';
import type { ExportFiles, OutputFile } from './files.js';
import { ByteWriter, utf8 } from './ndjson-bytes.js';
import { LINE_MAX, NdjsonEventLines } from './ndjson-events.js';
import { TUPLE_ARENA, TUPLE_BLOCKS } from './ndjson-tuples.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import type { AddressCache, TimeText } from './values.js';
import { WorkThread } from './work-thread.js';

/** Bytes buffered before a write: large writes, bounded memory. */
const FLUSH_AT = 1 << 20;

/** Line areas in a file's buffer: one is filled while the others are written on libuv's pool. */
const AREAS = 4;
const AREA = FLUSH_AT + LINE_MAX;
/** Bytes of a file's buffer before the caller's (NdjsonTuples' arena). */
const LINES = AREAS * AREA;
/** Bytes written between two fdatasyncs on the pool (the disk works while rows are encoded). */
const SYNC_EVERY = 64 << 20;
/** Runs of bytes built elsewhere (put()) on their way at most: bounded memory. */
const PUT_AHEAD = 4;

/**
 * Bytes into one file through a buffer, written in place (digits, cached address and time
 * bytes): an event line costs no string, which is what makes NDJSON keep up with the reader.
 * A full area of the buffer is written on libuv's thread pool while the next area is filled
 * (no copy); bytes built elsewhere (put()) are written in their place among the areas. A failed
 * write is thrown by the next flush, ready() or finish().
 */
class ByteFile extends ByteWriter {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  rows = 0;
  /** The area being filled and where it starts; each area's write in flight. */
  #area = 0;
  #start = 0;
  readonly #busy: (Promise<void> | undefined)[] = Array.from({ length: AREAS }, () => undefined);
  /** The writes of put()'s bytes in flight, oldest first. */
  #put: Promise<void>[] = [];
  /** Writes not yet handed to the pool (waiting for put()'s bytes), and when the last one is. */
  #unissued = 0;
  #issued: Promise<unknown> = Promise.resolve();
  #error: unknown;
  /** The fdatasync in flight (one at most), and the file's size when the next is due. */
  #sync: Promise<void> | undefined;
  #syncAt = SYNC_EVERY;

  /** `extra` bytes after the LINES bytes of line areas are the caller's (NdjsonTuples' arena). */
  constructor(files: ExportFiles, rel: string, extra = 0) {
    super(LINES + extra);
    this.#files = files;
    this.#file = files.create(rel);
  }

  /** Ends a row: flushes when the area is full enough. */
  endRow(): void {
    this.rows++;
    if (this.pos - this.#start >= FLUSH_AT) this.#flush();
  }

  /** A string line (flows: few rows). */
  text(s: string): void {
    this.raw(utf8(s));
  }

  /**
   * `rows` rows whose bytes are on their way: written after every row before, before every
   * row after; `written` gets the bytes back once they are in the file.
   */
  put(bytes: Promise<Uint8Array>, rows: number, written: (b: Uint8Array) => void): void {
    this.#flush();
    this.rows += rows;
    this.#put.push(
      this.#recorded(this.#inOrder(bytes)).then(async () => {
        if (this.#error === undefined) written(await bytes);
      }),
    );
  }

  /**
   * Writes the bytes at the file's end once every earlier write was handed to the pool: a
   * write's position is taken when it is handed over (files.ts' writeAt).
   */
  #inOrder(bytes: Uint8Array | Promise<Uint8Array>): Promise<void> {
    if (this.#unissued === 0 && bytes instanceof Uint8Array) {
      return this.#files.writeAt(this.#file, bytes);
    }
    this.#unissued++;
    let written: Promise<void> = Promise.resolve();
    const issued = this.#issued
      .then(() => bytes)
      .then((b) => {
        written = this.#files.writeAt(this.#file, b);
      })
      .finally(() => {
        this.#unissued--;
      });
    this.#issued = issued.catch(() => {});
    return issued.then(() => written);
  }

  /** The write's failure kept for #check() (the promise then resolves). */
  #recorded(write: Promise<void>): Promise<void> {
    return write.catch((err: unknown) => {
      this.#error ??= err;
    });
  }

  #flush(): void {
    this.#check();
    const from = this.#start;
    if (this.pos === from) return;
    const lines = this.buf.subarray(from, this.pos);
    const area = this.#area;
    const next = (area + 1) % AREAS;
    if (this.#busy[next] !== undefined) {
      // Every other area is still on its way to the file: this one goes here and now, or
      // behind bytes still being built, as a copy.
      if (this.#unissued === 0) this.#files.writeAtSync(this.#file, lines);
      else this.#put.push(this.#recorded(this.#inOrder(lines.slice())));
      this.pos = from;
      return;
    }
    this.#busy[area] = this.#recorded(this.#inOrder(lines)).then(() => {
      this.#busy[area] = undefined;
    });
    this.#area = next;
    this.#start = next * AREA;
    this.pos = this.#start;
    if (this.#file.bytes >= this.#syncAt && this.#sync === undefined) {
      this.#syncAt = this.#file.bytes + SYNC_EVERY;
      // After the writes in flight: they are what it is for.
      this.#sync = this.#recorded(
        Promise.all([...this.#busy, ...this.#put]).then(() => this.#files.syncAsync(this.#file)),
      ).then(() => {
        this.#sync = undefined;
      });
    }
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /**
   * Waits until the next area is written (so the next flush goes to the pool) and at most
   * PUT_AHEAD of put()'s byte runs are on their way; throws a failed write.
   */
  async ready(): Promise<void> {
    await this.#busy[(this.#area + 1) % AREAS];
    while (this.#put.length > PUT_AHEAD) await this.#put.shift();
    this.#check();
  }

  async finish(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#busy, ...this.#put]);
    await this.#sync;
    this.#check();
    await this.#files.closeAsync(this.#file);
  }
}

/**
 * A finish() the caller may await only later (EventPartitions does, at its next ready()): a
 * failure meanwhile is not an unhandled rejection, and still reaches the caller.
 */
function awaitedLater(p: Promise<void>): Promise<void> {
  p.catch(() => {});
  return p;
}

/**
 * A range of events for the NDJSON formatting thread: the batch's memory (`give`) holds them;
 * `out`, memory of earlier lines already written, is where their lines go back when it is
 * large enough (fresh memory would cost a page fault per 4 kB).
 */
export interface FormatRequest {
  j: JournalContext;
  buf: ArrayBuffer;
  n: number;
  conns: number;
  seq: number;
  out: ArrayBuffer | undefined;
}

/** The lines of a FormatRequest: the first `length` bytes of `out`. */
export interface FormatReply {
  out: ArrayBuffer;
  length: number;
}

/**
 * One thread for every NDJSON file of the process: it builds the lines of every other range of
 * events while this thread builds the next, so line building, most of NDJSON's cost, runs on
 * both cores; the bytes come back and are written in their place.
 */
const formatThread = new WorkThread<FormatRequest, FormatReply>(
  new URL('./ndjson-worker.js', import.meta.url),
  'the NDJSON formatting thread',
);
/** Ranges shorter than this are formatted here: the copies and messages would cost more. */
const THREAD_MIN = 256;
/** Ranges at the formatting thread at most; more go to this thread (which balances the two). */
const THREAD_QUEUE = 2;
/** Line buffers written and kept for the formatting thread's next ranges. */
const linesPool: ArrayBuffer[] = [];
const LINES_POOL = 2 * (THREAD_QUEUE + PUT_AHEAD);

/** Boots the formatting thread ahead of the first range (a large journal is being read). */
export function startFormatThread(): void {
  formatThread.start();
}

/** Ranges of events the formatting thread built the lines of, in this process (tests, bench). */
export let threadRanges = 0;

/** Events of one journal as NDJSON lines (NdjsonEventLines), half of them built by the formatting thread when `threaded`. */
export class NdjsonEventPart implements EventPart {
  readonly #out: ByteFile;
  readonly #lines: NdjsonEventLines;
  readonly #j: JournalContext;
  readonly #threaded: boolean;

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    times: TimeText,
    opts: { threaded?: boolean; tupleBlocks?: number } = {},
  ) {
    this.#out = new ByteFile(files, rel, TUPLE_ARENA);
    this.#lines = new NdjsonEventLines(
      j,
      addrs,
      times,
      this.#out.buf,
      LINES,
      opts.tupleBlocks ?? TUPLE_BLOCKS,
    );
    this.#j = j;
    this.#threaded = opts.threaded === true && formatThread.available;
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(b: ExportBatch, i: number, seq: number): void {
    this.#lines.line(this.#out, b, i, seq);
    this.#out.endRow();
  }

  addRange(b: ExportBatch, from: number, to: number, seq: number): void {
    if (this.#threaded && to - from >= THREAD_MIN && formatThread.busy < THREAD_QUEUE) {
      const range = new ExportBatch((bytes) => formatThread.take(bytes) ?? new ArrayBuffer(bytes));
      range.reset(to - from);
      range.append(b, from, to);
      const { buffer: buf, n, conns } = range;
      const out = linesPool.pop();
      threadRanges++;
      const lines = formatThread.run(
        { j: this.#j, buf, n, conns, seq, out },
        buf,
        out === undefined ? [] : [out],
      );
      this.#out.put(
        lines.then((l) => new Uint8Array(l.out, 0, l.length)),
        n,
        (written) => {
          if (linesPool.length < LINES_POOL) linesPool.push(written.buffer as ArrayBuffer);
        },
      );
      return;
    }
    for (let i = from; i < to; i++) this.add(b, i, seq + (i - from));
  }

  ready(): Promise<void> {
    return this.#out.ready();
  }

  finish(): Promise<void> {
    return awaitedLater(this.#out.finish());
  }
}

/** Flows of one host as NDJSON lines. */
export class NdjsonFlowPart implements FlowPart {
  readonly #out: ByteFile;
  readonly #addrs: AddressCache;
  readonly #times: TimeText;
  readonly #host: string;
  readonly #tail: string;

  constructor(
    files: ExportFiles,
    rel: string,
    host: string,
    collapse: Collapse,
    addrs: AddressCache,
    times: TimeText,
  ) {
    this.#out = new ByteFile(files, rel);
    this.#addrs = addrs;
    this.#times = times;
    this.#host = `{"host":${JSON.stringify(host)},`;
    this.#tail = `"collapse":${JSON.stringify(formatCollapse(collapse))}}\n`;
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(f: Flow): void {
    const src = this.#addrs.get(f.src);
    const dst = this.#addrs.get(f.dst);
    const t = this.#times;
    const hex = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    this.#out.text(
      `${this.#host}"table":"${f.table}","family":${f.family},"proto":${f.proto},` +
        `"src":"${src.text}","dst":"${dst.text}","src_bin":"${hex(src.hexBytes)}","dst_bin":"${hex(dst.hexBytes)}",` +
        `"sport":${f.sport},"dport":${f.dport},"icmp_type":${f.icmpType},"icmp_code":${f.icmpCode},` +
        `"confirmed":${f.confirmed},"assured":${f.assured},` +
        `"first_seen":"${t.text(f.firstSeen)}","last_seen":"${t.text(f.lastSeen)}",` +
        `"first_us":${f.firstSeen},"last_us":${f.lastSeen},${this.#tail}`,
    );
    this.#out.endRow();
  }

  finish(): Promise<void> {
    return awaitedLater(this.#out.finish());
  }
}
