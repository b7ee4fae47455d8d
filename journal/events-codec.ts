// Events frame payload: CtEvents ⇄ one msgpack array of positional event arrays (docs/journal-format.md).
import type { Counters, CtEvent, EventTypeCode, Tuple } from './event.js';
import { EVENT_FIELDS, packr, unpackr } from './format.js';
import { array, bytes, Damage, safeInt, uint } from './validate.js';

const U8 = 0xff;
const U16 = 0xffff;
const U32 = 0xffffffff;
const FLAG_TIME_KERNEL = 1;
/** Positions 0–10 are always present; 11–17 are optional and trimmed when trailing nil. */
const REQUIRED = 11;

// The kernel's ICMP invert maps (nf_conntrack_proto_icmp{,v6}.c): request ↔ reply types.
const ICMP4_INVERSE = new Map([
  [8, 0],
  [0, 8],
  [13, 14],
  [14, 13],
  [15, 16],
  [16, 15],
  [17, 18],
  [18, 17],
]);
const ICMP6_INVERSE = new Map([
  [128, 129],
  [129, 128],
  [139, 140],
  [140, 139],
]);

export function inverseIcmpType(family: number, proto: number, type: number): number {
  if (family === 4 && proto === 1) return ICMP4_INVERSE.get(type) ?? type;
  if (family === 6 && proto === 58) return ICMP6_INVERSE.get(type) ?? type;
  return type;
}

/** The reply tuple conntrack derives from `orig` when no NAT applies. */
export function inverseOf(family: 4 | 6, proto: number, orig: Tuple): Tuple {
  return {
    src: orig.dst,
    dst: orig.src,
    sport: orig.dport,
    dport: orig.sport,
    icmpType: inverseIcmpType(family, proto, orig.icmpType),
    icmpCode: orig.icmpCode,
    icmpId: orig.icmpId,
  };
}

/** The events payload; throws TypeError on an event that would not read back identically. */
export function encodeEvents(events: readonly CtEvent[]): Buffer {
  const out: unknown[] = new Array(events.length);
  let prev = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = events[i] as CtEvent;
    checkEvent(ev);
    out[i] = encodeEvent(ev, prev);
    prev = ev.time;
  }
  // packr.pack returns a view of its reusable buffer: copy before the next pack.
  return Buffer.from(packr.pack(out));
}

function encodeEvent(ev: CtEvent, prevTime: number): unknown[] {
  const o = ev.orig;
  const a: unknown[] = [
    ev.type,
    ev.family,
    ev.proto,
    ev.status,
    ev.id,
    ev.time - prevTime,
    ev.timeKernel ? FLAG_TIME_KERNEL : 0,
    o.src,
    o.dst,
    o.sport,
    o.dport,
    ev.tcpState ?? null,
    encodeReply(ev),
    o.icmpType === 0 && o.icmpCode === 0 && o.icmpId === 0
      ? null
      : [o.icmpType, o.icmpCode, o.icmpId],
    ev.start === undefined ? null : ev.time - ev.start,
    ev.counters === undefined
      ? null
      : [
          ev.counters.origPackets,
          ev.counters.origBytes,
          ev.counters.replyPackets,
          ev.counters.replyBytes,
        ],
    ev.mark ?? null,
    ev.zone ?? null,
  ];
  let n = a.length;
  while (n > REQUIRED && a[n - 1] === null) n--;
  a.length = n;
  return a;
}

/** nil when reply is the plain inverse; else a tuple array where nil means "as the inverse". */
function encodeReply(ev: CtEvent): unknown[] | null {
  const o = ev.orig;
  const r = ev.reply;
  // Written out rather than looped over keys: this runs for every event the recorder writes.
  const a: unknown[] = [
    sameBytes(r.src, o.dst) ? null : r.src,
    sameBytes(r.dst, o.src) ? null : r.dst,
    r.sport === o.dport ? null : r.sport,
    r.dport === o.sport ? null : r.dport,
    r.icmpType === inverseIcmpType(ev.family, ev.proto, o.icmpType) ? null : r.icmpType,
    r.icmpCode === o.icmpCode ? null : r.icmpCode,
    r.icmpId === o.icmpId ? null : r.icmpId,
  ];
  let n = a.length;
  while (n > 0 && a[n - 1] === null) n--;
  if (n === 0) return null;
  a.length = n;
  return a;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes and validates an events payload; throws Damage naming the first bad value.
 * `fields` is the header's eventFields count: positions beyond the v1 ones are skipped.
 * Decoded reply addresses may be the very Uint8Arrays of the original tuple: treat as read-only.
 */
export function decodeEvents(payload: Uint8Array, fields = EVENT_FIELDS.length): CtEvent[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(payload);
  } catch (err) {
    throw new Damage(`events payload is not valid msgpack (${(err as Error).message})`);
  }
  const list = array(raw, 0, Number.MAX_SAFE_INTEGER, 'events payload');
  const events: CtEvent[] = new Array(list.length);
  let prev = 0;
  for (let i = 0; i < list.length; i++) {
    let ev: CtEvent;
    try {
      ev = decodeEvent(list[i], prev, fields);
    } catch (err) {
      // Field names are constants on the hot path; the event index is added only on failure.
      throw err instanceof Damage ? new Damage(`event ${i} ${err.message}`) : err;
    }
    events[i] = ev;
    prev = ev.time;
  }
  return events;
}

