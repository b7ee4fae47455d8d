// Events as the export reads them: every field of a batch in one ArrayBuffer, which a reading thread can hand over whole.
import type { CtEvent } from '../../journal/event.js';
import { addressWords } from '../../journal/event-columns.js';

/** Bytes of one event in a batch (see the layout in #attach). */
export const BYTES_PER_EVENT = 148;

/** The columns that hold one value per event (addr has 16 words, conn is numbered per batch). */
export const PER_EVENT = [
  'time',
  'start',
  'origPackets',
  'origBytes',
  'replyPackets',
  'replyBytes',
  'status',
  'id',
  'mark',
  'sport',
  'dport',
  'replySport',
  'replyDport',
  'icmpId',
  'zone',
  'type',
  'family',
  'proto',
  'icmpType',
  'icmpCode',
  'tcpState',
  'flags',
] as const;
export type PerEventColumn = (typeof PER_EVENT)[number];

/**
 * Events start … end-1 of `from` into `to`'s columns of the same names from row `at`: the
 * same types, so each column is one copy of memory.
 */
export function copyEvents(
  to: Record<PerEventColumn, { set(values: ArrayLike<number>, at: number): void }>,
  from: ExportBatch,
  start: number,
  end: number,
  at: number,
): void {
  for (const name of PER_EVENT) {
    to[name].set(from[name].subarray(start, end), at);
  }
}

/** flags bits: the event's boolean and the presence of each optional field. */
export const F_KERNEL = 1;
export const F_START = 2;
export const F_COUNTERS = 4;
export const F_MARK = 8;
export const F_ZONE = 16;
export const F_TCP = 32;

/**
 * n events, column by column. Event i's addresses are the 16 words addr[16i …]: source,
 * destination, reply source, reply destination, 4 big-endian words each (IPv4: the first word,
 * as journal/event-columns.ts writes them); their length is the family's.
 */
export class ExportBatch {
  n = 0;
  capacity = 0;
  buffer = new ArrayBuffer(0);
  time = new Float64Array(0);
  start = new Float64Array(0);
  origPackets = new Float64Array(0);
  origBytes = new Float64Array(0);
  replyPackets = new Float64Array(0);
  replyBytes = new Float64Array(0);
  status = new Uint32Array(0);
  id = new Uint32Array(0);
  mark = new Uint32Array(0);
  /**
   * Event i's connection, numbered 0 … conns-1 within the batch (format 2's per-frame
   * connections: one number is one family, protocol, id and pair of tuples), or -1 where the
   * reader does not number them (format 1, decoded events).
   */
  conn = new Int32Array(0);
  /** How many connections conn numbers. */
  conns = 0;
  /** Counts reset(): a batch reused for the next frame is told apart from its last contents. */
  generation = 0;
  addr = new Uint32Array(0);
  sport = new Uint16Array(0);
  dport = new Uint16Array(0);
  replySport = new Uint16Array(0);
  replyDport = new Uint16Array(0);
  icmpId = new Uint16Array(0);
  zone = new Uint16Array(0);
  type = new Uint8Array(0);
  family = new Uint8Array(0);
  proto = new Uint8Array(0);
  icmpType = new Uint8Array(0);
  icmpCode = new Uint8Array(0);
  tcpState = new Uint8Array(0);
  flags = new Uint8Array(0);

  /** A batch over a buffer of n events, e.g. one received from the reading thread. */
  static view(buf: ArrayBuffer, n: number): ExportBatch {
    const b = new ExportBatch();
    b.#attach(buf);
    b.n = n;
    return b;
  }

