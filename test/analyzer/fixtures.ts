// Events and journals the analyzer tests read (temp files removed by t.teardown).

import fc from 'fast-check';
import { addressBytes } from '../../analyzer/core/address.js';
import type { Collapse } from '../../analyzer/core/flows.js';
import type { JournalSummary } from '../../analyzer/core/replay.js';
import type { CtEvent } from '../../journal/event.js';
import { HEADER } from '../helpers/journals.js';

export { tempDir, writeJournal } from '../helpers/journals.js';

function tuple(src: string, dst: string, sport: number, dport: number, icmp: number[] = [0, 0]) {
  return {
    src: addressBytes(src),
    dst: addressBytes(dst),
    sport,
    dport,
    icmpType: icmp[0] ?? 0,
    icmpCode: icmp[1] ?? 0,
    icmpId: 7,
  };
}

/**
 * A hand-made event: `ev(6, '10.0.0.1', '10.0.0.2', 40000, 443, 0x0e)`; for ICMP give ports 0
 * and the [type, code] pair last.
 */
export function ev(
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  status: number,
  icmp: number[] = [0, 0],
): CtEvent {
  const orig = tuple(src, dst, sport, dport, icmp);
  return {
    type: 1,
    family: src.includes(':') ? 6 : 4,
    proto,
    status,
    id: 1,
    time: HEADER.start + 1,
    timeKernel: false,
    orig,
    reply: { ...orig, src: orig.dst, dst: orig.src, sport: dport, dport: sport },
  };
}

/** Events covering all six tables, confirmed or not, with the lines the seed tool prints. */
export const SEED_EVENTS: CtEvent[] = [
  ev(6, '192.168.100.118', '65.8.205.11', 40414, 443, 0x0e),
  ev(6, '192.168.100.111', '157.240.12.54', 51000, 443, 0x08),
  ev(6, '192.168.100.111', '157.240.12.54', 51002, 443, 0x0a),
  ev(17, '0.0.0.0', '255.255.255.255', 68, 67, 0x08),
  ev(17, '192.168.100.203', '8.8.8.8', 53798, 53, 0x0a),
  ev(1, '192.168.100.152', '172.217.162.196', 0, 0, 0x0a, [8, 0]),
  ev(6, '2001:db8::10', '2001:db8:0:1::443', 33000, 443, 0x0e),
  ev(17, 'fe80::1', 'ff02::fb', 5353, 5353, 0x08),
  ev(58, '2001:db8::10', '2606:4700:4700::1111', 0, 0, 0x0a, [128, 0]),
  ev(47, '10.0.0.1', '10.0.0.2', 0, 0, 0x0a),
];

export const SEED_LINES = [
  ' TCPv4 [           0] src = 192.168.100.111 (port=1024) to dst = 157.240.12.54 (port=443) (confirmed)',
  ' TCPv4 [           1] src = 192.168.100.118 (port=1024) to dst = 65.8.205.11 (port=443) (confirmed)',
  ' UDPv4 [           0] src = 0.0.0.0 (port=68) to dst = 255.255.255.255 (port=67)',
  ' UDPv4 [           1] src = 192.168.100.203 (port=1024) to dst = 8.8.8.8 (port=53) (confirmed)',
  'ICMPv4 [           0] src = 192.168.100.152 to dst = 172.217.162.196 (type=8 | code=0) (confirmed)',
  ' TCPv6 [           0] src = 2001:db8::10 (port=1024) to dst = 2001:db8:0:1::443 (port=443) (confirmed)',
  ' UDPv6 [           0] src = fe80::1 (port=1024) to dst = ff02::fb (port=5353)',
  'ICMPv6 [           0] src = 2001:db8::10 to dst = 2606:4700:4700::1111 (type=128 | code=0) (confirmed)',
];

/** The collapsing modes the properties run under: the default, none, and a port range. */
export const MODES: Collapse[] = [
  { kind: '1024' },
  { kind: 'none' },
  { kind: 'range', lo: 1000, hi: 1100 },
];
export const arbMode = fc.constantFrom(...MODES);

/** A clean, lossless, complete journal's summary as the report formats get it (one hour). */
export function journalSummary(
  over: Partial<Record<'path' | 'host' | 'kernel' | 'netns', string>> & {
    warnings?: string[];
  } = {},
): JournalSummary {
  const start = HEADER.start;
  const end = start + 3600e6;
  const events = SEED_EVENTS.length;
  return {
    path: over.path ?? 'fw1.mpk',
    host: over.host ?? 'fw1',
    kernel: over.kernel ?? '6.1',
    netns: over.netns ?? 'net:[1]',
    start,
    stop: end,
    events,
    complete: true,
    ignoredBytes: 0,
    coverage: {
      start,
      end,
      endFrom: 'trailer',
      events,
      byType: { new: events, update: 0, destroy: 0, snapshot: 0 },
      lost: 0,
      lostKnown: true,
      gaps: 0,
      byCause: {},
      complete: true,
      ignoredBytes: 0,
      nfConntrackEvents: 1,
      snapshotDumped: true,
      nfConntrackTimestamp: 1,
      nfConntrackAcct: 1,
      filters: [],
      importedFrom: null,
      warnings: over.warnings ?? [],
    },
  };
}
