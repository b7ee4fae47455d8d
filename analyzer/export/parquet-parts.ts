// Parquet part files of events and of flows: rows buffered column by column, a row group written every ROW_GROUP rows.
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import {
  copyEvents,
  type ExportBatch,
  F_COUNTERS,
  F_KERNEL,
  F_MARK,
  F_START,
  F_TCP,
  F_ZONE,
} from './batch.js';
import type { ExportFiles } from './files.js';
import { type ColumnData, type Compression, columnsBuffer, ParquetFile } from './parquet.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import { EVENT_COLUMNS, FLOW_COLUMNS } from './schema.js';
import type { AddressCache, AddressValue } from './values.js';

/** Rows per row group: 7.6 MB of column buffers for events, and a unit engines read in parallel. */
export const ROW_GROUP = 1 << 16;

let generations = 0;

/**
 * The addresses of one address column in one row group, each once: the dictionary of its text
 * and 16-byte columns (both in this order). An address's slot is kept on its cached value,
 * tagged with the dictionary's generation, so finding it costs no lookup. Each column has its
 * own: a server's column holds a few addresses, and its indices take a few bits.
 */
class AddressDict {
  readonly #column: number;
  #gen = ++generations;
  values: AddressValue[] = [];

  /** column: 0 to 3, which of an address value's slots this dictionary uses. */
  constructor(column: number) {
    this.#column = column;
  }

  index(v: AddressValue): number {
    const c = this.#column;
    if (v.dicts[c] !== this.#gen) {
      v.dicts[c] = this.#gen;
      v.slots[c] = this.values.length;
      this.values.push(v);
    }
    return v.slots[c] as number;
  }

  reset(): void {
    this.#gen = ++generations;
    this.values = [];
  }

  get texts(): Uint8Array[] {
    return this.values.map((v) => v.textBytes);
  }

  get bins(): Uint8Array[] {
    return this.values.map((v) => v.bin);
  }
}

const utf8 = (s: string) => Uint8Array.from(Buffer.from(s, 'utf8'));

/** Bytes per row of EventColumns: 7 float64, 10 32-bit, 6 16-bit and 8 8-bit columns. */
const EVENT_ROW_BYTES = 7 * 8 + 10 * 4 + 6 * 2 + 8;

/**
 * A row group's event columns, all in one buffer: handed to the encoding thread whole. The
 * batch's columns are kept in the batch's types, so filling them is a copy of memory (the
 * encoding thread widens them). A class with its fields declared: fast properties.
 */
