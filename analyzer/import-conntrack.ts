// Parses the text of `conntrack -E` (events) and `conntrack -L` (table entries) into CtEvents.
import { isIPv4, isIPv6 } from 'node:net';
import {
  type CtEvent,
  EventType,
  type EventTypeCode,
  Status,
  type Tuple,
} from '../journal/event.js';

/** enum tcp_conntrack (linux/netfilter/nf_conntrack_tcp.h), as conntrack prints the names. */
const TCP_STATES = new Map([
  ['NONE', 0],
  ['SYN_SENT', 1],
  ['SYN_RECV', 2],
  ['ESTABLISHED', 3],
  ['FIN_WAIT', 4],
  ['CLOSE_WAIT', 5],
  ['LAST_ACK', 6],
  ['TIME_WAIT', 7],
  ['CLOSE', 8],
  ['SYN_SENT2', 9],
  ['LISTEN', 9],
]);

const TYPES = new Map<string, EventTypeCode>([
  ['[NEW]', EventType.NEW],
  ['[UPDATE]', EventType.UPDATE],
  ['[DESTROY]', EventType.DESTROY],
]);

/** Protocols whose tuples carry ports (TCP, UDP, DCCP, SCTP, UDP-Lite) and ICMP's type/code. */
const PORT_PROTOS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOS = new Set([1, 58]);
/** Keys that belong to the tuple being read; any other key ends it. */
const TUPLE_KEYS = new Set(['dst', 'sport', 'dport', 'type', 'code', 'packets', 'bytes']);

/** What conntrack prints on stderr at the end; it describes no flow. */
const SUMMARY =
  /^conntrack v\S+ \(conntrack-tools\): \d+ flow (?:events|entries) ha(?:ve|s) been shown\.$/;

export type LineResult =
  | { kind: 'event'; event: CtEvent; stamped: boolean }
  | { kind: 'ignored' }
  | { kind: 'bad'; reason: string };

interface TupleDraft {
  src?: Uint8Array;
  dst?: Uint8Array;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  id?: number;
  packets?: number;
  bytes?: number;
}

class Bad extends Error {}

/**
 * One line of conntrack's default text output, with or without `-o timestamp,id,extended`:
 * `[1700000000.123456]\t [UPDATE] ipv4 2 tcp 6 60 SYN_RECV src=… dst=… sport=… dport=… src=… …
 * [ASSURED] mark=0 zone=3 use=1 id=123`. No `[NEW]`/`[UPDATE]`/`[DESTROY]` tag: a table entry
 * (`conntrack -L`), a SNAPSHOT event. `time` is used when the line has no timestamp.
 *
 * Status bits: conntrack prints `[UNREPLIED]` exactly when IPS_SEEN_REPLY is clear (the kernel
 * sends the status with every event and entry), so SEEN_REPLY is set iff the line lacks it;
 * ASSURED iff `[ASSURED]`; CONFIRMED always (only confirmed entries are reported); no other bit.
 */
export function parseConntrackLine(line: string, time: number): LineResult {
  const text = line.trim();
  if (text === '' || SUMMARY.test(text)) return { kind: 'ignored' };
  try {
    return { kind: 'event', ...parseEntry(text.split(/\s+/), time) };
  } catch (err) {
    if (err instanceof Bad) return { kind: 'bad', reason: err.message };
    throw err;
  }
}

function parseEntry(toks: string[], fallback: number): { event: CtEvent; stamped: boolean } {
  let i = 0;
  let time = fallback;
  const stamp = /^\[(\d{1,12})\.(\d{1,6})\]$/.exec(toks[i] ?? '');
  if (stamp !== null) {
    time = Number(stamp[1]) * 1e6 + Number((stamp[2] as string).padEnd(6, '0'));
    i++;
  }
  const type = TYPES.get(toks[i] ?? '') ?? EventType.SNAPSHOT;
  if (type !== EventType.SNAPSHOT) i++;
  let family: 4 | 6 | undefined;
  if ((toks[i] === 'ipv4' || toks[i] === 'ipv6') && /^\d+$/.test(toks[i + 1] ?? '')) {
    family = toks[i] === 'ipv4' ? 4 : 6;
    i += 2;
  }
  if (!/^[a-z][a-z0-9-]*$/.test(toks[i] ?? '') || !/^\d{1,3}$/.test(toks[i + 1] ?? '')) {
    throw new Bad('no protocol name and number (like "tcp 6")');
  }
  const proto = Number(toks[i + 1]);
  if (proto > 255) throw new Bad(`protocol number ${proto} is above 255`);
  i += 2;
  if (/^\d+$/.test(toks[i] ?? '')) i++; // the timeout, absent on DESTROY
  let tcpState: number | undefined;
  if (/^[A-Z][A-Z0-9_]*$/.test(toks[i] ?? '')) {
    const name = toks[i] as string;
    if (proto === 6) {
      tcpState = TCP_STATES.get(name);
      if (tcpState === undefined) throw new Bad(`unknown TCP state ${name}`);
    }
    i++; // SCTP and DCCP print their own states: not a TCP state
  }

  const tuples: TupleDraft[] = [];
  let open: TupleDraft | undefined;
  let unreplied = false;
  let assured = false;
  let id: number | undefined;
  let mark: number | undefined;
  let zone: number | undefined;
  for (; i < toks.length; i++) {
    const tok = toks[i] as string;
    if (/^\[[A-Z_]+\]$/.test(tok)) {
      if (tok === '[UNREPLIED]') unreplied = true;
      else if (tok === '[ASSURED]') assured = true;
      // [OFFLOAD], [HW_OFFLOAD], [USERSPACE]: nothing the flow table needs.
      open = undefined;
      continue;
    }
    const eq = tok.indexOf('=');
    if (eq <= 0) throw new Bad(`unexpected "${tok}"`);
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    if (key === 'src') {
      if (tuples.length === 2) throw new Bad('more than two src= (an entry has two tuples)');
      open = { src: address(value) };
      tuples.push(open);
    } else if (key === 'id' && open?.code !== undefined && open.id === undefined) {
      open.id = uint(value, 0xffff, 'ICMP id'); // right after type= code=: the tuple's ICMP id
    } else if (open !== undefined && TUPLE_KEYS.has(key)) {
      setTupleField(open, key, value);
    } else {
      open = undefined;
      if (key === 'id') id = uint(value, 0xffffffff, 'id');
      else if (key === 'mark') mark = uint(value, 0xffffffff, 'mark');
      else if (key === 'zone') zone = uint(value, 0xffff, 'zone');
      // use=, secctx=, labels=, delta-time=, portid=, progname=, …: not part of the model.
    }
  }

  const [o, r] = tuples;
  if (o === undefined || r === undefined) throw new Bad('needs two tuples (src= … src= …)');
  const orig = tuple(o, proto, 'original');
  const reply = tuple(r, proto, 'reply');
  const fam = family ?? (orig.src.length === 4 ? 4 : 6);
  const len = fam === 4 ? 4 : 16;
  for (const a of [orig.src, orig.dst, reply.src, reply.dst]) {
    if (a.length !== len) throw new Bad(`an address is not IPv${fam}`);
  }
  const status =
    (unreplied ? 0 : Status.SEEN_REPLY) | (assured ? Status.ASSURED : 0) | Status.CONFIRMED;
  const event: CtEvent = {
    type,
    family: fam,
    proto,
    status,
    id: id ?? 0,
    time,
    timeKernel: false,
    orig,
    reply,
  };
  if (tcpState !== undefined) event.tcpState = tcpState;
  if (mark !== undefined && mark !== 0) event.mark = mark;
  if (zone !== undefined && zone !== 0) event.zone = zone;
  if (
    o.packets !== undefined &&
    o.bytes !== undefined &&
    r.packets !== undefined &&
    r.bytes !== undefined
  ) {
    event.counters = {
      origPackets: o.packets,
      origBytes: o.bytes,
      replyPackets: r.packets,
      replyBytes: r.bytes,
    };
  }
  return { event, stamped: stamp !== null };
}

