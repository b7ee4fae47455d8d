// NDJSON event lines from a few cached pieces each: what the export's thread and the NDJSON formatting thread both run.
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';
import { ascii, type ByteWriter, utf8 } from './ndjson-bytes.js';
import { NdjsonTuples, TUPLE_BLOCKS } from './ndjson-tuples.js';
import type { JournalContext } from './rows.js';
import type { AddressCache, TimeText } from './values.js';

const TIME = ascii(',"time":"');
const TIME_US = ascii('Z","time_us":');
const NULL = 'null';

/** Room left for one line: no event line comes near it (the host name is at most 255 bytes). */
export const LINE_MAX = 64 * 1024;

/** Kinds (time_kernel, type, family, proto) kept at most; a journal names a few dozen. */
const KINDS_MAX = 4096;

/** The flags that say which optional columns an event carries. */
const F_OPTIONAL = F_TCP | F_START | F_MARK | F_ZONE | F_COUNTERS;

/**
 * Events of one journal as NDJSON lines, from a few pieces each: the constant head, the time
 * (its second's bytes cached), the event kind, the tuple block (NdjsonTuples) and the optional
 * columns, whose nulls and key names are constant for a given set of flags. Lines are written
 * into one buffer whose end, from `arena` on, holds the tuple blocks.
 */
export class NdjsonEventLines {
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
  /** The pieces around the optional columns' values, by flags and TCP state (the key in line()). */
  readonly #optional: Uint8Array[][] = [];

  constructor(
    j: JournalContext,
    addrs: AddressCache,
    times: TimeText,
    buf: Uint8Array,
    arena: number,
    tupleBlocks = TUPLE_BLOCKS,
  ) {
    this.#tuples = new NdjsonTuples(addrs, buf, arena, tupleBlocks);
    this.#times = times;
    this.#head = utf8(`{"host":${JSON.stringify(j.host)},"journal":"${j.sha256}","seq":`);
    this.#tail = `,"port_lo":${j.portLo ?? NULL},"port_hi":${j.portHi ?? NULL}}\n`;
  }

  /** Event i's line at w.pos; w.buf is the buffer given to the constructor. */
  line(w: ByteWriter, b: ExportBatch, i: number, seq: number): void {
    const flags = b.flags[i] as number;
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
}
