// A batch of events held column by column in reusable typed arrays: replay without an object per event.
import type { CtEvent } from './event.js';

/**
 * The fields an analysis reads, for `n` events; event i's original-tuple addresses are the
 * words src[4i … 4i+3] and dst[4i … 4i+3], each the big-endian value of 4 address bytes
 * (IPv4 uses the first word, the others are 0), so comparing words compares bytes.
 * NAT: where nat[i] is not 0 the reply tuple is not the original's inverse, and replySrc /
 * replyDst / replySport / replyDport hold it (the translated destination and source); where it
 * is 0 those columns may hold anything.
 * The arrays are reused from batch to batch: read a batch before asking for the next one.
 */
export class EventColumns {
  n = 0;
  capacity = 0;
  type: Uint8Array = new Uint8Array(0);
  family = new Uint8Array(0);
  proto = new Uint8Array(0);
  status = new Uint32Array(0);
  /** The connection mark the event carried; 0 when it carried none (or 0). */
  mark = new Uint32Array(0);
  /** Event time, µs since the epoch. */
  time = new Float64Array(0);
  src = new Uint32Array(0);
  dst = new Uint32Array(0);
  sport = new Uint16Array(0);
  dport = new Uint16Array(0);
  icmpType = new Uint8Array(0);
  icmpCode = new Uint8Array(0);
  /** NAT_DST | NAT_SRC bits; 0 for an event whose reply tuple is the plain inverse. */
  nat = new Uint8Array(0);
  replySrc = new Uint32Array(0);
  replyDst = new Uint32Array(0);
  replySport = new Uint16Array(0);
  replyDport = new Uint16Array(0);

  /**
   * Packed columns live in one ArrayBuffer (94 bytes per event), a new one per batch, so the
   * batch can be handed to another thread without a copy (`buffer`). Unpacked ones (the
   * default) reuse their arrays from batch to batch.
   */
  readonly packed: boolean;
  #buffer: ArrayBuffer | undefined;
  /** Where packed batches get their buffer (a pool of returned ones, say): ≥ the bytes asked. */
  readonly #alloc: (bytes: number) => ArrayBuffer;

  constructor(opts: { packed?: boolean; alloc?: (bytes: number) => ArrayBuffer } = {}) {
    this.packed = opts.packed === true;
    this.#alloc = opts.alloc ?? ((bytes) => new ArrayBuffer(bytes));
  }

  /** The packed batch's buffer (packed columns only). */
  get buffer(): ArrayBuffer {
    if (this.#buffer === undefined) throw new Error('event columns: not packed');
    return this.#buffer;
  }

  /** Columns over a packed batch of n events, e.g. one received from another thread. */
  static view(buf: ArrayBuffer, n: number): EventColumns {
    const c = new EventColumns({ packed: true });
    c.#attach(buf);
    if (n > c.capacity) throw new RangeError('event columns: more events than the buffer holds');
    c.n = n;
    return c;
  }

  /** Empties the batch and makes room for `count` events. */
  reset(count: number): void {
    this.n = 0;
    if (this.packed) this.#attach(this.#alloc(BYTES_PER_EVENT * count));
    else if (count > this.capacity) this.#grow(count);
  }

  // Columns ordered by element size, so each starts aligned; a buffer of n × 94 bytes holds n.
  #attach(buf: ArrayBuffer): void {
    const n = Math.floor(buf.byteLength / BYTES_PER_EVENT);
    this.#buffer = buf;
    this.capacity = n;
    this.time = new Float64Array(buf, 0, n);
    this.status = new Uint32Array(buf, 8 * n, n);
    this.mark = new Uint32Array(buf, 12 * n, n);
    this.src = new Uint32Array(buf, 16 * n, 4 * n);
    this.dst = new Uint32Array(buf, 32 * n, 4 * n);
    this.replySrc = new Uint32Array(buf, 48 * n, 4 * n);
    this.replyDst = new Uint32Array(buf, 64 * n, 4 * n);
    this.sport = new Uint16Array(buf, 80 * n, n);
    this.dport = new Uint16Array(buf, 82 * n, n);
    this.replySport = new Uint16Array(buf, 84 * n, n);
    this.replyDport = new Uint16Array(buf, 86 * n, n);
    this.type = new Uint8Array(buf, 88 * n, n);
    this.family = new Uint8Array(buf, 89 * n, n);
    this.proto = new Uint8Array(buf, 90 * n, n);
    this.icmpType = new Uint8Array(buf, 91 * n, n);
    this.icmpCode = new Uint8Array(buf, 92 * n, n);
    this.nat = new Uint8Array(buf, 93 * n, n);
  }