function setTupleField(t: TupleDraft, key: string, value: string): void {
  const k = key as 'dst' | 'sport' | 'dport' | 'type' | 'code' | 'packets' | 'bytes';
  if (t[k] !== undefined) throw new Bad(`${key}= twice in one tuple`);
  if (k === 'dst') t.dst = address(value);
  else if (k === 'sport' || k === 'dport') t[k] = uint(value, 0xffff, key);
  else if (k === 'type' || k === 'code') t[k] = uint(value, 0xff, key);
  else t[k] = uint(value, Number.MAX_SAFE_INTEGER, key);
}

function tuple(d: TupleDraft, proto: number, which: string): Tuple {
  if (d.src === undefined || d.dst === undefined) throw new Bad(`the ${which} tuple has no dst=`);
  if (PORT_PROTOS.has(proto) && (d.sport === undefined || d.dport === undefined)) {
    throw new Bad(`the ${which} tuple has no sport= or dport=`);
  }
  if (ICMP_PROTOS.has(proto) && (d.type === undefined || d.code === undefined)) {
    throw new Bad(`the ${which} tuple has no type= or code=`);
  }
  const icmp = ICMP_PROTOS.has(proto);
  return {
    src: d.src,
    dst: d.dst,
    sport: icmp ? 0 : (d.sport ?? 0),
    dport: icmp ? 0 : (d.dport ?? 0),
    icmpType: icmp ? (d.type ?? 0) : 0,
    icmpCode: icmp ? (d.code ?? 0) : 0,
    icmpId: icmp ? (d.id ?? 0) : 0,
  };
}

function uint(value: string, max: number, what: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max) throw new Bad(`${what}=${value} is not an integer 0–${max}`);
  return n;
}

/** An address as 4 or 16 network-order bytes. */
export function address(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new Bad(`"${text}" is not an IP address`);
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 !== null) {
    const [a = 0, b = 0, c = 0, d = 0] = (v4[1] as string).split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, k) => {
    const n = Number.parseInt(g, 16);
    out[2 * k] = n >> 8;
    out[2 * k + 1] = n & 0xff;
  });
  return out;
}

/** A line that could not be read: its 1-based number, why, and its text. */
export interface BadLine {
  line: number;
  reason: string;
  text: string;
}

export interface ParsedCapture {
  events: CtEvent[];
  bad: BadLine[];
  /** Entries with an event tag (conntrack -E) and without (conntrack -L). */
  tagged: number;
  untagged: number;
  /** Events that had no `[seconds.micros]` timestamp and got the import time. */
  unstamped: number;
}

/**
 * Every line of a capture. Lines without a timestamp get `importUs` plus their ordinal among
 * such lines (µs), so they keep file order; blank lines and conntrack's closing summary line
 * ("… flow events have been shown.") are not entries and are not counted as bad.
 */
export function parseConntrackText(text: string, importUs: number): ParsedCapture {
  const out: ParsedCapture = { events: [], bad: [], tagged: 0, untagged: 0, unstamped: 0 };
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, k) => {
    const r = parseConntrackLine(line, importUs + out.unstamped);
    if (r.kind === 'bad') out.bad.push({ line: k + 1, reason: r.reason, text: line });
    if (r.kind !== 'event') return;
    out.events.push(r.event);
    if (!r.stamped) out.unstamped++;
    if (r.event.type === EventType.SNAPSHOT) out.untagged++;
    else out.tagged++;
  });
  return out;
}
