// The export's fast path for format 1: an events payload read from its msgpack bytes into an ExportBatch, every field.
//
// decodeEvents (journal/events-codec.ts) is the definition of a valid payload and batch.fill
// of its events the definition of the batch. This is a second implementation of both that
// accepts a subset: the encodings the writer produces and their plain integer variants.
// Anything else makes scanExportV1 return false and the caller decodes the payload, which
// either accepts it or names the damage. Where this accepts a payload it must fill exactly
// what fill(decodeEvents(payload)) fills (test/analyzer/export/export-scan.test.ts).
import {
  address,
  arrayHeader,
  beginEvents,
  cursor,
  int,
  nil,
  release,
  UNUSUAL,
  uint,
  V1_FIELDS,
  V1_REQUIRED,
} from '../../journal/msgpack-scan.js';
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';

const MAX = Number.MAX_SAFE_INTEGER;

/**
 * Reads a format 1 events payload into `batch` and returns true, or returns false (the batch
 * then holds garbage) for a payload this reader does not take: decode it with decodeEvents.
 */
export function scanExportV1(payload: Uint8Array, fields: number, batch: ExportBatch): boolean {
  try {
    const n = beginEvents(payload);
    if (n < 0) return false;
    batch.reset(n);
    let prev = 0;
    for (let i = 0; i < n; i++) prev = event(batch, i, prev, fields);
    batch.n = n;
    return cursor() === payload.length;
  } catch (err) {
    if (err === UNUSUAL) return false;
    throw err;
  } finally {
    release();
  }
}

function event(b: ExportBatch, i: number, prevTime: number, fields: number): number {
  const len = arrayHeader();
  if (len < V1_REQUIRED || len > fields || len > V1_FIELDS) throw UNUSUAL;
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
