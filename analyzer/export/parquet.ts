// A streaming Parquet file: typed column buffers, one row group at a time, dictionary or PLAIN pages, GZIP or none.
// Format: https://parquet.apache.org/docs/file-format/ (parquet.thrift). Pages are v1 data pages:
// definition levels (OPTIONAL columns only) as the RLE/bit-packed hybrid with a 4-byte length,
// then the values; a dictionary column has a PLAIN dictionary page first and RLE_DICTIONARY values.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { TOOL_VERSION } from '../../common/package.js';
import type { ExportFiles, OutputFile } from './files.js';
import type { Column, ColumnType } from './schema.js';
import { EXPORT_VERSION } from './schema.js';
import { encodeStruct, type TValue, varint } from './thrift.js';

export type Compression = 'gzip' | 'none';

// parquet.thrift enums.
const BOOLEAN = 0;
const INT32 = 1;
const INT64 = 2;
const BYTE_ARRAY = 6;
const FIXED_LEN_BYTE_ARRAY = 7;
const REQUIRED = 0;
const OPTIONAL = 1;
const PLAIN = 0;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const RLE_DICTIONARY = 8;
const DATA_PAGE = 0;
const DICTIONARY_PAGE = 2;
const CODEC = { none: 0, gzip: 2 } as const;

/** A column's values for the rows of one row group (def: 1 where the row has a value). */
export type ColumnData =
  | { kind: 'int32'; values: Int32Array; def?: Uint8Array }
  | { kind: 'int64'; values: Float64Array; def?: Uint8Array }
  | { kind: 'bool'; values: Uint8Array }
  | { kind: 'dict'; index: Int32Array; dict: readonly Uint8Array[] };

/** The physical type of each column type. */
const PHYSICAL: Record<ColumnType, number> = {
  string: BYTE_ARRAY,
  bool: BOOLEAN,
  uint8: INT32,
  uint16: INT32,
  uint32: INT32,
  uint64: INT64,
  int64: INT64,
  timestamp_us: INT64,
  binary16: FIXED_LEN_BYTE_ARRAY,
};

/** parquet.thrift's SchemaElement of a column: physical type, length, annotations. */
function schemaElement(c: Column): TValue {
  const fields: [number, TValue][] = [];
  const int = (bits: number, signed: boolean): TValue => ({
    struct: [
      [
        10,
        {
          struct: [
            [1, { i8: bits }],
            [2, { bool: signed }],
          ],
        },
      ],
    ],
  });
  fields.push([1, { i32: PHYSICAL[c.type] }]);
  if (c.type === 'binary16') fields.push([2, { i32: 16 }]);
  fields.push([3, { i32: c.nullable ? OPTIONAL : REQUIRED }]);
  fields.push([4, { bin: c.name }]);
  // ConvertedType (field 6) for older readers, LogicalType (field 10) for newer ones.
  const annotation: Partial<Record<ColumnType, [number, TValue]>> = {
    string: [0, { struct: [[1, { struct: [] }]] }],
    uint8: [11, int(8, false)],
    uint16: [12, int(16, false)],
    uint32: [13, int(32, false)],
    uint64: [14, int(64, false)],
    timestamp_us: [
      10,
      {
        struct: [
          [
            8,
            {
              struct: [
                [1, { bool: true }],
                [2, { struct: [[2, { struct: [] }]] }],
              ],
            },
          ],
        ],
      },
    ],
  };
  const a = annotation[c.type];
  if (a !== undefined) {
    fields.push([6, { i32: a[0] }]);
    fields.push([10, a[1]]);
  }
  return { struct: fields };
}

interface ChunkMeta {
  column: Column;
  offset: number;
  dictOffset: number | undefined;
  dataOffset: number;
  compressed: number;
  uncompressed: number;
  rows: number;
  encodings: number[];
}

/** A page encoded, its compressed form on the way (zlib's thread pool). */
interface PageJob {
  type: number;
  /** Bytes before compression (the body itself is not kept: memory). */
  size: number;
  count: number;
  encoding: number;
  stored: Promise<Uint8Array>;
}

/** A row group encoded, waiting for its pages' compression to be written. */
interface PendingGroup {
  rows: number;
  chunks: { column: Column; pages: PageJob[]; encodings: number[] }[];
}

const gzipAsync = promisify(gzip);

/**
 * One Parquet file being written: PAR1, then each row group's column chunks, then the footer.
 * A row group's pages are compressed on zlib's thread pool while the caller reads on: ready()
 * writes the groups whose compression is done, keeping at most one in flight (bounded memory).
 * Only the footer's metadata stays in memory once a group is written.
 */
