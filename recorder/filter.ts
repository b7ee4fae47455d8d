// The recorder's event filters (--proto, --mark, --no-loopback, --src, --dst), parsed once and
// applied per batch (recorder/bpf.ts compiles the same filter for the kernel).
import { InvalidArgumentError } from 'commander';
import { type Cidr, formatCidr, parseCidr } from '../analyzer/core/prefix.js';
import type { CtEvent } from '../journal/event.js';

export interface EventFilter {
  /** IP protocol numbers to keep; undefined keeps all. */
  protos?: number[];
  /** Keep events whose (mark & mask) === value; an event without a mark has mark 0. */
  mark?: { value: number; mask: number };
  /** Drop flows whose original source or destination is a loopback address. */
  noLoopback?: boolean;
  /** Keep flows whose original source is in one of these prefixes (ORed; IPv4 and IPv6). */
  src?: Cidr[];
  /** Keep flows whose original destination is in one of these (ORed; ANDed with src). */
  dst?: Cidr[];
}

/** --src / --dst each take at most this many prefixes: the kernel filter stays far below 4,096 instructions. */
export const MAX_PREFIXES = 64;

/**
 * Commander's collector for a repeatable --src / --dst: `10.0.0.0/8`, `fd00::/8`, `192.0.2.7`
 * (a /32 or /128), or several separated by commas.
 */
export function collectCidrs(value: string, previous: Cidr[] | undefined): Cidr[] {
  const out = [...(previous ?? [])];
  for (const word of value.split(',')) {
    const c = parseCidr(word.trim());
    if (c === undefined) {
      throw new InvalidArgumentError(
        `'${word}' is not an address prefix: use ADDRESS[/LENGTH], e.g. 10.0.0.0/8 or fd00::/8.`,
      );
    }
    if (
      !out.some((o) => o.family === c.family && o.prefix === c.prefix && o.network === c.network)
    ) {
      out.push(c);
    }
  }
  if (out.length > MAX_PREFIXES) {
    throw new InvalidArgumentError(`give at most ${MAX_PREFIXES} prefixes.`);
  }
  return out;
}

/** The prefixes as the journal header records them: `10.0.0.0/8`, `192.0.2.7`. */
export function formatCidrs(list: readonly Cidr[]): string[] {
  return list.map(formatCidr);
}

const PROTO_NAMES: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  dccp: 33,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

/** `tcp,udp,58` → [6, 17, 58] (names as in /etc/protocols, or numbers 0–255). */
export function parseProtos(value: string): number[] {
  const out: number[] = [];
  for (const word of value.split(',')) {
    const w = word.trim().toLowerCase();
    const n = /^\d{1,3}$/.test(w) ? Number(w) : PROTO_NAMES[w];
    if (n === undefined || n > 255) {
      throw new InvalidArgumentError(
        `unknown protocol '${word}': use ${Object.keys(PROTO_NAMES).join(', ')} or a number 0-255.`,
      );
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** `0x10`, `16/0xff`, like conntrack's --mark VALUE[/MASK] (decimal or 0x hex, 32 bits). */
export function parseMark(value: string): { value: number; mask: number } {
  const m = /^(0x[0-9a-f]{1,8}|\d{1,10})(?:\/(0x[0-9a-f]{1,8}|\d{1,10}))?$/i.exec(value.trim());
  const v = Number(m?.[1]);
  const mask = m?.[2] === undefined ? 0xffffffff : Number(m[2]);
  if (!m || v > 0xffffffff || mask > 0xffffffff) {
    throw new InvalidArgumentError('use VALUE[/MASK], 32-bit decimal or 0x hex, e.g. 0x10/0xff.');
  }
  return { value: (v & mask) >>> 0, mask };
}

function isLoopback(addr: Uint8Array): boolean {
  if (addr.length === 4) return addr[0] === 127;
  for (let i = 0; i < 15; i++) if (addr[i] !== 0) return false;
  return addr[15] === 1;
}

/** A prefix as bytes: an address is in it when (byte & mask) === net for every byte. */
interface BytePrefix {
  family: 4 | 6;
  net: Uint8Array;
  mask: Uint8Array;
}

function bytePrefix(c: Cidr): BytePrefix {
  const n = c.family === 4 ? 4 : 16;
  const net = new Uint8Array(n);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const bits = Math.max(0, Math.min(8, c.prefix - 8 * i));
    const m = (0xff << (8 - bits)) & 0xff;
    mask[i] = m;
    net[i] = Number((c.network >> BigInt(8 * (n - 1 - i))) & 0xffn) & m;
  }
  return { family: c.family, net, mask };
}

function inAny(list: readonly BytePrefix[], family: number, addr: Uint8Array): boolean {
  outer: for (const p of list) {
    if (p.family !== family) continue;
    for (let i = 0; i < p.net.length; i++) {
      if (((addr[i] ?? 0) & (p.mask[i] ?? 0)) !== p.net[i]) continue outer;
    }
    return true;
  }
  return false;
}

/** The predicate for a filter, or undefined when it keeps everything (no per-event work). */
export function compileFilter(f: EventFilter): ((ev: CtEvent) => boolean) | undefined {
  const { protos, mark, noLoopback } = f;
  const src = f.src?.map(bytePrefix);
  const dst = f.dst?.map(bytePrefix);
  if (
    protos === undefined &&
    mark === undefined &&
    noLoopback !== true &&
    src === undefined &&
    dst === undefined
  ) {
    return undefined;
  }
  return (ev) =>
    (protos === undefined || protos.includes(ev.proto)) &&
    (mark === undefined || ((ev.mark ?? 0) & mark.mask) >>> 0 === mark.value) &&
    !(noLoopback === true && (isLoopback(ev.orig.src) || isLoopback(ev.orig.dst))) &&
    (src === undefined || inAny(src, ev.family, ev.orig.src)) &&
    (dst === undefined || inAny(dst, ev.family, ev.orig.dst));
}

/** Keeps the events the predicate accepts, in place; returns how many were dropped. */
export function filterInPlace(batch: CtEvent[], keep: (ev: CtEvent) => boolean): number {
  let n = 0;
  for (const ev of batch) if (keep(ev)) batch[n++] = ev;
  const dropped = batch.length - n;
  batch.length = n;
  return dropped;
}