class EventColumns {
  readonly buffer = columnsBuffer(ROW_GROUP * EVENT_ROW_BYTES);
  #at = 0;
  readonly seq = this.#f64();
  readonly time = this.#f64();
  readonly start = this.#f64();
  readonly origPackets = this.#f64();
  readonly origBytes = this.#f64();
  readonly replyPackets = this.#f64();
  readonly replyBytes = this.#f64();
  readonly status = new Uint32Array(this.buffer, this.#take(4), ROW_GROUP);
  readonly id = new Uint32Array(this.buffer, this.#take(4), ROW_GROUP);
  readonly mark = new Uint32Array(this.buffer, this.#take(4), ROW_GROUP);
  /** Dictionary slots of src, dst, reply src and reply dst. */
  readonly src = this.#i32();
  readonly dst = this.#i32();
  readonly rsrc = this.#i32();
  readonly rdst = this.#i32();
  readonly zeros = this.#i32();
  readonly portLo = this.#i32();
  readonly portHi = this.#i32();
  readonly sport = this.#u16();
  readonly dport = this.#u16();
  readonly icmpId = this.#u16();
  readonly replySport = this.#u16();
  readonly replyDport = this.#u16();
  readonly zone = this.#u16();
  readonly type = this.#u8();
  readonly family = this.#u8();
  readonly proto = this.#u8();
  readonly icmpType = this.#u8();
  readonly icmpCode = this.#u8();
  readonly tcpState = this.#u8();
  /** The batch's flags: the kernel bit and which optional values a row has. */
  readonly flags = this.#u8();
  readonly hasPorts = this.#u8();

  constructor(j: JournalContext) {
    if (this.#at !== this.buffer.byteLength)
      throw new Error('EventColumns: EVENT_ROW_BYTES is wrong');
    // A reused buffer holds an earlier group's values: the constant columns are filled again.
    this.zeros.fill(0);
    this.portLo.fill(j.portLo ?? 0);
    this.portHi.fill(j.portHi ?? 0);
    this.hasPorts.fill(j.portLo === null ? 0 : 1);
  }

  #take(bytes: number): number {
    this.#at += bytes * ROW_GROUP;
    return this.#at - bytes * ROW_GROUP;
  }

  #f64(): Float64Array {
    return new Float64Array(this.buffer, this.#take(8), ROW_GROUP);
  }

  #i32(): Int32Array {
    return new Int32Array(this.buffer, this.#take(4), ROW_GROUP);
  }

  #u16(): Uint16Array {
    return new Uint16Array(this.buffer, this.#take(2), ROW_GROUP);
  }

  #u8(): Uint8Array {
    return new Uint8Array(this.buffer, this.#take(1), ROW_GROUP);
  }
}

/** Whether two address columns of a row group are the same addresses in every row (their dictionaries, then their slots). */
function sameAddresses(
  a: Int32Array,
  da: AddressDict,
  b: Int32Array,
  db: AddressDict,
  n: number,
): boolean {
  const va = da.values;
  const vb = db.values;
  if (va.length !== vb.length) return false;
  for (let i = 0; i < va.length; i++) if (va[i] !== vb[i]) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

const MEMO_BITS = 14;

/**
 * The dictionary slots of recently seen connections' four addresses, by tuple (direct-mapped on
 * the conntrack id and ports, checked against the address words): one cache line per event
 * instead of four address lookups.
 */
class TupleMemo {
  readonly #words = new Uint32Array((1 << MEMO_BITS) * 16);
  readonly #length = new Uint8Array(1 << MEMO_BITS);
  readonly #group = new Int32Array(1 << MEMO_BITS).fill(-1);
  /** src, dst, reply src, reply dst of each entry, at 4 × its number. */
  readonly slots = new Int32Array((1 << MEMO_BITS) * 4);

  #entry(b: ExportBatch, i: number): number {
    const h = Math.imul(
      (b.id[i] as number) ^ (((b.sport[i] as number) << 16) | (b.dport[i] as number)),
      0x9e3779b1,
    );
    return h >>> (32 - MEMO_BITS);
  }

  /** 4 × the entry of event i's tuple when its slots are of this row group, else -1. */
  find(b: ExportBatch, i: number, len: number, group: number): number {
    const e = this.#entry(b, i);
    if (this.#group[e] !== group || this.#length[e] !== len) return -1;
    const w = this.#words;
    const a = b.addr;
    const at = 16 * i;
    const me = 16 * e;
    // IPv4 addresses are the first word of each four: the others are not theirs to compare.
    const step = len === 4 ? 4 : 1;
    for (let x = 0; x < 16; x += step) if (w[me + x] !== a[at + x]) return -1;
    return 4 * e;
  }

  keep(
    b: ExportBatch,
    i: number,
    len: number,
    group: number,
    src: number,
    dst: number,
    rsrc: number,
    rdst: number,
  ): void {
    const e = this.#entry(b, i);
    this.#words.set(b.addr.subarray(16 * i, 16 * i + 16), 16 * e);
    this.#length[e] = len;
    this.#group[e] = group;
    this.slots[4 * e] = src;
    this.slots[4 * e + 1] = dst;
    this.slots[4 * e + 2] = rsrc;
    this.slots[4 * e + 3] = rdst;
  }
}

/** Events of one journal, one row group at a time. */
export class ParquetEventPart implements EventPart {
  readonly #file: ParquetFile;
  readonly #addrs: AddressCache;
  readonly #j: JournalContext;
  /** Dictionaries of src, dst, reply src, reply dst. */
  readonly #dicts = [0, 1, 2, 3].map((c) => new AddressDict(c)) as [
    AddressDict,
    AddressDict,
    AddressDict,
    AddressDict,
  ];
  readonly #host: Uint8Array;
  readonly #journal: Uint8Array;
  #c: EventColumns;
  readonly #memo = new TupleMemo();
  /** The row group being filled: the dictionaries' slots memoised for it are valid. */
  #group = 0;
  /** The batch whose numbered connections #connSlots holds, valid where #connStamp is #stamp. */
  #batch: ExportBatch | undefined;
  #generation = 0;
  #stamp = 0;
  #connStamp = new Int32Array(0);
  #connSlots = new Int32Array(0);
  #n = 0;
  #rows = 0;

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    codec: Compression,
  ) {
    this.#file = new ParquetFile(files, rel, EVENT_COLUMNS, codec);
    this.#addrs = addrs;
    this.#j = j;
    this.#host = utf8(j.host);
    this.#journal = utf8(j.sha256);
    this.#c = new EventColumns(j);
  }

  get rows(): number {
    return this.#rows;
  }

  add(b: ExportBatch, i: number, seq: number): void {
    this.addRange(b, i, i + 1, seq);
  }

  /** Events from … to-1 of the batch, the journal's events seq, seq + 1, …: column by column. */
  addRange(b: ExportBatch, from: number, to: number, seq: number): void {
    while (from < to) {
      const c = this.#c;
      const k = this.#n;
      const m = Math.min(to - from, ROW_GROUP - k);
      const end = from + m;
      // Optional values are copied whatever they hold: a row without one is not written.
      copyEvents(c, b, from, end, k);
      this.#perRow(b, from, end, k, seq);
      this.#n += m;
      this.#rows += m;
      seq += m;
      from = end;
      if (this.#n === ROW_GROUP) this.#flush();
    }
  }

  /** What is per row: the sequence and the addresses' dictionary slots. */
  #perRow(b: ExportBatch, from: number, end: number, k: number, seq: number): void {
    const c = this.#c;
    if (b !== this.#batch || b.generation !== this.#generation) {
      this.#batch = b;
      this.#generation = b.generation;
      this.#stamp++;
      if (this.#connStamp.length < b.n) {
        this.#connStamp = new Int32Array(b.capacity);
        this.#connSlots = new Int32Array(4 * b.capacity);
      }
    }
    const stamp = this.#stamp;
    const stamps = this.#connStamp;
    const slots = this.#connSlots;
    for (let i = from; i < end; i++, k++) {
      c.seq[k] = seq++;
      // A connection the reader numbered (format 2) has its slots in this batch's table.
      const cn = b.conn[i] as number;
      if (cn >= 0 && stamps[cn] === stamp) {
        c.src[k] = slots[4 * cn] as number;
        c.dst[k] = slots[4 * cn + 1] as number;
        c.rsrc[k] = slots[4 * cn + 2] as number;
        c.rdst[k] = slots[4 * cn + 3] as number;
        continue;
      }
      this.#lookUp(b, i, k);
      if (cn >= 0) {
        stamps[cn] = stamp;
        slots[4 * cn] = c.src[k] as number;
        slots[4 * cn + 1] = c.dst[k] as number;
        slots[4 * cn + 2] = c.rsrc[k] as number;
        slots[4 * cn + 3] = c.rdst[k] as number;
      }
    }
  }

  /** Row k's four address slots from event i's addresses, through the memo. */
  #lookUp(b: ExportBatch, i: number, k: number): void {
    const c = this.#c;
    const memo = this.#memo;
    const len = b.family[i] === 4 ? 4 : 16;
    // A connection's events repeat its four addresses: their slots are memoised by tuple.
    const m = memo.find(b, i, len, this.#group);
    if (m >= 0) {
      c.src[k] = memo.slots[m] as number;
      c.dst[k] = memo.slots[m + 1] as number;
      c.rsrc[k] = memo.slots[m + 2] as number;
      c.rdst[k] = memo.slots[m + 3] as number;
      return;
    }
    const a = this.#addrs;
    const [d0, d1, d2, d3] = this.#dicts;
    const at = 16 * i;
    const src = d0.index(a.words(b.addr, at, len));
    const dst = d1.index(a.words(b.addr, at + 4, len));
    const rsrc = d2.index(a.words(b.addr, at + 8, len));
    const rdst = d3.index(a.words(b.addr, at + 12, len));
    c.src[k] = src;
    c.dst[k] = dst;
    c.rsrc[k] = rsrc;
    c.rdst[k] = rdst;
    memo.keep(b, i, len, this.#group, src, dst, rsrc, rdst);
  }

  #flush(): void {
    const n = this.#n;
    if (n === 0) return;
    const c = this.#c;
    const [d0, d1, d2, d3] = this.#dicts;
    const i32 = (values: Extract<ColumnData, { kind: 'int32' }>['values']): ColumnData => ({
      kind: 'int32',
      values,
    });
    const i64 = (values: Float64Array): ColumnData => ({ kind: 'int64', values });
    // Optional values: a row has one where its flags have the bit.
    const opt32 = (values: Uint32Array | Uint16Array | Uint8Array, bit: number): ColumnData => ({
      kind: 'int32',
      values,
      def: c.flags,
      bit,
    });
    const opt64 = (values: Float64Array, bit: number): ColumnData => ({
      kind: 'int64',
      values,
      def: c.flags,
      bit,
    });
    // Where no row was NATed, reply dst is src and reply src is dst, dictionary and slots alike:
    // the same arrays make the same pages, encoded once.
    const [src, dst] = [
      { index: c.src, texts: d0.texts, bins: d0.bins },
      { index: c.dst, texts: d1.texts, bins: d1.bins },
    ];
    const rdst = sameAddresses(c.src, d0, c.rdst, d3, n)
      ? src
      : { index: c.rdst, texts: d3.texts, bins: d3.bins };
    const rsrc = sameAddresses(c.dst, d1, c.rsrc, d2, n)
      ? dst
      : { index: c.rsrc, texts: d2.texts, bins: d2.bins };
    const text = (a: typeof src): ColumnData => ({ kind: 'dict', index: a.index, dict: a.texts });
    const bin = (a: typeof src): ColumnData => ({ kind: 'dict', index: a.index, dict: a.bins });
    // In EVENT_COLUMNS' order.
    const taken = this.#file.writeRowGroup(
      n,
      [
        { kind: 'dict', index: c.zeros, dict: [this.#host] },
        { kind: 'dict', index: c.zeros, dict: [this.#journal] },
        i64(c.seq),
        i64(c.time),
        i64(c.time),
        { kind: 'bool', values: c.flags, bit: F_KERNEL },
        i32(c.type),
        i32(c.family),
        i32(c.proto),
        i32(c.status),
        i32(c.id),
        text(src),
        text(dst),
        bin(src),
        bin(dst),
        i32(c.sport),
        i32(c.dport),
        i32(c.icmpType),
        i32(c.icmpCode),
        i32(c.icmpId),
        text(rsrc),
        text(rdst),
        bin(rsrc),
        bin(rdst),
        i32(c.replySport),
        i32(c.replyDport),
        opt32(c.tcpState, F_TCP),
        opt64(c.start, F_START),
        opt32(c.mark, F_MARK),
        opt32(c.zone, F_ZONE),
        opt64(c.origPackets, F_COUNTERS),
        opt64(c.origBytes, F_COUNTERS),
        opt64(c.replyPackets, F_COUNTERS),
        opt64(c.replyBytes, F_COUNTERS),
        { kind: 'int32', values: c.portLo, def: c.hasPorts },
        { kind: 'int32', values: c.portHi, def: c.hasPorts },
      ],
      c.buffer,
    );
    // Handed to the encoding thread: the next rows go into new columns.
    if (taken) this.#c = new EventColumns(this.#j);
    this.#n = 0;
    this.#group++;
    // The slots of the batch's connections were this row group's.
    this.#stamp++;
    for (const d of this.#dicts) d.reset();
  }

  ready(): Promise<void> {
    return this.#file.ready();
  }

  async finish(): Promise<void> {
    this.#flush();
    await this.#file.finish();
  }
}

/** Flows of one host (few rows: buffered as plain arrays, one row group per ROW_GROUP). */
export class ParquetFlowPart implements FlowPart {
  readonly #file: ParquetFile;
  readonly #addrs: AddressCache;
  readonly #host: Uint8Array;
  readonly #collapse: Uint8Array;
  #flows: Flow[] = [];
  #rows = 0;

  constructor(
    files: ExportFiles,
    rel: string,
    host: string,
    collapse: Collapse,
    addrs: AddressCache,
    codec: Compression,
  ) {
    this.#file = new ParquetFile(files, rel, FLOW_COLUMNS, codec);
    this.#addrs = addrs;
    this.#host = utf8(host);
    this.#collapse = utf8(formatCollapse(collapse));
  }

  get rows(): number {
    return this.#rows;
  }

  add(flow: Flow): void {
    this.#flows.push(flow);
    this.#rows++;
    // Flows come from a table in memory already: their row groups wait for finish().
    if (this.#flows.length === ROW_GROUP) this.#flush();
  }

  #flush(): void {
    const flows = this.#flows;
    const n = flows.length;
    if (n === 0) return;
    const srcs = new AddressDict(0);
    const dsts = new AddressDict(1);
    const src = Int32Array.from(flows, (f) => srcs.index(this.#addrs.get(f.src)));
    const dst = Int32Array.from(flows, (f) => dsts.index(this.#addrs.get(f.dst)));
    const tables = [...new Set(flows.map((f) => f.table))];
    const zeros = new Int32Array(n);
    const i32 = (get: (f: Flow) => number): ColumnData => ({
      kind: 'int32',
      values: Int32Array.from(flows, get),
    });
    const i64 = (get: (f: Flow) => number): ColumnData => ({
      kind: 'int64',
      values: Float64Array.from(flows, get),
    });
    const bool = (get: (f: Flow) => boolean): ColumnData => ({
      kind: 'bool',
      values: Uint8Array.from(flows, (f) => (get(f) ? 1 : 0)),
    });
    // In FLOW_COLUMNS' order.
    this.#file.writeRowGroup(n, [
      { kind: 'dict', index: zeros, dict: [this.#host] },
      {
        kind: 'dict',
        index: Int32Array.from(flows, (f) => tables.indexOf(f.table)),
        dict: tables.map(utf8),
      },
      i32((f) => f.family),
      i32((f) => f.proto),
      { kind: 'dict', index: src, dict: srcs.texts },
      { kind: 'dict', index: dst, dict: dsts.texts },
      { kind: 'dict', index: src, dict: srcs.bins },
      { kind: 'dict', index: dst, dict: dsts.bins },
      i32((f) => f.sport),
      i32((f) => f.dport),
      i32((f) => f.icmpType),
      i32((f) => f.icmpCode),
      bool((f) => f.confirmed),
      bool((f) => f.assured),
      i64((f) => f.firstSeen),
      i64((f) => f.lastSeen),
      i64((f) => f.firstSeen),
      i64((f) => f.lastSeen),
      { kind: 'dict', index: zeros, dict: [this.#collapse] },
    ]);
    this.#flows = [];
  }

  async finish(): Promise<void> {
    this.#flush();
    await this.#file.finish();
  }
}
