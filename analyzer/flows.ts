// The flow rules, in one place: which events count, the flow key, port collapsing, confirmation, order.
import sbt from 'sorted-btree';
import { CtError, Exit } from '../common/errors.js';
import { type CtEvent, Proto, Status } from '../journal/event.js';

/**
 * How TCP/UDP source ports are collapsed before they enter the key (the journal keeps the real
 * port, so any mode can be applied offline):
 * - '1024': ports above 1024 become 1024, 0–1024 stay (the original tool's rule, the default);
 * - 'none': ports stay as they are;
 * - 'range': ports inside [lo, hi] (e.g. the host's ip_local_port_range) become lo.
 */
export type Collapse =
  | { kind: '1024' }
  | { kind: 'none' }
  | { kind: 'range'; lo: number; hi: number };

export const DEFAULT_COLLAPSE: Collapse = { kind: '1024' };

/** The source port as it is keyed and shown under the mode. */
export function collapsePort(mode: Collapse, sport: number): number {
  switch (mode.kind) {
    case '1024':
      return Math.min(sport, 1024);
    case 'none':
      return sport;
    case 'range':
      return sport >= mode.lo && sport <= mode.hi ? mode.lo : sport;
  }
}

/** Parses `1024`, `none` or `LO-HI` (a port range); a CtError with exit 2 otherwise. */
export function parseCollapse(text: string): Collapse {
  if (text === '1024') return { kind: '1024' };
  if (text === 'none') return { kind: 'none' };
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  if (m && lo <= hi && hi <= 0xffff) return { kind: 'range', lo, hi };
  throw new CtError(
    'EUSAGE',
    `unknown collapsing mode '${text}': use 1024, none or a port range LO-HI such as 32768-60999`,
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

/**
 * One line of the flow table. Room is left for per-flow facts later issues add (first/last
 * seen, counts, hosts): they become fields here, the key does not change.
 */
export interface Flow {
  readonly table: TableName;
  readonly family: 4 | 6;
  readonly proto: number;
  /** Original-direction source and destination, network byte order (copies, never aliased). */
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
}

type FlowRecord = { -readonly [K in keyof Flow]: Flow[K] };

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

// Key layout (latin1, so `<` compares bytes, i.e. numbers big-endian):
//   table u8 | src 4/16 | dst 4/16 | dport u16 BE | sport u16 BE      (TCP, UDP)
//   table u8 | src 4/16 | dst 4/16 | type u8 | code u8                 (ICMP, ICMPv6)
// Keys of one table all have the same length, so byte order is the documented sort order.
const scratch = new Uint8Array(1 + 16 + 16 + 4);

function flowKey(t: number, src: Uint8Array, dst: Uint8Array, a: number, b: number): string {
  let n = 0;
  scratch[n++] = t;
  scratch.set(src, n);
  n += src.length;
  scratch.set(dst, n);
  n += dst.length;
  if (isIcmpTable(t)) {
    scratch[n++] = a;
    scratch[n++] = b;
  } else {
    scratch[n++] = a >> 8;
    scratch[n++] = a & 0xff;
    scratch[n++] = b >> 8;
    scratch[n++] = b & 0xff;
  }
  return String.fromCharCode.apply(null, scratch.subarray(0, n) as unknown as number[]);
}

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The sorted flow table that live mode and replay both build. Its content depends only on the
 * set of events added (any order, any duplication) and on the collapsing mode.
 */
export class FlowTable {
  readonly collapse: Collapse;
  /** Events that entered no table, counted per reason (e.g. "IPv4 proto 47"). */
  readonly skipped: { [reason: string]: number } = {};
  // The tree keeps the order; the Map answers the common case, an event of a known flow, in
  // O(1) (a tree lookup costs 2–5 µs at a million flows). Both hold the same records.
  private readonly tree = new sbt.default<string, FlowRecord>(undefined, compareKeys);
  private readonly byKey = new Map<string, FlowRecord>();

  constructor(opts: { collapse?: Collapse } = {}) {
    this.collapse = opts.collapse ?? DEFAULT_COLLAPSE;
  }

  add(ev: CtEvent): void {
    const t = tableIndex(ev.family, ev.proto);
    if (t === undefined) {
      this.skip(`IPv${ev.family} proto ${ev.proto}`);
      return;
    }
    const o = ev.orig;
    const len = ev.family === 4 ? 4 : 16;
    if (o.src.length !== len || o.dst.length !== len) {
      this.skip('address length does not match the family');
      return;
    }
    const icmp = isIcmpTable(t);
    const a = icmp ? o.icmpType : o.dport;
    const b = icmp ? o.icmpCode : collapsePort(this.collapse, o.sport);
    if (icmp ? !isU8(a) || !isU8(b) : !isU16(a) || !isU16(o.sport)) {
      this.skip('port or ICMP type/code out of range');
      return;
    }
    const replied = (ev.status & Status.SEEN_REPLY) !== 0;
    const key = flowKey(t, o.src, o.dst, a, b);
    const flow = this.byKey.get(key);
    if (flow !== undefined) {
      if (replied) flow.confirmed = true;
      return;
    }
    const record: FlowRecord = {
      table: TABLES[t] as TableName,
      family: ev.family,
      proto: ev.proto,
      src: o.src.slice(),
      dst: o.dst.slice(),
      sport: icmp ? 0 : b,
      dport: icmp ? 0 : a,
      icmpType: icmp ? a : 0,
      icmpCode: icmp ? b : 0,
      confirmed: replied,
    };
    this.byKey.set(key, record);
    this.tree.set(key, record);
  }

  addAll(evs: Iterable<CtEvent>): void {
    for (const ev of evs) this.add(ev);
  }

  /** Number of flows (keys), all tables together. */
  get size(): number {
    return this.tree.size;
  }

  /** Total number of skipped events, all reasons together. */
  get skippedTotal(): number {
    let n = 0;
    for (const c of Object.values(this.skipped)) n += c;
    return n;
  }

  /** The flows in sort order: table, then src, dst, dport, sport (ICMP: type, code). */
  flows(): IterableIterator<Flow> {
    return this.tree.values();
  }

  private skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }
}
