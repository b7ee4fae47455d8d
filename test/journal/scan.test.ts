// The replay hot path (scanEvents) against the definition (decodeEvents): never a different answer.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { EventColumns } from '../../journal/event-columns.js';
import { decodeEvents, encodeEvents, inverseOf } from '../../journal/events-codec.js';
import { scanEvents } from '../../journal/events-scan.js';
import { EVENT_FIELDS, packr, unpackr } from '../../journal/format.js';
import { arbEvent, checkProperty } from '../helpers/arbitraries.js';
import { applyByteMutation, arbByteMutation } from '../helpers/mutations.js';

const FIELDS = EVENT_FIELDS.length;
const COLUMNS = [
  'nat',
  'type',
  'family',
  'proto',
  'status',
  'mark',
  'time',
  'src',
  'dst',
  'sport',
  'dport',
  'icmpType',
  'icmpCode',
] as const;

/**
 * The columns as plain arrays, only the first n events (the arrays are reused and longer);
 * the reply columns only where nat says they hold something.
 */
function snapshot(c: EventColumns): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const name of COLUMNS) {
    const per = name === 'src' || name === 'dst' ? 4 : 1;
    out[name] = [...c[name].subarray(0, c.n * per)];
  }
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

/** What decodeEvents makes of a payload, as columns; undefined when it rejects it. */
function reference(payload: Uint8Array): Record<string, number[]> | undefined {
  let events: ReturnType<typeof decodeEvents>;
  try {
    events = decodeEvents(payload, FIELDS);
  } catch {
    return undefined;
  }
  const c = new EventColumns();
  c.fill(events);
  return snapshot(c);
}

/** Asserts the scanner's claim: when it accepts, decodeEvents accepts with the same values. */
function agrees(payload: Uint8Array): boolean {
  const cols = new EventColumns();
  const accepted = scanEvents(payload, FIELDS, cols);
  if (accepted) assert.deepEqual(snapshot(cols), reference(payload));
  return accepted;
}

/**
 * Events as a recorder writes most of them: no NAT (the reply tuple is elided), times a few
 * µs to seconds apart after the first. These take the scanner's fast path (fastEvent); the
 * others mostly its general one.
 */
const arbPlainEvents = fc
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

const arbEvents = fc.oneof(fc.array(arbEvent(), { minLength: 0, maxLength: 20 }), arbPlainEvents);

t.test('scan: every payload the writer produces is scanned, to what decodeEvents reads', (t) => {
  checkProperty(
    t,
    fc.property(arbEvents, (evs) => {
      assert.equal(agrees(encodeEvents(evs)), true, 'a writer payload must take the fast path');
    }),
    { numRuns: 400 },
  );
  t.end();
});

t.test('scan: damaged payloads are never read differently from decodeEvents', (t) => {
  let accepted = 0;
  let refused = 0;
  checkProperty(
    t,
    fc.property(arbEvents, fc.array(arbByteMutation, { minLength: 1, maxLength: 3 }), (evs, ms) => {
      const payload = ms.reduce(applyByteMutation, encodeEvents(evs));
      if (agrees(payload)) accepted++;
      else refused++;
    }),
    { numRuns: 2000 },
  );
  t.ok(accepted > 0 && refused > 0, `both outcomes were exercised (${accepted}/${refused})`);
  t.end();
});

