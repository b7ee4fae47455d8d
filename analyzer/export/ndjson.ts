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

/** Line areas in a file's buffer: one is filled while the others are written on libuv's pool. */
const AREAS = 4;
const AREA = FLUSH_AT + LINE_MAX;
/** Bytes of a file's buffer before the caller's (NdjsonTuples' arena). */
const LINES = AREAS * AREA;
/** Bytes written between two fdatasyncs on the pool (the disk works while rows are encoded). */
const SYNC_EVERY = 64 << 20;

/**
 * Bytes into one file through a buffer, written in place (digits, cached address and time
 * bytes): an event line costs no string, which is what makes NDJSON keep up with the reader.
 * A full area of the buffer is written on libuv's thread pool while the next area is filled
 * (no copy); a failed write is thrown by the next flush, ready() or finish().
 */
class ByteFile extends ByteWriter {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  rows = 0;
  /** The area being filled and where it starts; each area's write in flight. */
  #area = 0;
  #start = 0;
  readonly #busy: (Promise<void> | undefined)[] = Array.from({ length: AREAS }, () => undefined);
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

  #flush(): void {
    this.#check();
    const from = this.#start;
    if (this.pos === from) return;
    const lines = this.buf.subarray(from, this.pos);
    const area = this.#area;
    const next = (area + 1) % AREAS;
    if (this.#busy[next] !== undefined) {
      // Every other area is still on its way to the file: this one goes here and now.
      this.#files.writeAtSync(this.#file, lines);
      this.pos = from;
      return;
    }
    this.#busy[area] = this.#files.writeAt(this.#file, lines).then(
      () => {
        this.#busy[area] = undefined;
      },
      (err: unknown) => {
        this.#busy[area] = undefined;
        this.#error ??= err;
      },
    );
    this.#area = next;
    this.#start = next * AREA;
    this.pos = this.#start;
    if (this.#file.bytes >= this.#syncAt && this.#sync === undefined) {
      this.#syncAt = this.#file.bytes + SYNC_EVERY;
      // After the writes in flight: they are what it is for.
      this.#sync = Promise.all(this.#busy)
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
    }
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits until the next area is written (so the next flush goes to the pool); throws a failed write. */
  async ready(): Promise<void> {
    await this.#busy[(this.#area + 1) % AREAS];
    this.#check();
  }

  async finish(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#busy, this.#sync]);
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

/** Kinds (time_kernel, type, family, proto) kept at most; a journal names a few dozen. */
const KINDS_MAX = 4096;

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
  /** The pieces around the optional columns' values, by flags and TCP state (the key in add()). */
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
    this.#tuples = new NdjsonTuples(addrs, this.#out.buf, LINES, tupleBlocks);
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
    if (flags & F_START) w.uintThen(b.start[i] as number, pieces[p++] as Uint8Array);
    if (flags & F_MARK) w.uintThen(b.mark[i] as number, pieces[p++] as Uint8Array);
    if (flags & F_ZONE) w.uintThen(b.zone[i] as number, pieces[p++] as Uint8Array);
    if (flags & F_COUNTERS) {
      w.uintThen(b.origPackets[i] as number, pieces[p] as Uint8Array);
      w.uintThen(b.origBytes[i] as number, pieces[p + 1] as Uint8Array);
      w.uintThen(b.replyPackets[i] as number, pieces[p + 2] as Uint8Array);
      w.uintThen(b.replyBytes[i] as number, pieces[p + 3] as Uint8Array);
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
      w.sixInt(time - sec * 1e6);
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
      // A damaged journal could name thousands of kinds: bounded like every cache here.
      if (this.#kinds.size >= KINDS_MAX) this.#kinds.clear();
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
