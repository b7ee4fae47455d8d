// The six flow tables, one Flow record, and the documented order between flows.
import { Proto } from '../../journal/event.js';
import type { Direction } from './direction.js';
import type { FlowNat } from './nat.js';

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
  /**
   * Some event of the flow carried IPS_ASSURED (TCP: the handshake completed; UDP: traffic both
   * ways after the reply). Not in any report: `rules` reads it as evidence (rules/evidence.ts).
   */
  readonly assured: boolean;
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
  /**
   * The connection mark recorded on the flow: that of its latest event that carried a non-zero
   * one (the larger at equal times); absent when none did. Not in any report (`check` reads it).
   */
  readonly mark?: number;
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

/** The table of (family, proto): index (family 4 ? 0 : 256) + proto, -1 for no table. */
export const TABLE_OF = Int8Array.from(
  { length: 512 },
  (_, i) => tableIndex(i < 256 ? 4 : 6, i & 0xff) ?? -1,
);

export function isIcmpTable(index: number): boolean {
  return index % 3 === 2;
}

/** The IP protocol number of a table's flows. */
export function tableProto(index: number): number {
  if (isIcmpTable(index)) return index < 3 ? Proto.ICMP : Proto.ICMPV6;
  return index % 3 === 0 ? Proto.TCP : Proto.UDP;
}

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