// One field (or reply/icmp/counters item) replaced with an edge value: every range check of
// decodeEvents has to be met by the scanner, or the scanner must decline the payload.
const EDGE_VALUES: unknown[] = [
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

t.test('scan: an edge value in any field is read as decodeEvents reads it, or declined', (t) => {
  let accepted = 0;
  checkProperty(
    t,
    fc.property(
      fc.oneof(fc.array(arbEvent(), { minLength: 1, maxLength: 4 }), arbPlainEvents),
      fc.nat(),
      fc.nat(),
      fc.nat(),
      fc.constantFrom(...EDGE_VALUES),
      (evs, which, field, inner, value) => {
        const raw = unpackr.unpack(encodeEvents(evs)) as unknown[][];
        const ev = raw[which % raw.length] as unknown[];
        const f = field % (FIELDS + 1);
        const target = ev[f];
        if (Array.isArray(target) && target.length > 0 && inner % 2 === 0) {
          target[inner % target.length] = value;
        } else {
          ev[f] = value;
        }
        if (agrees(packr.pack(raw))) accepted++;
      },
    ),
    { numRuns: 12_000 },
  );
  t.ok(accepted > 0, `edge values were accepted where valid (${accepted})`);
  t.end();
});

// Other encodings of the same values: a different writer (any msgpack library) may choose
// wider integers, floats or longer bin/array headers. The scanner may decline them, never
// misread them.
type Choice = number;

function encodeVariant(value: unknown, pick: () => Choice, out: number[]): void {
  if (value === null || value === undefined) {
    out.push(0xc0);
  } else if (typeof value === 'number') {
    encodeNumber(value, pick(), out);
  } else if (value instanceof Uint8Array) {
    const n = value.length;
    const form = pick() % 3;
    if (form === 0 && n < 0x100) out.push(0xc4, n);
    else if (form === 1 && n < 0x10000) out.push(0xc5, n >> 8, n & 0xff);
    else out.push(0xc6, 0, 0, n >> 8, n & 0xff);
    out.push(...value);
  } else if (Array.isArray(value)) {
    const n = value.length;
    const form = pick() % 3;
    if (form === 0 && n < 16) out.push(0x90 | n);
    else if (form === 1 && n < 0x10000) out.push(0xdc, n >> 8, n & 0xff);
    else out.push(0xdd, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    for (const v of value) encodeVariant(v, pick, out);
  } else {
    throw new Error(`unexpected value ${String(value)}`);
  }
}

function encodeNumber(v: number, choice: Choice, out: number[]): void {
  const bytes = (n: bigint, size: number) => {
    for (let i = size - 1; i >= 0; i--) out.push(Number((n >> BigInt(8 * i)) & 0xffn));
  };
  const big = BigInt(v);
  const forms: (() => void)[] = [
    () => {
      out.push(0xcb);
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      out.push(...b);
    },
  ];
  const form = (head: number, n: bigint, size: number) => () => {
    out.push(head);
    bytes(n, size);
  };
  if (v >= 0) {
    if (v < 0x80) forms.push(() => out.push(v));
    if (v < 0x100) forms.push(() => out.push(0xcc, v));
    if (v < 0x10000) forms.push(form(0xcd, big, 2));
    if (v < 2 ** 32) forms.push(form(0xce, big, 4));
    forms.push(form(0xcf, big, 8));
  }
  if (v >= -32 && v < 0) forms.push(() => out.push(0x100 + v));
  if (v >= -128 && v < 128) forms.push(form(0xd0, BigInt.asUintN(8, big), 1));
  if (v >= -32768 && v < 32768) forms.push(form(0xd1, BigInt.asUintN(16, big), 2));
  if (v >= -(2 ** 31) && v < 2 ** 31) forms.push(form(0xd2, BigInt.asUintN(32, big), 4));
  forms.push(form(0xd3, BigInt.asUintN(64, big), 8));
  (forms[choice % forms.length] as () => void)();
}

t.test(
  'scan: other valid encodings of the same events read the same or go to decodeEvents',
  (t) => {
    let fast = 0;
    checkProperty(
      t,
      fc.property(arbEvents, fc.array(fc.nat(), { minLength: 1, maxLength: 64 }), (evs, picks) => {
        const raw = unpackr.unpack(encodeEvents(evs));
        let k = 0;
        const out: number[] = [];
        encodeVariant(raw, () => picks[k++ % picks.length] as number, out);
        const payload = Uint8Array.from(out);
        const expected = reference(payload);
        assert.notEqual(expected, undefined, 'the variant is a valid payload');
        if (agrees(payload)) fast++;
      }),
      { numRuns: 600 },
    );
    t.ok(fast > 0, `variants took the fast path too (${fast})`);
    t.end();
  },
);

t.test('scan: a count larger than the payload could hold is declined, not allocated', (t) => {
  const cols = new EventColumns();
  t.equal(scanEvents(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), FIELDS, cols), false);
  t.equal(cols.capacity, 0, 'no room was made for 4 G events');
  t.equal(scanEvents(Uint8Array.of(0x90, 0x00), FIELDS, cols), false, 'trailing byte');
  t.equal(scanEvents(Uint8Array.of(0x90), FIELDS, cols), true, 'an empty batch');
  t.equal(cols.n, 0);
  t.end();
});
