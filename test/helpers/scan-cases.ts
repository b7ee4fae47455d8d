// The cases every scan of an events payload is held to (replay's events-scan and events-v2, the export's scan-v1/v2): plain, damaged and edge-valued payloads.
import fc from 'fast-check';
import type { CtEvent } from '../../journal/event.js';
import type { EventColumns } from '../../journal/event-columns.js';
import { encodeEvents, inverseOf } from '../../journal/events-codec.js';
import { packr, unpackr } from '../../journal/format.js';
import { arbEvent } from './arbitraries.js';
import { applyByteMutation, arbByteMutation } from './mutations.js';

/**
 * The columns of the first n events as plain arrays (the arrays are reused and longer); the
 * reply columns only where nat says they hold something.
 */
export function columnsSnapshot(c: EventColumns): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const name of [
    'nat',
    'type',
    'family',
    'proto',
    'status',
    'mark',
    'time',
    'sport',
    'dport',
    'icmpType',
    'icmpCode',
  ] as const) {
    out[name] = [...c[name].subarray(0, c.n)];
  }
  out.src = [...c.src.subarray(0, 4 * c.n)];
  out.dst = [...c.dst.subarray(0, 4 * c.n)];
  const reply: number[] = [];
  for (let i = 0; i < c.n; i++) {
    if (c.nat[i] === 0) continue;
    reply.push(
      i,
      ...c.replySrc.subarray(4 * i, 4 * i + 4),
      ...c.replyDst.subarray(4 * i, 4 * i + 4),
    );
    reply.push(c.replySport[i] as number, c.replyDport[i] as number);
  }
  out.reply = reply;
  return out;
}

/**
 * Events as a recorder writes most of them: no NAT (the reply tuple is elided), times a few
 * µs to seconds apart after the first. These take the format 1 replay's fast path (fastEvent).
 */
export const arbPlainEvents = fc
  .tuple(
    fc.array(arbEvent(), { minLength: 1, maxLength: 20 }),
    fc.array(fc.nat(5_000_000), { minLength: 20, maxLength: 20 }),
  )
  .map(([evs, gaps]) => {
    let time = evs[0]?.time ?? 0;
    return evs.map((ev, i) => {
      time += i === 0 ? 0 : (gaps[i] as number);
      const plain = { ...ev, time, reply: inverseOf(ev.family, ev.proto, ev.orig) };
      if (plain.start !== undefined && plain.start > time) plain.start = time;
      return plain;
    });
  });

/** A writer's payload of `events` with one to three bytes mutated (arbByteMutation). */
export function arbDamaged(
  events: fc.Arbitrary<CtEvent[]>,
  encode: (evs: CtEvent[]) => Uint8Array,
): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(events, fc.array(arbByteMutation, { minLength: 1, maxLength: 3 }))
    .map(([evs, ms]) => {
      const p = encode(evs);
      return ms.reduce(applyByteMutation, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    });
}

/** Values at and past every range decodeEvents checks, and of every other msgpack type. */
export const EDGE_VALUES: unknown[] = [
  0,
  1,
  -1,
  4,
  5,
  6,
  7,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  1.5,
  null,
  'x',
  true,
  [],
  [1, 2, 3],
  [1, 2, 3, 4],
  new Uint8Array(4),
  new Uint8Array(16),
  new Uint8Array(3),
];

/**
 * A format 1 payload with one field (or an item of reply/icmp/counters) replaced by an edge
 * value: a scan has to meet every range check of decodeEvents, or decline the payload.
 */
export function arbEdgePayload(fields: number): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      fc.oneof(fc.array(arbEvent(), { minLength: 1, maxLength: 4 }), arbPlainEvents),
      fc.nat(),
      fc.nat(),
      fc.nat(),
      fc.constantFrom(...EDGE_VALUES),
    )
    .map(([evs, which, field, inner, value]) => {
      const raw = unpackr.unpack(encodeEvents(evs)) as unknown[][];
      const ev = raw[which % raw.length] as unknown[];
      const f = field % (fields + 1);
      const target = ev[f];
      if (Array.isArray(target) && target.length > 0 && inner % 2 === 0) {
        target[inner % target.length] = value;
      } else {
        ev[f] = value;
      }
      return packr.pack(raw);
    });
}
