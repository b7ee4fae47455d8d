// Format 2 events payloads: the same events as v1 back, scan equal to decode, damage never anything but Damage.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import { EventColumns } from '../../journal/event-columns.js';
import { decodeEvents, encodeEvents, inverseOf } from '../../journal/events-codec.js';
import {
  decodeEventsV2,
  encodeEventsV2,
  encodeLayout,
  MAX_EVENTS,
  MAX_RAW,
  scanEventsV2,
  unwrapEventsV2,
} from '../../journal/events-v2.js';
import { FrameKind, MAGIC } from '../../journal/format.js';
import { openJournal } from '../../journal/reader.js';
import { Damage } from '../../journal/validate.js';
import { arbEvent, arbFlowEvents, checkProperty } from '../helpers/arbitraries.js';
import { applyByteMutation, arbByteMutation } from '../helpers/mutations.js';
import { arbDamaged, columnsSnapshot } from '../helpers/scan-cases.js';

const FIELDS = 18;

/** Events as a recorder writes them: a few connections seen many times, times in order. */
const arbRecorded = fc
  .tuple(
    arbFlowEvents({ minLength: 1, maxLength: 80 }),
    fc.array(fc.nat(5_000_000), { minLength: 80, maxLength: 80 }),
  )
  .map(([evs, gaps]) => {
    let time = evs[0]?.time ?? 0;
    return evs.map((ev, i) => {
      time += i === 0 ? 0 : (gaps[i] as number);
      const out = { ...ev, time };
      if (out.start !== undefined && out.start > time) out.start = time;
      return out;
    });
  });

/** Any events v1 can hold: every field anywhere in its range, NAT or not, in any order. */
const arbAny = fc.array(arbEvent(), { minLength: 0, maxLength: 30 });

/** Plain (no NAT) events of both families and every protocol, sharing few connections. */
const arbPlain = fc
  .array(arbEvent({ small: true }), { minLength: 1, maxLength: 40 })
  .map((evs) => evs.map((ev) => ({ ...ev, reply: inverseOf(ev.family, ev.proto, ev.orig) })));

const arbEvents = fc.oneof(arbAny, arbRecorded, arbPlain);

/** Decode's answer (events or the Damage), and never any other exception. */
function decodeOutcome(payload: Uint8Array): CtEvent[] | Damage {
  try {
    return decodeEventsV2(payload, FIELDS);
  } catch (err) {
    if (err instanceof Damage) return err;
    throw err;
  }
}

/** Asserts the scanner's claim: where it accepts, decode accepts with the same columns. */
function agrees(payload: Uint8Array): boolean {
  const cols = new EventColumns();
  const accepted = scanEventsV2(payload, FIELDS, cols);
  const decoded = decodeOutcome(payload);
  if (accepted) {
    assert.ok(Array.isArray(decoded), 'scan accepted what decode refuses');
    const ref = new EventColumns();
    ref.fill(decoded);
    assert.deepEqual(columnsSnapshot(cols), columnsSnapshot(ref));
  }
  return accepted;
}

