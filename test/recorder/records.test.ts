// decodeRecords: native record bytes → CtEvent, exactly, for hand-packed and arbitrary records.
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import { RECORD_SIZE } from '../../native/layout.js';
import { decodeRecords } from '../../recorder/records.js';
import { packRecords, putU64 } from '../helpers/records.js';

t.test(
  'records: a hand-packed IPv6 DESTROY with every optional field decodes exactly',
  async (t) => {
    // Offsets written as literal numbers from the layout table, not taken from FIELDS.
    const buf = new ArrayBuffer(RECORD_SIZE * 2);
    const v = new DataView(buf);
    const u8 = new Uint8Array(buf);
    const at = RECORD_SIZE; // the second record, to catch a decoder that ignores the index
    v.setUint8(0, 2); // the first: an otherwise empty IPv4 UPDATE
    v.setUint8(1, 4);
    v.setUint8(at + 0, 3); // DESTROY
    v.setUint8(at + 1, 6);
    v.setUint8(at + 2, 6); // TCP
    v.setUint8(at + 3, 7); // TIME_WAIT
    v.setUint16(at + 4, 1 | 2 | 4 | 8 | 16 | 32, true);
    v.setUint16(at + 6, 513, true);
    v.setUint32(at + 8, 0x20e, true);
    v.setUint32(at + 12, 0xdeadbeef, true);
    v.setUint32(at + 16, 4_000_000_001, true);
    putU64(v, at + 24, 1_767_225_600_123_456); // 2026-01-01 in µs, above 2^32
    putU64(v, at + 32, 1_767_225_590_000_001);
    const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    u8.set(src, at + 40);
    u8.set(dst, at + 56);
    v.setUint16(at + 72, 51234, true);
    v.setUint16(at + 74, 443, true);
    u8.set(dst, at + 80);
    u8.set(src, at + 96);
    v.setUint16(at + 112, 443, true);
    v.setUint16(at + 114, 51234, true);
    putU64(v, at + 120, 12);
    putU64(v, at + 128, 3_000_000_000_000); // above 2^32
    putU64(v, at + 136, 10);
    putU64(v, at + 144, 8_000);

    const out: CtEvent[] = [];
    decodeRecords(buf, 2, out);
    const expected: CtEvent = {
      type: 3,
      family: 6,
      proto: 6,
      status: 0x20e,
      id: 4_000_000_001,
      time: 1_767_225_600_123_456,
      timeKernel: true,
      start: 1_767_225_590_000_001,
      tcpState: 7,
      mark: 0xdeadbeef,
      zone: 513,
      orig: {
        src: new Uint8Array(src),
        dst: new Uint8Array(dst),
        sport: 51234,
        dport: 443,
        icmpType: 0,
        icmpCode: 0,
        icmpId: 0,
      },
      reply: {
        src: new Uint8Array(dst),
        dst: new Uint8Array(src),
        sport: 443,
        dport: 51234,
        icmpType: 0,
        icmpCode: 0,
        icmpId: 0,
      },
      counters: {
        origPackets: 12,
        origBytes: 3_000_000_000_000,
        replyPackets: 10,
        replyBytes: 8_000,
      },
    };
    t.equal(out.length, 2, 'one event per record');
    t.match(out[0], { type: 2, family: 4, orig: { src: new Uint8Array(4) } }, 'the first record');
    t.strictSame(out[1], expected, 'the second record, field for field');

    // Clearing the flags hides the optional fields even though their bytes are still set.
    v.setUint16(at + 4, 0, true);
    const plain: CtEvent[] = [];
    decodeRecords(buf.slice(RECORD_SIZE), 1, plain);
    const { start, tcpState, mark, zone, counters, ...required } = expected;
    t.strictSame(plain, [{ ...required, timeKernel: false }], 'no flags, no optional fields');
  },
);

t.test(
  'records: an ICMPv4 record yields 4-byte address copies that outlive the batch',
  async (t) => {
    const buf = new ArrayBuffer(RECORD_SIZE);
    const v = new DataView(buf);
    const u8 = new Uint8Array(buf);
    v.setUint8(0, 1);
    v.setUint8(1, 4);
    v.setUint8(2, 1);
    u8.set([10, 0, 0, 1], 40);
    u8.set([10, 0, 0, 2], 56);
    v.setUint16(76, 4242, true);
    v.setUint8(78, 8);
    u8.set([10, 0, 0, 2], 80);
    u8.set([10, 0, 0, 1], 96);
    v.setUint16(116, 4242, true);
    const out: CtEvent[] = [];
    decodeRecords(buf, 1, out);
    const e = out[0] as CtEvent;
    t.strictSame(e.orig, {
      src: new Uint8Array([10, 0, 0, 1]),
      dst: new Uint8Array([10, 0, 0, 2]),
      sport: 0,
      dport: 0,
      icmpType: 8,
      icmpCode: 0,
      icmpId: 4242,
    });
    t.equal(e.orig.src.buffer.byteLength, 4, 'the address owns a 4-byte buffer, not a view');
    u8.fill(0);
    t.strictSame(
      Array.from(e.reply.src),
      [10, 0, 0, 2],
      'zeroing the batch leaves the event intact',
    );
  },
);

t.test('records: bad input is a RangeError, not a garbage event', async (t) => {
  const buf = new ArrayBuffer(RECORD_SIZE);
  t.throws(() => decodeRecords(buf, 2, []), RangeError, 'count beyond the buffer');
  t.throws(() => decodeRecords(buf, 1, []), RangeError, 'type 0 and family 0');
  const out: CtEvent[] = [];
  decodeRecords(buf, 0, out);
  t.same(out, [], 'zero records append nothing');
});

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const arbEvent: fc.Arbitrary<CtEvent> = fc.constantFrom<4 | 6>(4, 6).chain((family) => {
  const len = family === 4 ? 4 : 16;
  const addr = fc.uint8Array({ minLength: len, maxLength: len });
  const tuple = fc.record(
    {
      src: addr,
      dst: addr,
      sport: u16,
      dport: u16,
      icmpType: u8,
      icmpCode: u8,
      icmpId: u16,
    },
    { noNullPrototype: true },
  );
  return fc.record(
    {
      type: fc.constantFrom<1 | 2 | 3 | 4>(1, 2, 3, 4),
      family: fc.constant(family),
      proto: u8,
      status: u32,
      id: u32,
      time: u53,
      timeKernel: fc.boolean(),
      start: u53,
      orig: tuple,
      reply: tuple,
      tcpState: u8,
      mark: u32,
      zone: u16,
      counters: fc.record(
        { origPackets: u53, origBytes: u53, replyPackets: u53, replyBytes: u53 },
        { noNullPrototype: true },
      ),
    },
    {
      requiredKeys: [
        'type',
        'family',
        'proto',
        'status',
        'id',
        'time',
        'timeKernel',
        'orig',
        'reply',
      ],
      noNullPrototype: true,
    },
  );
});

t.test('records: property — any batch of events packs and decodes back to itself', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.array(arbEvent, { maxLength: 20 }),
        fc.array(arbEvent, { maxLength: 3 }),
        (events, before) => {
          const out: CtEvent[] = [...before];
          decodeRecords(packRecords(events), events.length, out);
          return isDeepStrictEqual(out, [...before, ...events]);
        },
      ),
      { numRuns: 500 },
    ),
  );
});
