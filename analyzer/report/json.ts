// The flow table as JSON (schema in docs/rules.md), one flow per line, produced in chunks.
import { formatAddress } from '../core/address.js';
import {
  type Collapse,
  type Flow,
  type FlowNat,
  type FlowTable,
  formatCollapse,
} from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { chunked } from './text.js';

export const JSON_FORMAT = 'conntracker-flows';
export const JSON_VERSION = 1;

const PROTO_NAMES: Record<string, string> = {
  TCPv4: 'tcp',
  UDPv4: 'udp',
  ICMPv4: 'icmp',
  TCPv6: 'tcp',
  UDPv6: 'udp',
  ICMPv6: 'icmpv6',
};

/** One flow as a JSON object: ports for TCP/UDP, type and code for ICMP. */
export function flowJson(flow: Flow): Record<string, unknown> {
  const head = {
    table: flow.table,
    proto: PROTO_NAMES[flow.table] ?? String(flow.proto),
    src: formatAddress(flow.src),
    dst: formatAddress(flow.dst),
  };
  const tail = {
    confirmed: flow.confirmed,
    firstSeen: flow.firstSeen,
    lastSeen: flow.lastSeen,
    hosts: [...flow.hosts],
    ...(flow.nat === undefined ? {} : { nat: natJson(flow.nat) }),
    ...(flow.direction === undefined ? {} : { direction: [...flow.direction] }),
  };
  return flow.table === 'ICMPv4' || flow.table === 'ICMPv6'
    ? { ...head, type: flow.icmpType, code: flow.icmpCode, ...tail }
    : { ...head, sport: flow.sport, dport: flow.dport, ...tail };
}

export interface JsonReport {
  journals: readonly JournalSummary[];
  collapse: Collapse;
  skipped: { readonly [reason: string]: number };
  flows: Iterable<Flow>;
}

/**
 * flowJson(flow) serialized, built by hand: 5× faster than JSON.stringify of the object, and
 * safe because every string in it is a table name, a protocol name or an address text, except
 * host names (from journal headers, untrusted), which go through JSON.stringify.
 */
function flowLine(f: Flow, hostsJson: (hosts: readonly string[]) => string): string {
  const head = `{"table":"${f.table}","proto":"${PROTO_NAMES[f.table]}","src":"${formatAddress(f.src)}","dst":"${formatAddress(f.dst)}"`;
  const nat = f.nat === undefined ? '' : `,"nat":${JSON.stringify(natJson(f.nat))}`;
  const direction = f.direction === undefined ? '' : `,"direction":${JSON.stringify(f.direction)}`;
  const seen = `"firstSeen":${f.firstSeen},"lastSeen":${f.lastSeen}`;
  const tail = `"confirmed":${f.confirmed},${seen},"hosts":${hostsJson(f.hosts)}${nat}${direction}}`;
  return f.table === 'ICMPv4' || f.table === 'ICMPv6'
    ? `${head},"type":${f.icmpType},"code":${f.icmpCode},${tail}`
    : `${head},"sport":${f.sport},"dport":${f.dport},${tail}`;
}

/** JSON of a flow's host list, memoized: a report has few distinct host sets. */
function hostsJsonCache(): (hosts: readonly string[]) => string {
  const seen = new Map<string, string>();
  return (hosts) => {
    const key = hosts.join('\0');
    let json = seen.get(key);
    if (json === undefined) {
      json = JSON.stringify(hosts);
      seen.set(key, json);
    }
    return json;
  };
}

function* jsonLines(r: JsonReport): Generator<string> {
  const head = { format: JSON_FORMAT, version: JSON_VERSION, collapse: formatCollapse(r.collapse) };
  yield `${JSON.stringify(head).slice(0, -1)},\n"journals":[`;
  let sep = '\n';
  for (const j of r.journals) {
    yield `${sep}${JSON.stringify(j)}`;
    sep = ',\n';
  }
  yield `],\n"skipped":${JSON.stringify(r.skipped)},\n"flows":[`;
  sep = '\n';
  const hostsJson = hostsJsonCache();
  for (const flow of r.flows) {
    yield `${sep}${flowLine(flow, hostsJson)}`;
    sep = ',\n';
  }
  yield ']}\n';
}

/** The JSON report in chunks; the whole text is one JSON document. */
export function jsonChunks(r: JsonReport): Generator<string> {
  return chunked(jsonLines(r));
}

/** The report of a table (convenience for callers holding a FlowTable). */
export function tableReport(table: FlowTable, journals: readonly JournalSummary[]): JsonReport {
  return { journals, collapse: table.collapse, skipped: table.skipped, flows: table.flows() };
}

/** A flow's translations with addresses as text: `{dst?: {address, port, more}, src?: …}`. */
function natJson(nat: FlowNat): Record<string, { address: string; port: number; more: boolean }> {
  const out: Record<string, { address: string; port: number; more: boolean }> = {};
  for (const kind of ['dst', 'src'] as const) {
    const t = nat[kind];
    if (t !== undefined)
      out[kind] = { address: formatAddress(t.address), port: t.port, more: t.more };
  }
  return out;
}
