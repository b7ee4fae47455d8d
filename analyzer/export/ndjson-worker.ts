// The NDJSON formatting thread: builds the lines of the ranges of events the export's thread sends, and sends their bytes back.
import { ExportBatch } from './batch.js';
import type { FormatReply, FormatRequest } from './ndjson.js';
import { ByteWriter } from './ndjson-bytes.js';
import { LINE_MAX, NdjsonEventLines } from './ndjson-events.js';
import { TUPLE_ARENA } from './ndjson-tuples.js';
import type { JournalContext } from './rows.js';
import { AddressCache, TimeText } from './values.js';
import { serveWork } from './work-thread.js';

/** Bytes of lines built before they are copied out: a range's lines (~1,000 events) fit. */
const LINES = 2 << 20;
/** The smallest line buffer made for the export's thread: the lines of most ranges fit. */
const OUT_MIN = 2 << 20;

const w = new ByteWriter(LINES + TUPLE_ARENA);
const addrs = new AddressCache();
const times = new TimeText();
/** The lines of the journal being exported (its caches live as long as it does). */
let current: { key: string; lines: NdjsonEventLines } | undefined;

function linesOf(j: JournalContext): NdjsonEventLines {
  const key = JSON.stringify([j.host, j.sha256, j.portLo, j.portHi]);
  if (current?.key !== key) {
    current = { key, lines: new NdjsonEventLines(j, addrs, times, w.buf, LINES) };
  }
  return current.lines;
}

serveWork((m: FormatRequest): { r: FormatReply; transfer: ArrayBuffer[] } => {
  const b = ExportBatch.view(m.buf, m.n);
  b.conns = m.conns;
  const lines = linesOf(m.j);
  const built: Uint8Array[] = [];
  w.pos = 0;
  for (let i = 0; i < b.n; i++) {
    if (w.pos + LINE_MAX > LINES) built.push(w.take());
    lines.line(w, b, i, m.seq + i);
  }
  built.push(w.buf.subarray(0, w.pos));
  const length = built.reduce((sum, part) => sum + part.length, 0);
  const out =
    m.out !== undefined && m.out.byteLength >= length
      ? m.out
      : new ArrayBuffer(Math.max(length, OUT_MIN));
  const bytes = new Uint8Array(out);
  let at = 0;
  for (const part of built) {
    bytes.set(part, at);
    at += part.length;
  }
  return { r: { out, length }, transfer: [out] };
});
