// The rows docs/export.md promises, built by routes of their own (BigInt times, Buffer hex): what the export tests compare the writers with.
import { formatAddress } from '../../analyzer/core/address.js';
import type { CtEvent } from '../../journal/event.js';
import { HEADER } from './journals.js';

/** The 16-byte form as hex: IPv4 as ::ffff:a.b.c.d. */
export function bin16(a: Uint8Array): string {
  const b = a.length === 4 ? Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, ...a]) : a;
  return Buffer.from(b).toString('hex');
}

/** RFC 3339 with 6 fraction digits, by a route of its own (BigInt, Date of the millisecond). */
export function rfc3339(us: number): string {
  const ms = Number(BigInt(us) / 1000n);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 19)}.${String(us % 1e6).padStart(6, '0')}Z`;
}

/** The row docs/export.md promises for an event, as JSON values. */
export function expectedRow(
  ev: CtEvent,
  seq: number,
  host: string,
  journal: string,
  /** port_lo and port_hi: the journal's ip_local_port_range. */
  range: readonly [number | null, number | null] | null = HEADER.sysctls.ip_local_port_range,
) {
  const o = ev.orig;
  const r = ev.reply;
  return {
    host,
    journal,
    seq,
    time: rfc3339(ev.time),
    time_us: ev.time,
    time_kernel: ev.timeKernel,
    type: ev.type,
    family: ev.family,
    proto: ev.proto,
    status: ev.status,
    id: ev.id,
    src: formatAddress(o.src),
    dst: formatAddress(o.dst),
    src_bin: bin16(o.src),
    dst_bin: bin16(o.dst),
    sport: o.sport,
    dport: o.dport,
    icmp_type: o.icmpType,
    icmp_code: o.icmpCode,
    icmp_id: o.icmpId,
    reply_src: formatAddress(r.src),
    reply_dst: formatAddress(r.dst),
    reply_src_bin: bin16(r.src),
    reply_dst_bin: bin16(r.dst),
    reply_sport: r.sport,
    reply_dport: r.dport,
    tcp_state: ev.tcpState ?? null,
    start_us: ev.start ?? null,
    mark: ev.mark ?? null,
    zone: ev.zone ?? null,
    orig_packets: ev.counters?.origPackets ?? null,
    orig_bytes: ev.counters?.origBytes ?? null,
    reply_packets: ev.counters?.replyPackets ?? null,
    reply_bytes: ev.counters?.replyBytes ?? null,
    port_lo: range?.[0] ?? null,
    port_hi: range?.[1] ?? null,
  };
}
