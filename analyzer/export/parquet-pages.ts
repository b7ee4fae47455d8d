// A Parquet row group's pages, encoded and compressed: functions of typed arrays, run on the encoding thread or inline.
import { gzipSync } from 'node:zlib';
import { deltaBinaryPacked } from './parquet-delta.js';
import { varint } from './thrift.js';

export type Compression = 'gzip' | 'none';

// parquet.thrift enums.
export const PLAIN = 0;
export const PLAIN_DICTIONARY = 2;
export const RLE = 3;
export const DELTA_BINARY_PACKED = 5;
export const RLE_DICTIONARY = 8;
export const DATA_PAGE = 0;
export const DICTIONARY_PAGE = 2;

/**
 * A column's values for the rows of one row group. A row has a value where `def & bit` is not
 * 0 (bit 1 by default: def holds 0 or 1; another bit: def is the rows' flags); a boolean is
 * true where `values & bit` is not 0. Narrower unsigned arrays are INT32's values as they are,
 * a Uint32Array's as their bits (what `| 0` gives): the encoding thread widens them.
 */
export type ColumnData =
  | {
      kind: 'int32';
      values: Int32Array | Uint32Array | Uint16Array | Uint8Array;
      def?: Uint8Array;
      bit?: number;
    }
  | { kind: 'int64'; values: Float64Array; def?: Uint8Array; bit?: number }
  | { kind: 'bool'; values: Uint8Array; bit?: number }
  | { kind: 'dict'; index: Int32Array; dict: readonly Uint8Array[] };

/**
 * ColumnData as it crosses to the encoding thread: a dictionary as its page's bytes already
 * (thousands of small arrays cost more to copy than to join), and whether the column is OPTIONAL.
 */
export type ChunkInput = { nullable: boolean; codec: Compression } & (
  | Exclude<ColumnData, { kind: 'dict' }>
  | { kind: 'dict'; index: Int32Array; page: Uint8Array; size: number }
);

/** One page: its header's fields and its body as stored (compressed or not). */
export interface EncodedPage {
  type: number;
  /** Bytes before compression. */
  size: number;
  count: number;
  encoding: number;
  body: Uint8Array;
}

export interface EncodedChunk {
  pages: EncodedPage[];
  encodings: number[];
}

/** The input of one column: a dictionary joined into its PLAIN page (`pages`: those of the row group so far). */
export function chunkInput(
  d: ColumnData,
  nullable: boolean,
  fixed: boolean,
  codec: Compression,
  pages: Map<readonly Uint8Array[], Uint8Array>,
): ChunkInput {
  if (d.kind !== 'dict') return { ...d, nullable, codec };
  // One dictionary given to two columns is one page (shared again by encodeRowGroup).
  let page = pages.get(d.dict);
  if (page === undefined) {
    page = plainDictionary(d.dict, fixed);
    pages.set(d.dict, page);
  }
  return {
    kind: 'dict',
    index: d.index,
    page,
    size: d.dict.length,
    nullable,
    codec,
  };
}

/**
 * A row group's column chunks. Columns of the same values (time and time_us; an address's text
 * and 16 bytes, whose dictionaries are in the same order; reply dst and src where no row was
 * NATed) share one data page, and one dictionary page, encoded and compressed once.
 */
export function encodeRowGroup(inputs: readonly ChunkInput[], rows: number): EncodedChunk[] {
  const same = new Map<
    unknown,
    { def: unknown; bit: number; size: number; codec: Compression; page: EncodedPage }
  >();
  const dictionaries = new Map<Uint8Array, { codec: Compression; page: EncodedPage }>();
  return inputs.map((d) => {
    const store = d.codec === 'gzip' ? gzipped : stored;
    const pages: EncodedPage[] = [];
    const encodings = [RLE];
    let size = 0;
    if (d.kind === 'dict') {
      size = d.size;
      const known = dictionaries.get(d.page);
      let page = known?.codec === d.codec ? known.page : undefined;
      if (page === undefined) {
        const body = store(d.page);
        page = {
          type: DICTIONARY_PAGE,
          size: d.page.length,
          count: size,
          encoding: PLAIN_DICTIONARY,
          body,
        };
        dictionaries.set(d.page, { codec: d.codec, page });
      }
      pages.push(page);
      encodings.push(PLAIN_DICTIONARY, RLE_DICTIONARY);
    }
    const key = d.kind === 'dict' ? d.index : d.values;
    const def = d.kind === 'int32' || d.kind === 'int64' ? d.def : undefined;
    const bit = d.kind === 'dict' ? 1 : (d.bit ?? 1);
    const known = same.get(key);
    let page: EncodedPage;
    const shared =
      known !== undefined &&
      known.def === def &&
      known.bit === bit &&
      known.size === size &&
      known.codec === d.codec;
    if (shared) page = known.page;
    else {
      page = dataPage(d, rows, store);
      same.set(key, { def, bit, size, codec: d.codec, page });
    }
    if (d.kind !== 'dict') encodings.push(page.encoding);
    pages.push(page);
    return { pages, encodings };
  });
}

const stored = (body: Uint8Array) => body;
// One output chunk for the whole page: zlib's default 16 KiB ones cost a copy each.
const gzipped = (body: Uint8Array): Uint8Array =>
  gzipSync(body, { level: 1, chunkSize: Math.max(64 * 1024, body.length + 1024) });