  // Columns ordered by element size, each aligned; a buffer of c × 148 bytes holds c events.
  #attach(buf: ArrayBuffer): void {
    const c = Math.floor(buf.byteLength / BYTES_PER_EVENT);
    this.buffer = buf;
    this.capacity = c;
    this.time = new Float64Array(buf, 0, c);
    this.start = new Float64Array(buf, 8 * c, c);
    this.origPackets = new Float64Array(buf, 16 * c, c);
    this.origBytes = new Float64Array(buf, 24 * c, c);
    this.replyPackets = new Float64Array(buf, 32 * c, c);
    this.replyBytes = new Float64Array(buf, 40 * c, c);
    this.status = new Uint32Array(buf, 48 * c, c);
    this.id = new Uint32Array(buf, 52 * c, c);
    this.mark = new Uint32Array(buf, 56 * c, c);
    this.conn = new Int32Array(buf, 60 * c, c);
    this.addr = new Uint32Array(buf, 64 * c, 16 * c);
    this.sport = new Uint16Array(buf, 128 * c, c);
    this.dport = new Uint16Array(buf, 130 * c, c);
    this.replySport = new Uint16Array(buf, 132 * c, c);
    this.replyDport = new Uint16Array(buf, 134 * c, c);
    this.icmpId = new Uint16Array(buf, 136 * c, c);
    this.zone = new Uint16Array(buf, 138 * c, c);
    this.type = new Uint8Array(buf, 140 * c, c);
    this.family = new Uint8Array(buf, 141 * c, c);
    this.proto = new Uint8Array(buf, 142 * c, c);
    this.icmpType = new Uint8Array(buf, 143 * c, c);
    this.icmpCode = new Uint8Array(buf, 144 * c, c);
    this.tcpState = new Uint8Array(buf, 145 * c, c);
    this.flags = new Uint8Array(buf, 146 * c, c);
  }

  /** Where the batch gets a buffer when it needs one (a pool of returned ones, say). */
  readonly #alloc: (bytes: number) => ArrayBuffer;

  constructor(alloc = (bytes: number) => new ArrayBuffer(bytes)) {
    this.#alloc = alloc;
  }

  /** Empties the batch and makes room for `count` events, their connections not numbered. */
  reset(count: number): void {
    this.n = 0;
    this.generation++;
    if (count > this.capacity) this.#attach(this.#alloc(BYTES_PER_EVENT * Math.max(count, 1024)));
    this.conn.fill(-1, 0, count);
    this.conns = 0;
  }

  /**
   * Adds the events of `from` after this batch's (room for them was made by reset()): column
   * by column, connection numbers shifted past this batch's.
   */
  append(from: ExportBatch): void {
    const at = this.n;
    const n = from.n;
    copyEvents(this, from, 0, n, at);
    this.addr.set(from.addr.subarray(0, 16 * n), 16 * at);
    for (const [to, of] of [
      [this.sport, from.sport],
      [this.dport, from.dport],
      [this.replySport, from.replySport],
      [this.replyDport, from.replyDport],
      [this.icmpId, from.icmpId],
      [this.zone, from.zone],
    ] as const) {
      to.set(of.subarray(0, n), at);
    }
    for (const [to, of] of [
      [this.type, from.type],
      [this.family, from.family],
      [this.proto, from.proto],
      [this.icmpType, from.icmpType],
      [this.icmpCode, from.icmpCode],
      [this.tcpState, from.tcpState],
      [this.flags, from.flags],
    ] as const) {
      to.set(of.subarray(0, n), at);
    }
    const shift = this.conns;
    for (let i = 0; i < n; i++) {
      const c = from.conn[i] as number;
      this.conn[at + i] = c < 0 ? -1 : c + shift;
    }
    this.conns += from.conns;
    this.n = at + n;
  }

  /** The buffer, handed over (to another thread): the batch takes a new one for its next events. */
  release(): ArrayBuffer {
    const buf = this.buffer;
    this.#attach(new ArrayBuffer(0));
    return buf;
  }

  /** Replaces the batch with these events (the decode path; scan-v1.ts and scan-v2.ts fill it faster). */
  fill(events: readonly CtEvent[]): void {
    this.reset(events.length);
    this.n = events.length;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i] as CtEvent;
      const o = ev.orig;
      const r = ev.reply;
      this.time[i] = ev.time;
      this.status[i] = ev.status;
      this.id[i] = ev.id;
      this.type[i] = ev.type;
      this.family[i] = ev.family;
      this.proto[i] = ev.proto;
      addressWords(o.src, this.addr, 16 * i);
      addressWords(o.dst, this.addr, 16 * i + 4);
      addressWords(r.src, this.addr, 16 * i + 8);
      addressWords(r.dst, this.addr, 16 * i + 12);
      this.sport[i] = o.sport;
      this.dport[i] = o.dport;
      this.replySport[i] = r.sport;
      this.replyDport[i] = r.dport;
      this.icmpType[i] = o.icmpType;
      this.icmpCode[i] = o.icmpCode;
      this.icmpId[i] = o.icmpId;
      let f = ev.timeKernel ? F_KERNEL : 0;
      if (ev.start !== undefined) {
        f |= F_START;
        this.start[i] = ev.start;
      }
      const c = ev.counters;
      if (c !== undefined) {
        f |= F_COUNTERS;
        this.origPackets[i] = c.origPackets;
        this.origBytes[i] = c.origBytes;
        this.replyPackets[i] = c.replyPackets;
        this.replyBytes[i] = c.replyBytes;
      }
      if (ev.mark !== undefined) {
        f |= F_MARK;
        this.mark[i] = ev.mark;
      }
      if (ev.zone !== undefined) {
        f |= F_ZONE;
        this.zone[i] = ev.zone;
      }
      if (ev.tcpState !== undefined) {
        f |= F_TCP;
        this.tcpState[i] = ev.tcpState;
      }
      this.flags[i] = f;
    }
  }
}
