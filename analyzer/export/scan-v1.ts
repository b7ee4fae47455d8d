// The export's fast path for format 1: an events payload read from its msgpack bytes into an ExportBatch, every field.
//
// decodeEvents (journal/events-codec.ts) is the definition of a valid payload and batch.fill
// of its events the definition of the batch. This is a second implementation of both that
// accepts a subset: the encodings the writer produces and their plain integer variants.
// Anything else makes scanExportV1 return false and the caller decodes the payload, which
// either accepts it or names the damage. Where this accepts a payload it must fill exactly
// what fill(decodeEvents(payload)) fills (test/analyzer/export/export-scan.test.ts).
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';

const MAX = Number.MAX_SAFE_INTEGER;
/** The fields of a v1 event array; a longer one (a newer writer's) goes to decodeEvents. */
const V1_FIELDS = 18;
const REQUIRED = 11;

// Parser state for one call: `var`, as in journal/events-scan.ts (module-level `let` costs a
// check on every access in the hot loop).
var buf: Uint8Array = new Uint8Array(0);
var pos = 0;
var end = 0;

/** Thrown inside the scan; scanExportV1 turns it into `false`. */
const UNUSUAL = new Error('not a plain v1 events payload');
const EMPTY = new Uint8Array(0);

/**
 * Reads a format 1 events payload into `batch` and returns true, or returns false (the batch
 * then holds garbage) for a payload this reader does not take: decode it with decodeEvents.
 */
export function scanExportV1(payload: Uint8Array, fields: number, batch: ExportBatch): boolean {
  buf = payload;
  pos = 0;
  end = payload.length;
  try {
    const n = arrayHeader();
    // An event takes at least 16 bytes: a count beyond that is damage, never an allocation.
    if (n * 16 > end) return false;
    batch.reset(n);
    let prev = 0;
    for (let i = 0; i < n; i++) prev = event(batch, i, prev, fields);
    batch.n = n;
    return pos === end;
  } catch (err) {
    if (err === UNUSUAL) return false;
    throw err;
  } finally {
    buf = EMPTY;
  }
}

function event(b: ExportBatch, i: number, prevTime: number, fields: number): number {
  const len = arrayHeader();
  if (len < REQUIRED || len > fields || len > V1_FIELDS) throw UNUSUAL;
  const type = uint(4);
  if (type === 0) throw UNUSUAL;
  const family = uint(6);
  if (family !== 4 && family !== 6) throw UNUSUAL;
  const alen = family === 4 ? 4 : 16;
  const proto = uint(0xff);
  b.status[i] = uint(0xffffffff);
  b.id[i] = uint(0xffffffff);
  const time = prevTime + int();
  if (time < 0 || time > MAX) throw UNUSUAL;
  let f = uint(1) === 1 ? F_KERNEL : 0;
  const a = 16 * i;
  const addr = b.addr;
  address(alen, addr, a);
  address(alen, addr, a + 4);
  const sport = uint(0xffff);
  const dport = uint(0xffff);
  b.type[i] = type;
  b.family[i] = family;
  b.proto[i] = proto;
  b.time[i] = time;
  b.sport[i] = sport;
  b.dport[i] = dport;
  if (len > 11 && !nil()) {
    b.tcpState[i] = uint(0xff);
    f |= F_TCP;
  }
  // The reply defaults to the inverse; its ICMP entries are range-checked, not exported.
  for (let k = 0; k < 4; k++) {
    addr[a + 8 + k] = addr[a + 4 + k] as number;
    addr[a + 12 + k] = addr[a + k] as number;
  }
  b.replySport[i] = dport;
  b.replyDport[i] = sport;
  if (len > 12 && !nil()) reply(alen, b, i);
  let icmpType = 0;
  let icmpCode = 0;
  let icmpId = 0;
  if (len > 13 && !nil()) {
    if (arrayHeader() !== 3) throw UNUSUAL;
    icmpType = uint(0xff);
    icmpCode = uint(0xff);
    icmpId = uint(0xffff);
  }
  b.icmpType[i] = icmpType;
  b.icmpCode[i] = icmpCode;
  b.icmpId[i] = icmpId;
  if (len > 14 && !nil()) {
    const start = time - int();
    if (start < 0 || start > MAX) throw UNUSUAL;
    b.start[i] = start;
    f |= F_START;
  }
  if (len > 15 && !nil()) {
    if (arrayHeader() !== 4) throw UNUSUAL;
    b.origPackets[i] = uint(MAX);
    b.origBytes[i] = uint(MAX);
    b.replyPackets[i] = uint(MAX);
    b.replyBytes[i] = uint(MAX);
    f |= F_COUNTERS;
  }
  if (len > 16 && !nil()) {
    b.mark[i] = uint(0xffffffff);
    f |= F_MARK;
  }
  if (len > 17 && !nil()) {
    b.zone[i] = uint(0xffff);
    f |= F_ZONE;
  }
  b.flags[i] = f;
  return time;
}

