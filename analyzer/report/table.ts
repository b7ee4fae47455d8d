// The flow table as CSV (for spreadsheets) and as Markdown (for a ticket), produced in chunks.
import { printable } from '../../common/printable.js';
import { formatAddress } from '../core/address.js';
import { combineCoverage, countsText, coverageFacts } from '../core/coverage.js';
import type { Flow } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { chunked } from './text.js';

const ICMP = new Set(['ICMPv4', 'ICMPv6']);

/** The columns of both formats, each a flow's value as text (untrusted text unescaped). */
export const COLUMNS: readonly [string, (f: Flow) => string][] = [
  ['table', (f) => f.table],
  ['src', (f) => formatAddress(f.src)],
  ['sport', (f) => (ICMP.has(f.table) ? '' : String(f.sport))],
  ['dst', (f) => formatAddress(f.dst)],
  ['dport', (f) => (ICMP.has(f.table) ? '' : String(f.dport))],
  ['icmp_type', (f) => (ICMP.has(f.table) ? String(f.icmpType) : '')],
  ['icmp_code', (f) => (ICMP.has(f.table) ? String(f.icmpCode) : '')],
  ['confirmed', (f) => (f.confirmed ? 'yes' : 'no')],
  ['direction', (f) => (f.direction ?? []).join(' ')],
  ['dnat_to', (f) => natText(f, 'dst')],
  ['snat_to', (f) => natText(f, 'src')],
  ['first_seen', (f) => new Date(f.firstSeen / 1000).toISOString()],
  ['last_seen', (f) => new Date(f.lastSeen / 1000).toISOString()],
  ['hosts', (f) => f.hosts.join(' ')],
];

function natText(f: Flow, kind: 'dst' | 'src'): string {
  const t = f.nat?.[kind];
  if (t === undefined) return '';
  const port = kind === 'dst' && !ICMP.has(f.table) ? ` port ${t.port}` : '';
  return `${formatAddress(t.address)}${port}${t.more ? ' and others' : ''}`;
}

/**
 * Where a spreadsheet may start a cell: the field's start, or after any character it may be
 * told to split on (`,`, `;` where the decimal point is a comma, tab, space), past blanks and
 * quotes, when a formula character (= + - @) follows. Splitting on a separator this file does
 * not use (`fw;=6*7` in a `;` locale) starts a cell inside a field, so every such place counts.
 */
const CELL_START = /(^|[,;\t ])([ "]*)(?=[=+\-@])/g;

/**
 * A field's text as the CSV holds it: control and invisible characters escaped (printable:
 * tab, CR and line breaks included, so a row is one line), and an apostrophe before every
 * formula character a spreadsheet could take as the start of a cell (OWASP's CSV injection
 * advice): `=1` → `'=1`, `fw;=6*7` → `fw;'=6*7`. Host names come from journals, which are
 * untrusted; addresses, numbers, times and words never change.
 */
export function csvText(value: string): string {
  return printable(value).replace(CELL_START, "$1$2'");
}

/**
 * One CSV field (RFC 4180) of csvText: quoted when it holds a quote, a comma, or a `;` or tab
 * another locale splits on, so a quote-aware reader keeps it one cell whichever it uses.
 */
export function csvField(value: string): string {
  const safe = csvText(value);
  return /[",;\t\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function* csvLines(flows: Iterable<Flow>): Generator<string> {
  yield `${COLUMNS.map(([name]) => name).join(',')}\r\n`;
  for (const f of flows) yield `${COLUMNS.map(([, get]) => csvField(get(f))).join(',')}\r\n`;
}

/** CSV: a header row, then one row per flow in sort order (CRLF line ends, RFC 4180). */
export function csvChunks(flows: Iterable<Flow>): Generator<string> {
  return chunked(csvLines(flows));
}

/**
 * Text safe in a Markdown table cell: HTML is escaped (a ticket system renders it), and so are
 * `|` (it would end the cell), backslashes, backticks and emphasis marks; line breaks become
 * spaces. Addresses and numbers pass through unchanged.
 */
export function mdText(value: string): string {
  return printable(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\|`*_[\]]/g, (c) => `\\${c}`);
}

function* mdLines(journals: readonly JournalSummary[], flows: Iterable<Flow>): Generator<string> {
  yield '## Recorded flows\n\n';
  for (const j of journals) {
    const [first, ...rest] = coverageFacts(j);
    yield `- **${mdText(first?.text ?? j.path)}**\n`;
    for (const f of rest) yield `  - ${f.label}: ${mdText(f.text)}\n`;
    for (const w of j.coverage.warnings) yield `  - **WARNING**: ${mdText(w)}\n`;
  }
  if (journals.length > 1) {
    const all = combineCoverage(journals.map((j) => j.coverage));
    yield `- all ${journals.length} journals: ${mdText(countsText(all))}\n`;
  }
  yield `\n| ${COLUMNS.map(([name]) => name).join(' | ')} |\n`;
  yield `|${COLUMNS.map(() => ' --- |').join('')}\n`;
  for (const f of flows) yield `| ${COLUMNS.map(([, get]) => mdText(get(f))).join(' | ')} |\n`;
}

/** Markdown: the coverage as a list, then one table row per flow in sort order. */
export function mdChunks(
  journals: readonly JournalSummary[],
  flows: Iterable<Flow>,
): Generator<string> {
  return chunked(mdLines(journals, flows));
}