function decodeEvent(raw: unknown, prevTime: number, fields: number): CtEvent {
  const a = array(raw, REQUIRED, fields, 'array');
  const type = uint(a[0], 4, 'type');
  if (type === 0) throw new Damage('type is 0, expected 1–4');
  const family = uint(a[1], 6, 'family');
  if (family !== 4 && family !== 6) throw new Damage(`family is ${family}, expected 4 or 6`);
  const alen = family === 4 ? 4 : 16;
  const time = prevTime + safeInt(a[5], 'dtime');
  uint(time, Number.MAX_SAFE_INTEGER, 'time');
  const flags = uint(a[6], FLAG_TIME_KERNEL, 'flags');
  const icmp = a[13] == null ? undefined : array(a[13], 3, 3, 'icmp');
  const orig: Tuple = {
    src: bytes(a[7], alen, 'src'),
    dst: bytes(a[8], alen, 'dst'),
    sport: uint(a[9], U16, 'sport'),
    dport: uint(a[10], U16, 'dport'),
    icmpType: icmp ? uint(icmp[0], U8, 'icmp type') : 0,
    icmpCode: icmp ? uint(icmp[1], U8, 'icmp code') : 0,
    icmpId: icmp ? uint(icmp[2], U16, 'icmp id') : 0,
  };
  const proto = uint(a[2], U8, 'proto');
  const ev: CtEvent = {
    type: type as EventTypeCode,
    family,
    proto,
    status: uint(a[3], U32, 'status'),
    id: uint(a[4], U32, 'id'),
    time,
    timeKernel: flags === FLAG_TIME_KERNEL,
    orig,
    reply: decodeReply(a[12], inverseOf(family, proto, orig), alen),
  };
  if (a[11] != null) ev.tcpState = uint(a[11], U8, 'tcpState');
  if (a[14] != null) {
    ev.start = uint(time - safeInt(a[14], 'startAgo'), Number.MAX_SAFE_INTEGER, 'start');
  }
  if (a[15] != null) ev.counters = decodeCounters(a[15]);
  if (a[16] != null) ev.mark = uint(a[16], U32, 'mark');
  if (a[17] != null) ev.zone = uint(a[17], U16, 'zone');
  return ev;
}

function decodeReply(raw: unknown, inv: Tuple, alen: number): Tuple {
  if (raw == null) return inv;
  const a = array(raw, 1, 7, 'reply');
  const [src, dst, sport, dport, type, code, id] = a;
  return {
    src: src == null ? inv.src : bytes(src, alen, 'reply src'),
    dst: dst == null ? inv.dst : bytes(dst, alen, 'reply dst'),
    sport: sport == null ? inv.sport : uint(sport, U16, 'reply sport'),
    dport: dport == null ? inv.dport : uint(dport, U16, 'reply dport'),
    icmpType: type == null ? inv.icmpType : uint(type, U8, 'reply icmp type'),
    icmpCode: code == null ? inv.icmpCode : uint(code, U8, 'reply icmp code'),
    icmpId: id == null ? inv.icmpId : uint(id, U16, 'reply icmp id'),
  };
}

function decodeCounters(raw: unknown): Counters {
  const c = array(raw, 4, 4, 'counters');
  const max = Number.MAX_SAFE_INTEGER;
  return {
    origPackets: uint(c[0], max, 'counters'),
    origBytes: uint(c[1], max, 'counters'),
    replyPackets: uint(c[2], max, 'counters'),
    replyBytes: uint(c[3], max, 'counters'),
  };
}

/** The writer's guard: what decode would reject must never reach the disk. */
export function checkEvent(ev: CtEvent): void {
  const bad = (what: string) => {
    throw new TypeError(`journal: event ${what} is out of range for format v1`);
  };
  const isU = (v: unknown, max: number) =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
  const MAX = Number.MAX_SAFE_INTEGER;
  if (!isU(ev.type, 4) || (ev.type as number) === 0) bad('type');
  if (ev.family !== 4 && ev.family !== 6) bad('family');
  if (!isU(ev.proto, U8)) bad('proto');
  if (!isU(ev.status, U32)) bad('status');
  if (!isU(ev.id, U32)) bad('id');
  if (!isU(ev.time, MAX)) bad('time');
  if (typeof ev.timeKernel !== 'boolean') bad('timeKernel');
  const alen = ev.family === 4 ? 4 : 16;
  const tupleOk = (t: Tuple) =>
    t.src instanceof Uint8Array &&
    t.src.length === alen &&
    t.dst instanceof Uint8Array &&
    t.dst.length === alen &&
    isU(t.sport, U16) &&
    isU(t.dport, U16) &&
    isU(t.icmpType, U8) &&
    isU(t.icmpCode, U8) &&
    isU(t.icmpId, U16);
  if (!tupleOk(ev.orig)) bad('orig tuple');
  if (!tupleOk(ev.reply)) bad('reply tuple');
  if (ev.tcpState !== undefined && !isU(ev.tcpState, U8)) bad('tcpState');
  if (ev.start !== undefined && !isU(ev.start, MAX)) bad('start');
  if (ev.mark !== undefined && !isU(ev.mark, U32)) bad('mark');
  if (ev.zone !== undefined && !isU(ev.zone, U16)) bad('zone');
  const c = ev.counters;
  if (c !== undefined) {
    for (const v of [c.origPackets, c.origBytes, c.replyPackets, c.replyBytes]) {
      if (!isU(v, MAX)) bad('counters');
    }
  }
}
