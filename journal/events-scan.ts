// The replay hot path: an events payload read straight from its msgpack bytes into EventColumns.
//
// decodeEvents (events-codec.ts) is the definition of a valid payload; this reader is a faster
// second implementation that accepts a subset of it: the encodings the writer produces and
// their plain variants. Anything else, damaged or merely unusual, makes scanEvents return
// false and the caller decodes the payload with decodeEvents, which either accepts it or names
// the damage. So this never decides that a payload is bad, and where it accepts one it must
// produce exactly what decodeEvents produces (test/journal/scan.test.ts checks both claims).
import { type EventColumns, natOf, wordAt } from './event-columns.js';
import {
  address,
  arrayHeader,
  beginEvents,
  cursor,
  int,
  nil,
  release,
  seek,
  UNUSUAL,
  uint,
  V1_FIELDS,
  V1_REQUIRED,
} from './msgpack-scan.js';

const MAX = Number.MAX_SAFE_INTEGER;
// The fast path's copies: a constant of this file is one load where an imported one is more.
const FIELDS = V1_FIELDS;
const REQUIRED = V1_REQUIRED;

// Where the next event starts. The fast path keeps its own position, a module `var` of this file
// like the shared cursor's (msgpack-scan.ts), and hands it over only when it declines an event:
// a call into the shared module per event measured 2-5 % slower on bench/replay.sh's format 1 mix.
var at = 0;

/**
 * Reads an events payload into `cols` and returns true, or returns false (cols then holds
 * garbage) when the payload is not one this reader handles: decode it with decodeEvents.
 */
export function scanEvents(payload: Uint8Array, fields: number, cols: EventColumns): boolean {
  try {
    const n = beginEvents(payload);
    if (n < 0) return false;
    cols.reset(n);
    let prev = 0;
    at = cursor();
    for (let i = 0; i < n; i++) prev = event(cols, i, prev, fields, payload);
    cols.n = n;
    return at === payload.length;
  } catch (err) {
    if (err === UNUSUAL) return false;
    throw err;
  } finally {
    release();
  }
}

function event(
  c: EventColumns,
  i: number,
  prevTime: number,
  fields: number,
  b: Uint8Array,
): number {
  const time = fastEvent(c, i, prevTime, fields, b);
  if (time >= 0) return time;
  seek(at);
  const general = generalEvent(c, i, prevTime, fields);
  at = cursor();
  return general;
}

/**
 * The writer's usual event written out with local variables, which V8 keeps in registers: a
 * fixarray of 11–15 fields, small integers, no NAT reply. Returns the event's time, or -1
 * without having moved `at` for anything else (generalEvent then reads it with the shared
 * cursor). What it accepts is a subset of what generalEvent accepts, with the same values.
 */
function fastEvent(
  c: EventColumns,
  i: number,
  prevTime: number,
  fields: number,
  b: Uint8Array,
): number {
  const e = b.length;
  let p = at;
  if (p + 6 > e) return -1;
  // fixarray, or array16 for 16–18 fields (counters, mark, zone)
  const h = b[p] as number;
  const wide = h === 0xdc && b[p + 1] === 0;
  const len = wide ? (b[p + 2] as number) : h - 0x90;
  if (len < REQUIRED || len > FIELDS || len > fields || (len > 15 && !wide)) return -1;
  p += wide ? 3 : 1;
  const type = b[p] as number;
  const family = b[p + 1] as number;
  const proto = b[p + 2] as number;
  if (type === 0 || type > 4 || (family !== 4 && family !== 6) || proto > 0x7f) return -1;
  p += 3;
  let s = uintSize(b, p, e);
  if (s === 0) return -1;
  const status = uintAt(b, p);
  p += s;
  s = uintSize(b, p, e); // id
  if (s === 0) return -1;
  p += s;
  s = uintSize(b, p, e); // dtime, when not negative
  if (s === 0) return -1;
  const time = prevTime + uintAt(b, p);
  if (time > MAX) return -1;
  p += s;
  const alen = family === 4 ? 4 : 16;
  if (p + 5 + 2 * alen > e || (b[p] as number) > 1) return -1; // flags
  p++;
  if (b[p] !== 0xc4 || b[p + 1] !== alen || b[p + 2 + alen] !== 0xc4 || b[p + 3 + alen] !== alen) {
    return -1;
  }
  const w = i * 4;
  const src = c.src;
  const dst = c.dst;
  for (let k = 0; k < 4; k++) {
    const at = 4 * k;
    src[w + k] = at < alen ? wordAt(b, p + 2 + at) : 0;
    dst[w + k] = at < alen ? wordAt(b, p + 4 + alen + at) : 0;
  }
  p += 4 + 2 * alen;
  s = uintSize(b, p, e);
  if (s === 0) return -1;
  const sport = uintAt(b, p);
  p += s;
  s = uintSize(b, p, e);
  if (s === 0) return -1;
  const dport = uintAt(b, p);
  p += s;
  if (sport > 0xffff || dport > 0xffff) return -1;
  // Optional fields: nil or their plain forms.
  if (len > 11) {
    const x = b[p] as number;
    if (x !== 0xc0 && x > 0x7f) return -1; // tcpState
    p++;
  }
  if (len > 12) {
    if (b[p] !== 0xc0) return -1; // a NAT reply tuple: generalEvent
    p++;
  }
  let icmpType = 0;
  let icmpCode = 0;
  if (len > 13) {
    if (b[p] === 0xc0) {
      p++;
    } else {
      if (p + 4 > e || b[p] !== 0x93) return -1;
      icmpType = b[p + 1] as number;
      icmpCode = b[p + 2] as number;
      if (icmpType > 0x7f || icmpCode > 0x7f) return -1;
      p += 3;
      s = uintSize(b, p, e);
      if (s === 0 || uintAt(b, p) > 0xffff) return -1;
      p += s;
    }
  }
  if (len > 14) {
    if (b[p] === 0xc0) {
      p++;
    } else {
      s = uintSize(b, p, e); // startAgo
      if (s === 0 || uintAt(b, p) > time) return -1;
      p += s;
    }
  }
  if (len > 15) {
    if (b[p] === 0xc0) {
      p++;
    } else {
      if (b[p] !== 0x94) return -1; // counters, each below 2^32 here
      p++;
      for (let k = 0; k < 4; k++) {
        s = uintSize(b, p, e);
        if (s === 0) return -1;
        p += s;
      }
    }
  }
  let mark = 0;
  for (let k = 16; k < len; k++) {
    if (b[p] === 0xc0) {
      p++;
      continue;
    }
    s = uintSize(b, p, e); // mark (u32), zone (u16)
    if (s === 0 || (k === 17 && uintAt(b, p) > 0xffff)) return -1;
    if (k === 16) mark = uintAt(b, p);
    p += s;
  }
  if (p > e) return -1;
  c.mark[i] = mark;
  c.put(i, type, family, proto, status, time, sport, dport, icmpType, icmpCode);
  c.nat[i] = 0;
  at = p;
  return time;
}

