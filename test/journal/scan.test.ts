// The replay hot path (scanEvents) against the definition (decodeEvents): never a different answer.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { EventColumns } from '../../journal/event-columns.js';
import { decodeEvents, encodeEvents } from '../../journal/events-codec.js';
import { scanEvents } from '../../journal/events-scan.js';
import { EVENT_FIELDS, unpackr } from '../../journal/format.js';
import { arbEvent, checkProperty } from '../helpers/arbitraries.js';
import {
  arbDamaged,
  arbEdgePayload,
  arbPlainEvents,
  columnsSnapshot,
} from '../helpers/scan-cases.js';

const FIELDS = EVENT_FIELDS.length;
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
  return columnsSnapshot(c);
}

/** Asserts the scanner's claim: when it accepts, decodeEvents accepts with the same values. */
function agrees(payload: Uint8Array): boolean {
  const cols = new EventColumns();
  const accepted = scanEvents(payload, FIELDS, cols);
  if (accepted) assert.deepEqual(columnsSnapshot(cols), reference(payload));
  return accepted;
}

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
    fc.property(arbDamaged(arbEvents, encodeEvents), (payload) => {
      if (agrees(payload)) accepted++;
      else refused++;
    }),
    { numRuns: 2000 },
  );
  t.ok(accepted > 0 && refused > 0, `both outcomes were exercised (${accepted}/${refused})`);
  t.end();
});

t.test('scan: an edge value in any field is read as decodeEvents reads it, or declined', (t) => {
  let accepted = 0;
  checkProperty(
    t,
    fc.property(arbEdgePayload(FIELDS), (payload) => {
      if (agrees(payload)) accepted++;
    }),
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
