// The flow table as text, line for line the original tool's format, after a `#` coverage block.
import { paint } from '../../common/color.js';
import { printable } from '../../common/printable.js';
import { formatAddress } from '../core/address.js';
import {
  combineCoverage,
  countsText,
  settingsText,
  timeRangeText,
  windowText,
} from '../core/coverage.js';
import { type Flow, TABLES } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';

/** Characters per chunk: big enough for few writes, small enough never to hold a whole table. */
export const CHUNK_CHARS = 64 * 1024;

/**
 * One line without its newline, `n` being the flow's position within its table, e.g.
 * ` TCPv4 [           0] src = 10.0.0.1 (port=1024) to dst = 10.0.0.2 (port=443) (confirmed)`.
 */
export function formatFlowLine(flow: Flow, n: number): string {
  const head = `${flow.table.padStart(6)} [${String(n).padStart(12)}] src = ${formatAddress(flow.src)}`;
  const tail = flow.confirmed ? ' (confirmed)' : '';
  if (flow.table === 'ICMPv4' || flow.table === 'ICMPv6') {
    return `${head} to dst = ${formatAddress(flow.dst)} (type=${flow.icmpType} | code=${flow.icmpCode})${tail}`;
  }
  return `${head} (port=${flow.sport}) to dst = ${formatAddress(flow.dst)} (port=${flow.dport})${tail}`;
}

/** What a text report shows beyond the original tool's line (--show). */
export interface TextOptions {
  /** ` (input)`: which way the flow crosses its hosts (journals that record their addresses). */
  direction?: boolean;
  /** ` (DNAT to 10.0.0.5:8080)`, ` (SNAT to 203.0.113.1)`: translations seen. */
  nat?: boolean;
  /** ` (hosts=fw1,fw2)`: the hosts whose journals hold the flow. */
  hosts?: boolean;
}

// In a module of its own so --show's help and parser need no flow table (and no sorted-btree).
export { SHOW_COLUMNS } from './show-columns.js';

/**
 * The hosts column: names from journal headers are untrusted, so control characters, commas
 * and parentheses are escaped and a name can neither break the line nor fake another host.
 */
export function hostsColumn(hosts: readonly string[]): string {
  const names = hosts.map((h) =>
    printable(h).replace(/[,()]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`),
  );
  return ` (hosts=${names.join(',')})`;
}

/** ` (DNAT to A:P)` and/or ` (SNAT to A)`, `and others` when connections differed. */
export function natColumn(flow: Flow): string {
  const nat = flow.nat;
  if (nat === undefined) return '';
  let out = '';
  if (nat.dst !== undefined) {
    const addr = formatAddress(nat.dst.address);
    const icmp = flow.table === 'ICMPv4' || flow.table === 'ICMPv6';
    const where = icmp
      ? addr
      : flow.family === 6
        ? `[${addr}]:${nat.dst.port}`
        : `${addr}:${nat.dst.port}`;
    out += ` (DNAT to ${where}${nat.dst.more ? ' and others' : ''})`;
  }
  if (nat.src !== undefined) {
    out += ` (SNAT to ${formatAddress(nat.src.address)}${nat.src.more ? ' and others' : ''})`;
  }
  return out;
}

function extraColumns(flow: Flow, opts: TextOptions): string {
  let out = '';
  if (opts.direction === true && flow.direction !== undefined)
    out += ` (${flow.direction.join(',')})`;
  if (opts.nat === true) out += natColumn(flow);
  if (opts.hosts === true) out += hostsColumn(flow.hosts);
  return out;
}

/** Every line, newline-terminated; each table counts from 0 (flows must come in sort order). */
export function* textLines(flows: Iterable<Flow>, opts: TextOptions = {}): Generator<string> {
  const counters = TABLES.map(() => 0);
  for (const flow of flows) {
    const t = TABLES.indexOf(flow.table);
    const n = counters[t] ?? 0;
    counters[t] = n + 1;
    yield `${formatFlowLine(flow, n)}${extraColumns(flow, opts)}\n`;
  }
}

/** Lines joined into chunks of about CHUNK_CHARS characters, ready for a stream or a file. */
export function* chunked(lines: Iterable<string>, size = CHUNK_CHARS): Generator<string> {
  let buf = '';
  for (const line of lines) {
    buf += line;
    if (buf.length >= size) {
      yield buf;
      buf = '';
    }
  }
  if (buf !== '') yield buf;
}

/** The flow lines alone in chunks (the live table of ct-record --table). */
export function textChunks(flows: Iterable<Flow>): Generator<string> {
  return chunked(textLines(flows));
}

/**
 * The `#` block that opens a text report: per journal where and when it was recorded, its
 * coverage and a WARNING line per weakness; for several journals, a combined coverage line.
 */
export function coverageLines(journals: readonly JournalSummary[]): string[] {
  const lines: string[] = [];
  for (const j of journals) {
    const c = j.coverage;
    lines.push(
      `# conntracker flows from ${printable(j.path)}: host ${printable(j.host)}, kernel ${printable(j.kernel)}, netns ${printable(j.netns)}, ${timeRangeText(c)}`,
      `# coverage: ${countsText(c)}`,
      `# settings: ${printable(settingsText(c))}`,
      ...(c.window === undefined ? [] : [`# window: ${windowText(c.window)}`]),
      ...c.warnings.map((w) => `# WARNING: ${printable(w)}`),
    );
  }
  if (journals.length > 1) {
    const all = combineCoverage(journals.map((j) => j.coverage));
    lines.push(`# coverage of all ${journals.length} journals: ${countsText(all)}`);
  }
  return lines;
}

/** A text report line for a terminal: warnings stand out, the rest of the block recedes. */
export function colorReportLine(line: string): string {
  if (line.startsWith('# WARNING:')) return paint(true, 'boldYellow', line);
  if (line.startsWith('#')) return paint(true, 'dim', line);
  return line.replace(' (confirmed)', paint(true, 'green', ' (confirmed)'));
}

/** The text report in chunks: the coverage block, then the flow lines unchanged. */
export function reportChunks(
  journals: readonly JournalSummary[],
  flows: Iterable<Flow>,
  opts: TextOptions = {},
): Generator<string> {
  return chunked(reportLines(journals, flows, opts));
}

function* reportLines(
  journals: readonly JournalSummary[],
  flows: Iterable<Flow>,
  opts: TextOptions,
) {
  for (const line of coverageLines(journals)) yield `${line}\n`;
  yield* textLines(flows, opts);
}

/** The flow's line as the text report prints it, without the counter column. */
export function flowText(flow: Flow): string {
  const line = formatFlowLine(flow, 0);
  return line.slice(0, 6) + line.slice(6 + 15);
}
