// Parses the text of `conntrack -E` (events) and `conntrack -L` (table entries) into CtEvents.
import {
  type CtEvent,
  EventType,
  type EventTypeCode,
  Status,
  type Tuple,
} from '../../journal/event.js';
import { parseAddress } from '../core/address.js';
import { hasKernelTimes, type KernelTimes, takeKernelTimes } from './ktimestamp.js';
import { MAX_LINE, OVERLONG_KEPT } from './lines.js';

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

/**
 * The protocol names conntrack prints (libnetfilter_conntrack's proto2str); any other protocol
 * is `unknown` with its number. A known name with another number is a contradiction.
 */
const PROTO_NAMES = new Map([
  ['icmp', 1],
  ['tcp', 6],
  ['udp', 17],
  ['dccp', 33],
  ['gre', 47],
  ['icmpv6', 58],
  ['sctp', 132],
  ['udplite', 136],
]);
/** `-o extended`'s layer-3 names and their address family numbers (AF_INET, AF_INET6). */
const FAMILY_NUMBERS = new Map([
  ['ipv4', 2],
  ['ipv6', 10],
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
  src: Uint8Array | undefined;
  dst: Uint8Array | undefined;
  sport: number | undefined;
  dport: number | undefined;
  type: number | undefined;
  code: number | undefined;
  id: number | undefined;
  packets: number | undefined;
  bytes: number | undefined;
}

/** Every field present from the start: one object shape keeps the hot path monomorphic. */
function draft(src: Uint8Array): TupleDraft {
  return {
    src,
    dst: undefined,
    sport: undefined,
    dport: undefined,
    type: undefined,
    code: undefined,
    id: undefined,
    packets: undefined,
    bytes: undefined,
  };
}

class Bad extends Error {}

/**
 * One line of conntrack's default text output, with or without any of
 * `-o timestamp,id,extended,ktimestamp`: `[1700000000.123456]\t [UPDATE] ipv4 2 tcp 6 60
 * SYN_RECV src=… dst=… sport=… dport=… src=… … [ASSURED] mark=0 zone=3 use=1 id=123`.
 * No `[NEW]`/`[UPDATE]`/`[DESTROY]` tag: a table entry (`conntrack -L`), a SNAPSHOT event.
 * `time` is used when the line has no time of its own. `[start=…] [stop=…]` (ktimestamp.ts)
 * give the flow's start and maybe the event time (kernelEventTime). A protocol or family name
 * that contradicts its number is a bad line.
 *
 * Status bits: conntrack prints `[UNREPLIED]` exactly when IPS_SEEN_REPLY is clear (the kernel
 * sends the status with every event and entry), so SEEN_REPLY is set iff the line lacks it;
 * ASSURED iff `[ASSURED]`; CONFIRMED always (only confirmed entries are reported); no other bit.
 */
export function parseConntrackLine(line: string, time: number): LineResult {
  const text = line.trim();
  if (text === '' || (text.startsWith('conntrack v') && SUMMARY.test(text))) {
    return { kind: 'ignored' };
  }
  try {
    let kernel: KernelTimes | undefined;
    let body = text;
    if (hasKernelTimes(text)) {
      const k = takeKernelTimes(text);
      if (typeof k === 'string') return { kind: 'bad', reason: k };
      kernel = k;
      body = k.rest.trim();
    }
    const { event, stamped } = parseEntry(body.split(/\s+/), time, kernel);
    return { kind: 'event', event, stamped };
  } catch (err) {
    if (err instanceof Bad) return { kind: 'bad', reason: err.message };
    throw err;
  }
}

function parseEntry(
  toks: string[],
  fallback: number,
  kernel: KernelTimes | undefined,
): { event: CtEvent; stamped: boolean } {
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
  const afNumber = FAMILY_NUMBERS.get(toks[i] ?? '');
  if (afNumber !== undefined && /^\d+$/.test(toks[i + 1] ?? '')) {
    if (Number(toks[i + 1]) !== afNumber) {
      throw new Bad(`"${toks[i]} ${toks[i + 1]}": ${toks[i]} is family ${afNumber}`);
    }
    family = toks[i] === 'ipv4' ? 4 : 6;
    i += 2;
  }
  if (!/^[a-z][a-z0-9-]*$/.test(toks[i] ?? '') || !/^\d{1,3}$/.test(toks[i + 1] ?? '')) {
    throw new Bad('no protocol name and number (like "tcp 6")');
  }
  const proto = Number(toks[i + 1]);
  if (proto > 255) throw new Bad(`protocol number ${proto} is above 255`);
  const named = PROTO_NAMES.get(toks[i] as string);
  if (named !== undefined && named !== proto) {
    throw new Bad(`"${toks[i]} ${proto}": ${toks[i]} is protocol ${named}, not ${proto}`);
  }
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
    if (tok.charCodeAt(0) === 0x5b && /^\[[A-Z_]+\]$/.test(tok)) {
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
      open = draft(address(value));
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
  const kernelTime =
    kernel === undefined ? undefined : kernelEventTime(kernel, type, stamp !== null);
  if (kernel?.start !== undefined) event.start = kernel.start;
  if (kernelTime !== undefined) {
    event.time = kernelTime;
    event.timeKernel = true;
  }
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
  return { event, stamped: stamp !== null || kernelTime !== undefined };
}

/**
 * The event time `-o ktimestamp` gives, as ct-record would have recorded it: a DESTROY's stop
 * (when the kernel destroyed the flow; conntrack may print it seconds later, after the garbage
 * collector ran); for a table entry with no receive time, its start, the one time the line
 * holds. Otherwise none: the receive time or the import time stays.
 */
function kernelEventTime(
  k: KernelTimes,
  type: EventTypeCode,
  received: boolean,
): number | undefined {
  if (type === EventType.DESTROY) return k.stop;
  if (type === EventType.SNAPSHOT && !received) return k.start;
  return undefined;
}

function setTupleField(t: TupleDraft, key: string, value: string): void {
  const twice = () => new Bad(`${key}= twice in one tuple`);
  switch (key) {
    case 'dst':
      if (t.dst !== undefined) throw twice();
      t.dst = address(value);
      break;
    case 'sport':
      if (t.sport !== undefined) throw twice();
      t.sport = uint(value, 0xffff, key);
      break;
    case 'dport':
      if (t.dport !== undefined) throw twice();
      t.dport = uint(value, 0xffff, key);
      break;
    case 'type':
      if (t.type !== undefined) throw twice();
      t.type = uint(value, 0xff, key);
      break;
    case 'code':
      if (t.code !== undefined) throw twice();
      t.code = uint(value, 0xff, key);
      break;
    case 'packets':
      if (t.packets !== undefined) throw twice();
      t.packets = uint(value, Number.MAX_SAFE_INTEGER, key);
      break;
    case 'bytes':
      if (t.bytes !== undefined) throw twice();
      t.bytes = uint(value, Number.MAX_SAFE_INTEGER, key);
      break;
    default:
      throw new Error(`import: ${key} is not a tuple key`); // TUPLE_KEYS and this switch differ
  }
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
  let ok = value.length > 0;
  for (let i = 0; ok && i < value.length; i++) {
    const c = value.charCodeAt(i);
    ok = c >= 0x30 && c <= 0x39;
  }
  const n = Number(value);
  if (!ok || n > max) throw new Bad(`${what}=${value} is not an integer 0–${max}`);
  return n;
}

/** An address as 4 or 16 network-order bytes, or a bad line saying what it is not. */
function address(text: string): Uint8Array {
  const b = parseAddress(text);
  if (b === undefined) throw new Bad(`"${text}" is not an IP address`);
  return b;
}

/** A line that could not be read: its 1-based number, why, and its text. */
export interface BadLine {
  line: number;
  reason: string;
  text: string;
}

/**
 * Reads a capture line by line and keeps only counts, the time range and the first `keepBad`
 * unreadable lines, so a pass over any size of capture holds one line at a time. Lines without
 * a timestamp get `importUs` plus their ordinal among such lines (µs), so they keep file order;
 * blank lines and conntrack's closing summary ("… flow events have been shown.") are not
 * entries and are not counted as bad.
 */
export class CaptureParser {
  readonly importUs: number;
  readonly keepBad: number;
  /** The first `keepBad` unreadable lines. */
  readonly bad: BadLine[] = [];
  /** Every unreadable line. */
  badLines = 0;
  entries = 0;
  /** Entries with an event tag (conntrack -E) and without (conntrack -L). */
  tagged = 0;
  untagged = 0;
  /** Entries that had no `[seconds.micros]` timestamp and got the import time. */
  unstamped = 0;
  /** Earliest and latest entry time (µs); start is +∞ until an entry is read. */
  start = Number.POSITIVE_INFINITY;
  stop = 0;

  constructor(importUs: number, keepBad = Number.POSITIVE_INFINITY) {
    this.importUs = importUs;
    this.keepBad = keepBad;
  }

  /**
   * One line without its line end; `overlong` when it was longer than MAX_LINE and `text` is
   * only its beginning. Returns the entry's event, or undefined for any other line.
   */
  line(text: string, line: number, overlong = false): CtEvent | undefined {
    const r: LineResult = overlong
      ? { kind: 'bad', reason: `longer than ${MAX_LINE} characters` }
      : parseConntrackLine(text, this.importUs + this.unstamped);
    if (r.kind === 'event') {
      const ev = r.event;
      this.entries++;
      if (!r.stamped) this.unstamped++;
      if (ev.type === EventType.SNAPSHOT) this.untagged++;
      else this.tagged++;
      if (ev.time < this.start) this.start = ev.time;
      if (ev.time > this.stop) this.stop = ev.time;
      return ev;
    }
    if (r.kind === 'bad') {
      // Copied: a slice of the chunk it came from would keep that whole chunk alive.
      if (this.bad.length < this.keepBad)
        this.bad.push({ line, reason: r.reason, text: copy(text) });
      this.badLines++;
    }
    return undefined;
  }
}

function copy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
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
 * A whole capture held in one string, split with String.split: the reference the streaming
 * import (LineSplitter + CaptureParser, in ct-analyze import) must agree with, and handy for
 * small texts. Holds every event; not for captures of unbounded size.
 */
export function parseConntrackText(text: string, importUs: number): ParsedCapture {
  const p = new CaptureParser(importUs);
  const events: CtEvent[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, k) => {
    const overlong = raw.length > MAX_LINE;
    const line = overlong ? raw.slice(0, OVERLONG_KEPT) : raw.replace(/\r$/, '');
    const ev = p.line(line, k + 1, overlong);
    if (ev !== undefined) events.push(ev);
  });
  return {
    events,
    bad: p.bad,
    tagged: p.tagged,
    untagged: p.untagged,
    unstamped: p.unstamped,
  };
}
