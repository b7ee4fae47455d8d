// The msgpack reading primitives of the format 1 scans (replay's events-scan.ts, the export's scan-v1.ts): one cursor over one payload.
//
// A scan accepts a subset of what decodeEvents accepts and gives up on anything else: every
// primitive here throws UNUSUAL for an encoding it does not read or bytes that run out, and the
// scan turns that into "decode this payload instead". The cursor is module state, not an object
// passed around, so the primitives stay small calls V8 inlines into each scan's loop.
import { wordAt } from './event-columns.js';

// `var`, not `let`: module-level `let` bindings cost a check on every access here (measured:
// the scan runs ~10 % faster with var).
var buf: Uint8Array = new Uint8Array(0);
var pos = 0;
var end = 0;

const MAX = Number.MAX_SAFE_INTEGER;
const EMPTY = new Uint8Array(0);

/** Thrown by the primitives; the scan that called them returns false for its payload. */
export const UNUSUAL = new Error('not a plain v1 events payload');

/** The fields of a v1 event array; a longer one (a newer writer's) goes to decodeEvents. */
export const V1_FIELDS = 18;
/** The fields every v1 event has (type … dport). */
export const V1_REQUIRED = 11;

/**
 * Puts the cursor at the start of an events payload and reads how many events it holds, or
 * returns -1 for a count its bytes cannot hold (an event takes at least 16 bytes: a larger count
 * is damage, never an allocation). Throws UNUSUAL, as the other primitives do.
 */
export function beginEvents(payload: Uint8Array): number {
  buf = payload;
  pos = 0;
  end = payload.length;
  const n = arrayHeader();
  return n * 16 > end ? -1 : n;
}

/** Lets go of the payload (a scan's `finally`), so a finished batch's bytes can be collected. */
export function release(): void {
  buf = EMPTY;
}

/** Where the cursor is (a fast path that reads the payload itself starts there). */
export function cursor(): number {
  return pos;
}

/** Moves the cursor to `p`, past what a fast path read by itself. */
export function seek(p: number): void {
  pos = p;
}

export function byte(): number {
  if (pos >= end) throw UNUSUAL;
  return buf[pos++] as number;
}

/** Steps over a nil and says so, or leaves the cursor where it is. */
export function nil(): boolean {
  if (pos < end && buf[pos] === 0xc0) {
    pos++;
    return true;
  }
  return false;
}

export function arrayHeader(): number {
  const b = byte();
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b === 0xdc) return be(2);
  if (b === 0xdd) return be(4);
  throw UNUSUAL;
}

/** An unsigned big-endian integer of `size` bytes (≤ 4). */
function be(size: number): number {
  if (pos + size > end) throw UNUSUAL;
  let v = 0;
  for (let k = 0; k < size; k++) v = v * 256 + (buf[pos++] as number);
  return v;
}

/** An integer in 0…max in any of the encodings msgpackr reads as that same number. */
export function uint(max: number): number {
  // Small enough to inline: a positive fixint (most fields of most events) or a u8/u16/u32.
  const b = pos < end ? (buf[pos] as number) : 0xc1;
  let v: number;
  if (b <= 0x7f) {
    v = b;
    pos++;
  } else if (b === 0xcc && pos + 2 <= end) {
    v = buf[pos + 1] as number;
    pos += 2;
  } else if (b === 0xcd && pos + 3 <= end) {
    v = ((buf[pos + 1] as number) << 8) | (buf[pos + 2] as number);
    pos += 3;
  } else if (b === 0xce && pos + 5 <= end) {
    v = wordAt(buf, pos + 1);
    pos += 5;
  } else {
    v = int();
  }
  if (v < 0 || v > max) throw UNUSUAL;
  return v;
}

/** A safe integer, negative or not; float32 and non-integers are left to decodeEvents. */
export function int(): number {
  const b = byte();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xcc:
      if (pos + 1 > end) throw UNUSUAL;
      return buf[pos++] as number;
    case 0xcd: {
      if (pos + 2 > end) throw UNUSUAL;
      const v = ((buf[pos] as number) << 8) | (buf[pos + 1] as number);
      pos += 2;
      return v;
    }
    case 0xce: {
      if (pos + 4 > end) throw UNUSUAL;
      const v = wordAt(buf, pos);
      pos += 4;
      return v;
    }
    case 0xcf: {
      const v = be(4) * 0x100000000 + be(4);
      if (v > MAX) throw UNUSUAL;
      return v;
    }
    case 0xd0:
      return signed(be(1), 0x80);
    case 0xd1:
      return signed(be(2), 0x8000);
    case 0xd2:
      return signed(be(4), 0x80000000);
    case 0xd3: {
      const hi = be(4);
      const lo = be(4);
      const v = hi >= 0x80000000 ? (hi - 0x100000000) * 0x100000000 + lo : hi * 0x100000000 + lo;
      if (!Number.isSafeInteger(v)) throw UNUSUAL;
      return v;
    }
    case 0xcb: {
      // msgpackr writes an integer of 2^32 or more (a byte counter, say) as a float64.
      if (pos + 8 > end) throw UNUSUAL;
      for (let k = 0; k < 8; k++) F64_BYTES[k] = buf[pos++] as number;
      const v = F64_VIEW.getFloat64(0);
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) throw UNUSUAL;
      return v;
    }
    default:
      throw UNUSUAL;
  }
}

function signed(v: number, half: number): number {
  return v >= half ? v - 2 * half : v;
}

// A float64 is read through 8 scratch bytes (big-endian, as msgpack stores it): no allocation.
const F64_BYTES = new Uint8Array(8);
const F64_VIEW = new DataView(F64_BYTES.buffer);

/** bin8 of exactly alen bytes (what msgpackr writes for an address), stored as 4 words. */
export function address(alen: number, out: Uint32Array, at: number): void {
  if (pos + 2 + alen > end || buf[pos] !== 0xc4 || buf[pos + 1] !== alen) throw UNUSUAL;
  const p = pos + 2;
  out[at] = wordAt(buf, p);
  if (alen === 16) {
    out[at + 1] = wordAt(buf, p + 4);
    out[at + 2] = wordAt(buf, p + 8);
    out[at + 3] = wordAt(buf, p + 12);
  } else {
    out[at + 1] = 0;
    out[at + 2] = 0;
    out[at + 3] = 0;
  }
  pos += 2 + alen;
}
