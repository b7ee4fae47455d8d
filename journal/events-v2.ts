// Format 2 events frame payload: CtEvents ⇄ [n, codec, raw, data], a deflated columnar layout (docs/journal-format.md).
//
// The layout ("Format 2: events frames" in docs/journal-format.md) is three per-frame
// dictionaries (addresses; event kinds = type, flags, status, TCP state; connections =
// family, proto, id, orig and reply tuples) and per-event columns that index them, plus the
// event times and optional fields as varints. parseLayout checks every count against the bytes
// present and every index against its table before anything is allocated from it; one event
// loop (walk) serves decodeEventsV2 (the definition) and scanEventsV2 (the replay hot path),
// so where scan accepts a payload it reads exactly what decode reads.
//
// The layout (integers little-endian; uv = LEB128 ≤ 8 bytes, sv = uv of 2|v| + sign; aw, cw, kw
// = 1, 2 or 3 bytes as the table sizes max(A4, A6), C, K are ≤ 256, ≤ 65536, larger):
//   uv C, K, A4, A6, LY, LT, LX
//   A4 × 4 B, A6 × 16 B                 address tables (network order)
//   K × flags u8, K × status u32, K × tcpState u8        kinds
//   C × family u8, proto u8, id u32, src aw, dst aw, sport u16, dport u16, shape u8 (each a column)
//   n × connection by recency (cw), n × kind index (kw)
//   Y (LY B): ICMP and non-inverse reply fields of the connections whose shape says so
//   T (LT B): n × sv dtime;  X (LX B): per event, as its kind says: sv startAgo, 4 uv counters, uv mark, uv zone
import { deflateRawSync, InflateRaw, inflateRawSync, constants as zlibConstants } from 'node:zlib';
import type { CtEvent, EventTypeCode, Tuple } from './event.js';
import { EventColumns } from './event-columns.js';
import { checkEvent, inverseIcmpType } from './events-codec.js';
import { Damage } from './validate.js';

/** The layout bytes as they are. */
export const CODEC_STORED = 0;
/** The layout deflated (RFC 1951, no zlib header). */
export const CODEC_DEFLATE_RAW = 1;
/** Largest decompressed layout a payload may declare: anything above is damage, never an allocation. */
export const MAX_RAW = 64 * 1024 * 1024;
/**
 * Most events one frame may hold: what a 16 MiB format 1 frame could (16 B per event), so a
 * small deflated frame cannot make a reader build more events than a format 1 frame could.
 */
export const MAX_EVENTS = 1 << 20;
/** Most bytes one deflated byte can stand for (RFC 1951: a 258-byte match in 2 bits, ~1032:1). */
const MAX_DEFLATE_RATIO = 1032;
/** Deflate level the writer uses (chosen by bench/journal-codec.mjs, docs/bench.md). */
export const DEFLATE_LEVEL = 1;

const MAX = Number.MAX_SAFE_INTEGER;

// Kind flag byte: bits 0–1 type − 1, then timeKernel and one bit per optional field present.
const F_KERNEL = 1 << 2;
const F_TCP = 1 << 3;
const F_START = 1 << 4;
const F_COUNTERS = 1 << 5;
const F_MARK = 1 << 6;
const F_ZONE = 1 << 7;

// Connection shape byte: bit 0 ICMP fields present, bits 1–7 the reply fields that differ from
// the inverse tuple (src, dst, sport, dport, icmpType, icmpCode, icmpId).
const S_ICMP = 1;
const R_SRC = 1 << 1;
const R_DST = 1 << 2;
const R_SPORT = 1 << 3;
const R_DPORT = 1 << 4;
const R_ITYPE = 1 << 5;
const R_ICODE = 1 << 6;
const R_IID = 1 << 7;

/** Bytes per kind: flags, status (u32le), tcpState. */
const KIND_BYTES = 6;
/** Fixed bytes per connection beside its two address indexes: family, proto, id, ports, shape. */
const CONN_FIXED = 11;

