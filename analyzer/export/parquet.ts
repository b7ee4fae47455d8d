// A streaming Parquet file: one row group at a time, its pages encoded on a second thread, GZIP or none.
// Format: https://parquet.apache.org/docs/file-format/ (parquet.thrift). Pages are v1 data pages:
// definition levels (OPTIONAL columns only) as the RLE/bit-packed hybrid with a 4-byte length,
// then the values (parquet-pages.ts): integers DELTA_BINARY_PACKED where that is smaller, else
// PLAIN; a dictionary column has a PLAIN dictionary page first and RLE_DICTIONARY values.
import { TOOL_VERSION } from '../../common/package.js';
import type { ExportFiles, OutputFile } from './files.js';
import {
  type ColumnData,
  type Compression,
  chunkInput,
  DATA_PAGE,
  DICTIONARY_PAGE,
  type EncodedChunk,
  type EncodedPage,
  type EncodeRequest,
  encodeRowGroup,
  RLE,
} from './parquet-pages.js';
import type { Column, ColumnType } from './schema.js';
import { EXPORT_VERSION } from './schema.js';
import { encodeStruct, type TValue } from './thrift.js';
import { WorkThread } from './work-thread.js';

export type { ColumnData, Compression };

// parquet.thrift enums.
const BOOLEAN = 0;
const INT32 = 1;
const INT64 = 2;
const BYTE_ARRAY = 6;
const FIXED_LEN_BYTE_ARRAY = 7;
const REQUIRED = 0;
const OPTIONAL = 1;
const CODEC = { none: 0, gzip: 2 } as const;

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
  codec: Compression;
}

/** A row group whose pages are being encoded (on the encoding thread, or already here). */
interface PendingGroup {
  rows: number;
  /** Its number in the file. */
  group: number;
  chunks: Promise<EncodedChunk[]>;
  /** Each column chunk's codec. */
  codecs: Compression[];
}

/** A column whose GZIP pages keep more than this of their size is stored for a while instead. */
const WORTH = 0.9;
/** Row groups a column is stored uncompressed before GZIP is tried on it again. */
const STORE_FOR = 8;

/**
 * One thread for every Parquet file of the process: it encodes and compresses a row group
 * while this thread fills the next.
 */
const encodingThread = new WorkThread<EncodeRequest, EncodedChunk[]>(
  new URL('./parquet-worker.js', import.meta.url),
  'the Parquet encoding thread',
);
/** Row groups smaller than this are encoded here: the copy to the thread would cost more. */
const WORKER_MIN_ROWS = 4096;

/** Boots the encoding thread ahead of the first large row group (a large journal is being read). */
export function startEncodingThread(): void {
  encodingThread.start();
}

/** A buffer for a row group's columns: one the encoding thread is done with, else a new one. */
export function columnsBuffer(bytes: number): ArrayBuffer {
  return encodingThread.take(bytes) ?? new ArrayBuffer(bytes);
}

/**
 * One Parquet file being written: PAR1, then each row group's column chunks, then the footer.
 * A row group's pages are encoded and compressed on the encoding thread while the caller fills
 * the next: ready() writes the groups that are done, keeping at most one in flight (bounded
 * memory).
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
  #submitted = 0;
  /**
   * Per column, the row group from which GZIP is tried again: bit-packed ports, times and
   * counters barely shrink, and deflating them costs the encoding thread a third of its time.
   */
  readonly #storeUntil: number[];

  constructor(files: ExportFiles, rel: string, columns: readonly Column[], codec: Compression) {
    this.#files = files;
    this.#file = files.create(rel);
    this.#columns = columns;
    this.#codec = codec;
    this.#storeUntil = columns.map(() => 0);
    this.#write(Buffer.from('PAR1'));
  }

  #write(b: Uint8Array): void {
    this.#files.write(this.#file, b);
    this.#offset += b.length;
  }

  /**
   * Encodes one row group, on the encoding thread when it is large. `data[i]` holds column i's
   * values for its first `rows` rows. The arrays may be reused once this returns, except those
   * over `give`, when the result is true: that memory went to the encoding thread.
   */
  writeRowGroup(rows: number, data: readonly ColumnData[], give?: ArrayBuffer): boolean {
    if (rows === 0) return false;
    const group = this.#submitted++;
    const pages = new Map<readonly Uint8Array[], Uint8Array>();
    const inputs = this.#columns.map((c, i) =>
      chunkInput(
        data[i] as ColumnData,
        c.nullable,
        c.type === 'binary16',
        (this.#storeUntil[i] as number) > group ? 'none' : this.#codec,
        pages,
      ),
    );
    const threaded = encodingThread.available && rows >= WORKER_MIN_ROWS;
    const chunks = threaded
      ? encodingThread.run({ rows, inputs }, give)
      : Promise.resolve(encodeRowGroup(inputs, rows));
    // Awaited in order by ready(); a failure meanwhile must not count as unhandled.
    chunks.catch(() => {});
    this.#pending.push({ rows, group, chunks, codecs: inputs.map((d) => d.codec) });
    this.#rows += rows;
    return threaded && give !== undefined;
  }

  /** Writes the encoded row groups, all but the last `keep` (waiting for their encoding). */
  async ready(keep = 1): Promise<void> {
    while (this.#pending.length > keep) {
      const g = this.#pending[0] as PendingGroup;
      const chunks = await g.chunks;
      this.#pending.shift();
      const metas = chunks.map((c, i) => {
        const meta: ChunkMeta = {
          column: this.#columns[i] as Column,
          offset: this.#offset,
          dictOffset: undefined,
          dataOffset: 0,
          compressed: 0,
          uncompressed: 0,
          rows: g.rows,
          encodings: c.encodings,
          codec: g.codecs[i] as Compression,
        };
        let bodies = 0;
        let sizes = 0;
        for (const page of c.pages) {
          if (page.type === DICTIONARY_PAGE) meta.dictOffset = this.#offset;
          else meta.dataOffset = this.#offset;
          this.#page(meta, page);
          bodies += page.body.length;
          sizes += page.size;
        }
        if (meta.codec === 'gzip' && bodies > WORTH * sizes) {
          this.#storeUntil[i] = g.group + 1 + STORE_FOR;
        }
        return meta;
      });
      this.#groups.push({ rows: g.rows, chunks: metas });
    }
  }

  #page(meta: ChunkMeta, page: EncodedPage) {
    const { type, size, count, encoding, body: stored } = page;
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
                [4, { i32: CODEC[m.codec] }],
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
