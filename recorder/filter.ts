// The recorder's event filters (--proto, --mark, --no-loopback), parsed once and applied per batch.
import { InvalidArgumentError } from 'commander';
import type { CtEvent } from '../journal/event.js';

export interface EventFilter {
  /** IP protocol numbers to keep; undefined keeps all. */
  protos?: number[];
  /** Keep events whose (mark & mask) === value; an event without a mark has mark 0. */
  mark?: { value: number; mask: number };
  /** Drop flows whose original source or destination is a loopback address. */
  noLoopback?: boolean;
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

/** The predicate for a filter, or undefined when it keeps everything (no per-event work). */
export function compileFilter(f: EventFilter): ((ev: CtEvent) => boolean) | undefined {
  const { protos, mark, noLoopback } = f;
  if (protos === undefined && mark === undefined && noLoopback !== true) return undefined;
  return (ev) =>
    (protos === undefined || protos.includes(ev.proto)) &&
    (mark === undefined || ((ev.mark ?? 0) & mark.mask) >>> 0 === mark.value) &&
    !(noLoopback === true && (isLoopback(ev.orig.src) || isLoopback(ev.orig.dst)));
}

/** Keeps the events the predicate accepts, in place; returns how many were dropped. */
export function filterInPlace(batch: CtEvent[], keep: (ev: CtEvent) => boolean): number {
  let n = 0;
  for (const ev of batch) if (keep(ev)) batch[n++] = ev;
  const dropped = batch.length - n;
  batch.length = n;
  return dropped;
}