/** Largest value of each reply position (src and dst are addresses). */
const REPLY_MAX = [0, 0, 0xffff, 0xffff, 0xff, 0xff, 0xffff];

/** A reply tuple over the inverse already in the batch (nil entries mean "as the inverse"). */
function reply(alen: number, b: ExportBatch, i: number): void {
  const len = arrayHeader();
  if (len < 1 || len > 7) throw UNUSUAL;
  for (let k = 0; k < len; k++) {
    if (nil()) continue;
    if (k === 0) address(alen, b.addr, 16 * i + 8);
    else if (k === 1) address(alen, b.addr, 16 * i + 12);
    else if (k === 2) b.replySport[i] = uint(0xffff);
    else if (k === 3) b.replyDport[i] = uint(0xffff);
    else uint(REPLY_MAX[k] as number);
  }
}

function byte(): number {
  if (pos >= end) throw UNUSUAL;
  return buf[pos++] as number;
}

function nil(): boolean {
  if (pos < end && buf[pos] === 0xc0) {
    pos++;
    return true;
  }
  return false;
}

function arrayHeader(): number {
  const b = byte();
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b === 0xdc) return be(2);
  if (b === 0xdd) return be(4);
  throw UNUSUAL;
}

/** An unsigned big-endian integer of `size` bytes (≤ 4). */
function be(size: number): number {
  if (pos + size > end) throw UNUSUAL;
  let v = 0;
  for (let k = 0; k < size; k++) v = v * 256 + (buf[pos++] as number);
  return v;
}

/** An integer in 0…max in any of the encodings int() reads. */
function uint(max: number): number {
  const b = pos < end ? (buf[pos] as number) : 0xc1;
  let v: number;
  if (b <= 0x7f) {
    v = b;
    pos++;
  } else if (b === 0xcc && pos + 2 <= end) {
    v = buf[pos + 1] as number;
    pos += 2;
  } else if (b === 0xcd && pos + 3 <= end) {
    v = ((buf[pos + 1] as number) << 8) | (buf[pos + 2] as number);
    pos += 3;
  } else if (b === 0xce && pos + 5 <= end) {
    v = word(pos + 1);
    pos += 5;
  } else {
    v = int();
  }
  if (v < 0 || v > max) throw UNUSUAL;
  return v;
}

/** A safe integer, negative or not: msgpack's integer encodings and a float64 holding one. */
function int(): number {
  const b = byte();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xcc:
      return be(1);
    case 0xcd:
      return be(2);
    case 0xce:
      return be(4);
    case 0xcf: {
      const v = be(4) * 0x100000000 + be(4);
      if (v > MAX) throw UNUSUAL;
      return v;
    }
    case 0xd0:
      return signed(be(1), 0x80);
    case 0xd1:
      return signed(be(2), 0x8000);
    case 0xd2:
      return signed(be(4), 0x80000000);
    case 0xd3: {
      const hi = be(4);
      const lo = be(4);
      const v = hi >= 0x80000000 ? (hi - 0x100000000) * 0x100000000 + lo : hi * 0x100000000 + lo;
      if (!Number.isSafeInteger(v)) throw UNUSUAL;
      return v;
    }
    case 0xcb: {
      // msgpackr writes an integer of 2^32 or more (a byte counter, say) as a float64.
      if (pos + 8 > end) throw UNUSUAL;
      for (let k = 0; k < 8; k++) F64_BYTES[k] = buf[pos++] as number;
      const v = F64_VIEW.getFloat64(0);
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) throw UNUSUAL;
      return v;
    }
    default:
      throw UNUSUAL;
  }
}

// A float64 is read through 8 scratch bytes (big-endian, as msgpack stores it): no allocation.
const F64_BYTES = new Uint8Array(8);
const F64_VIEW = new DataView(F64_BYTES.buffer);

function signed(v: number, half: number): number {
  return v >= half ? v - 2 * half : v;
}

/** bin8 of exactly alen bytes (what msgpackr writes for an address), stored as 4 words. */
function address(alen: number, out: Uint32Array, at: number): void {
  if (pos + 2 + alen > end || buf[pos] !== 0xc4 || buf[pos + 1] !== alen) throw UNUSUAL;
  const p = pos + 2;
  out[at] = word(p);
  if (alen === 16) {
    out[at + 1] = word(p + 4);
    out[at + 2] = word(p + 8);
    out[at + 3] = word(p + 12);
  } else {
    out[at + 1] = 0;
    out[at + 2] = 0;
    out[at + 3] = 0;
  }
  pos += 2 + alen;
}

/** The big-endian u32 at buf[p…p+3] (bounds checked by the caller). */
function word(p: number): number {
  return (
    (((buf[p] as number) << 24) |
      ((buf[p + 1] as number) << 16) |
      ((buf[p + 2] as number) << 8) |
      (buf[p + 3] as number)) >>>
    0
  );
}
