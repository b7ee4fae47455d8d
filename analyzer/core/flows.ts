// The flow rules, in one place: which events count, the flow key, port collapsing, confirmation, order.
import sbt from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';
import { CtError, Exit } from '../../common/errors.js';
import type { CtEvent } from '../../journal/event.js';
import { Proto, Status } from '../../journal/event.js';
import {
  addressWords,
  type EventColumns,
  NAT_DST,
  NAT_SRC,
  wordsAddress,
} from '../../journal/event-columns.js';

/**
 * How TCP/UDP source ports are collapsed before they enter the key (the journal keeps the real
 * port, so any mode can be applied offline):
 * - '1024': ports above 1024 become 1024, 0–1024 stay (the original tool's rule, the default);
 * - 'none': ports stay as they are;
 * - 'range': ports inside [lo, hi] become lo;
 * - 'ephemeral': ports inside the recording host's ip_local_port_range (from each journal's
 *   header) become the range's first port, so well-known client ports (NTP 123, IKE 500,
 *   DHCP 68) keep their real value; lo–hi is the range to use where a journal does not say.
 */
export type Collapse =
  | { kind: '1024' }
  | { kind: 'none' }
  | { kind: 'range'; lo: number; hi: number }
  | { kind: 'ephemeral'; lo: number; hi: number };

export const DEFAULT_COLLAPSE: Collapse = { kind: '1024' };

/** Linux's default net.ipv4.ip_local_port_range: 'ephemeral' where a journal does not record it. */
export const LINUX_EPHEMERAL: Readonly<[number, number]> = [32768, 60999];

/** The source port as it is keyed and shown under the mode. */
export function collapsePort(mode: Collapse, sport: number): number {
  switch (mode.kind) {
    case '1024':
      return Math.min(sport, 1024);
    case 'none':
      return sport;
    case 'range':
    case 'ephemeral':
      return sport >= mode.lo && sport <= mode.hi ? mode.lo : sport;
  }
}

/**
 * The mode for one recording: 'ephemeral' takes the host's recorded ip_local_port_range
 * (`recorded` false when the journal has none and the mode's own range applies).
 */
export function collapseFor(
  mode: Collapse,
  portRange: readonly [number, number] | null,
): { mode: Collapse; recorded: boolean } {
  if (mode.kind !== 'ephemeral') return { mode, recorded: true };
  if (portRange === null || portRange[0] > portRange[1]) return { mode, recorded: false };
  return { mode: { kind: 'ephemeral', lo: portRange[0], hi: portRange[1] }, recorded: true };
}

/** Parses `1024`, `none`, `ephemeral` or `LO-HI` (a port range); a CtError with exit 2 otherwise. */
export function parseCollapse(text: string): Collapse {
  if (text === '1024') return { kind: '1024' };
  if (text === 'none') return { kind: 'none' };
  if (text === 'ephemeral') {
    return { kind: 'ephemeral', lo: LINUX_EPHEMERAL[0], hi: LINUX_EPHEMERAL[1] };
  }
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  if (m && lo <= hi && hi <= 0xffff) return { kind: 'range', lo, hi };
  throw new CtError(
    'EUSAGE',
    `unknown collapsing mode '${text}': use 1024, none, ephemeral or a port range LO-HI such as 32768-60999`,
    { exit: Exit.USAGE },
  );
}

/** The text form parseCollapse reads back. */
export function formatCollapse(mode: Collapse): string {
  return mode.kind === 'range' ? `${mode.lo}-${mode.hi}` : mode.kind;
}

/** The six tables, in output order; a table's index is the first byte of its flows' keys. */
export const TABLES = ['TCPv4', 'UDPv4', 'ICMPv4', 'TCPv6', 'UDPv6', 'ICMPv6'] as const;
export type TableName = (typeof TABLES)[number];

/** One line of the flow table. */
export interface Flow {
  readonly table: TableName;
  readonly family: 4 | 6;
  readonly proto: number;
  /** Original-direction source and destination, network byte order (fresh copies). */
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** Source port after collapsing, destination port as is; 0 for ICMP flows. */
  readonly sport: number;
  readonly dport: number;
  /** ICMP / ICMPv6 type and code; 0 for TCP and UDP flows. */
  readonly icmpType: number;
  readonly icmpCode: number;
  /** Some event of the flow carried IPS_SEEN_REPLY. */
  readonly confirmed: boolean;
  /** Time of the flow's first and last event (µs since the epoch), within any --since/--until. */
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** Hosts (journal header names) whose events hold the flow, sorted; empty when not given. */
  readonly hosts: readonly string[];
  /**
   * Address translation seen on the flow's connections (the reply tuple was not the inverse
   * of the original): `dst` where the destination was rewritten (DNAT, redirect) to, `src`
   * what the source was rewritten (SNAT, masquerade) to; absent when none was.
   */
  readonly nat?: FlowNat;
  /**
   * Which way the flow crosses its hosts, one entry per distinct answer over its hosts whose
   * addresses are known (the journal records them), sorted; absent when none is known.
   */
  readonly direction?: readonly Direction[];
}

