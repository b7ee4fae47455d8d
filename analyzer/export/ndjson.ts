// NDJSON part files: one JSON object per line, column names as schema.ts, ClickHouse JSONEachRow and jq read them.
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';
import type { ExportFiles, OutputFile } from './files.js';
import { ascii, ByteWriter, utf8 } from './ndjson-bytes.js';
import { NdjsonTuples, TUPLE_ARENA, TUPLE_BLOCKS } from './ndjson-tuples.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import type { AddressCache, TimeText } from './values.js';

/** Bytes buffered before a write: large writes, bounded memory. */
const FLUSH_AT = 1 << 20;
/** Room left for one line: no event line comes near it (the host name is at most 255 bytes). */
const LINE_MAX = 64 * 1024;

const TIME = ascii(',"time":"');
const TIME_US = ascii('Z","time_us":');
const NULL = 'null';

/** Buffers being written on libuv's pool at most; past that a flush writes here and now. */
const IN_FLIGHT = 3;
/** Bytes written between two fdatasyncs on the pool (the disk works while rows are encoded). */
const SYNC_EVERY = 64 << 20;

/**
 * Bytes into one file through a buffer, written in place (digits, cached address and time
 * bytes): an event line costs no string, which is what makes NDJSON keep up with the reader.
 * A full buffer is copied out and written on libuv's thread pool while the next lines are
 * encoded; a failed write is thrown by the next flush, ready() or finish().
 */
class ByteFile extends ByteWriter {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  rows = 0;
  /** Buffers whose write is done, for the next flushes. */
  readonly #spare: Uint8Array[] = [];
  readonly #writes = new Set<Promise<void>>();
  #error: unknown;
  /** The fdatasync in flight (one at most), and the file's size when the next is due. */
  #sync: Promise<void> | undefined;
  #syncAt = SYNC_EVERY;

  /** `extra` bytes after the line buffer are the caller's (NdjsonTuples' arena). */
  constructor(files: ExportFiles, rel: string, extra = 0) {
    super(FLUSH_AT + LINE_MAX + extra);
    this.#files = files;
    this.#file = files.create(rel);
  }

  /** Ends a row: flushes when the buffer is full enough. */
  endRow(): void {
    this.rows++;
    if (this.pos >= FLUSH_AT) this.#flush();
  }

  /** A string line (flows: few rows). */
  text(s: string): void {
    this.raw(utf8(s));
  }