  /** Event i's fields but the addresses (the scanner writes those word by word). */
  put(
    i: number,
    type: number,
    family: number,
    proto: number,
    status: number,
    time: number,
    sport: number,
    dport: number,
    icmpType: number,
    icmpCode: number,
  ): void {
    this.type[i] = type;
    this.family[i] = family;
    this.proto[i] = proto;
    this.status[i] = status;
    this.time[i] = time;
    this.sport[i] = sport;
    this.dport[i] = dport;
    this.icmpType[i] = icmpType;
    this.icmpCode[i] = icmpCode;
  }

  /** Replaces the batch with decoded events (the slow path's result, or a live batch). */
  fill(events: readonly CtEvent[]): void {
    this.reset(events.length);
    for (const ev of events) {
      const i = this.n++;
      const o = ev.orig;
      this.put(
        i,
        ev.type,
        ev.family,
        ev.proto,
        ev.status,
        ev.time,
        o.sport,
        o.dport,
        o.icmpType,
        o.icmpCode,
      );
      this.mark[i] = ev.mark ?? 0;
      addressWords(o.src, this.src, i * 4);
      addressWords(o.dst, this.dst, i * 4);
      const r = ev.reply;
      addressWords(r.src, this.replySrc, i * 4);
      addressWords(r.dst, this.replyDst, i * 4);
      this.replySport[i] = r.sport;
      this.replyDport[i] = r.dport;
      this.nat[i] = natOf(this, i);
    }
  }

  #grow(count: number): void {
    const cap = Math.max(count, 1024, this.capacity * 2);
    this.capacity = cap;
    this.type = new Uint8Array(cap);
    this.family = new Uint8Array(cap);
    this.proto = new Uint8Array(cap);
    this.status = new Uint32Array(cap);
    this.mark = new Uint32Array(cap);
    this.time = new Float64Array(cap);
    this.src = new Uint32Array(cap * 4);
    this.dst = new Uint32Array(cap * 4);
    this.sport = new Uint16Array(cap);
    this.dport = new Uint16Array(cap);
    this.icmpType = new Uint8Array(cap);
    this.icmpCode = new Uint8Array(cap);
    this.nat = new Uint8Array(cap);
    this.replySrc = new Uint32Array(cap * 4);
    this.replyDst = new Uint32Array(cap * 4);
    this.replySport = new Uint16Array(cap);
    this.replyDport = new Uint16Array(cap);
  }
}

/** Bytes of one event in packed columns. */
export const BYTES_PER_EVENT = 94;

/** nat bits: the destination was translated (DNAT, redirect): replySrc/replySport differ. */
export const NAT_DST = 1;
/** The source was translated (SNAT, masquerade): replyDst/replyDport differ. */
export const NAT_SRC = 2;

/** NAT bits of event i from its reply columns (they must be written). */
export function natOf(c: EventColumns, i: number): number {
  return natBits(
    c.src,
    c.dst,
    c.replySrc,
    c.replyDst,
    i * 4,
    c.sport[i] as number,
    c.dport[i] as number,
    c.replySport[i] as number,
    c.replyDport[i] as number,
  );
}

/**
 * The one definition of "translated", as a raw fact about the tuples (core/nat.ts says what it
 * means for a flow): NAT_DST when the reply's source is not the original destination (address
 * or port), NAT_SRC when the reply's destination is not the original source. Addresses are the
 * 4 words at `at` of each array (addressWords).
 */
export function natBits(
  src: Uint32Array,
  dst: Uint32Array,
  replySrc: Uint32Array,
  replyDst: Uint32Array,
  at: number,
  sport: number,
  dport: number,
  replySport: number,
  replyDport: number,
): number {
  let nat = 0;
  for (let k = at; k < at + 4; k++) {
    if (replySrc[k] !== dst[k]) nat |= NAT_DST;
    if (replyDst[k] !== src[k]) nat |= NAT_SRC;
  }
  if (replySport !== dport) nat |= NAT_DST;
  if (replyDport !== sport) nat |= NAT_SRC;
  return nat;
}

/** Writes an address's 4 words at out[at…]: big-endian groups of 4 bytes, unused words 0. */
export function addressWords(addr: Uint8Array, out: Uint32Array, at: number): void {
  for (let w = 0; w < 4; w++) {
    const b = w * 4;
    out[at + w] = b < addr.length ? wordAt(addr, b) : 0;
  }
}

/** The big-endian u32 at b[p…p+3], an address word (bounds checked by the caller). */
export function wordAt(b: Uint8Array, p: number): number {
  return (
    (((b[p] as number) << 24) |
      ((b[p + 1] as number) << 16) |
      ((b[p + 2] as number) << 8) |
      (b[p + 3] as number)) >>>
    0
  );
}

/** The address bytes (4 or 16) back from its words. */
export function wordsAddress(words: Uint32Array, at: number, length: 4 | 16): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = ((words[at + (i >> 2)] as number) >>> (24 - 8 * (i & 3))) & 0xff;
  }
  return out;
}
