// The flow table, in one place: which events count, the flow key, confirmation, hosts, order.
// The rules it applies live beside it, once each: collapse.ts (source ports), nat.ts and
// direction.ts (what a flow shows), tables.ts (the six tables and their order).
import sbt from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';
import type { CtEvent } from '../../journal/event.js';
import { Status } from '../../journal/event.js';
import {
  addressWords,
  type EventColumns,
  natBits,
  wordsAddress,
} from '../../journal/event-columns.js';
import {
  type Collapse,
  type CollapseRule,
  collapseSport,
  compileCollapse,
  DEFAULT_COLLAPSE,
} from './collapse.js';
import { HostAddresses } from './direction.js';
import { NatLog } from './nat.js';
import {
  type Flow,
  isIcmpTable,
  TABLE_OF,
  TABLES,
  type TableName,
  tableIndex,
  tableProto,
} from './tables.js';

// The table's public door: its callers import the rules' names from here too.
export {
  type Collapse,
  type CollapseRule,
  collapseFor,
  collapsePort,
  collapseSport,
  compileCollapse,
  DEFAULT_COLLAPSE,
  formatCollapse,
  LINUX_EPHEMERAL,
  parseCollapse,
} from './collapse.js';
export { type Direction, isLoopback } from './direction.js';
export type { FlowNat, NatTarget } from './nat.js';
export { compareFlows, type Flow, TABLES, type TableName, tableIndex } from './tables.js';

const isU16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;
const isU8 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xff;

/** No host: the event's source is not named (live mode, a caller that does not merge). */
export const NO_HOST = -1;

/** Options of addColumns: whose events they are, and the inclusive time window (µs). */
export interface ColumnsOptions {
  host?: number;
  /** The collapsing for these events, when not the table's (an 'ephemeral' table's journal). */
  collapse?: Collapse;
  since?: number | null;
  until?: number | null;
}

// A flow's key is KW u32 words, compared in order, which is the documented sort order:
//   table | src (4 words) | dst (4 words) | dport << 16 | sport      (TCP, UDP)
//   table | src (4 words) | dst (4 words) | type << 8 | code         (ICMP, ICMPv6)
// Address words are big-endian groups of 4 bytes (IPv4: one word, then zeros), so comparing
// words compares address bytes. A flow is one row of ROW words in one typed array, its key
// followed by its facts: no object or string per flow, one cache line or two per lookup, and
// the hash index below finds a known flow without allocating anything.
const KW = 10;
/**
 * Row word KW: bit 0 set when the flow is confirmed (IPS_SEEN_REPLY), bit 1 when assured
 * (IPS_ASSURED). Word KW + 1: host bits.
 */
const FLAGS = KW;
const CONFIRMED = 1;
const ASSURED = 2;
const HOSTS = KW + 1;
/**
 * Words 12–15: first and last event time (µs) as two float64 through a view of the same
 * buffer (row i's are float64 index 8i + 6 and 8i + 7). 16 words: a row is 64 bytes.
 */
const ROW = 16;
const FIRST = 6;
const LAST = 7;
/** Hosts 0–31 are bits of a per-flow word; later ones (rare) go to a map. */
const HOST_BITS = 32;

/**
 * The sorted flow table that live mode and replay both build. Its content depends only on the
 * set of events added (any order, any duplication, any batch split) and on the collapsing mode.
 */
