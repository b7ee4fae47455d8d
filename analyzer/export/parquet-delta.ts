// DELTA_BINARY_PACKED (parquet.thrift encoding 5) of an integer column's values: sequences and times shrink to a few bits.
// Layout (https://parquet.apache.org/docs/file-format/data-pages/encodings/): a header of ULEB128s
// (values per block, miniblocks per block, value count, first value as zigzag), then per block of
// 128 deltas the smallest delta (zigzag ULEB128), one bit-width byte per miniblock of 32, and each
// miniblock's (delta - smallest) bit-packed LSB first, the last one padded with zeros.
import { zigzag } from './thrift.js';

const BLOCK = 128;
const MINIBLOCKS = 4;
const MINI = BLOCK / MINIBLOCKS;
/** Deltas of one block and the largest of each miniblock (scratch: one column at a time). */
const shifted = new Float64Array(BLOCK);
const highest = new Float64Array(MINIBLOCKS);
/** Where a column is encoded before its bytes are copied out (a fresh large array costs page faults). */
let scratch = new Uint8Array(0);

/**
 * The first n values DELTA_BINARY_PACKED, or undefined where PLAIN's `plainBytes` would be no
 * larger or a delta is too wide (see block()).
 */
export function deltaBinaryPacked(
  values: Int32Array | Float64Array,
  n: number,
  plainBytes: number,
  int32: boolean,
): Uint8Array | undefined {
  if (n === 0) return undefined;
  const first = values[0] as number;
  if (!int32 && Math.abs(first) >= 2 ** 52) return undefined;
  const deltas = n - 1;
  // Header ≤ 4 × 8 bytes; a block ≤ 8 + 4 bytes and 128 values of ≤ 53 bits.
  const need = 32 + Math.ceil(deltas / BLOCK) * (12 + BLOCK * 7);
  if (scratch.length < need) scratch = new Uint8Array(need);
  const out = scratch;
  let pos = uleb(out, 0, BLOCK);
  pos = uleb(out, pos, MINIBLOCKS);
  pos = uleb(out, pos, n);
  pos = uleb(out, pos, zigzag(first));
  for (let b = 0; b < deltas && pos < plainBytes; b += BLOCK) {
    // A call per block, not one loop over the column: V8 optimises short loops as a whole.
    pos = block(values, b, Math.min(BLOCK, deltas - b), int32, out, pos);
  }
  return pos < plainBytes ? out.slice(0, pos) : undefined;
}

/**
 * The block of `count` deltas after values[b] at out[pos]; returns the next position, or
 * Infinity where a delta is too wide: INT32 deltas must fit 32 bits (no reader has to wrap),
 * INT64 deltas must lie within ±2^52 (every shift and zigzag is then an exact double).
 */
function block(
  values: Int32Array | Float64Array,
  b: number,
  count: number,
  int32: boolean,
  out: Uint8Array,
  pos: number,
): number {
  let lo = Number.POSITIVE_INFINITY;
  let top = Number.NEGATIVE_INFINITY;
  for (let m = 0; m < MINIBLOCKS; m++) {
    let hi = Number.NEGATIVE_INFINITY;
    const to = Math.min((m + 1) * MINI, count);
    for (let k = m * MINI; k < to; k++) {
      const d = (values[b + k + 1] as number) - (values[b + k] as number);
      shifted[k] = d;
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    highest[m] = hi;
    if (hi > top) top = hi;
  }
  const reach = int32 ? 2 ** 31 : 2 ** 52;
  if (lo <= -reach || top >= reach) return Number.POSITIVE_INFINITY;
  // The last miniblock's padding packs as zeros.
  for (let k = count; k < BLOCK; k++) shifted[k] = lo;
  pos = uleb(out, pos, zigzag(lo));
  const widths = pos;
  pos += MINIBLOCKS;
  for (let m = 0; m < MINIBLOCKS; m++) {
    // A miniblock past the last delta has no bytes; its width is written, as 0.
    const width = m * MINI < count ? bitWidth((highest[m] as number) - lo) : 0;
    out[widths + m] = width;
    if (m * MINI < count) pos = pack(out, pos, m * MINI, lo, width);
  }
  return pos;
}

/** Bits of a non-negative integer below 2^53. */
function bitWidth(v: number): number {
  return v < 2 ** 32 ? 32 - Math.clz32(v) : 64 - Math.clz32(Math.floor(v / 2 ** 32));
}

/** The 32 deltas shifted[from …] minus lo, `width` bits each, LSB first: 4 × width bytes. */
function pack(out: Uint8Array, pos: number, from: number, lo: number, width: number): number {
  if (width === 0) return pos;
  const end = from + MINI;
  let acc = 0;
  let bits = 0;
  if (width <= 24) {
    // bits < 8 before each value: the accumulator needs at most 31 bits.
    for (let k = from; k < end; k++) {
      acc |= ((shifted[k] as number) - lo) << bits;
      bits += width;
      while (bits >= 8) {
        out[pos++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
    return pos;
  }
  // Wider values go in 16-bit pieces, low first: the same bits in the same order.
  for (let k = from; k < end; k++) {
    let v = (shifted[k] as number) - lo;
    for (let left = width; left > 0; left -= 16) {
      const part = v % 65536;
      v = (v - part) / 65536;
      acc |= part << bits;
      bits += Math.min(left, 16);
      while (bits >= 8) {
        out[pos++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
  }
  return pos;
}

/** ULEB128 of a non-negative integer below 2^53 at out[pos]; returns the next position. */
function uleb(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}
