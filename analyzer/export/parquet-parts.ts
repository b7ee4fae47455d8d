// Parquet part files of events and of flows: rows buffered column by column, a row group written every ROW_GROUP rows.
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';
import type { ExportFiles } from './files.js';
import { type ColumnData, type Compression, ParquetFile } from './parquet.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import { EVENT_COLUMNS, FLOW_COLUMNS } from './schema.js';
import type { AddressCache, AddressValue } from './values.js';

/** Rows per row group: ~10 MB of buffers for events, and a unit engines read in parallel. */
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

/** Events of one journal, one row group at a time. */
export class ParquetEventPart implements EventPart {
  readonly #file: ParquetFile;
  readonly #addrs: AddressCache;
  /** Dictionaries of src, dst, reply src, reply dst. */
  readonly #dicts = [0, 1, 2, 3].map((c) => new AddressDict(c)) as [
    AddressDict,
    AddressDict,
    AddressDict,
    AddressDict,
  ];
  readonly #host: Uint8Array;
  readonly #journal: Uint8Array;
  readonly #portLo: number;
  readonly #portHi: number;
  #n = 0;
  #rows = 0;
  readonly #zeros = new Int32Array(ROW_GROUP);
  readonly #seq = new Float64Array(ROW_GROUP);
  readonly #time = new Float64Array(ROW_GROUP);
  readonly #kernel = new Uint8Array(ROW_GROUP);
  readonly #type = new Int32Array(ROW_GROUP);
  readonly #family = new Int32Array(ROW_GROUP);
  readonly #proto = new Int32Array(ROW_GROUP);
  readonly #status = new Int32Array(ROW_GROUP);
  readonly #id = new Int32Array(ROW_GROUP);
  readonly #src = new Int32Array(ROW_GROUP);
  readonly #dst = new Int32Array(ROW_GROUP);
  readonly #sport = new Int32Array(ROW_GROUP);
  readonly #dport = new Int32Array(ROW_GROUP);
  readonly #icmpType = new Int32Array(ROW_GROUP);
  readonly #icmpCode = new Int32Array(ROW_GROUP);
  readonly #icmpId = new Int32Array(ROW_GROUP);
  readonly #rsrc = new Int32Array(ROW_GROUP);
  readonly #rdst = new Int32Array(ROW_GROUP);
  readonly #rsport = new Int32Array(ROW_GROUP);
  readonly #rdport = new Int32Array(ROW_GROUP);
  readonly #tcpState = new Int32Array(ROW_GROUP);
  readonly #hasTcpState = new Uint8Array(ROW_GROUP);
  readonly #start = new Float64Array(ROW_GROUP);
  readonly #hasStart = new Uint8Array(ROW_GROUP);
  readonly #mark = new Int32Array(ROW_GROUP);
  readonly #hasMark = new Uint8Array(ROW_GROUP);
  readonly #zone = new Int32Array(ROW_GROUP);
  readonly #hasZone = new Uint8Array(ROW_GROUP);
  readonly #origPackets = new Float64Array(ROW_GROUP);
  readonly #origBytes = new Float64Array(ROW_GROUP);
  readonly #replyPackets = new Float64Array(ROW_GROUP);
  readonly #replyBytes = new Float64Array(ROW_GROUP);
  readonly #hasCounters = new Uint8Array(ROW_GROUP);
  readonly #ports: Int32Array[];
  readonly #hasPorts: Uint8Array;

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    codec: Compression,
  ) {
    this.#file = new ParquetFile(files, rel, EVENT_COLUMNS, codec);
    this.#addrs = addrs;
    this.#host = utf8(j.host);
    this.#journal = utf8(j.sha256);
    this.#portLo = j.portLo ?? 0;
    this.#portHi = j.portHi ?? 0;
    this.#ports = [
      new Int32Array(ROW_GROUP).fill(this.#portLo),
      new Int32Array(ROW_GROUP).fill(this.#portHi),
    ];
    this.#hasPorts = new Uint8Array(ROW_GROUP).fill(j.portLo === null ? 0 : 1);
  }

  get rows(): number {
    return this.#rows;
  }

  add(b: ExportBatch, i: number, seq: number): void {
    const k = this.#n++;
    const a = this.#addrs;
    const [d0, d1, d2, d3] = this.#dicts;
    const len = b.family[i] === 4 ? 4 : 16;
    const at = 16 * i;
    const flags = b.flags[i] as number;
    this.#seq[k] = seq;
    this.#time[k] = b.time[i] as number;
    this.#kernel[k] = flags & F_KERNEL;
    this.#type[k] = b.type[i] as number;
    this.#family[k] = b.family[i] as number;
    this.#proto[k] = b.proto[i] as number;
    this.#status[k] = (b.status[i] as number) | 0;
    this.#id[k] = (b.id[i] as number) | 0;
    this.#src[k] = d0.index(a.words(b.addr, at, len));
    this.#dst[k] = d1.index(a.words(b.addr, at + 4, len));
    this.#rsrc[k] = d2.index(a.words(b.addr, at + 8, len));
    this.#rdst[k] = d3.index(a.words(b.addr, at + 12, len));
    this.#sport[k] = b.sport[i] as number;
    this.#dport[k] = b.dport[i] as number;
    this.#icmpType[k] = b.icmpType[i] as number;
    this.#icmpCode[k] = b.icmpCode[i] as number;
    this.#icmpId[k] = b.icmpId[i] as number;
    this.#rsport[k] = b.replySport[i] as number;
    this.#rdport[k] = b.replyDport[i] as number;
    this.#hasTcpState[k] = flags & F_TCP ? 1 : 0;
    this.#tcpState[k] = b.tcpState[i] as number;
    this.#hasStart[k] = flags & F_START ? 1 : 0;
    this.#start[k] = b.start[i] as number;
    this.#hasMark[k] = flags & F_MARK ? 1 : 0;
    this.#mark[k] = (b.mark[i] as number) | 0;
    this.#hasZone[k] = flags & F_ZONE ? 1 : 0;
    this.#zone[k] = b.zone[i] as number;
    if (flags & F_COUNTERS) {
      this.#hasCounters[k] = 1;
      this.#origPackets[k] = b.origPackets[i] as number;
      this.#origBytes[k] = b.origBytes[i] as number;
      this.#replyPackets[k] = b.replyPackets[i] as number;
      this.#replyBytes[k] = b.replyBytes[i] as number;
    } else this.#hasCounters[k] = 0;
    this.#rows++;
    if (this.#n === ROW_GROUP) this.#flush();
  }

  #flush(): void {
    const n = this.#n;
    if (n === 0) return;
    const [d0, d1, d2, d3] = this.#dicts;
    const i32 = (values: Int32Array, def?: Uint8Array): ColumnData =>
      def === undefined ? { kind: 'int32', values } : { kind: 'int32', values, def };
    const i64 = (values: Float64Array, def?: Uint8Array): ColumnData =>
      def === undefined ? { kind: 'int64', values } : { kind: 'int64', values, def };
    const text = (index: Int32Array, d: AddressDict): ColumnData => ({
      kind: 'dict',
      index,
      dict: d.texts,
    });
    const bin = (index: Int32Array, d: AddressDict): ColumnData => ({
      kind: 'dict',
      index,
      dict: d.bins,
    });
    // In EVENT_COLUMNS' order.
    this.#file.writeRowGroup(n, [
      { kind: 'dict', index: this.#zeros, dict: [this.#host] },
      { kind: 'dict', index: this.#zeros, dict: [this.#journal] },
      i64(this.#seq),
      i64(this.#time),
      i64(this.#time),
      { kind: 'bool', values: this.#kernel },
      i32(this.#type),
      i32(this.#family),
      i32(this.#proto),
      i32(this.#status),
      i32(this.#id),
      text(this.#src, d0),
      text(this.#dst, d1),
      bin(this.#src, d0),
      bin(this.#dst, d1),
      i32(this.#sport),
      i32(this.#dport),
      i32(this.#icmpType),
      i32(this.#icmpCode),
      i32(this.#icmpId),
      text(this.#rsrc, d2),
      text(this.#rdst, d3),
      bin(this.#rsrc, d2),
      bin(this.#rdst, d3),
      i32(this.#rsport),
      i32(this.#rdport),
      i32(this.#tcpState, this.#hasTcpState),
      i64(this.#start, this.#hasStart),
      i32(this.#mark, this.#hasMark),
      i32(this.#zone, this.#hasZone),
      i64(this.#origPackets, this.#hasCounters),
      i64(this.#origBytes, this.#hasCounters),
      i64(this.#replyPackets, this.#hasCounters),
      i64(this.#replyBytes, this.#hasCounters),
      i32(this.#ports[0] as Int32Array, this.#hasPorts),
      i32(this.#ports[1] as Int32Array, this.#hasPorts),
    ]);
    this.#n = 0;
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