export class FlowTable {
  readonly collapse: Collapse;
  /** Events that entered no table, counted per reason (e.g. "IPv4 proto 47"). */
  readonly skipped: { [reason: string]: number } = {};
  #hostNames: string[] = [];
  #count = 0;
  #cap = 0;
  #rows = new Uint32Array(0);
  #times = new Float64Array(0);
  readonly #moreHosts = new Map<number, Set<number>>();
  // Open addressing, linear probing; slot s is the pair (flow index + 1, key hash) at 2s,
  // 0 meaning empty. #mask is the slot count minus one.
  #slots = new Uint32Array(0);
  #mask = -1;
  // The order: a B+ tree of flow indices under #compare; flows ≥ #inTree are not in it yet
  // (inserted, or bulk-loaded, when the order is asked for: replay never pays per event).
  #tree = new sbt.default<number, undefined>(undefined, (a, b) => this.#compare(a, b));
  #inTree = 0;
  readonly #scratch = [
    new Uint32Array(4),
    new Uint32Array(4),
    new Uint32Array(4),
    new Uint32Array(4),
  ] as const;
  /** Per host id, its local addresses (from the journal headers). */
  readonly #local = new HostAddresses();
  /** Flows seen translated (few): the first translation of each kind. */
  readonly #nat = new NatLog();
  /**
   * Per flow, its latest non-zero mark and that event's time; allocated with the first marked
   * event, so a recording without marks pays nothing for them.
   */
  #marks: Uint32Array | undefined;
  #markTimes: Float64Array | undefined;
  /** The table's collapse mode, compiled (add() applies it per event). */
  readonly #rule: CollapseRule;

  constructor(opts: { collapse?: Collapse } = {}) {
    this.collapse = opts.collapse ?? DEFAULT_COLLAPSE;
    this.#rule = compileCollapse(this.collapse);
    this.#resizeSlots(1024);
  }

  /** The id of a host name for add/addColumns; the same name always gets the same id. */
  hostId(name: string): number {
    const known = this.#hostNames.indexOf(name);
    if (known >= 0) return known;
    this.#hostNames.push(name);
    return this.#hostNames.length - 1;
  }

  /** Addresses of a host (one id may get several calls: a union); they decide `direction`. */
  addHostAddresses(host: number, addresses: readonly { address: Uint8Array }[]): void {
    this.#local.add(host, addresses);
  }

  add(ev: CtEvent, host = NO_HOST): void {
    const t = tableIndex(ev.family, ev.proto);
    if (t === undefined) {
      this.#skip(`IPv${ev.family} proto ${ev.proto}`);
      return;
    }
    const o = ev.orig;
    const len = ev.family === 4 ? 4 : 16;
    if (o.src.length !== len || o.dst.length !== len) {
      this.#skip('address length does not match the family');
      return;
    }
    const icmp = isIcmpTable(t);
    const a = icmp ? o.icmpType : o.dport;
    const b = icmp ? o.icmpCode : collapseSport(this.#rule, o.sport);
    if (icmp ? !isU8(a) || !isU8(b) : !isU16(a) || !isU16(o.sport)) {
      this.#skip('port or ICMP type/code out of range');
      return;
    }
    const [src, dst, rsrc, rdst] = this.#scratch;
    addressWords(o.src, src, 0);
    addressWords(o.dst, dst, 0);
    const ports = icmp ? (a << 8) | b : ((a << 16) | b) >>> 0;
    const flow = this.#upsert(t, src, dst, 0, ports, flagsOf(ev.status), host, ev.time);
    if (ev.mark !== undefined && ev.mark !== 0) this.#noteMark(flow, ev.mark, ev.time);
    // The same NAT fact and policy as addColumns (the reader computes the bits there).
    const r = ev.reply;
    if (r.src.length === len && r.dst.length === len) {
      addressWords(r.src, rsrc, 0);
      addressWords(r.dst, rdst, 0);
      const nat = natBits(src, dst, rsrc, rdst, 0, o.sport, o.dport, r.sport, r.dport);
      if (nat !== 0) this.#nat.note(flow, nat, rsrc, rdst, 0, r.sport, r.dport);
    }
  }

  addAll(evs: Iterable<CtEvent>, host = NO_HOST): void {
    for (const ev of evs) this.add(ev, host);
  }

  /**
   * Adds a batch read by the journal reader (values already validated by it) and returns how
   * many of its events fell inside the window.
   */
  addColumns(c: EventColumns, opts: ColumnsOptions = {}): number {
    const host = opts.host ?? NO_HOST;
    const since = opts.since ?? Number.NEGATIVE_INFINITY;
    const until = opts.until ?? Number.POSITIVE_INFINITY;
    const rule = opts.collapse === undefined ? this.#rule : compileCollapse(opts.collapse);
    const { time, family, proto, status, src, dst, sport, dport, icmpType, icmpCode } = c;
    let inside = 0;
    for (let i = 0; i < c.n; i++) {
      const at = time[i] as number;
      if (at < since || at > until) continue;
      inside++;
      const f = family[i] as number;
      const t = TABLE_OF[(f === 4 ? 0 : 256) + (proto[i] as number)] as number;
      if (t < 0) {
        this.#skip(`IPv${f} proto ${proto[i]}`);
        continue;
      }
      let ports: number;
      if (t === 2 || t === 5) {
        ports = ((icmpType[i] as number) << 8) | (icmpCode[i] as number);
      } else {
        ports = (((dport[i] as number) << 16) | collapseSport(rule, sport[i] as number)) >>> 0;
      }
      const flow = this.#upsert(t, src, dst, i * 4, ports, flagsOf(status[i] as number), host, at);
      const mark = c.mark[i] as number;
      if (mark !== 0) this.#noteMark(flow, mark, at);
      const nat = c.nat[i] as number;
      if (nat !== 0) {
        const rs = c.replySport[i] as number;
        this.#nat.note(flow, nat, c.replySrc, c.replyDst, i * 4, rs, c.replyDport[i] as number);
      }
    }
    return inside;
  }

  /** Number of flows (keys), all tables together. */
  get size(): number {
    return this.#count;
  }

  /** Total number of skipped events, all reasons together. */
  get skippedTotal(): number {
    let n = 0;
    for (const c of Object.values(this.skipped)) n += c;
    return n;
  }

  /** Bytes the table holds per flow in its typed arrays and index (the tree not included). */
  get bytesPerFlowReserved(): number {
    const arrays = this.#rows.byteLength + this.#slots.byteLength;
    return this.#count === 0 ? 0 : arrays / this.#count;
  }

  /** The flows in sort order: table, then src, dst, dport, sport (ICMP: type, code). */
  *flows(): Generator<Flow> {
    this.#sort();
    for (const i of this.#tree.keys()) yield this.#flow(i);
  }

  #flow(i: number): Flow {
    const k = this.#rows;
    const at = i * ROW;
    const t = k[at] as number;
    const family = t < 3 ? 4 : 6;
    const alen = family === 4 ? 4 : 16;
    const ports = k[at + 9] as number;
    const icmp = isIcmpTable(t);
    return {
      table: TABLES[t] as TableName,
      family,
      proto: tableProto(t),
      src: wordsAddress(k, at + 1, alen),
      dst: wordsAddress(k, at + 5, alen),
      sport: icmp ? 0 : ports & 0xffff,
      dport: icmp ? 0 : ports >>> 16,
      icmpType: icmp ? ports >>> 8 : 0,
      icmpCode: icmp ? ports & 0xff : 0,
      confirmed: ((k[at + FLAGS] as number) & CONFIRMED) !== 0,
      assured: ((k[at + FLAGS] as number) & ASSURED) !== 0,
      firstSeen: this.#times[i * 8 + FIRST] as number,
      lastSeen: this.#times[i * 8 + LAST] as number,
      hosts: this.#hostsOf(i),
      ...this.#natOf(i, alen),
      ...this.#directionOf(i, alen),
      ...this.#markOf(i),
    };
  }

  #markOf(i: number): { mark?: number } {
    const mark = this.#marks?.[i] ?? 0;
    return mark === 0 ? {} : { mark };
  }

  /**
   * The flow's mark is its latest marked event's: a later time wins, and at an equal time the
   * larger mark, so the table stays independent of the order events are added in.
   */
  #noteMark(flow: number, mark: number, time: number): void {
    if (this.#marks === undefined || this.#markTimes === undefined || flow >= this.#marks.length) {
      this.#growMarks(flow + 1);
    }
    const marks = this.#marks as Uint32Array;
    const times = this.#markTimes as Float64Array;
    const old = marks[flow] as number;
    const then = times[flow] as number;
    if (old === 0 || time > then || (time === then && mark > old)) {
      marks[flow] = mark;
      times[flow] = time;
    }
  }

  #growMarks(needed: number): void {
    const cap = Math.max(needed, this.#cap, 1024);
    const marks = new Uint32Array(cap);
    const times = new Float64Array(cap);
    if (this.#marks !== undefined && this.#markTimes !== undefined) {
      marks.set(this.#marks);
      times.set(this.#markTimes);
    }
    this.#marks = marks;
    this.#markTimes = times;
  }

  #natOf(i: number, alen: 4 | 16): { nat?: Flow['nat'] } {
    const nat = this.#nat.of(i, alen);
    return nat === undefined ? {} : { nat };
  }

  #directionOf(i: number, alen: 4 | 16): { direction?: Flow['direction'] } {
    if (this.#local.empty) return {};
    const at = i * ROW;
    const translated = this.#nat.dstWords(i);
    const src = wordsAddress(this.#rows, at + 1, alen);
    const dst =
      translated === undefined
        ? wordsAddress(this.#rows, at + 5, alen)
        : wordsAddress(translated, 0, alen);
    const direction = this.#local.directions(src, dst, this.#hostIds(i));
    return direction === undefined ? {} : { direction };
  }

  #hostIds(i: number): number[] {
    const ids: number[] = [];
    const bits = this.#rows[i * ROW + HOSTS] as number;
    for (let h = 0; h < HOST_BITS; h++) if ((bits >>> h) & 1) ids.push(h);
    for (const h of this.#moreHosts.get(i) ?? []) ids.push(h);
    return ids;
  }

  #hostsOf(i: number): string[] {
    return this.#hostIds(i)
      .map((h) => this.#hostNames[h] as string)
      .sort();
  }

  /**
   * Finds the flow of table t, addresses src[at…at+3] → dst[at…at+3] and the ports word, or
   * makes it, then merges its flags (confirmed, assured) and host in.
   */
  #upsert(
    t: number,
    src: Uint32Array,
    dst: Uint32Array,
    at: number,
    ports: number,
    flags: number,
    host: number,
    time: number,
  ): number {
    const h = hashKey(t, src, dst, at, ports);
    const rows = this.#rows;
    const slots = this.#slots;
    const mask = this.#mask;
    let s = h & mask;
    for (;;) {
      const v = slots[2 * s] as number;
      if (v === 0) break;
      const x = (v - 1) * ROW;
      if (
        slots[2 * s + 1] === h &&
        rows[x] === t &&
        rows[x + 9] === ports &&
        rows[x + 1] === src[at] &&
        rows[x + 5] === dst[at] &&
        rows[x + 2] === src[at + 1] &&
        rows[x + 3] === src[at + 2] &&
        rows[x + 4] === src[at + 3] &&
        rows[x + 6] === dst[at + 1] &&
        rows[x + 7] === dst[at + 2] &&
        rows[x + 8] === dst[at + 3]
      ) {
        this.#merge(x, flags, host);
        const times = this.#times;
        const f = (v - 1) * 8;
        if (time < (times[f + FIRST] as number)) times[f + FIRST] = time;
        if (time > (times[f + LAST] as number)) times[f + LAST] = time;
        return v - 1;
      }
      s = (s + 1) & mask;
    }
    const i = this.#count++;
    if (i === this.#cap) this.#grow();
    const k = this.#rows;
    const x = i * ROW;
    k[x] = t;
    for (let w = 0; w < 4; w++) {
      k[x + 1 + w] = src[at + w] as number;
      k[x + 5 + w] = dst[at + w] as number;
    }
    k[x + 9] = ports;
    slots[2 * s] = i + 1;
    slots[2 * s + 1] = h;
    this.#merge(x, flags, host);
    this.#times[i * 8 + FIRST] = time;
    this.#times[i * 8 + LAST] = time;
    if (this.#count * 2 > mask + 1) this.#resizeSlots(2 * (mask + 1));
    return i;
  }

  /** Merges an event's flags (an OR: see flagsOf) and host into the flow whose row starts at x. */
  #merge(x: number, flags: number, host: number): void {
    const rows = this.#rows;
    const had = rows[x + FLAGS] as number;
    if ((had | flags) !== had) rows[x + FLAGS] = had | flags;
    if (host < 0) return;
    if (host < HOST_BITS) {
      const bits = rows[x + HOSTS] as number;
      const bit = (1 << host) >>> 0;
      if ((bits & bit) === 0) rows[x + HOSTS] = (bits | bit) >>> 0;
      return;
    }
    const i = x / ROW;
    const set = this.#moreHosts.get(i) ?? new Set<number>();
    set.add(host);
    this.#moreHosts.set(i, set);
  }

  #grow(): void {
    const cap = Math.max(1024, this.#cap * 2);
    const rows = new Uint32Array(cap * ROW);
    rows.set(this.#rows);
    this.#rows = rows;
    this.#times = new Float64Array(rows.buffer);
    this.#cap = cap;
  }

  /** Rebuilds the index with `count` slots (a power of two). */
  #resizeSlots(count: number): void {
    const slots = new Uint32Array(2 * count);
    const mask = count - 1;
    const k = this.#rows;
    for (let i = 0; i < this.#count; i++) {
      const x = i * ROW;
      const h = hashKey(k[x] as number, k, k, x + 1, k[x + 9] as number, 4);
      let s = h & mask;
      while (slots[2 * s] !== 0) s = (s + 1) & mask;
      slots[2 * s] = i + 1;
      slots[2 * s + 1] = h;
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** Brings the tree up to date: a bulk load of all flows when most are new, else inserts. */
  #sort(): void {
    const pending = this.#count - this.#inTree;
    if (pending === 0) return;
    const compare = (a: number, b: number) => this.#compare(a, b);
    if (pending > this.#inTree) {
      const order = Array.from({ length: this.#count }, (_, i) => i).sort(compare);
      this.#tree = bulkLoad(order, new Array(order.length), 64, compare);
    } else {
      for (let i = this.#inTree; i < this.#count; i++) this.#tree.set(i, undefined);
    }
    this.#inTree = this.#count;
  }

  #compare(a: number, b: number): number {
    const k = this.#rows;
    const x = a * ROW;
    const y = b * ROW;
    for (let w = 0; w < KW; w++) {
      const d = (k[x + w] as number) - (k[y + w] as number);
      if (d !== 0) return d;
    }
    return 0;
  }

  #skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }
}

/** The row flags an event's conntrack status word sets: confirmed, assured. */
function flagsOf(status: number): number {
  return (
    ((status & Status.SEEN_REPLY) !== 0 ? CONFIRMED : 0) |
    ((status & Status.ASSURED) !== 0 ? ASSURED : 0)
  );
}

/** murmur3's 32-bit mixing over a key's words (dst read at dstAt = at + dstShift). */
function hashKey(
  t: number,
  src: Uint32Array,
  dst: Uint32Array,
  at: number,
  ports: number,
  dstShift = 0,
): number {
  let h = mix(0x9747b28c, t);
  h = mix(h, ports);
  // IPv4 tables (0–2) use one address word; the other three are always 0.
  const words = t < 3 ? 1 : 4;
  for (let w = 0; w < words; w++) {
    h = mix(h, src[at + w] as number);
    h = mix(h, dst[at + dstShift + w] as number);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function mix(h: number, word: number): number {
  const x = Math.imul(h ^ word, 0xcc9e2d51);
  return (x << 15) | (x >>> 17);
}
