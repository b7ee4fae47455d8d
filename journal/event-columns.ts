// A batch of events held column by column in reusable typed arrays: replay without an object per event.
import type { CtEvent } from './event.js';

/**
 * The fields an analysis reads, for `n` events; event i's original-tuple addresses are the
 * words src[4i … 4i+3] and dst[4i … 4i+3], each the big-endian value of 4 address bytes
 * (IPv4 uses the first word, the others are 0), so comparing words compares bytes.
 * The arrays are reused from batch to batch: read a batch before asking for the next one.
 */
export class EventColumns {
  n = 0;
  capacity = 0;
  type = new Uint8Array(0);
  family = new Uint8Array(0);
  proto = new Uint8Array(0);
  status = new Uint32Array(0);
  /** Event time, µs since the epoch. */
  time = new Float64Array(0);
  src = new Uint32Array(0);
  dst = new Uint32Array(0);
  sport = new Uint16Array(0);
  dport = new Uint16Array(0);
  icmpType = new Uint8Array(0);
  icmpCode = new Uint8Array(0);

  /** Empties the batch and makes room for `count` events. */
  reset(count: number): void {
    this.n = 0;
    if (count > this.capacity) this.grow(count);
  }

  /** Replaces the batch with decoded events (the slow path's result, or a live batch). */
  fill(events: readonly CtEvent[]): void {
    this.reset(events.length);
    for (const ev of events) {
      const i = this.n++;
      this.type[i] = ev.type;
      this.family[i] = ev.family;
      this.proto[i] = ev.proto;
      this.status[i] = ev.status;
      this.time[i] = ev.time;
      const o = ev.orig;
      addressWords(o.src, this.src, i * 4);
      addressWords(o.dst, this.dst, i * 4);
      this.sport[i] = o.sport;
      this.dport[i] = o.dport;
      this.icmpType[i] = o.icmpType;
      this.icmpCode[i] = o.icmpCode;
    }
  }

  private grow(count: number): void {
    const cap = Math.max(count, 1024, this.capacity * 2);
    this.capacity = cap;
    this.type = new Uint8Array(cap);
    this.family = new Uint8Array(cap);
    this.proto = new Uint8Array(cap);
    this.status = new Uint32Array(cap);
    this.time = new Float64Array(cap);
    this.src = new Uint32Array(cap * 4);
    this.dst = new Uint32Array(cap * 4);
    this.sport = new Uint16Array(cap);
    this.dport = new Uint16Array(cap);
    this.icmpType = new Uint8Array(cap);
    this.icmpCode = new Uint8Array(cap);
  }
}

/** Writes an address's 4 words at out[at…]: big-endian groups of 4 bytes, unused words 0. */
export function addressWords(addr: Uint8Array, out: Uint32Array, at: number): void {
  for (let w = 0; w < 4; w++) {
    const b = w * 4;
    out[at + w] =
      b < addr.length
        ? (((addr[b] as number) << 24) |
            ((addr[b + 1] as number) << 16) |
            ((addr[b + 2] as number) << 8) |
            (addr[b + 3] as number)) >>>
          0
        : 0;
  }
}

/** The address bytes (4 or 16) back from its words. */
export function wordsAddress(words: Uint32Array, at: number, length: 4 | 16): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = ((words[at + (i >> 2)] as number) >>> (24 - 8 * (i & 3))) & 0xff;
  }
  return out;
}