/** Bytes of an index into a table of `count` entries. */
function widthFor(count: number): number {
  return count <= 0x100 ? 1 : count <= 0x10000 ? 2 : 3;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A growable byte sink (module-level, reused: the recorder encodes one frame at a time). */
class Sink {
  buf = new Uint8Array(4096);
  pos = 0;
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  /** Unsigned LEB128 of a safe integer (at most 8 bytes). */
  uv(v: number): void {
    this.room(8);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[p++] = v;
    this.pos = p;
  }
  /** A signed safe integer: bit 0 of the first byte is the sign, then the magnitude as LEB128 from bit 1. */
  sv(v: number): void {
    this.room(8);
    const b = this.buf;
    let p = this.pos;
    const neg = v < 0 ? 1 : 0;
    let m = neg ? -v : v;
    const low = m % 0x40;
    m = Math.floor(m / 0x40);
    b[p++] = (low << 1) | neg | (m > 0 ? 0x80 : 0);
    while (m > 0) {
      const x = m % 0x80;
      m = Math.floor(m / 0x80);
      b[p++] = x | (m > 0 ? 0x80 : 0);
    }
    this.pos = p;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.buf[this.pos++] = v & 0xff;
    this.buf[this.pos++] = v >>> 8;
  }
  u32(v: number): void {
    this.room(4);
    const p = this.pos;
    this.buf[p] = v & 0xff;
    this.buf[p + 1] = (v >>> 8) & 0xff;
    this.buf[p + 2] = (v >>> 16) & 0xff;
    this.buf[p + 3] = v >>> 24;
    this.pos = p + 4;
  }
  /** Little-endian unsigned integer of `w` bytes (1–3). */
  uw(v: number, w: number): void {
    this.room(w);
    this.buf[this.pos++] = v & 0xff;
    if (w > 1) this.buf[this.pos++] = (v >>> 8) & 0xff;
    if (w > 2) this.buf[this.pos++] = v >>> 16;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

const sinkY = new Sink();
const sinkT = new Sink();
const sinkX = new Sink();
const out = new Sink();

// Per-frame dictionaries: open-addressing tables of (entry index + 1) in Int32Arrays, keyed by
// a 32-bit hash and confirmed by comparing the entry (Maps with keys above 2^30 allocate a heap
// number per lookup: measured 3× slower here).
let conns: CtEvent[] = [];
let kindStatus = new Uint32Array(64);
let kindFlags = new Uint16Array(64); // flags << 8 | tcpState
let nKinds = 0;
let v4list = new Uint32Array(64);
let nV4 = 0;
let v6list: Uint8Array[] = [];
let eConn = new Uint32Array(1024);
let eKind = new Uint32Array(1024);
let shapes = new Uint8Array(256);
let idx = new Uint32Array(1024);
let connSlots = new Int32Array(64);
let kindSlots = new Int32Array(64);
let addrSlots = new Int32Array(64);

/** Empty tables with room for `n` entries each at a load of at most 1/2. */
function resetTables(n: number): void {
  let cap = 64;
  while (cap < 2 * n) cap *= 2;
  if (connSlots.length < cap || connSlots.length > 8 * cap) {
    connSlots = new Int32Array(cap);
    kindSlots = new Int32Array(cap);
    // Each connection brings up to 4 addresses.
    addrSlots = new Int32Array(4 * cap);
  } else {
    connSlots.fill(0);
    kindSlots.fill(0);
    addrSlots.fill(0);
  }
  if (kindStatus.length < n) {
    kindStatus = new Uint32Array(n);
    kindFlags = new Uint16Array(n);
  }
  if (v4list.length < 4 * n) v4list = new Uint32Array(4 * n);
  if (eConn.length < n) {
    eConn = new Uint32Array(n);
    eKind = new Uint32Array(n);
  }
  conns = [];
  v6list = [];
  nKinds = 0;
  nV4 = 0;
}

function word(a: Uint8Array, at: number): number {
  return (
    (((a[at] as number) << 24) |
      ((a[at + 1] as number) << 16) |
      ((a[at + 2] as number) << 8) |
      (a[at + 3] as number)) >>>
    0
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameTuple(a: Tuple, b: Tuple): boolean {
  return (
    a.sport === b.sport &&
    a.dport === b.dport &&
    a.icmpType === b.icmpType &&
    a.icmpCode === b.icmpCode &&
    a.icmpId === b.icmpId &&
    sameBytes(a.src, b.src) &&
    sameBytes(a.dst, b.dst)
  );
}

/** Same connection entry: every field the dictionary holds. */
function sameConn(a: CtEvent, b: CtEvent): boolean {
  return (
    a === b ||
    (a.id === b.id &&
      a.family === b.family &&
      a.proto === b.proto &&
      sameTuple(a.orig, b.orig) &&
      sameTuple(a.reply, b.reply))
  );
}

/** The event's connection index, adding the event as a new connection when none matches. */
function connIndex(ev: CtEvent): number {
  const o = ev.orig;
  const last = o.src.length - 4;
  let h = Math.imul(ev.id ^ (ev.proto << 24), 0x9e3779b1);
  h ^= Math.imul((o.sport << 16) | o.dport, 0x85ebca6b);
  h ^= Math.imul(word(o.src, last), 0xc2b2ae35);
  h ^= Math.imul(word(o.dst, last) ^ o.icmpId, 0x27d4eb2f);
  const m = connSlots.length - 1;
  let s = (h ^ (h >>> 15)) & m;
  for (;;) {
    const v = connSlots[s] as number;
    if (v === 0) {
      connSlots[s] = conns.length + 1;
      conns.push(ev);
      return conns.length - 1;
    }
    if (sameConn(conns[v - 1] as CtEvent, ev)) return v - 1;
    s = (s + 1) & m;
  }
}

/** The index of (status, flags, tcpState) in the kind table, adding it when new. */
function kindIndex(status: number, ft: number): number {
  const h = Math.imul(status ^ Math.imul(ft, 0x85ebca6b), 0x9e3779b1);
  const m = kindSlots.length - 1;
  let s = (h ^ (h >>> 15)) & m;
  for (;;) {
    const v = kindSlots[s] as number;
    if (v === 0) {
      kindStatus[nKinds] = status;
      kindFlags[nKinds] = ft;
      kindSlots[s] = ++nKinds;
      return nKinds - 1;
    }
    if (kindStatus[v - 1] === status && kindFlags[v - 1] === ft) return v - 1;
    s = (s + 1) & m;
  }
}

/**
 * Index of the address in its family's table, adding it when new. IPv4 and IPv6 entries share
 * the slot table (an IPv4 slot holds its index + 1, an IPv6 one −(index + 1)).
 */
function addressIndex(a: Uint8Array): number {
  const m = addrSlots.length - 1;
  if (a.length === 4) {
    const w = word(a, 0);
    const h = Math.imul(w, 0x9e3779b1);
    let s = (h ^ (h >>> 15)) & m;
    for (;;) {
      const v = addrSlots[s] as number;
      if (v === 0) {
        v4list[nV4] = w;
        addrSlots[s] = ++nV4;
        return nV4 - 1;
      }
      if (v > 0 && v4list[v - 1] === w) return v - 1;
      s = (s + 1) & m;
    }
  }
  const h = Math.imul(
    word(a, 0) ^
      Math.imul(word(a, 4), 0x85ebca6b) ^
      Math.imul(word(a, 8), 0xc2b2ae35) ^
      word(a, 12),
    0x9e3779b1,
  );
  let s = (h ^ (h >>> 15)) & m;
  for (;;) {
    const v = addrSlots[s] as number;
    if (v === 0) {
      v6list.push(a);
      addrSlots[s] = -v6list.length;
      return v6list.length - 1;
    }
    if (v < 0 && sameBytes(v6list[-v - 1] as Uint8Array, a)) return -v - 1;
    s = (s + 1) & m;
  }
}

/**
 * The kind-2 payload of format 2; throws TypeError on an event the format cannot hold (the
 * same events v1's encodeEvents refuses). `level` 0 stores the layout uncompressed.
 */
export function encodeEventsV2(events: readonly CtEvent[], opts: { level?: number } = {}): Buffer {
  const level = opts.level ?? DEFLATE_LEVEL;
  if (events.length > MAX_EVENTS) {
    throw new TypeError(
      `journal: ${events.length} events in one frame, format 2 allows ${MAX_EVENTS}`,
    );
  }
  const layout = encodeLayout(events);
  if (layout.length > MAX_RAW) throw new TypeError('journal: events frame too large for format 2');
  if (level === 0) return outer(events.length, CODEC_STORED, layout.length, layout);
  const data = deflateRawSync(layout, { level });
  // A frame of a few events may not shrink: then it is stored.
  if (data.length >= layout.length)
    return outer(events.length, CODEC_STORED, layout.length, layout);
  return outer(events.length, CODEC_DEFLATE_RAW, layout.length, data);
}

/** The uncompressed layout (a view of a reused buffer: copy it before the next call). */
export function encodeLayout(events: readonly CtEvent[]): Uint8Array {
  const n = events.length;
  resetTables(n);
  sinkT.pos = 0;
  sinkX.pos = 0;
  sinkY.pos = 0;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const ev = events[i] as CtEvent;
    checkEvent(ev);
    eConn[i] = connIndex(ev);
    const flags =
      (ev.type - 1) |
      (ev.timeKernel ? F_KERNEL : 0) |
      (ev.tcpState !== undefined ? F_TCP : 0) |
      (ev.start !== undefined ? F_START : 0) |
      (ev.counters !== undefined ? F_COUNTERS : 0) |
      (ev.mark !== undefined ? F_MARK : 0) |
      (ev.zone !== undefined ? F_ZONE : 0);
    eKind[i] = kindIndex(ev.status, (flags << 8) | (ev.tcpState ?? 0));
    sinkT.sv(ev.time - prev);
    prev = ev.time;
    if (flags >= F_START) {
      if (ev.start !== undefined) sinkX.sv(ev.time - ev.start);
      const c = ev.counters;
      if (c !== undefined) {
        sinkX.uv(c.origPackets);
        sinkX.uv(c.origBytes);
        sinkX.uv(c.replyPackets);
        sinkX.uv(c.replyBytes);
      }
      if (ev.mark !== undefined) sinkX.uv(ev.mark);
      if (ev.zone !== undefined) sinkX.uv(ev.zone);
    }
  }
  const nConn = conns.length;
  const nKind = nKinds;
  if (nConn > 0x1000000) throw new TypeError('journal: more than 2^24 connections in one frame');
  // Connections: their addresses join the tables first (the index width depends on the count).
  if (shapes.length < nConn) {
    shapes = new Uint8Array(nConn);
    idx = new Uint32Array(4 * nConn);
  }
  for (let k = 0; k < nConn; k++) {
    const ev = conns[k] as CtEvent;
    const o = ev.orig;
    const r = ev.reply;
    idx[4 * k] = addressIndex(o.src);
    idx[4 * k + 1] = addressIndex(o.dst);
    let shape = o.icmpType !== 0 || o.icmpCode !== 0 || o.icmpId !== 0 ? S_ICMP : 0;
    if (!sameBytes(r.src, o.dst)) {
      shape |= R_SRC;
      idx[4 * k + 2] = addressIndex(r.src);
    }
    if (!sameBytes(r.dst, o.src)) {
      shape |= R_DST;
      idx[4 * k + 3] = addressIndex(r.dst);
    }
    if (r.sport !== o.dport) shape |= R_SPORT;
    if (r.dport !== o.sport) shape |= R_DPORT;
    if (r.icmpType !== inverseIcmpType(ev.family, ev.proto, o.icmpType)) shape |= R_ITYPE;
    if (r.icmpCode !== o.icmpCode) shape |= R_ICODE;
    if (r.icmpId !== o.icmpId) shape |= R_IID;
    shapes[k] = shape;
  }
  const nA4 = nV4;
  const nA6 = v6list.length;
  const aw = widthFor(Math.max(nA4, nA6));
  const cw = widthFor(nConn);
  const kw = widthFor(nKind);
  for (let k = 0; k < nConn; k++) {
    const shape = shapes[k] as number;
    if (shape === 0) continue;
    const ev = conns[k] as CtEvent;
    const o = ev.orig;
    const r = ev.reply;
    if (shape & S_ICMP) {
      sinkY.u8(o.icmpType);
      sinkY.u8(o.icmpCode);
      sinkY.u16(o.icmpId);
    }
    if (shape & R_SRC) sinkY.uw(idx[4 * k + 2] as number, aw);
    if (shape & R_DST) sinkY.uw(idx[4 * k + 3] as number, aw);
    if (shape & R_SPORT) sinkY.u16(r.sport);
    if (shape & R_DPORT) sinkY.u16(r.dport);
    if (shape & R_ITYPE) sinkY.u8(r.icmpType);
    if (shape & R_ICODE) sinkY.u8(r.icmpCode);
    if (shape & R_IID) sinkY.u16(r.icmpId);
  }

  // Header, address tables, kinds, connection columns, event columns, then Y, T, X.
  out.pos = 0;
  out.uv(nConn);
  out.uv(nKind);
  out.uv(nA4);
  out.uv(nA6);
  out.uv(sinkY.pos);
  out.uv(sinkT.pos);
  out.uv(sinkX.pos);
  out.room(4 * nA4 + 16 * nA6 + 6 * nKind + (CONN_FIXED + 2 * aw) * nConn + (cw + kw) * n);
  for (let a = 0; a < nA4; a++) {
    const w = v4list[a] as number;
    out.u32(((w >>> 24) | ((w >>> 8) & 0xff00) | ((w << 8) & 0xff0000) | (w << 24)) >>> 0);
  }
  for (let a = 0; a < nA6; a++) out.bytes(v6list[a] as Uint8Array);
  for (let d = 0; d < nKind; d++) out.u8((kindFlags[d] as number) >>> 8);
  for (let d = 0; d < nKind; d++) out.u32(kindStatus[d] as number);
  for (let d = 0; d < nKind; d++) out.u8((kindFlags[d] as number) & 0xff);
  for (let k = 0; k < nConn; k++) out.u8((conns[k] as CtEvent).family);
  for (let k = 0; k < nConn; k++) out.u8((conns[k] as CtEvent).proto);
  for (let k = 0; k < nConn; k++) out.u32((conns[k] as CtEvent).id);
  for (let k = 0; k < nConn; k++) out.uw(idx[4 * k] as number, aw);
  for (let k = 0; k < nConn; k++) out.uw(idx[4 * k + 1] as number, aw);
  for (let k = 0; k < nConn; k++) out.u16((conns[k] as CtEvent).orig.sport);
  for (let k = 0; k < nConn; k++) out.u16((conns[k] as CtEvent).orig.dport);
  out.bytes(shapes.subarray(0, nConn));
  // Connections are numbered in order of first use; an event names its connection by how many
  // were introduced after it (0: a new one), small numbers when few are open at once.
  let m = 0;
  for (let i = 0; i < n; i++) {
    const k = eConn[i] as number;
    out.uw(m - k, cw);
    if (k === m) m++;
  }
  for (let i = 0; i < n; i++) out.uw(eKind[i] as number, kw);
  out.bytes(sinkY.buf.subarray(0, sinkY.pos));
  out.bytes(sinkT.buf.subarray(0, sinkT.pos));
  out.bytes(sinkX.buf.subarray(0, sinkX.pos));
  // Drop the references to the caller's events.
  conns = [];
  v6list = [];
  return out.buf.subarray(0, out.pos);
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
  const buf = Buffer.allocUnsafe(head.length + len);
  buf.set(head, 0);
  buf.set(data, head.length);
  return buf;
}

/** The shortest msgpack encoding of an unsigned integer below 2^32. */
function uintBytes(v: number, bytes: number[]): void {
  if (v < 0x80) bytes.push(v);
  else if (v < 0x100) bytes.push(0xcc, v);
  else if (v < 0x10000) bytes.push(0xcd, v >> 8, v & 0xff);
  else bytes.push(0xce, v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

// ---------------------------------------------------------------------------------------------
// Decoding: the outer array, the layout's frame (parseLayout), then the events (walk).

/**
 * The outer array's event count and its decompressed layout; Damage for anything else. A
 * deflated layout is a view of a reused buffer: valid until the next call.
 */
export function unwrapEventsV2(payload: Uint8Array): { n: number; layout: Uint8Array } {
  if (payload[0] !== 0x94) throw new Damage('events payload is not an array of 4');
  const r = { p: 1 };
  const n = outerUint(payload, r, 'event count');
  const codec = outerUint(payload, r, 'codec');
  const raw = outerUint(payload, r, 'raw length');
  const data = outerBin(payload, r);
  if (r.p !== payload.length) throw new Damage('events payload has bytes after its data');
  if (raw > MAX_RAW) throw new Damage(`raw length is ${raw}, expected at most ${MAX_RAW}`);
  if (n > MAX_EVENTS) throw new Damage(`event count is ${n}, expected at most ${MAX_EVENTS}`);
  let layout: Uint8Array;
  if (codec === CODEC_STORED) {
    layout = data;
  } else if (codec === CODEC_DEFLATE_RAW) {
    // Deflate expands at most 1032:1: a larger claim is damage before any allocation.
    if (raw > MAX_DEFLATE_RATIO * data.length + 64) {
      throw new Damage(`raw length ${raw} is more than ${data.length} deflated bytes can hold`);
    }
    layout = inflateLayout(data, raw);
  } else {
    throw new Damage(`codec is ${codec}, expected 0 (stored) or 1 (deflate-raw)`);
  }
  if (layout.length !== raw) {
    throw new Damage(`events layout is ${layout.length} bytes, its payload says ${raw}`);
  }
  return { n, layout };
}

/** The parts of node's zlib handle the reused inflater drives (internal, hence the checks). */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
}

// One raw-inflate handle reused frame after frame, into one reused output buffer:
// inflateRawSync builds a stream object and a fresh output buffer per frame, which (with the
// garbage it leaves) cost ~10 % of the scan. It drives node's zlib handle, an internal API:
// where that is missing, or after an error (which closes the handle), inflateRawSync or a new
// handle takes over.
let inflater: InflateRaw | undefined;
let inflaterBroken = false;
let inflateOut = new Uint8Array(0);
/** Largest output buffer kept between frames; a larger layout gets its own. */
const KEEP_OUT = 1 << 20;

/** Exactly `raw` bytes inflated from `data`, or Damage. */
function inflateLayout(data: Uint8Array, raw: number): Uint8Array {
  let z = inflater;
  if (z === undefined && !inflaterBroken) {
    z = new InflateRaw();
    const h = (z as unknown as { _handle?: Partial<ZlibHandle> })._handle;
    const state = (z as unknown as { _writeState?: unknown })._writeState;
    if (
      typeof h?.writeSync !== 'function' ||
      typeof h.reset !== 'function' ||
      !(state instanceof Uint32Array)
    ) {
      inflaterBroken = true;
      z = undefined;
    } else {
      // Errors are read from z.errored right after the call; this keeps the stream's own
      // asynchronous 'error' event from being unhandled.
      z.on('error', () => {});
      inflater = z;
    }
  }
  if (z === undefined) {
    try {
      // One output chunk of raw + 1 bytes: a stream inflating past `raw` stops there (the
      // length check in the caller), and the layout is not copied from smaller chunks.
      return inflateRawSync(data, {
        maxOutputLength: Math.max(raw, 1),
        chunkSize: Math.max(64, raw + 1),
      });
    } catch (err) {
      throw new Damage(`events data does not inflate to ${raw} bytes (${(err as Error).message})`);
    }
  }
  const zi = z as unknown as { _handle: ZlibHandle; _writeState: Uint32Array };
  let out = inflateOut;
  if (out.length < raw + 1) {
    out = new Uint8Array(Math.max(raw + 1, 2 * out.length, 64 * 1024));
    if (out.length <= KEEP_OUT) inflateOut = out;
  }
  // Room for raw + 1 bytes: a stream inflating past `raw` fills it and is damage.
  zi._handle.reset();
  zi._handle.writeSync(zlibConstants.Z_FINISH, data, 0, data.length, out, 0, raw + 1);
  if (z.destroyed || z.errored !== null) {
    // The handle is closed: the next frame gets a new one.
    inflater = undefined;
    const why = (z.errored as Error | null)?.message ?? 'inflate failed';
    throw new Damage(`events data does not inflate to ${raw} bytes (${why})`);
  }
  const produced = raw + 1 - (zi._writeState[0] as number);
  if (produced !== raw) {
    // The same words as the other inflate paths: the frame's data does not give `raw` bytes.
    const gives = produced > raw ? `more than ${raw}` : `${produced}`;
    throw new Damage(`events data does not inflate to ${raw} bytes (it gives ${gives})`);
  }
  return out.subarray(0, raw);
}

function outerUint(b: Uint8Array, r: { p: number }, what: string): number {
  const p = r.p;
  const x = b[p];
  if (x === undefined) throw new Damage(`events payload ends before its ${what}`);
  const size = x <= 0x7f ? 0 : x === 0xcc ? 1 : x === 0xcd ? 2 : x === 0xce ? 4 : -1;
  if (size < 0) throw new Damage(`${what} is not an unsigned integer below 2^32`);
  if (p + 1 + size > b.length) throw new Damage(`events payload ends inside its ${what}`);
  let v = size === 0 ? x : 0;
  for (let k = 1; k <= size; k++) v = v * 256 + (b[p + k] as number);
  r.p = p + 1 + size;
  return v;
}

function outerBin(b: Uint8Array, r: { p: number }): Uint8Array {
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

// The layout being read and the read position of the varint helpers (`var`: module-level `let`
// costs a check on every access in a hot loop; see events-scan.ts).
var lb: Uint8Array = new Uint8Array(0);
var rp = 0;

/**
 * Puts the varint helpers at layout[p]: for another loop over a checked layout (the export's
 * scan-v2.ts), which reads its varints with these same helpers. `varintsAt(EMPTY, 0)` lets go.
 */
export function varintsAt(layout: Uint8Array, p: number): void {
  lb = layout;
  rp = p;
}

/** Where the varint helpers stopped. */
export function varintPos(): number {
  return rp;
}

/** An unsigned LEB128 of at most 8 bytes and 2^53−1 at lb[rp], before `end`. */
export function readUv(end: number, what: string): number {
  // The first 4 bytes (28 bits) in int32 arithmetic: counters, marks and zones mostly fit, and
  // the replay reads 4 counters per destroy event.
  let v = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (rp >= end) throw new Damage(`${what} runs past its column`);
    const x = lb[rp++] as number;
    v |= (x & 0x7f) << shift;
    if (x < 0x80) return v;
  }
  let mul = 0x10000000;
  for (let k = 4; k < 8; k++) {
    if (rp >= end) throw new Damage(`${what} runs past its column`);
    const x = lb[rp++] as number;
    v += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (v > MAX) throw new Damage(`${what} is above 2^53−1`);
      return v;
    }
    mul *= 0x80;
  }
  throw new Damage(`${what} is longer than 8 bytes`);
}

/** A signed integer (sign in bit 0, magnitude from bit 1, LEB128), magnitude ≤ 2^53−1. */
export function readSv(end: number, what: string): number {
  if (rp >= end) throw new Damage(`${what} runs past its column`);
  const first = lb[rp++] as number;
  let v = (first >> 1) & 0x3f;
  if (first < 0x80) return first & 1 ? -v : v;
  let mul = 0x40;
  for (let k = 1; k < 8; k++) {
    if (rp >= end) throw new Damage(`${what} runs past its column`);
    const x = lb[rp++] as number;
    v += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (v > MAX) throw new Damage(`${what} is above 2^53−1 in magnitude`);
      return first & 1 ? -v : v;
    }
    mul *= 0x80;
  }
  throw new Damage(`${what} is longer than 8 bytes`);
}

/** A connection or kind index of `w` bytes (1–3, little-endian) at b[p]. */
export function indexAt(b: Uint8Array, p: number, w: number): number {
  if (w === 1) return b[p] as number;
  if (w === 2) return (b[p] as number) | ((b[p + 1] as number) << 8);
  return (b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16);
}

function u32At(b: Uint8Array, p: number): number {
  return (
    ((b[p] as number) |
      ((b[p + 1] as number) << 8) |
      ((b[p + 2] as number) << 16) |
      ((b[p + 3] as number) << 24)) >>>
    0
  );
}

/**
 * Offsets and counts of a checked layout: cw and kw are the byte widths of the connection and
 * kind indexes, the others offsets of the columns in `layout`.
 */
interface Parsed {
  n: number;
  nConn: number;
  nKind: number;
  nA4: number;
  nA6: number;
  layout: Uint8Array;
  cw: number;
  kw: number;
  a4: number;
  a6: number;
  eConn: number;
  eKind: number;
  t: number;
  x: number;
  end: number;
}

// Decoded dictionaries (module-level scratch, grown as needed, valid until the next parse).
// Connection k: family, proto, id, address indexes (orig src, dst, reply src, dst), ports
// (sport, dport, reply sport, dport), ICMP (type, code, id, reply type, code, id), nat bits.
let kFam = new Uint8Array(0);
let kProto = new Uint8Array(0);
let kId = new Uint32Array(0);
let kAddr = new Uint32Array(0);
let kPorts = new Uint16Array(0);
let kIcmp = new Uint16Array(0);
let kNat = new Uint8Array(0);
let kindFlagsD = new Uint8Array(0);
let kindStatusD = new Uint32Array(0);
let kindTcpD = new Uint8Array(0);

function growConns(count: number): void {
  if (kFam.length >= count) return;
  const c = Math.max(count, 2 * kFam.length, 256);
  kFam = new Uint8Array(c);
  kProto = new Uint8Array(c);
  kId = new Uint32Array(c);
  kAddr = new Uint32Array(4 * c);
  kPorts = new Uint16Array(4 * c);
  kIcmp = new Uint16Array(6 * c);
  kNat = new Uint8Array(c);
}

function growKinds(count: number): void {
  if (kindFlagsD.length >= count) return;
  const c = Math.max(count, 2 * kindFlagsD.length, 64);
  kindFlagsD = new Uint8Array(c);
  kindStatusD = new Uint32Array(c);
  kindTcpD = new Uint8Array(c);
}

/** Checks the layout's counts and lengths and reads its kinds and connections. */
function parseLayout(n: number, b: Uint8Array): Parsed {
  const len = b.length;
  lb = b;
  rp = 0;
  const nConn = readUv(len, 'connection count');
  const nKind = readUv(len, 'kind count');
  const nA4 = readUv(len, 'IPv4 address count');
  const nA6 = readUv(len, 'IPv6 address count');
  const lenY = readUv(len, 'connection extras length');
  const lenT = readUv(len, 'time column length');
  const lenX = readUv(len, 'event extras length');
  if (nConn > n || nKind > n || (n > 0 && (nConn === 0 || nKind === 0))) {
    throw new Damage(`${nConn} connections and ${nKind} kinds for ${n} events`);
  }
  const aw = widthFor(Math.max(nA4, nA6));
  const cw = widthFor(nConn);
  const kw = widthFor(nKind);
  // Every term is ≥ 0, so a total equal to the length bounds each count by the bytes present.
  const total =
    rp +
    4 * nA4 +
    16 * nA6 +
    KIND_BYTES * nKind +
    (CONN_FIXED + 2 * aw) * nConn +
    (cw + kw) * n +
    lenY +
    lenT +
    lenX;
  if (total !== len) {
    throw new Damage(`events layout is ${len} bytes, its counts and lengths say ${total}`);
  }
  const a4 = rp;
  const a6 = a4 + 4 * nA4;
  const kFlags = a6 + 16 * nA6;
  const kStatus = kFlags + nKind;
  const kTcp = kStatus + 4 * nKind;
  const fam = kTcp + nKind;
  const proto = fam + nConn;
  const id = proto + nConn;
  const src = id + 4 * nConn;
  const dst = src + aw * nConn;
  const sport = dst + aw * nConn;
  const dport = sport + 2 * nConn;
  const shape = dport + 2 * nConn;
  const eConn = shape + nConn;
  const eKind = eConn + cw * n;
  const y = eKind + kw * n;
  const t = y + lenY;
  const x = t + lenT;

  growKinds(nKind);
  const dFlags = kindFlagsD;
  const dStatus = kindStatusD;
  const dTcp = kindTcpD;
  for (let d = 0; d < nKind; d++) {
    const flags = b[kFlags + d] as number;
    const tcp = b[kTcp + d] as number;
    if (!(flags & F_TCP) && tcp !== 0)
      throw new Damage(`kind ${d} has a tcpState but no flag for it`);
    dFlags[d] = flags;
    dStatus[d] = u32At(b, kStatus + 4 * d);
    dTcp[d] = tcp;
  }

  growConns(nConn);
  const cFam = kFam;
  const cProto = kProto;
  const cId = kId;
  const cAddr = kAddr;
  const cPorts = kPorts;
  const cIcmp = kIcmp;
  const cNat = kNat;
  let q = y;
  for (let k = 0; k < nConn; k++) {
    const family = b[fam + k] as number;
    if (family !== 4 && family !== 6) {
      throw new Damage(`connection ${k} family is ${family}, expected 4 or 6`);
    }
    const pr = b[proto + k] as number;
    const count = family === 4 ? nA4 : nA6;
    const s = indexAt(b, src + aw * k, aw);
    const d = indexAt(b, dst + aw * k, aw);
    if (s >= count || d >= count) {
      throw new Damage(`connection ${k} address index is beyond its ${count}-entry table`);
    }
    const sp = (b[sport + 2 * k] as number) | ((b[sport + 2 * k + 1] as number) << 8);
    const dp = (b[dport + 2 * k] as number) | ((b[dport + 2 * k + 1] as number) << 8);
    const sh = b[shape + k] as number;
    let it = 0;
    let ic = 0;
    let ii = 0;
    if (sh & S_ICMP) {
      if (q + 4 > t) throw new Damage(`connection ${k} ICMP fields run past their column`);
      it = b[q] as number;
      ic = b[q + 1] as number;
      ii = (b[q + 2] as number) | ((b[q + 3] as number) << 8);
      q += 4;
    }
    // The reply: the inverse tuple, then the fields the shape says differ.
    let rs = d;
    let rd = s;
    let rsp = dp;
    let rdp = sp;
    let rit = inverseIcmpType(family, pr, it);
    let ric = ic;
    let rii = ii;
    let nat = 0;
    if (sh & ~S_ICMP) {
      const need =
        (sh & R_SRC ? aw : 0) +
        (sh & R_DST ? aw : 0) +
        (sh & R_SPORT ? 2 : 0) +
        (sh & R_DPORT ? 2 : 0) +
        (sh & R_ITYPE ? 1 : 0) +
        (sh & R_ICODE ? 1 : 0) +
        (sh & R_IID ? 2 : 0);
      if (q + need > t) throw new Damage(`connection ${k} reply fields run past their column`);
      if (sh & R_SRC) {
        rs = indexAt(b, q, aw);
        q += aw;
      }
      if (sh & R_DST) {
        rd = indexAt(b, q, aw);
        q += aw;
      }
      if (rs >= count || rd >= count) {
        throw new Damage(`connection ${k} reply address index is beyond its ${count}-entry table`);
      }
      if (sh & R_SPORT) {
        rsp = (b[q] as number) | ((b[q + 1] as number) << 8);
        q += 2;
      }
      if (sh & R_DPORT) {
        rdp = (b[q] as number) | ((b[q + 1] as number) << 8);
        q += 2;
      }
      if (sh & R_ITYPE) rit = b[q++] as number;
      if (sh & R_ICODE) ric = b[q++] as number;
      if (sh & R_IID) {
        rii = (b[q] as number) | ((b[q + 1] as number) << 8);
        q += 2;
      }
      // natBits (event-columns.ts) judges by address bytes and ports: the same here.
      const table = family === 4 ? a4 : a6;
      if (rsp !== dp || !sameEntry(b, table, family, rs, d)) nat |= 1;
      if (rdp !== sp || !sameEntry(b, table, family, rd, s)) nat |= 2;
    }
    cFam[k] = family;
    cProto[k] = pr;
    cId[k] = u32At(b, id + 4 * k);
    const k4 = 4 * k;
    cAddr[k4] = s;
    cAddr[k4 + 1] = d;
    cAddr[k4 + 2] = rs;
    cAddr[k4 + 3] = rd;
    cPorts[k4] = sp;
    cPorts[k4 + 1] = dp;
    cPorts[k4 + 2] = rsp;
    cPorts[k4 + 3] = rdp;
    const k6 = 6 * k;
    cIcmp[k6] = it;
    cIcmp[k6 + 1] = ic;
    cIcmp[k6 + 2] = ii;
    cIcmp[k6 + 3] = rit;
    cIcmp[k6 + 4] = ric;
    cIcmp[k6 + 5] = rii;
    cNat[k] = nat;
  }
  if (q !== t) throw new Damage('connection extras column has bytes left over');
  return { n, nConn, nKind, nA4, nA6, layout: b, cw, kw, a4, a6, eConn, eKind, t, x, end: len };
}

/** Whether entries i and j of a family's address table hold the same bytes (duplicates may exist). */
function sameEntry(b: Uint8Array, table: number, family: number, i: number, j: number): boolean {
  if (i === j) return true;
  const size = family === 4 ? 4 : 16;
  const pi = table + size * i;
  const pj = table + size * j;
  for (let q = 0; q < size; q++) if (b[pi + q] !== b[pj + q]) return false;
  return true;
}

// The scan's per-connection table, filled once per frame and copied from per event (a
// connection has ~4 events in a frame of the replay mix), CONN_WORDS words each: the addresses
// as EventColumns holds them (4 words each, addressWords: orig src, orig dst, then reply src and
// dst where the connection is translated), family | proto << 8 | icmpType << 16 | icmpCode << 24,
// sport | dport << 16, and the nat bits.
const CONN_WORDS = 20;
let connWords = new Uint32Array(0);

/**
 * The one event loop: checks every event (indexes, time, optional fields, each column read
 * to its exact end) and writes it to `cols` (scan) or as a CtEvent to `events` (decode).
 */
function walk(q: Parsed, cols: EventColumns | undefined, events: CtEvent[] | undefined): void {
  const b = q.layout;
  lb = b;
  const n = q.n;
  const nConn = q.nConn;
  const nKind = q.nKind;
  const cw = q.cw;
  const kw = q.kw;
  const eConnAt = q.eConn;
  const eKindAt = q.eKind;
  const tEnd = q.x;
  const xEnd = q.end;
  let t = q.t;
  let x = q.x;
  let prev = 0;
  let m = 0;
  let cWords = connWords;
  if (cols !== undefined) {
    if (cWords.length < CONN_WORDS * nConn) {
      connWords = cWords = new Uint32Array(Math.max(CONN_WORDS * nConn, 2 * cWords.length));
    }
    const a4 = q.a4;
    const a6 = q.a6;
    const fams = kFam;
    const addrs = kAddr;
    const nats = kNat;
    const protos = kProto;
    const ports = kPorts;
    const icmps = kIcmp;
    for (let k = 0; k < nConn; k++) {
      const k4 = 4 * k;
      const kw = CONN_WORDS * k;
      const v4 = fams[k] === 4;
      const nat = nats[k] as number;
      cWords[kw + 16] =
        ((fams[k] as number) |
          ((protos[k] as number) << 8) |
          ((icmps[6 * k] as number) << 16) |
          ((icmps[6 * k + 1] as number) << 24)) >>>
        0;
      cWords[kw + 17] = ((ports[k4] as number) | ((ports[k4 + 1] as number) << 16)) >>> 0;
      cWords[kw + 18] = nat;
      const ends = nat === 0 ? 2 : 4;
      for (let e = 0; e < ends; e++) {
        const at = kw + 4 * e;
        const entry = addrs[k4 + e] as number;
        if (v4) {
          cWords[at] = word(b, a4 + 4 * entry);
          cWords[at + 1] = 0;
          cWords[at + 2] = 0;
          cWords[at + 3] = 0;
        } else {
          const p = a6 + 16 * entry;
          cWords[at] = word(b, p);
          cWords[at + 1] = word(b, p + 4);
          cWords[at + 2] = word(b, p + 8);
          cWords[at + 3] = word(b, p + 12);
        }
      }
    }
  }
  // Module-level tables and the columns as locals (module-level `let` costs a check per access).
  const cPorts = kPorts;
  const dFlags = kindFlagsD;
  const dStatus = kindStatusD;
  const dTcp = kindTcpD;
  const c = cols ?? NO_COLUMNS;
  const cType = c.type;
  const cFamily = c.family;
  const cProtoC = c.proto;
  const cStatus = c.status;
  const cMark = c.mark;
  const cTime = c.time;
  const cSrc = c.src;
  const cDst = c.dst;
  const cSport = c.sport;
  const cDport = c.dport;
  const cIcmpType = c.icmpType;
  const cIcmpCode = c.icmpCode;
  const cNatC = c.nat;
  for (let i = 0; i < n; i++) {
    const v = cw === 1 ? (b[eConnAt + i] as number) : indexAt(b, eConnAt + cw * i, cw);
    if (v > m) throw new Damage(`event ${i} names connection −${v} of ${m} introduced`);
    const k = m - v;
    if (v === 0) m++;
    const d = kw === 1 ? (b[eKindAt + i] as number) : indexAt(b, eKindAt + kw * i, kw);
    if (k >= nConn) throw new Damage(`event ${i} introduces connection ${k} of ${nConn}`);
    if (d >= nKind) throw new Damage(`event ${i} kind index ${d} is beyond ${nKind}`);
    const flags = dFlags[d] as number;
    // dtime: one or two bytes (|dtime| < 8192 µs) read here, longer ones by readSv.
    let dt: number;
    const first = t < tEnd ? (b[t] as number) : 0x100;
    const second = t + 1 < tEnd ? (b[t + 1] as number) : 0x100;
    if (first < 0x80) {
      dt = first & 1 ? -(first >> 1) : first >> 1;
      t++;
    } else if (second < 0x80) {
      const mag = ((first >> 1) & 0x3f) | (second << 6);
      dt = first & 1 ? -mag : mag;
      t += 2;
    } else {
      rp = t;
      dt = readSv(tEnd, 'dtime');
      t = rp;
    }
    const time = prev + dt;
    if (time < 0 || time > MAX) throw new Damage(`event ${i} time is ${time}, expected 0–2^53−1`);
    prev = time;
    let start = 0;
    let op = 0;
    let ob = 0;
    let rpk = 0;
    let rby = 0;
    let mark = 0;
    let zone = 0;
    if (flags >= F_START) {
      rp = x;
      if (flags & F_START) {
        start = time - readSv(xEnd, 'startAgo');
        if (start < 0 || start > MAX)
          throw new Damage(`event ${i} start is ${start}, expected 0–2^53−1`);
      }
      if (flags & F_COUNTERS) {
        op = readUv(xEnd, 'counters');
        ob = readUv(xEnd, 'counters');
        rpk = readUv(xEnd, 'counters');
        rby = readUv(xEnd, 'counters');
      }
      if (flags & F_MARK) {
        mark = readUv(xEnd, 'mark');
        if (mark > 0xffffffff) throw new Damage(`event ${i} mark is ${mark}, expected a uint32`);
      }
      if (flags & F_ZONE) {
        zone = readUv(xEnd, 'zone');
        if (zone > 0xffff) throw new Damage(`event ${i} zone is ${zone}, expected a uint16`);
      }
      x = rp;
    }
    if (cols !== undefined) {
      const kc = CONN_WORDS * k;
      const fixed = cWords[kc + 16] as number;
      const ports = cWords[kc + 17] as number;
      // Typed array stores keep the low 8 or 16 bits of each packed word.
      cType[i] = (flags & 3) + 1;
      cFamily[i] = fixed;
      cProtoC[i] = fixed >>> 8;
      cIcmpType[i] = fixed >>> 16;
      cIcmpCode[i] = fixed >>> 24;
      cSport[i] = ports;
      cDport[i] = ports >>> 16;
      cStatus[i] = dStatus[d] as number;
      cMark[i] = mark;
      cTime[i] = time;
      const i4 = 4 * i;
      cSrc[i4] = cWords[kc] as number;
      cSrc[i4 + 1] = cWords[kc + 1] as number;
      cSrc[i4 + 2] = cWords[kc + 2] as number;
      cSrc[i4 + 3] = cWords[kc + 3] as number;
      cDst[i4] = cWords[kc + 4] as number;
      cDst[i4 + 1] = cWords[kc + 5] as number;
      cDst[i4 + 2] = cWords[kc + 6] as number;
      cDst[i4 + 3] = cWords[kc + 7] as number;
      const nat = cWords[kc + 18] as number;
      cNatC[i] = nat;
      if (nat !== 0) {
        for (let z = 0; z < 4; z++) {
          cols.replySrc[i4 + z] = cWords[kc + 8 + z] as number;
          cols.replyDst[i4 + z] = cWords[kc + 12 + z] as number;
        }
        const k4 = 4 * k;
        cols.replySport[i] = cPorts[k4 + 2] as number;
        cols.replyDport[i] = cPorts[k4 + 3] as number;
      }
    } else if (events !== undefined) {
      const ev = eventOf(q, k, flags, time);
      ev.status = dStatus[d] as number;
      if (flags & F_TCP) ev.tcpState = dTcp[d] as number;
      if (flags & F_START) ev.start = start;
      if (flags & F_COUNTERS) {
        ev.counters = { origPackets: op, origBytes: ob, replyPackets: rpk, replyBytes: rby };
      }
      if (flags & F_MARK) ev.mark = mark;
      if (flags & F_ZONE) ev.zone = zone;
      events[i] = ev;
    }
  }
  if (m !== nConn) throw new Damage(`${nConn} connections, ${m} of them used`);
  if (t !== tEnd) throw new Damage('time column has bytes left over');
  if (x !== xEnd) throw new Damage('event extras column has bytes left over');
}

/** A CtEvent of connection k with its own copies of the address bytes, as v1's decode gives. */
function eventOf(q: Parsed, k: number, flags: number, time: number): CtEvent {
  const cFam = kFam;
  const cProto = kProto;
  const cAddr = kAddr;
  const cPorts = kPorts;
  const cIcmp = kIcmp;
  const family = cFam[k] as 4 | 6;
  const proto = cProto[k] as number;
  const k4 = 4 * k;
  const k6 = 6 * k;
  const addr = (index: number): Buffer => {
    const size = family === 4 ? 4 : 16;
    const at = (family === 4 ? q.a4 : q.a6) + size * index;
    return Buffer.from(q.layout.subarray(at, at + size));
  };
  const orig: Tuple = {
    src: addr(cAddr[k4] as number),
    dst: addr(cAddr[k4 + 1] as number),
    sport: cPorts[k4] as number,
    dport: cPorts[k4 + 1] as number,
    icmpType: cIcmp[k6] as number,
    icmpCode: cIcmp[k6 + 1] as number,
    icmpId: cIcmp[k6 + 2] as number,
  };
  const rs = cAddr[k4 + 2] as number;
  const rd = cAddr[k4 + 3] as number;
  const reply: Tuple = {
    src: rs === cAddr[k4 + 1] ? orig.dst : addr(rs),
    dst: rd === cAddr[k4] ? orig.src : addr(rd),
    sport: cPorts[k4 + 2] as number,
    dport: cPorts[k4 + 3] as number,
    icmpType: cIcmp[k6 + 3] as number,
    icmpCode: cIcmp[k6 + 4] as number,
    icmpId: cIcmp[k6 + 5] as number,
  };
  return {
    type: ((flags & 3) + 1) as EventTypeCode,
    family,
    proto,
    status: 0,
    id: kId[k] as number,
    time,
    timeKernel: (flags & F_KERNEL) !== 0,
    orig,
    reply,
  };
}

/**
 * Decodes and validates a format 2 events payload; throws Damage naming the first bad value.
 * `fields` (the header's eventFields count) does not apply: the layout's fields are fixed.
 * Reply addresses equal to the inverse's are the very Uint8Arrays of the original tuple.
 */
export function decodeEventsV2(payload: Uint8Array, _fields?: number): CtEvent[] {
  const { n, layout } = unwrapEventsV2(payload);
  try {
    const q = parseLayout(n, layout);
    const events: CtEvent[] = new Array(n);
    walk(q, undefined, events);
    return events;
  } finally {
    lb = EMPTY;
  }
}

/**
 * Reads a format 2 events payload into `cols` and returns true, or returns false (cols then
 * holds garbage) when the payload is damaged: decodeEventsV2 then names the damage.
 */
export function scanEventsV2(payload: Uint8Array, _fields: number, cols: EventColumns): boolean {
  try {
    const { n, layout } = unwrapEventsV2(payload);
    const q = parseLayout(n, layout);
    cols.reset(n);
    walk(q, cols, undefined);
    cols.n = n;
    return true;
  } catch (err) {
    if (err instanceof Damage) return false;
    throw err;
  } finally {
    lb = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);
const NO_COLUMNS = new EventColumns();

/** A checked layout with its dictionaries, for an event loop of another reader's own. */
export interface LayoutV2 extends Parsed {
  /** Connection k: as parseLayout decodes them (kAddr: 4 address indexes, kPorts: 4, kIcmp: 6). */
  kFam: Uint8Array;
  kProto: Uint8Array;
  kId: Uint32Array;
  kAddr: Uint32Array;
  kPorts: Uint16Array;
  kIcmp: Uint16Array;
  /** Kind d: its flags byte (KIND_FLAGS), status and tcpState. */
  kindFlags: Uint8Array;
  kindStatus: Uint32Array;
  kindTcp: Uint8Array;
}

/** The bits of a kind's flags byte: type − 1 in bits 0–1, then these. */
export const KIND_FLAGS = {
  kernel: F_KERNEL,
  tcp: F_TCP,
  start: F_START,
  counters: F_COUNTERS,
  mark: F_MARK,
  zone: F_ZONE,
} as const;

/**
 * A format 2 payload unwrapped and its layout checked as decodeEventsV2 checks it (Damage
 * alike), with the decoded dictionaries: the export's every-field scan
 * (analyzer/export/scan-v2.ts) runs its own event loop over it. Valid until the next parse.
 */
export function layoutOfEventsV2(payload: Uint8Array): LayoutV2 {
  const { n, layout } = unwrapEventsV2(payload);
  try {
    const q = parseLayout(n, layout);
    return {
      ...q,
      kFam,
      kProto,
      kId,
      kAddr,
      kPorts,
      kIcmp,
      kindFlags: kindFlagsD,
      kindStatus: kindStatusD,
      kindTcp: kindTcpD,
    };
  } finally {
    lb = EMPTY;
  }
}