  #flush(): void {
    this.#check();
    const n = this.pos;
    if (n === 0) return;
    this.pos = 0;
    const lines = this.buf.subarray(0, n);
    if (this.#writes.size >= IN_FLIGHT) {
      this.#files.writeAtSync(this.#file, lines);
      return;
    }
    const out = this.#spare.pop() ?? new Uint8Array(FLUSH_AT + LINE_MAX);
    out.set(lines);
    const write: Promise<void> = this.#files.writeAt(this.#file, out.subarray(0, n)).then(
      () => {
        this.#writes.delete(write);
        this.#spare.push(out);
      },
      (err: unknown) => {
        this.#writes.delete(write);
        this.#error ??= err;
      },
    );
    this.#writes.add(write);
    if (this.#file.bytes >= this.#syncAt && this.#sync === undefined) {
      this.#syncAt = this.#file.bytes + SYNC_EVERY;
      // After the writes in flight: they are what it is for.
      const sync: Promise<void> = Promise.all(this.#writes)
        .then(() => this.#files.syncAsync(this.#file))
        .then(
          () => {
            this.#sync = undefined;
          },
          (err: unknown) => {
            this.#sync = undefined;
            this.#error ??= err;
          },
        );
      this.#sync = sync;
    }
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits while the pool has as many buffers as it may hold; throws a failed write. */
  async ready(): Promise<void> {
    while (this.#writes.size >= IN_FLIGHT) await Promise.race(this.#writes);
    this.#check();
  }

  async finish(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#writes, this.#sync]);
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

/** The flags that say which optional columns an event carries. */
const F_OPTIONAL = F_TCP | F_START | F_MARK | F_ZONE | F_COUNTERS;

/**
 * Events of one journal as NDJSON lines, from a few pieces each: the constant head, the time
 * (its second's bytes cached), the event kind, the tuple block (NdjsonTuples) and the optional
 * columns, whose nulls and key names are constant for a given set of flags.
 */
export class NdjsonEventPart implements EventPart {
  readonly #out: ByteFile;
  readonly #tuples: NdjsonTuples;
  readonly #times: TimeText;
  /** `{"host":…,"journal":…,"seq":` : the same for every line of the journal. */
  readonly #head: Uint8Array;
  /** `,"port_lo":…,"port_hi":…}` and the newline. */
  readonly #tail: string;
  /** The second whose bytes are cached, and `,"time":"YYYY-MM-DDTHH:MM:SS.`, `Z","time_us":SECOND`. */
  #sec = Number.NaN;
  #timeHead: Uint8Array = new Uint8Array(0);
  #timeUs: Uint8Array = new Uint8Array(0);
  /** `,"time_kernel":…,"type":…,"family":…,"proto":…,"status":` by those four values. */
  readonly #kinds = new Map<number, Uint8Array>();
  /** The pieces around the optional columns' values, by flags and TCP state (optionalKey). */
  readonly #optional: Uint8Array[][] = [];

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    times: TimeText,
    tupleBlocks = TUPLE_BLOCKS,
  ) {
    this.#out = new ByteFile(files, rel, TUPLE_ARENA);
    this.#tuples = new NdjsonTuples(addrs, this.#out.buf, FLUSH_AT + LINE_MAX, tupleBlocks);
    this.#times = times;
    this.#head = utf8(`{"host":${JSON.stringify(j.host)},"journal":"${j.sha256}","seq":`);
    this.#tail = `,"port_lo":${j.portLo ?? NULL},"port_hi":${j.portHi ?? NULL}}\n`;
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(b: ExportBatch, i: number, seq: number): void {
    const flags = b.flags[i] as number;
    const w = this.#out;
    w.raw(this.#head);
    w.uint(seq);
    this.#time(w, b.time[i] as number);
    w.raw(this.#kind(flags, b.type[i] as number, b.family[i] as number, b.proto[i] as number));
    w.uint(b.status[i] as number);
    this.#tuples.copy(w, b, i);
    const key = (flags & F_OPTIONAL) * 256 + (flags & F_TCP ? (b.tcpState[i] as number) : 0);
    const pieces = this.#optional[key] ?? this.#optionalPieces(key, flags, b.tcpState[i] as number);
    w.raw(pieces[0] as Uint8Array);
    let p = 1;
    if (flags & F_START) {
      w.uint(b.start[i] as number);
      w.raw(pieces[p++] as Uint8Array);
    }
    if (flags & F_MARK) {
      w.uint(b.mark[i] as number);
      w.raw(pieces[p++] as Uint8Array);
    }
    if (flags & F_ZONE) {
      w.uint(b.zone[i] as number);
      w.raw(pieces[p++] as Uint8Array);
    }
    if (flags & F_COUNTERS) {
      w.uint(b.origPackets[i] as number);
      w.raw(pieces[p++] as Uint8Array);
      w.uint(b.origBytes[i] as number);
      w.raw(pieces[p++] as Uint8Array);
      w.uint(b.replyPackets[i] as number);
      w.raw(pieces[p++] as Uint8Array);
      w.uint(b.replyBytes[i] as number);
      w.raw(pieces[p] as Uint8Array);
    }
    w.endRow();
  }

  /** `,"time":"…Z","time_us":…`: time_us's digits are its second's and then the fraction's six. */
  #time(w: ByteWriter, time: number): void {
    if (time >= 1e6 && time <= Number.MAX_SAFE_INTEGER && time === Math.floor(time)) {
      const sec = Math.floor(time / 1e6);
      if (sec !== this.#sec) {
        this.#sec = sec;
        const head = this.#times.prefixBytes(time);
        this.#timeHead = new Uint8Array(TIME.length + head.length);
        this.#timeHead.set(TIME);
        this.#timeHead.set(head, TIME.length);
        this.#timeUs = ascii(`Z","time_us":${sec}`);
      }
      w.raw(this.#timeHead);
      const at = w.pos;
      w.six(time - sec * 1e6);
      w.raw(this.#timeUs);
      w.buf.copyWithin(w.pos, at, at + 6);
      w.pos += 6;
      return;
    }
    // Before 1970-01-01T00:00:01 (and what no journal holds): the digits of the whole value.
    w.raw(TIME);
    w.raw(this.#times.prefixBytes(time));
    w.six(time % 1e6);
    w.raw(TIME_US);
    w.uint(time);
  }

  #kind(flags: number, type: number, family: number, proto: number): Uint8Array {
    const kernel = flags & F_KERNEL;
    const key = kernel * 0x1000000 + type * 0x10000 + family * 0x100 + proto;
    let piece = this.#kinds.get(key);
    if (piece === undefined) {
      piece = ascii(
        `,"time_kernel":${kernel !== 0},"type":${type},"family":${family},"proto":${proto},"status":`,
      );
      this.#kinds.set(key, piece);
    }
    return piece;
  }

  /**
   * The constant text between the values of the optional columns an event carries: an absent
   * column is `null`, the TCP state (part of the key) its digits; the last piece ends the line.
   */
  #optionalPieces(key: number, flags: number, tcpState: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    let text = `,"tcp_state":${flags & F_TCP ? tcpState : NULL}`;
    const column = (name: string, present: number) => {
      text += `,"${name}":`;
      if (present) {
        pieces.push(ascii(text));
        text = '';
      } else text += NULL;
    };
    column('start_us', flags & F_START);
    column('mark', flags & F_MARK);
    column('zone', flags & F_ZONE);
    for (const name of ['orig_packets', 'orig_bytes', 'reply_packets', 'reply_bytes']) {
      column(name, flags & F_COUNTERS);
    }
    pieces.push(ascii(text + this.#tail));
    this.#optional[key] = pieces;
    return pieces;
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