/** Bytes of the unsigned integer at b[p] in a plain form (fixint, u8, u16, u32), 0 otherwise. */
function uintSize(b: Uint8Array, p: number, e: number): number {
  const x = b[p] as number;
  const s = x <= 0x7f ? 1 : x === 0xcc ? 2 : x === 0xcd ? 3 : x === 0xce ? 5 : 0;
  return p + s <= e ? s : 0;
}

/** The value of the integer uintSize measured. */
function uintAt(b: Uint8Array, p: number): number {
  const x = b[p] as number;
  if (x <= 0x7f) return x;
  if (x === 0xcc) return b[p + 1] as number;
  if (x === 0xcd) return ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  return wordAt(b, p + 1);
}

function generalEvent(c: EventColumns, i: number, prevTime: number, fields: number): number {
  const len = arrayHeader();
  if (len < V1_REQUIRED || len > fields || len > V1_FIELDS) throw UNUSUAL;
  const type = uint(4);
  if (type === 0) throw UNUSUAL;
  const family = uint(6);
  if (family !== 4 && family !== 6) throw UNUSUAL;
  const alen = family === 4 ? 4 : 16;
  const proto = uint(0xff);
  const status = uint(0xffffffff);
  uint(0xffffffff); // id
  const time = prevTime + int();
  if (!Number.isInteger(time) || time < 0 || time > MAX) throw UNUSUAL;
  uint(1); // flags
  address(alen, c.src, i * 4);
  address(alen, c.dst, i * 4);
  const sport = uint(0xffff);
  const dport = uint(0xffff);
  c.sport[i] = sport; // reply() reads the orig ports as its defaults
  c.dport[i] = dport;
  let icmpType = 0;
  let icmpCode = 0;
  if (len > 11 && !nil()) uint(0xff); // tcpState
  c.nat[i] = 0;
  if (len > 12 && !nil()) reply(alen, c, i);
  if (len > 13 && !nil()) {
    if (arrayHeader() !== 3) throw UNUSUAL;
    icmpType = uint(0xff);
    icmpCode = uint(0xff);
    uint(0xffff);
  }
  if (len > 14 && !nil()) {
    const start = time - int();
    if (!Number.isInteger(start) || start < 0 || start > MAX) throw UNUSUAL;
  }
  if (len > 15 && !nil()) {
    if (arrayHeader() !== 4) throw UNUSUAL;
    for (let k = 0; k < 4; k++) uint(MAX);
  }
  c.mark[i] = len > 16 && !nil() ? uint(0xffffffff) : 0;
  if (len > 17 && !nil()) uint(0xffff); // zone
  c.put(i, type, family, proto, status, time, sport, dport, icmpType, icmpCode);
  return time;
}

/** Largest value of each reply position (src and dst are addresses). */
const REPLY_MAX = [0, 0, 0xffff, 0xffff, 0xff, 0xff, 0xffff];

/**
 * A reply tuple (nil entries mean "as the inverse"), read after the orig tuple is in the
 * columns: its addresses and ports go to the reply columns, and nat[i] says what was translated.
 */
function reply(alen: number, c: EventColumns, i: number): void {
  const len = arrayHeader();
  if (len < 1 || len > 7) throw UNUSUAL;
  const w = i * 4;
  for (let k = 0; k < 4; k++) {
    c.replySrc[w + k] = c.dst[w + k] as number;
    c.replyDst[w + k] = c.src[w + k] as number;
  }
  c.replySport[i] = c.dport[i] as number;
  c.replyDport[i] = c.sport[i] as number;
  for (let k = 0; k < len; k++) {
    if (nil()) continue;
    if (k === 0) address(alen, c.replySrc, w);
    else if (k === 1) address(alen, c.replyDst, w);
    else if (k === 2) c.replySport[i] = uint(0xffff);
    else if (k === 3) c.replyDport[i] = uint(0xffff);
    else uint(REPLY_MAX[k] as number);
  }
  c.nat[i] = natOf(c, i);
}