/** A payload around a given layout, deflated or stored, with a raw length that may lie. */
function wrap(
  layout: Uint8Array,
  n: number,
  opts: { stored?: boolean; raw?: number; data?: Uint8Array } = {},
) {
  const data = opts.data ?? (opts.stored ? layout : deflateRawSync(layout));
  const head = [0x94];
  const uint = (v: number) => {
    if (v < 0x80) head.push(v);
    else head.push(0xce, v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  };
  uint(n);
  uint(opts.stored ? 0 : 1);
  uint(opts.raw ?? layout.length);
  head.push(0xc6, data.length >>> 24, (data.length >>> 16) & 0xff, (data.length >>> 8) & 0xff);
  head.push(data.length & 0xff);
  return Buffer.concat([Uint8Array.from(head), data]);
}

t.test('events v2: every event list v1 writes reads back as v1 reads it', (t) => {
  checkProperty(
    t,
    fc.property(arbEvents, fc.constantFrom(0, 1, 6, 9), (evs, level) => {
      const expected = decodeEvents(encodeEvents(evs));
      assert.deepStrictEqual(decodeEventsV2(encodeEventsV2(evs, { level })), expected);
    }),
    { numRuns: 600 },
  );
  t.end();
});

t.test(
  'events v2: the payload is [n, codec, raw, data] and n is readable without inflating',
  (t) => {
    checkProperty(
      t,
      fc.property(arbEvents, (evs) => {
        const payload = encodeEventsV2(evs);
        assert.equal(payload[0], 0x94, 'a fixarray of 4: the torn-tail scanner sees an array');
        const { n, layout } = unwrapEventsV2(payload);
        assert.equal(n, evs.length);
        assert.deepEqual([...layout], [...encodeLayout(evs)]);
      }),
      { numRuns: 200 },
    );
    t.end();
  },
);

t.test('events v2: an event v1 refuses is refused by the v2 writer too', (t) => {
  const good = decodeEvents(
    encodeEvents([fc.sample(arbEvent(), { numRuns: 1, seed: 7 })[0] as CtEvent]),
  )[0] as CtEvent;
  const bad: Partial<CtEvent>[] = [
    { type: 5 as never },
    { family: 5 as never },
    { status: 2 ** 32 },
    { time: -1 },
    { time: 1.5 },
    { mark: 2 ** 32 },
    { zone: 0x10000 },
    { orig: { ...good.orig, src: new Uint8Array(3) } },
  ];
  for (const change of bad) {
    const ev = { ...good, ...change } as CtEvent;
    t.throws(() => encodeEvents([ev]), TypeError, `v1: ${Object.keys(change)[0]}`);
    t.throws(() => encodeEventsV2([ev]), TypeError, `v2: ${Object.keys(change)[0]}`);
  }
  t.end();
});

t.test('events v2: scan reads every writer payload, to what decode reads', (t) => {
  checkProperty(
    t,
    fc.property(arbEvents, (evs) => {
      assert.equal(agrees(encodeEventsV2(evs)), true, 'a writer payload must be scanned');
    }),
    { numRuns: 600 },
  );
  t.end();
});

t.test('events v2: damaged payloads are Damage or a valid decode, and scan agrees', (t) => {
  let accepted = 0;
  let refused = 0;
  checkProperty(
    t,
    fc.property(arbDamaged(arbEvents, encodeEventsV2), (payload) => {
      if (agrees(payload)) accepted++;
      else refused++;
    }),
    { numRuns: 2000 },
  );
  t.ok(refused > 0, `damage was found (${accepted} accepted, ${refused} refused)`);
  t.end();
});

t.test('events v2: a damaged layout (inflated bytes) is Damage or a valid decode', (t) => {
  let accepted = 0;
  let refused = 0;
  checkProperty(
    t,
    fc.property(
      arbEvents,
      fc.array(arbByteMutation, { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (evs, ms, stored) => {
        const layout = ms.reduce(applyByteMutation, Buffer.from(encodeLayout(evs)));
        if (agrees(wrap(layout, evs.length, { stored }))) accepted++;
        else refused++;
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(accepted > 0 && refused > 0, `both outcomes were exercised (${accepted}/${refused})`);
  t.end();
});

t.test('events v2: an event count that disagrees with the layout is Damage', (t) => {
  checkProperty(
    t,
    fc.property(arbEvents, fc.integer({ min: -3, max: 3 }), (evs, delta) => {
      fc.pre(delta !== 0 && evs.length + delta >= 0);
      const payload = wrap(encodeLayout(evs), evs.length + delta);
      assert.ok(decodeOutcome(payload) instanceof Damage);
      assert.equal(agrees(payload), false);
    }),
    { numRuns: 200 },
  );
  t.end();
});

t.test(
  'events v2: a zip bomb or a huge raw length is Damage, quickly and without the memory',
  (t) => {
    const zeros = Buffer.alloc(50 * 1024 * 1024);
    const start = process.hrtime.bigint();
    // 50 MiB of zeros deflate to ~50 KB: a payload that says 100 bytes must stop at 100.
    const bomb = wrap(zeros, 1, { raw: 100 });
    t.ok(bomb.length < 100_000, `the bomb is small (${bomb.length} bytes)`);
    const rss = process.memoryUsage().rss;
    t.ok(decodeOutcome(bomb) instanceof Damage, 'raw small, data inflating large');
    t.ok(process.memoryUsage().rss - rss < 40 * 1024 * 1024, 'the bomb was not inflated whole');
    t.ok(
      decodeOutcome(wrap(zeros.subarray(0, 10), 1, { raw: MAX_RAW + 1 })) instanceof Damage,
      'raw above 64 MiB',
    );
    t.ok(
      decodeOutcome(wrap(zeros.subarray(0, 10), 1, { raw: 2 ** 32 - 1 })) instanceof Damage,
      'raw 4 GiB',
    );
    t.ok(
      decodeOutcome(wrap(zeros.subarray(0, 10), 1, { raw: 1000 })) instanceof Damage,
      'raw larger than the data inflates to',
    );
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.ok(ms < 5000, `judged in ${ms.toFixed(0)} ms`);
    t.end();
  },
);

t.test('events v2: counts larger than the layout are Damage, never an allocation', (t) => {
  // Header varints: connections, kinds, IPv4 and IPv6 addresses, then three stream lengths.
  const huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
  const cases: [string, number[], number][] = [
    ['2^32 connections', [...huge, 1, 0, 0, 0, 0, 0], 1],
    ['2^32 addresses', [1, 1, ...huge, 0, 0, 0, 0], 1],
    ['a 2^32-byte time column', [1, 1, 0, 0, 0, ...huge, 0], 1],
    ['4 G events', [1, 1, 0, 0, 0, 0, 0], 2 ** 32 - 1],
    ['more events than a frame may hold', [1, 1, 0, 0, 0, 0, 0], MAX_EVENTS + 1],
    ['a 9-byte varint', [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1],
  ];
  for (const [what, layout, n] of cases) {
    const cols = new EventColumns();
    const payload = wrap(Uint8Array.from(layout), n, { stored: true });
    t.ok(decodeOutcome(payload) instanceof Damage, what);
    t.equal(scanEventsV2(payload, FIELDS, cols), false, `${what}: scan declines`);
    t.equal(cols.capacity, 0, `${what}: no columns were allocated`);
  }
  t.end();
});

t.test('events v2: an empty frame and outer-array damage', (t) => {
  const empty = encodeEventsV2([]);
  t.same(decodeEventsV2(empty), []);
  const cols = new EventColumns();
  t.equal(scanEventsV2(empty, FIELDS, cols), true);
  t.equal(cols.n, 0);
  const one = encodeEventsV2(fc.sample(arbEvent(), { numRuns: 1, seed: 3 }));
  const bad: [string, Buffer][] = [
    ['not an array of 4', Buffer.concat([Buffer.of(0x93), one.subarray(1)])],
    ['codec 2', Buffer.from(one).fill(2, 2, 3)],
    ['a trailing byte', Buffer.concat([one, Buffer.of(0)])],
    ['cut short', one.subarray(0, one.length - 1)],
    ['no data', one.subarray(0, 4)],
  ];
  for (const [what, payload] of bad) {
    t.ok(decodeOutcome(payload) instanceof Damage, what);
    t.equal(scanEventsV2(payload, FIELDS, new EventColumns()), false, `${what}: scan declines`);
  }
  t.end();
});

t.test('events v2: a frame of many events and connections (wide indexes) round-trips', (t) => {
  // 70,000 connections need 3-byte connection indexes, their 140,000 addresses 3-byte ones.
  const evs: CtEvent[] = [];
  for (let i = 0; i < 70_000; i++) {
    const orig = {
      src: Buffer.of(10, i >> 16, (i >> 8) & 0xff, i & 0xff),
      dst: Buffer.of(11, i >> 16, (i >> 8) & 0xff, i & 0xff),
      sport: 1024 + (i % 60_000),
      dport: 443,
      icmpType: 0,
      icmpCode: 0,
      icmpId: 0,
    };
    const reply = inverseOf(4, 6, orig);
    evs.push({
      type: 1,
      family: 4,
      proto: 6,
      status: 8,
      id: i,
      time: 1e15 + i,
      timeKernel: false,
      orig,
      reply,
    });
  }
  const payload = encodeEventsV2(evs);
  const { layout } = unwrapEventsV2(payload);
  t.equal(layout[0], 0xf0, 'the layout counts 70,000 connections (a 3-byte varint)');
  assert.deepStrictEqual(decodeEventsV2(payload), decodeEvents(encodeEvents(evs)));
  t.pass('decodes as v1 reads the same events');
  const cols = new EventColumns();
  t.equal(scanEventsV2(payload, FIELDS, cols), true);
  t.equal(cols.src[4 * 69_999], 0x0a01116f, "the last event's source is 10.1.17.111");
  t.equal(cols.time[69_999], 1e15 + 69_999);
  t.end();
});

/** The events frames' payloads of a journal file, read from its frame envelopes. */
function eventsPayloads(path: string): Buffer[] {
  const buf = readFileSync(path);
  const out: Buffer[] = [];
  for (let at = MAGIC.length; at + 9 <= buf.length; ) {
    const len = buf.readUInt32LE(at);
    if (buf[at + 8] === FrameKind.EVENTS) out.push(buf.subarray(at + 9, at + 9 + len));
    at += 9 + len;
  }
  return out;
}

t.test(
  'events v2: the golden v2 journals hold exactly what this encoder writes for their events',
  (t) => {
    for (const name of ['lan', 'nat-router', 'gaps-checkpoints']) {
      const payloads = eventsPayloads(`test/fixtures/v2/${name}.mpk`);
      t.ok(payloads.length > 0, `${name}: has events frames`);
      for (const payload of payloads) {
        const events = decodeEventsV2(payload);
        assert.deepEqual(
          [...encodeEventsV2(events)],
          [...payload],
          `${name}: a frame re-encodes byte for byte`,
        );
        assert.equal(agrees(payload), true);
      }
      t.pass(`${name}: ${payloads.length} frames re-encode byte for byte and scan as they decode`);
    }
    t.end();
  },
);

t.test(
  'events v2: real recordings (v1 goldens and samples) read back through v2 as through v1',
  (t) => {
    const files = [
      'test/fixtures/v1/lan-0.1.0.mpk',
      'test/fixtures/v1/nat-router-0.1.0.mpk',
      'test/fixtures/v1/gaps-checkpoints-0.1.0.mpk',
      'samples/lan.mpk',
      'samples/nat-router.mpk',
    ];
    for (const file of files) {
      const reader = openJournal(file);
      let frames = 0;
      try {
        for (const batch of reader.batches()) {
          if (!Array.isArray(batch)) continue;
          const payload = encodeEventsV2(batch);
          assert.deepStrictEqual(decodeEventsV2(payload), decodeEvents(encodeEvents(batch)));
          assert.equal(agrees(payload), true);
          frames++;
        }
      } finally {
        reader.close();
      }
      t.ok(frames > 0, `${file}: ${frames} frames`);
    }
    t.end();
  },
);

t.test(
  "events v2: a deflate stream that fails to inflate (closing the reused handle) spoils no later frame's inflate",
  (t) => {
    // A recorded frame that deflate shrinks (a very short one is stored).
    const a = fc
      .sample(arbRecorded, { numRuns: 50, seed: 15 })
      .find((evs) => encodeEventsV2(evs)[2] === 1) as CtEvent[];
    const good = encodeEventsV2(a);
    const { layout } = unwrapEventsV2(good);
    const cases: [string, Buffer][] = [
      [
        'a truncated stream',
        wrap(layout, a.length, { data: deflateRawSync(layout).subarray(0, -3) }),
      ],
      // 0xff opens a block of the reserved type 3.
      ['not deflate at all', wrap(layout, a.length, { data: Buffer.alloc(16, 0xff) })],
      ['more bytes than raw says', wrap(layout, a.length, { raw: layout.length - 1 })],
    ];
    for (const [what, bad] of cases) {
      t.ok(decodeOutcome(bad) instanceof Damage, `${what}: Damage`);
      t.equal(scanEventsV2(bad, FIELDS, new EventColumns()), false, `${what}: scan declines`);
      assert.deepStrictEqual(decodeEventsV2(good), decodeEvents(encodeEvents(a)));
      assert.equal(agrees(good), true);
      t.pass(`${what}: the next good frame decodes and scans as it should`);
    }
    t.end();
  },
);

t.test('events v2: decoded events keep their address bytes after the next frame is read', (t) => {
  const [a, b] = fc.sample(arbRecorded, { numRuns: 2, seed: 16 }) as [CtEvent[], CtEvent[]];
  const first = decodeEventsV2(encodeEventsV2(a));
  const copy = structuredClone(first);
  decodeEventsV2(encodeEventsV2(b));
  scanEventsV2(encodeEventsV2(b), FIELDS, new EventColumns());
  t.same(first, copy, 'the first frame decoded, unchanged by reading another');
  t.end();
});
