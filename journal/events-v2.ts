// Format 2 events frame payload: CtEvents ⇄ [n, codec, raw, data] with a compressed layout (docs/journal-format.md).
//
// PROVISIONAL first step: the layout is a v1 events payload, deflated. The columnar layout
// replaces it; until then no golden v2 fixture should be written from this codec.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { CtEvent } from './event.js';
import type { EventColumns } from './event-columns.js';
import { decodeEvents, encodeEvents } from './events-codec.js';
import { scanEvents } from './events-scan.js';
import { EVENT_FIELDS } from './format.js';
import { Damage } from './validate.js';

/** The layout bytes as they are. */
export const CODEC_STORED = 0;
/** The layout deflated (RFC 1951, no zlib header). */
export const CODEC_DEFLATE_RAW = 1;
/** Largest decompressed layout a payload may declare: anything above is damage, never an allocation. */
export const MAX_RAW = 64 * 1024 * 1024;

/** The kind-2 payload of format 2; throws TypeError on an event v1 could not write either. */
export function encodeEventsV2(events: readonly CtEvent[]): Buffer {
  const layout = encodeEvents(events);
  const data = deflateRawSync(layout, { level: 1 });
  return outer(events.length, CODEC_DEFLATE_RAW, layout.length, data);
}

/** Decodes and validates a format 2 events payload; throws Damage naming the first bad value. */
export function decodeEventsV2(payload: Uint8Array, fields = EVENT_FIELDS.length): CtEvent[] {
  const { n, layout } = unwrap(payload);
  const events = decodeEvents(layout, fields);
  if (events.length !== n) {
    throw new Damage(`events payload says ${n} events, its layout holds ${events.length}`);
  }
  return events;
}

/**
 * Reads a format 2 events payload into `cols` and returns true, or returns false when the
 * caller must decode it with decodeEventsV2 (which accepts it or names the damage).
 */
export function scanEventsV2(payload: Uint8Array, fields: number, cols: EventColumns): boolean {
  let parts: { n: number; layout: Uint8Array };
  try {
    parts = unwrap(payload);
  } catch (err) {
    if (err instanceof Damage) return false;
    throw err;
  }
  return scanEvents(parts.layout, fields, cols) && cols.n === parts.n;
}

function outer(n: number, codec: number, raw: number, data: Uint8Array): Buffer {
  const head: number[] = [0x94];
  uintBytes(n, head);
  uintBytes(codec, head);
  uintBytes(raw, head);
  const len = data.length;
  if (len < 0x100) head.push(0xc4, len);
  else if (len < 0x10000) head.push(0xc5, len >> 8, len & 0xff);
  else head.push(0xc6, len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff);
  const out = Buffer.allocUnsafe(head.length + len);
  out.set(head, 0);
  out.set(data, head.length);
  return out;
}

/** The shortest msgpack encoding of an unsigned integer below 2^32. */
function uintBytes(v: number, out: number[]): void {
  if (v < 0x80) out.push(v);
  else if (v < 0x100) out.push(0xcc, v);
  else if (v < 0x10000) out.push(0xcd, v >> 8, v & 0xff);
  else out.push(0xce, v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

/** The outer array's fields and the decompressed layout; Damage for anything else. */
function unwrap(payload: Uint8Array): { n: number; layout: Uint8Array } {
  const r = { p: 0 };
  if (payload[0] !== 0x94) throw new Damage('events payload is not an array of 4');
  r.p = 1;
  const n = readUint(payload, r, 'event count');
  const codec = readUint(payload, r, 'codec');
  const raw = readUint(payload, r, 'raw length');
  const data = readBin(payload, r);
  if (r.p !== payload.length) throw new Damage('events payload has bytes after its data');
  if (raw > MAX_RAW) throw new Damage(`raw length is ${raw}, expected at most ${MAX_RAW}`);
  let layout: Uint8Array;
  if (codec === CODEC_STORED) {
    layout = data;
  } else if (codec === CODEC_DEFLATE_RAW) {
    try {
      layout = inflateRawSync(data, { maxOutputLength: Math.max(raw, 1) });
    } catch (err) {
      throw new Damage(`events data does not inflate to ${raw} bytes (${(err as Error).message})`);
    }
  } else {
    throw new Damage(`codec is ${codec}, expected 0 (stored) or 1 (deflate-raw)`);
  }
  if (layout.length !== raw) {
    throw new Damage(`events layout is ${layout.length} bytes, its payload says ${raw}`);
  }
  return { n, layout };
}

function readUint(b: Uint8Array, r: { p: number }, what: string): number {
  const p = r.p;
  const x = b[p];
  if (x === undefined) throw new Damage(`events payload ends before its ${what}`);
  let size: number;
  if (x <= 0x7f) size = 0;
  else if (x === 0xcc) size = 1;
  else if (x === 0xcd) size = 2;
  else if (x === 0xce) size = 4;
  else throw new Damage(`${what} is not an unsigned integer below 2^32`);
  if (p + 1 + size > b.length) throw new Damage(`events payload ends inside its ${what}`);
  let v = size === 0 ? x : 0;
  for (let k = 1; k <= size; k++) v = v * 256 + (b[p + k] as number);
  r.p = p + 1 + size;
  return v;
}

function readBin(b: Uint8Array, r: { p: number }): Uint8Array {
  const p = r.p;
  const x = b[p];
  const size = x === 0xc4 ? 1 : x === 0xc5 ? 2 : x === 0xc6 ? 4 : 0;
  if (size === 0) throw new Damage('events data is not a bin');
  if (p + 1 + size > b.length) throw new Damage('events payload ends inside its data length');
  let len = 0;
  for (let k = 1; k <= size; k++) len = len * 256 + (b[p + k] as number);
  const start = p + 1 + size;
  if (start + len > b.length) throw new Damage('events payload ends inside its data');
  r.p = start + len;
  return b.subarray(start, start + len);
}