/**
 * input: to a local address (after any DNAT: a redirect to the host is input, a DNAT to
 * another host is forward); output: from a local address; local: both; forward: neither.
 */
export type Direction = 'forward' | 'input' | 'local' | 'output';

/** One translation: the first seen, and whether others were seen too. */
export interface NatTarget {
  readonly address: Uint8Array;
  /** Translated port (0 for ICMP). */
  readonly port: number;
  /** Connections of the flow were also translated to other addresses or ports. */
  readonly more: boolean;
}

export interface FlowNat {
  dst?: NatTarget;
  src?: NatTarget;
}

interface NatSeen {
  words: Uint32Array;
  port: number;
  more: boolean;
}

function natText(seen: NatSeen, alen: 4 | 16): NatTarget {
  return { address: wordsAddress(seen.words, 0, alen), port: seen.port, more: seen.more };
}

function hex(address: Uint8Array): string {
  return Buffer.from(address.buffer, address.byteOffset, address.byteLength).toString('hex');
}

/** 127.0.0.0/8 and ::1: the host's own whatever its interface list says. */
export function isLoopback(address: Uint8Array): boolean {
  if (address.length === 4) return address[0] === 127;
  return address.every((b, i) => b === (i === 15 ? 1 : 0));
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** The table index for a (family, protocol) pair, or undefined when the pair has no table. */
export function tableIndex(family: number, proto: number): number | undefined {
  const base = family === 4 ? 0 : family === 6 ? 3 : undefined;
  if (base === undefined) return undefined;
  if (proto === Proto.TCP) return base;
  if (proto === Proto.UDP) return base + 1;
  if (proto === (family === 4 ? Proto.ICMP : Proto.ICMPV6)) return base + 2;
  return undefined;
}

function isIcmpTable(index: number): boolean {
  return index % 3 === 2;
}

const isU16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;
const isU8 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xff;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The table's order (the sort order above) on Flow objects, for code that holds flows rather
 * than a table (diff's merge walk): table, src and dst as big-endian numbers, dport, collapsed
 * sport, ICMP type, code (ports are 0 for ICMP, type and code 0 for TCP/UDP). 0: the same key.
 */
export function compareFlows(a: Flow, b: Flow): number {
  return (
    TABLES.indexOf(a.table) - TABLES.indexOf(b.table) ||
    compareBytes(a.src, b.src) ||
    compareBytes(a.dst, b.dst) ||
    a.dport - b.dport ||
    a.sport - b.sport ||
    a.icmpType - b.icmpType ||
    a.icmpCode - b.icmpCode
  );
}

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
/** Row word KW: bit 0 set when the flow is confirmed. Word KW + 1: host bits. */
const FLAGS = KW;
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
  /** Per host id, its local addresses as hex text (from the journal headers). */
  readonly #local = new Map<number, Set<string>>();
  /** Flows seen translated (few): the first translation of each kind. */
  readonly #nat = new Map<number, { dst?: NatSeen; src?: NatSeen }>();

  constructor(opts: { collapse?: Collapse } = {}) {
    this.collapse = opts.collapse ?? DEFAULT_COLLAPSE;
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
    const set = this.#local.get(host) ?? new Set<string>();
    for (const a of addresses) set.add(hex(a.address));
    this.#local.set(host, set);
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
    const b = icmp ? o.icmpCode : collapsePort(this.collapse, o.sport);
    if (icmp ? !isU8(a) || !isU8(b) : !isU16(a) || !isU16(o.sport)) {
      this.#skip('port or ICMP type/code out of range');
      return;
    }
    const [src, dst, rsrc, rdst] = this.#scratch;
    addressWords(o.src, src, 0);
    addressWords(o.dst, dst, 0);
    const ports = icmp ? (a << 8) | b : ((a << 16) | b) >>> 0;
    const replied = (ev.status & Status.SEEN_REPLY) !== 0;
    const flow = this.#upsert(t, src, dst, 0, ports, replied, host, ev.time);
    // The same NAT rule as the reader's columns: the reply tuple is not the inverse.
    const r = ev.reply;
    if (r.src.length === len && r.dst.length === len) {
      addressWords(r.src, rsrc, 0);
      if (!sameWords(rsrc, dst) || r.sport !== o.dport)
        this.#noteNat(flow, 'dst', rsrc, 0, r.sport);
      addressWords(r.dst, rdst, 0);
      if (!sameWords(rdst, src) || r.dport !== o.sport)
        this.#noteNat(flow, 'src', rdst, 0, r.dport);
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
    // collapsePort as numbers: source ports in [lo, hi] become `to`.
    const m = opts.collapse ?? this.collapse;
    const ranged = m.kind === 'range' || m.kind === 'ephemeral';
    const lo = m.kind === '1024' ? 1025 : ranged ? m.lo : 1;
    const hi = m.kind === '1024' ? 0xffff : ranged ? m.hi : 0;
    const to = m.kind === '1024' ? 1024 : ranged ? m.lo : 0;
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
        const sp = sport[i] as number;
        ports = (((dport[i] as number) << 16) | (sp >= lo && sp <= hi ? to : sp)) >>> 0;
      }
      const flow = this.#upsert(
        t,
        src,
        dst,
        i * 4,
        ports,
        ((status[i] as number) & Status.SEEN_REPLY) !== 0,
        host,
        at,
      );
      const nat = c.nat[i] as number;
      if (nat !== 0) {
        if (nat & NAT_DST) this.#noteNat(flow, 'dst', c.replySrc, i * 4, c.replySport[i] as number);
        if (nat & NAT_SRC) this.#noteNat(flow, 'src', c.replyDst, i * 4, c.replyDport[i] as number);
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
      proto: icmp
        ? family === 4
          ? Proto.ICMP
          : Proto.ICMPV6
        : t % 3 === 0
          ? Proto.TCP
          : Proto.UDP,
      src: wordsAddress(k, at + 1, alen),
      dst: wordsAddress(k, at + 5, alen),
      sport: icmp ? 0 : ports & 0xffff,
      dport: icmp ? 0 : ports >>> 16,
      icmpType: icmp ? ports >>> 8 : 0,
      icmpCode: icmp ? ports & 0xff : 0,
      confirmed: ((k[at + FLAGS] as number) & 1) === 1,
      firstSeen: this.#times[i * 8 + FIRST] as number,
      lastSeen: this.#times[i * 8 + LAST] as number,
      hosts: this.#hostsOf(i),
      ...this.#natOf(i, alen),
      ...this.#directionOf(i, alen),
    };
  }

  #natOf(i: number, alen: 4 | 16): { nat?: FlowNat } {
    const seen = this.#nat.get(i);
    if (seen === undefined) return {};
    const nat: FlowNat = {};
    if (seen.dst) nat.dst = natText(seen.dst, alen);
    if (seen.src) nat.src = natText(seen.src, alen);
    return { nat };
  }

  #directionOf(i: number, alen: 4 | 16): { direction?: Direction[] } {
    if (this.#local.size === 0) return {};
    const k = this.#rows;
    const at = i * ROW;
    const srcBytes = wordsAddress(k, at + 1, alen);
    const nat = this.#nat.get(i)?.dst;
    const dstBytes =
      nat === undefined ? wordsAddress(k, at + 5, alen) : wordsAddress(nat.words, 0, alen);
    const [src, dst] = [hex(srcBytes), hex(dstBytes)];
    const found = new Set<Direction>();
    for (const h of this.#hostIds(i)) {
      const local = this.#local.get(h);
      if (local === undefined) continue;
      const fromHere = local.has(src) || isLoopback(srcBytes);
      const toHere = local.has(dst) || isLoopback(dstBytes);
      found.add(fromHere && toHere ? 'local' : toHere ? 'input' : fromHere ? 'output' : 'forward');
    }
    return found.size === 0 ? {} : { direction: [...found].sort() };
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
   * makes it, then merges confirmation and host in.
   */
  #upsert(
    t: number,
    src: Uint32Array,
    dst: Uint32Array,
    at: number,
    ports: number,
    replied: boolean,
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
        this.#merge(x, replied, host);
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
    this.#merge(x, replied, host);
    this.#times[i * 8 + FIRST] = time;
    this.#times[i * 8 + LAST] = time;
    if (this.#count * 2 > mask + 1) this.#resizeSlots(2 * (mask + 1));
    return i;
  }

  /** Keeps the first translation seen of each kind, and whether another one came later. */
  #noteNat(flow: number, kind: 'dst' | 'src', words: Uint32Array, at: number, port: number) {
    const nat = this.#nat.get(flow) ?? {};
    const seen = nat[kind];
    if (seen === undefined) {
      nat[kind] = { words: words.slice(at, at + 4), port, more: false };
      this.#nat.set(flow, nat);
    } else if (!seen.more) {
      // A masquerade picks a new source port per connection: for SNAT only the address counts.
      const samePort = kind === 'src' || seen.port === port;
      const same = samePort && seen.words.every((w, k) => w === words[at + k]);
      if (!same) seen.more = true;
    }
  }

  /** Merges an event's confirmation and host into the flow whose row starts at x. */
  #merge(x: number, replied: boolean, host: number): void {
    const rows = this.#rows;
    if (replied && ((rows[x + FLAGS] as number) & 1) === 0) rows[x + FLAGS] = 1;
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

/** The table of (family, proto): index (family 4 ? 0 : 256) + proto, -1 for no table. */
const TABLE_OF = Int8Array.from(
  { length: 512 },
  (_, i) => tableIndex(i < 256 ? 4 : 6, i & 0xff) ?? -1,
);
