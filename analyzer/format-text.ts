// The flow table as text, line for line the original tool's format, produced in chunks.
import { formatAddress } from './address.js';
import { type Flow, TABLES } from './flows.js';

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

/** Every line, newline-terminated; each table counts from 0 (flows must come in sort order). */
export function* textLines(flows: Iterable<Flow>): Generator<string> {
  const counters = TABLES.map(() => 0);
  for (const flow of flows) {
    const t = TABLES.indexOf(flow.table);
    const n = counters[t] ?? 0;
    counters[t] = n + 1;
    yield `${formatFlowLine(flow, n)}\n`;
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

/** The text report in chunks. */
export function textChunks(flows: Iterable<Flow>): Generator<string> {
  return chunked(textLines(flows));
}