/** A data page: definition levels (OPTIONAL columns), then the values. */
function dataPage(d: ChunkInput, rows: number, store: (b: Uint8Array) => Uint8Array): EncodedPage {
  let values: Uint8Array;
  let encoding = PLAIN;
  let def: Uint8Array | undefined;
  if (d.kind === 'dict') {
    values = dictionaryIndices(d.index, rows, d.size);
    encoding = RLE_DICTIONARY;
  } else if (d.kind === 'bool') {
    values = plainBools(d.values, rows, d.bit ?? 1);
  } else {
    def = d.def === undefined ? undefined : defined(d.def, rows, d.bit ?? 1);
    const int32 = d.kind === 'int32';
    const present = nonNull(int32 ? int32Values(d.values, rows) : d.values, rows, def);
    const delta = deltaBinaryPacked(
      present,
      present.length,
      (int32 ? 4 : 8) * present.length,
      int32,
    );
    if (delta !== undefined) {
      values = delta;
      encoding = DELTA_BINARY_PACKED;
    } else values = int32 ? plainInt32(present as Int32Array) : plainInt64(present as Float64Array);
  }
  const levels = d.nullable ? definitionLevels(def, rows) : new Uint8Array(0);
  const body = concat(levels, values);
  return { type: DATA_PAGE, size: body.length, count: rows, encoding, body: store(body) };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Dictionary values, PLAIN: BYTE_ARRAY as a 4-byte length and the bytes; 16-byte FLBA as is. */
function plainDictionary(dict: readonly Uint8Array[], fixed: boolean): Uint8Array {
  let size = 0;
  for (const v of dict) size += v.length + (fixed ? 0 : 4);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let p = 0;
  for (const v of dict) {
    if (!fixed) {
      view.setUint32(p, v.length, true);
      p += 4;
    }
    out.set(v, p);
    p += v.length;
  }
  return out;
}

/** The indices: their bit width in one byte, then bit-packed runs of the hybrid encoding. */
function dictionaryIndices(index: Int32Array, rows: number, size: number): Uint8Array {
  const width = Math.max(1, Math.ceil(Math.log2(Math.max(size, 2))));
  const packed = bitPacked(index, rows, width);
  const out = new Uint8Array(1 + packed.length);
  out[0] = width;
  out.set(packed, 1);
  return out;
}

/**
 * The RLE/bit-packed hybrid as one bit-packed run: a ULEB128 header (groups of 8 << 1 | 1),
 * then the values LSB first, `width` bits each, the last group padded with zeros.
 */
function bitPacked(values: ArrayLike<number>, n: number, width: number): Uint8Array {
  const groups = Math.ceil(n / 8);
  const header: number[] = [];
  varint(header, groups * 2 + 1);
  const out = new Uint8Array(header.length + groups * width);
  out.set(header);
  let p = header.length;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < groups * 8; i++) {
    // width ≤ 24 and bits < 8: the accumulator never needs more than 32 bits.
    acc |= (i < n ? (values[i] as number) : 0) << bits;
    bits += width;
    while (bits >= 8) {
      out[p++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
  return out;
}

/** Definition levels (bit width 1) with their 4-byte length: one RLE run when every row has a value. */
function definitionLevels(def: Uint8Array | undefined, rows: number): Uint8Array {
  let body: Uint8Array;
  if (def === undefined || def.subarray(0, rows).every((d) => d === 1)) {
    const run: number[] = [];
    varint(run, rows * 2);
    run.push(1);
    body = Uint8Array.from(run);
  } else body = bitPacked(def, rows, 1);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

function plainBools(values: Uint8Array, rows: number, bit: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(rows / 8));
  for (let i = 0; i < rows; i++) {
    if ((values[i] as number) & bit) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  }
  return out;
}

/** 1 where the row has a value, 0 where not. */
function defined(def: Uint8Array, rows: number, bit: number): Uint8Array {
  if (bit === 1) return def;
  const out = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) out[i] = (def[i] as number) & bit ? 1 : 0;
  return out;
}

/** INT32's values of an unsigned array: a Uint32Array's bits as they are, narrower ones widened. */
function int32Values(
  values: Int32Array | Uint32Array | Uint16Array | Uint8Array,
  rows: number,
): Int32Array {
  if (values instanceof Int32Array) return values;
  if (values instanceof Uint32Array) {
    return new Int32Array(values.buffer, values.byteOffset, values.length);
  }
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) out[i] = values[i] as number;
  return out;
}

/** The values of the rows that have one (all of the first `rows` when def is undefined). */
function nonNull<T extends Int32Array | Float64Array>(
  values: T,
  rows: number,
  def: Uint8Array | undefined,
): T {
  if (def === undefined) return values.subarray(0, rows) as T;
  let n = 0;
  for (let i = 0; i < rows; i++) n += def[i] as number;
  if (n === rows) return values.subarray(0, rows) as T;
  const out = (values instanceof Int32Array ? new Int32Array(n) : new Float64Array(n)) as T;
  let k = 0;
  for (let i = 0; i < rows; i++) if (def[i] !== 0) out[k++] = values[i] as number;
  return out;
}

/** Typed arrays can be copied as PLAIN's little-endian bytes where the machine is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

function plainInt32(values: Int32Array): Uint8Array {
  if (LITTLE_ENDIAN)
    return new Uint8Array(values.buffer, values.byteOffset, 4 * values.length).slice();
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setInt32(4 * i, values[i] as number, true);
  return out;
}

/** Values are integers within ±2^53: two 32-bit halves, little-endian. */
function plainInt64(values: Float64Array): Uint8Array {
  const out = new Uint8Array(8 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    const hi = Math.floor(v / 0x100000000);
    view.setUint32(8 * i, v - hi * 0x100000000, true);
    view.setInt32(8 * i + 4, hi, true);
  }
  return out;
}

/** A row group for the encoding thread (the memory of its arrays may go with it: WorkThread.run's give). */
export interface EncodeRequest {
  rows: number;
  inputs: ChunkInput[];
}