export class ParquetFile {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  readonly #columns: readonly Column[];
  readonly #codec: Compression;
  #offset = 0;
  #rows = 0;
  readonly #groups: { rows: number; chunks: ChunkMeta[] }[] = [];
  readonly #pending: PendingGroup[] = [];

  constructor(files: ExportFiles, rel: string, columns: readonly Column[], codec: Compression) {
    this.#files = files;
    this.#file = files.create(rel);
    this.#columns = columns;
    this.#codec = codec;
    this.#write(Buffer.from('PAR1'));
  }

  #write(b: Uint8Array): void {
    this.#files.write(this.#file, b);
    this.#offset += b.length;
  }

  /**
   * Encodes one row group (`data[i]` holds column i's values for its first `rows` rows; the
   * arrays may be reused once this returns) and starts compressing its pages.
   */
  writeRowGroup(rows: number, data: readonly ColumnData[]): void {
    if (rows === 0) return;
    const chunks = this.#columns.map((column, i) =>
      this.#chunk(column, data[i] as ColumnData, rows),
    );
    this.#pending.push({ rows, chunks });
    this.#rows += rows;
  }

  /** Writes the encoded row groups, all but the last `keep` (waiting for their compression). */
  async ready(keep = 1): Promise<void> {
    while (this.#pending.length > keep) {
      const g = this.#pending[0] as PendingGroup;
      const stored = await Promise.all(
        g.chunks.map((c) => Promise.all(c.pages.map((p) => p.stored))),
      );
      this.#pending.shift();
      const metas = g.chunks.map((c, i) => {
        const meta: ChunkMeta = {
          column: c.column,
          offset: this.#offset,
          dictOffset: undefined,
          dataOffset: 0,
          compressed: 0,
          uncompressed: 0,
          rows: g.rows,
          encodings: c.encodings,
        };
        c.pages.forEach((page, k) => {
          if (page.type === DICTIONARY_PAGE) meta.dictOffset = this.#offset;
          else meta.dataOffset = this.#offset;
          this.#page(meta, page, (stored[i] as Uint8Array[])[k] as Uint8Array);
        });
        return meta;
      });
      this.#groups.push({ rows: g.rows, chunks: metas });
    }
  }

  #chunk(column: Column, d: ColumnData, rows: number): PendingGroup['chunks'][number] {
    const pages: PageJob[] = [];
    const encodings = [RLE];
    let values: Uint8Array;
    let encoding = PLAIN;
    if (d.kind === 'dict') {
      const dict = plainDictionary(d.dict, column.type === 'binary16');
      pages.push(this.#job(DICTIONARY_PAGE, dict, d.dict.length, PLAIN_DICTIONARY));
      values = dictionaryIndices(d.index, rows, d.dict.length);
      encoding = RLE_DICTIONARY;
      encodings.push(PLAIN_DICTIONARY, RLE_DICTIONARY);
    } else {
      values =
        d.kind === 'bool'
          ? plainBools(d.values, rows)
          : d.kind === 'int32'
            ? plainInt32(d.values, rows, d.def)
            : plainInt64(d.values, rows, d.def);
      encodings.push(PLAIN);
    }
    const def = d.kind === 'int32' || d.kind === 'int64' ? d.def : undefined;
    const levels = column.nullable ? definitionLevels(def, rows) : new Uint8Array(0);
    pages.push(this.#job(DATA_PAGE, concat(levels, values), rows, encoding));
    return { column, pages, encodings };
  }

  #job(type: number, body: Uint8Array, count: number, encoding: number): PageJob {
    // One output chunk for the whole page: zlib's default 16 KiB chunks cost a callback each
    // on this thread.
    const chunkSize = Math.max(64 * 1024, body.length + 1024);
    const stored =
      this.#codec === 'gzip' ? gzipAsync(body, { level: 1, chunkSize }) : Promise.resolve(body);
    // Awaited in order by ready(); a failure meanwhile must not count as unhandled.
    stored.catch(() => {});
    return { type, size: body.length, count, encoding, stored };
  }

  #page(meta: ChunkMeta, page: PageJob, stored: Uint8Array) {
    const { type, size, count, encoding } = page;
    const pageHeader: [number, TValue] =
      type === DATA_PAGE
        ? [
            5,
            {
              struct: [
                [1, { i32: count }],
                [2, { i32: encoding }],
                [3, { i32: RLE }],
                [4, { i32: RLE }],
              ],
            },
          ]
        : [
            7,
            {
              struct: [
                [1, { i32: count }],
                [2, { i32: encoding }],
              ],
            },
          ];
    const header = encodeStruct([
      [1, { i32: type }],
      [2, { i32: size }],
      [3, { i32: stored.length }],
      pageHeader,
    ]);
    this.#write(header);
    this.#write(stored);
    meta.compressed += header.length + stored.length;
    meta.uncompressed += header.length + size;
  }

  /** Writes the last row groups, the footer (schema, row groups, metadata) and closes the file. */
  async finish(): Promise<void> {
    await this.ready(0);
    const root: TValue = {
      struct: [
        [4, { bin: 'schema' }],
        [5, { i32: this.#columns.length }],
      ],
    };
    const groups: TValue[] = this.#groups.map((g) => {
      const chunks: TValue[] = g.chunks.map((m) => ({
        struct: [
          [2, { i64: m.offset }],
          [
            3,
            {
              struct: [
                [1, { i32: PHYSICAL[m.column.type] }],
                [2, { list: m.encodings.map((e) => ({ i32: e })), of: 'i32' }],
                [3, { list: [{ bin: m.column.name }], of: 'bin' }],
                [4, { i32: CODEC[this.#codec] }],
                [5, { i64: m.rows }],
                [6, { i64: m.uncompressed }],
                [7, { i64: m.compressed }],
                [9, { i64: m.dataOffset }],
                ...(m.dictOffset === undefined
                  ? []
                  : ([[11, { i64: m.dictOffset }]] as [number, TValue][])),
              ],
            },
          ],
        ],
      }));
      const first = g.chunks[0] as ChunkMeta;
      return {
        struct: [
          [1, { list: chunks, of: 'struct' }],
          [2, { i64: g.chunks.reduce((s, m) => s + m.uncompressed, 0) }],
          [3, { i64: g.rows }],
          [5, { i64: first.offset }],
          [6, { i64: g.chunks.reduce((s, m) => s + m.compressed, 0) }],
        ],
      };
    });
    const footer = encodeStruct([
      [1, { i32: 1 }],
      [2, { list: [root, ...this.#columns.map(schemaElement)], of: 'struct' }],
      [3, { i64: this.#rows }],
      [4, { list: groups, of: 'struct' }],
      [
        5,
        {
          list: [
            {
              struct: [
                [1, { bin: 'conntracker.export' }],
                [2, { bin: String(EXPORT_VERSION) }],
              ],
            },
          ],
          of: 'struct',
        },
      ],
      [6, { bin: `conntracker version ${TOOL_VERSION}` }],
    ]);
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(footer.length, 0);
    tail.write('PAR1', 4, 'latin1');
    this.#write(footer);
    this.#write(tail);
    this.#files.close(this.#file);
  }
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

function plainBools(values: Uint8Array, rows: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(rows / 8));
  for (let i = 0; i < rows; i++)
    if (values[i]) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return out;
}

/** Typed arrays can be copied as PLAIN's little-endian bytes where the machine is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

function plainInt32(values: Int32Array, rows: number, def: Uint8Array | undefined): Uint8Array {
  if (def === undefined && LITTLE_ENDIAN) {
    return new Uint8Array(values.buffer, values.byteOffset, 4 * rows).slice();
  }
  const out = new Uint8Array(4 * rows);
  const view = new DataView(out.buffer);
  let p = 0;
  for (let i = 0; i < rows; i++) {
    if (def !== undefined && def[i] === 0) continue;
    view.setInt32(p, values[i] as number, true);
    p += 4;
  }
  return out.subarray(0, p);
}

function plainInt64(values: Float64Array, rows: number, def: Uint8Array | undefined): Uint8Array {
  if (LITTLE_ENDIAN) {
    const words = new Uint32Array(2 * rows);
    let w = 0;
    for (let i = 0; i < rows; i++) {
      if (def !== undefined && def[i] === 0) continue;
      const v = values[i] as number;
      const lo = v % 0x100000000;
      words[w++] = lo;
      words[w++] = (v - lo) / 0x100000000;
    }
    return new Uint8Array(words.buffer, 0, 4 * w);
  }
  const out = new Uint8Array(8 * rows);
  const view = new DataView(out.buffer);
  let p = 0;
  for (let i = 0; i < rows; i++) {
    if (def !== undefined && def[i] === 0) continue;
    // Values are non-negative integers below 2^53: two 32-bit halves, little-endian.
    const v = values[i] as number;
    const lo = v % 0x100000000;
    view.setUint32(p, lo, true);
    view.setUint32(p + 4, (v - lo) / 0x100000000, true);
    p += 8;
  }
  return out.subarray(0, p);
}
