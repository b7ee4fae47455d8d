// The host's addresses in the journal: header and checkpoint keys, strict decoding, read back in order.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { verifyJournal } from '../../analyzer/verify/verify.js';
import {
  type AddressSet,
  EVENT_FIELDS,
  FORMAT_VERSION,
  FrameKind,
  type HostAddress,
  type JournalCheckpoint,
  type JournalHeader,
  MAGIC,
  packr,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import {
  decodeCheckpoint,
  decodeHeader,
  encodeMap,
  MAX_ADDRESSES,
} from '../../journal/meta-codec.js';
import { MAX_DISTINCT_ADDRESSES, openJournal } from '../../journal/reader.js';
import { Damage } from '../../journal/validate.js';
import { JournalWriter } from '../../journal/writer.js';
import { MAX_TIME_US } from '../helpers/arbitraries.js';
import { bigAddressSet, writeAddressBomb } from '../helpers/hostile.js';
import { ctErrorOf, HEADER, tcpNew, tempDir } from './fixtures.js';

const dir = tempDir(t, 'addresses');

const FULL: JournalHeader = { ...HEADER, format: FORMAT_VERSION, eventFields: [...EVENT_FIELDS] };

const LO4: HostAddress = {
  ifname: 'lo',
  family: 4,
  address: Uint8Array.of(127, 0, 0, 1),
  prefix: 8,
};
const LO6: HostAddress = { ifname: 'lo', family: 6, address: v6(0, 1), prefix: 128 };
const ETH4: HostAddress = {
  ifname: 'eth0',
  family: 4,
  address: Uint8Array.of(192, 0, 2, 2),
  prefix: 24,
};
const ETH6: HostAddress = { ifname: 'eth0', family: 6, address: v6(0xfd00, 2), prefix: 64 };

/** An IPv6 address `first::last`. */
function v6(first: number, last: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = first >> 8;
  b[1] = first & 0xff;
  b[14] = last >> 8;
  b[15] = last & 0xff;
  return b;
}

/** Addresses with plain byte arrays, so decoded Buffers compare equal to the originals. */
function plain(list: readonly HostAddress[] | undefined): unknown {
  return list?.map((a) => ({ ...a, address: [...a.address] }));
}

function plainSets(sets: readonly AddressSet[]): unknown {
  return sets.map((s) => ({ time: s.time, addresses: plain(s.addresses) }));
}

/** Any address format v1 allows. */
function arbAddress(): fc.Arbitrary<HostAddress> {
  return fc.constantFrom<4 | 6>(4, 6).chain((family) =>
    fc.record({
      ifname: fc.oneof(
        fc.constantFrom('lo', 'eth0', '__proto__', 'constructor', 'x'.repeat(64)),
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.string({ minLength: 1, maxLength: 32, unit: 'binary' }),
      ),
      family: fc.constant(family),
      address: fc.uint8Array({
        minLength: family === 4 ? 4 : 16,
        maxLength: family === 4 ? 4 : 16,
      }),
      prefix: fc.integer({ min: 0, max: family === 4 ? 32 : 128 }),
    }),
  );
}

const arbAddresses = fc.array(arbAddress(), { maxLength: 40 });

function checkpointWith(addresses: unknown): Record<string, unknown> {
  return { frames: 3, events: 2, gaps: 0, lost: 0, digest: Buffer.alloc(32, 1), addresses };
}

t.test('journal: header and checkpoint addresses survive encode → decode unchanged', (t) => {
  fc.assert(
    fc.property(arbAddresses, fc.integer({ min: 0, max: MAX_TIME_US }), (addresses, time) => {
      const header = decodeHeader(encodeMap({ ...FULL, addresses }));
      t.same(plain(header.addresses), plain(addresses));
      const set = { time, addresses };
      const cp = decodeCheckpoint(encodeMap(checkpointWith(set) as unknown as JournalCheckpoint));
      t.equal(cp.addresses?.time, time);
      t.same(plain(cp.addresses?.addresses), plain(addresses));
    }),
    { numRuns: 200 },
  );
  t.end();
});

t.test('journal: without the addresses key, header and checkpoint decode without one', (t) => {
  const header = decodeHeader(encodeMap(FULL));
  t.notOk('addresses' in header, 'header: no addresses key, not an undefined one');
  const { addresses: _, ...cp } = checkpointWith(undefined);
  t.notOk('addresses' in decodeCheckpoint(packr.pack(cp)), 'checkpoint: no addresses key');
  t.same(decodeHeader(encodeMap({ ...FULL, addresses: [] })).addresses, [], 'an empty list stays');
  const most = Array.from({ length: MAX_ADDRESSES }, () => ETH4);
  t.equal(decodeHeader(encodeMap({ ...FULL, addresses: most })).addresses?.length, MAX_ADDRESSES);
  t.end();
});

/** Values format v1 refuses, each a change to one valid address or to the list. */
const BAD_ADDRESSES: Array<[string, unknown]> = [
  ['ifname empty', [{ ...ETH4, ifname: '' }]],
  ['ifname of 65 characters', [{ ...ETH4, ifname: 'x'.repeat(65) }]],
  ['ifname a number', [{ ...ETH4, ifname: 7 }]],
  ['ifname missing', [{ family: 4, address: ETH4.address, prefix: 24 }]],
  ['family 5', [{ ...ETH4, family: 5 }]],
  ['family 0', [{ ...ETH4, family: 0 }]],
  ['family a string', [{ ...ETH4, family: '4' }]],
  ['IPv4 address of 5 bytes', [{ ...ETH4, address: Uint8Array.of(1, 2, 3, 4, 5) }]],
  ['IPv4 address of 16 bytes', [{ ...ETH4, address: ETH6.address }]],
  ['IPv6 address of 4 bytes', [{ ...ETH6, address: ETH4.address }]],
  ['address an array', [{ ...ETH4, address: [192, 0, 2, 2] }]],
  ['IPv4 prefix 33', [{ ...ETH4, prefix: 33 }]],
  ['IPv6 prefix 129', [{ ...ETH6, prefix: 129 }]],
  ['prefix −1', [{ ...ETH4, prefix: -1 }]],
  ['prefix 1.5', [{ ...ETH4, prefix: 1.5 }]],
  ['an entry that is not a map', [[ETH4.ifname, 4, ETH4.address, 24]]],
  ['the list nil', null],
  ['the list a map', { 0: ETH4 }],
  [`${MAX_ADDRESSES + 1} entries`, Array.from({ length: MAX_ADDRESSES + 1 }, () => ETH4)],
];

t.test('journal: an address out of range is Damage in the header and in a checkpoint', (t) => {
  for (const [what, addresses] of BAD_ADDRESSES) {
    t.throws(() => decodeHeader(packr.pack({ ...FULL, addresses })), Damage, `header: ${what}`);
    const set = { time: HEADER.start, addresses };
    t.throws(
      () => decodeCheckpoint(packr.pack(checkpointWith(set))),
      Damage,
      `checkpoint: ${what}`,
    );
  }
  const badSets: Array<[string, unknown]> = [
    ['time −1', { time: -1, addresses: [] }],
    ['time above 2^53 − 1', { time: 2 ** 53, addresses: [] }],
    ['time 1.5', { time: 1.5, addresses: [] }],
    ['time missing', { addresses: [] }],
    ['addresses missing', { time: HEADER.start }],
    ['the set nil', null],
    ['the set an array', [HEADER.start, []]],
  ];
  for (const [what, set] of badSets) {
    t.throws(
      () => decodeCheckpoint(packr.pack(checkpointWith(set))),
      Damage,
      `checkpoint: ${what}`,
    );
  }
  t.end();
});

t.test('journal: the writer refuses addresses its reader would reject, before writing', (t) => {
  const bad = { ...ETH4, prefix: 33 };
  const never = join(dir, 'never.mpk');
  t.throws(() => JournalWriter.create(never, { ...HEADER, addresses: [bad] }), TypeError);
  t.throws(() => statSync(never), { code: 'ENOENT' }, 'no file was created');

  const path = join(dir, 'refused.mpk');
  const w = JournalWriter.create(path, { ...HEADER, addresses: [LO4] });
  w.append([tcpNew(0)]);
  const size = w.bytesWritten;
  t.throws(() => w.noteAddresses({ time: HEADER.start + 1, addresses: [bad] }), TypeError);
  t.throws(() => w.noteAddresses({ time: -1, addresses: [] }), TypeError);
  t.equal(w.bytesWritten, size, 'nothing was written');
  t.equal(w.checkpoints, 0);
  w.close({ stop: HEADER.start + 2 });
  t.equal(verifyJournal(path).verdict, 'OK', 'the journal still verifies');
  t.end();
});

t.test('journal: a writer keeps only the known keys of an address', (t) => {
  const path = join(dir, 'extra-keys.mpk');
  const extra = { ...ETH4, secret: 'x', internal: true } as HostAddress;
  const w = JournalWriter.create(path, { ...HEADER, addresses: [extra] });
  w.noteAddresses({ time: HEADER.start + 5, addresses: [extra] });
  w.close({ stop: HEADER.start + 6 });
  const bytes = readFileSync(path);
  t.equal(bytes.indexOf('secret'), -1, 'no extra key in the file');
  t.equal(bytes.indexOf('internal'), -1, 'no extra key in the file');
  t.end();
});

/**
 * Header [lo], events, a change, events, two changes back to back (the second with no frame
 * since the first), events, trailer.
 */
function journalWithChanges(name: string) {
  const path = join(dir, name);
  const sets: AddressSet[] = [
    { time: HEADER.start, addresses: [LO4, LO6] },
    { time: HEADER.start + 1_000_000, addresses: [ETH4, LO4, LO6] },
    { time: HEADER.start + 2_000_000, addresses: [ETH4, ETH6, LO4, LO6] },
    { time: HEADER.start + 2_000_001, addresses: [ETH6, LO4] },
  ];
  const w = JournalWriter.create(path, { ...HEADER, addresses: sets[0]?.addresses });
  w.append([tcpNew(0), tcpNew(1)]);
  w.noteAddresses(sets[1] as AddressSet);
  w.append([tcpNew(2)]);
  w.noteAddresses(sets[2] as AddressSet);
  w.noteAddresses(sets[3] as AddressSet);
  w.append([tcpNew(3)]);
  w.close({ stop: HEADER.start + 3_000_000 });
  return { path, sets, writer: w };
}

t.test('journal: address changes read back in order, after the header’s set', (t) => {
  const { path, sets, writer } = journalWithChanges('changes.mpk');
  t.equal(writer.checkpoints, 3, 'each change is a checkpoint, even one right after another');
  const reader = openJournal(path);
  t.teardown(() => reader.close());
  t.same(plainSets(reader.addressSets), plainSets(sets.slice(0, 1)), 'the header’s set at open');

  const seen: number[] = [];
  for (const item of reader.items()) {
    if (item.kind === 'events') seen.push(reader.addressSets.length);
  }
  t.same(seen, [1, 2, 4], 'each set is read where it was written, between the events');
  t.same(plainSets(reader.addressSets), plainSets(sets), 'every set, in order');
  t.equal(reader.counts.checkpoints, 3, 'every change checkpoint verified');
  t.ok(reader.trailer, 'the trailer agrees with the counts');

  for (const _ of reader.columns()) {
    // A second pass starts over: the sets are not read twice.
  }
  t.same(plainSets(reader.addressSets), plainSets(sets), 'a second pass has the same sets');

  const v = verifyJournal(path);
  t.equal(v.verdict, 'OK', v.detail);
  t.equal(v.checkpoints, 3);
  t.end();
});

t.test('journal: a journal without addresses has no address sets', (t) => {
  const path = join(dir, 'none.mpk');
  const w = JournalWriter.create(path, HEADER);
  w.append([tcpNew(0)]);
  w.checkpoint();
  w.close({ stop: HEADER.start + 1 });
  const reader = openJournal(path);
  t.teardown(() => reader.close());
  for (const _ of reader.items()) {
    // read it all
  }
  t.same(reader.addressSets, []);
  t.equal(reader.counts.checkpoints, 1, 'a plain checkpoint adds no set');
  t.notOk('addresses' in reader.header);
  t.end();
});

t.test('journal: bad addresses in a header or checkpoint frame make the journal CORRUPT', (t) => {
  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
  const header = (addresses: unknown) =>
    Buffer.concat([MAGIC, encodeFrame(FrameKind.HEADER, packr.pack({ ...FULL, addresses }))]);

  const badHeader = join(dir, 'bad-header.mpk');
  writeFileSync(badHeader, header([{ ...ETH6, prefix: 200 }]));
  const h = verifyJournal(badHeader);
  t.equal(h.verdict, 'CORRUPT', h.detail);
  t.equal(h.code, 'ECORRUPT');
  t.match(h.detail, /header addresses\[0\]\.prefix is 200/);

  // A checkpoint whose digest and counts are right, so only its addresses are wrong.
  const head = header([LO4]);
  const cp = {
    frames: 1,
    events: 0,
    gaps: 0,
    lost: 0,
    digest: sha256(head),
    addresses: { time: HEADER.start + 1, addresses: [{ ...LO4, family: 6 }] },
  };
  const badCp = join(dir, 'bad-checkpoint.mpk');
  writeFileSync(badCp, Buffer.concat([head, encodeFrame(FrameKind.CHECKPOINT, packr.pack(cp))]));
  const c = verifyJournal(badCp);
  t.equal(c.verdict, 'CORRUPT', c.detail);
  t.equal(c.offset, head.length, 'at the checkpoint frame');
  t.match(c.detail, /checkpoint addresses\.addresses\[0\]\.address is 4 bytes, expected 16/);

  // The same frame with a good set is read: the check above is about the value, not the frame.
  const good = join(dir, 'good-checkpoint.mpk');
  const fixed = { ...cp, addresses: { time: HEADER.start + 1, addresses: [LO6] } };
  writeFileSync(good, Buffer.concat([head, encodeFrame(FrameKind.CHECKPOINT, packr.pack(fixed))]));
  const g = verifyJournal(good);
  t.equal(g.verdict, 'INCOMPLETE', g.detail);
  t.equal(g.checkpoints, 1);
  t.end();
});

t.test(
  'journal: an address repeated by later checkpoints is one object, equal to what was written',
  (t) => {
    const path = join(dir, 'flap.mpk');
    writeAddressBomb(path, 6, false);
    const reader = openJournal(path);
    for (const _ of reader.items());
    const sets = reader.addressSets;
    t.equal(sets.length, 6, 'every change is a set');
    t.same(
      plainSets(sets),
      plainSets(
        [0, 1, 2, 3, 4, 5].map((i) => ({
          time: HEADER.start + 2 + i,
          addresses: bigAddressSet(i % 2),
        })),
      ),
      'the sets read back as written',
    );
    const [a, , c] = sets as [AddressSet, AddressSet, AddressSet];
    t.ok(
      a.addresses.every((x, i) => c.addresses[i] === x),
      'the third set shares the first’s objects',
    );
    reader.close();
    t.end();
  },
);

t.test(
  `journal: checkpoints bringing more than ${MAX_DISTINCT_ADDRESSES} distinct addresses are ECORRUPT there`,
  (t) => {
    const path = join(dir, 'distinct.mpk');
    const full = MAX_DISTINCT_ADDRESSES / 4096;
    writeAddressBomb(path, full + 1, true);
    const reader = openJournal(path);
    const err = ctErrorOf(t, () => {
      for (const _ of reader.items());
    });
    reader.close();
    t.equal(err?.code, 'ECORRUPT');
    t.match(err?.message, `past ${MAX_DISTINCT_ADDRESSES}, more than any host has`);
    t.equal(reader.addressSets.length, full, 'the sets up to the limit were read');
    t.end();
  },
);
