// The host's routes in the journal: header and checkpoint keys, strict decoding, read back in order, old journals unchanged.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { redactJournal } from '../../analyzer/redact/redact.js';
import { verifyJournal } from '../../analyzer/verify/verify.js';
import {
  EVENT_FIELDS,
  FORMAT_VERSION,
  FrameKind,
  type HostAddress,
  type HostRoute,
  type JournalCheckpoint,
  type JournalHeader,
  MAGIC,
  packr,
  type RouteSet,
  TABLE_MAIN,
  unpackr,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { decodeCheckpoint, decodeHeader, encodeMap, MAX_ROUTES } from '../../journal/meta-codec.js';
import { MAX_DISTINCT_ROUTES, openJournal } from '../../journal/reader.js';
import { RouteInterning } from '../../journal/route-interning.js';
import { Damage } from '../../journal/validate.js';
import { JournalWriter } from '../../journal/writer.js';
import { MAX_TIME_US } from '../helpers/arbitraries.js';
import { ctErrorOf, HEADER, tcpNew, tempDir } from './fixtures.js';

const dir = tempDir(t, 'routes');

const FULL: JournalHeader = { ...HEADER, format: FORMAT_VERSION, eventFields: [...EVENT_FIELDS] };

const DEFAULT4: HostRoute = {
  family: 4,
  dst: Uint8Array.of(0, 0, 0, 0),
  prefix: 0,
  dev: 'eth0',
  gateway: Uint8Array.of(192, 0, 2, 1),
  type: 'unicast',
  table: TABLE_MAIN,
  metric: 0,
};
const LAN4: HostRoute = {
  family: 4,
  dst: Uint8Array.of(192, 0, 2, 0),
  prefix: 24,
  dev: 'eth0',
  type: 'unicast',
  table: TABLE_MAIN,
  metric: 0,
};
const HOLE4: HostRoute = {
  family: 4,
  dst: Uint8Array.of(203, 0, 113, 0),
  prefix: 24,
  type: 'blackhole',
  table: TABLE_MAIN,
  metric: 0,
};
const LAN6: HostRoute = {
  family: 6,
  dst: Uint8Array.of(0xfd, 0, ...new Array(14).fill(0)),
  prefix: 64,
  dev: 'eth1',
  type: 'unicast',
  table: TABLE_MAIN,
  metric: 256,
};
const ETH4: HostAddress = {
  ifname: 'eth0',
  family: 4,
  address: Uint8Array.of(192, 0, 2, 2),
  prefix: 24,
};

/** Routes with plain byte arrays, so decoded Buffers compare equal to the originals. */
function plain(list: readonly HostRoute[] | undefined): unknown {
  return list?.map((r) => ({
    ...r,
    dst: [...r.dst],
    ...(r.gateway === undefined ? {} : { gateway: [...r.gateway] }),
  }));
}

function plainSets(sets: readonly RouteSet[]): unknown {
  return sets.map((s) => ({ time: s.time, routes: plain(s.routes) }));
}

/** The first `prefix` bits of random bytes, the rest zero: a destination the kernel would keep. */
function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  return b.map((x, i) => x & (0xff00 >> Math.min(8, Math.max(0, prefix - 8 * i))));
}

/** Any route format v1 allows. */
function arbRoute(): fc.Arbitrary<HostRoute> {
  return fc.constantFrom<4 | 6>(4, 6).chain((family) => {
    const len = family === 4 ? 4 : 16;
    return fc
      .record(
        {
          family: fc.constant(family),
          dst: fc.uint8Array({ minLength: len, maxLength: len }),
          prefix: fc.integer({ min: 0, max: len * 8 }),
          dev: fc.oneof(
            fc.constantFrom('lo', 'eth0', '__proto__', 'x'.repeat(64)),
            fc.string({ minLength: 1, maxLength: 64 }),
          ),
          gateway: fc.uint8Array({ minLength: len, maxLength: len }),
          type: fc.oneof(
            fc.constantFrom('unicast', 'blackhole', 'unreachable', 'local'),
            fc.stringMatching(/^[a-z]{1,16}$/),
          ),
          table: fc.integer({ min: 0, max: 0xffffffff }),
          metric: fc.integer({ min: 0, max: 0xffffffff }),
        },
        { requiredKeys: ['family', 'dst', 'prefix', 'type', 'table', 'metric'] },
      )
      .map((r) => ({ ...r, dst: maskBytes(r.dst, r.prefix) }));
  });
}

function checkpointWith(routes: unknown): Record<string, unknown> {
  return { frames: 3, events: 2, gaps: 0, lost: 0, digest: Buffer.alloc(32, 1), routes };
}

t.test('journal: header and checkpoint routes survive encode → decode unchanged', (t) => {
  fc.assert(
    fc.property(
      fc.array(arbRoute(), { maxLength: 40 }),
      fc.integer({ min: 0, max: MAX_TIME_US }),
      (routes, time) => {
        const header = decodeHeader(encodeMap({ ...FULL, routes }));
        t.same(plain(header.routes), plain(routes));
        const cp = decodeCheckpoint(
          encodeMap(checkpointWith({ time, routes }) as unknown as JournalCheckpoint),
        );
        t.equal(cp.routes?.time, time);
        t.same(plain(cp.routes?.routes), plain(routes));
      },
    ),
    { numRuns: 200 },
  );
  t.end();
});

t.test('journal: without the routes key, header and checkpoint decode exactly as before', (t) => {
  const header = decodeHeader(encodeMap(FULL));
  t.notOk('routes' in header, 'header: no routes key, not an undefined one');
  const { routes: _, ...cp } = checkpointWith(undefined);
  t.notOk('routes' in decodeCheckpoint(packr.pack(cp)), 'checkpoint: no routes key');
  t.same(decodeHeader(encodeMap({ ...FULL, routes: [] })).routes, [], 'an empty list stays');
  const most = Array.from({ length: MAX_ROUTES }, () => LAN4);
  t.equal(decodeHeader(encodeMap({ ...FULL, routes: most })).routes?.length, MAX_ROUTES);

  // A writer given no routes writes the very header it wrote before routes existed.
  const path = join(dir, 'no-routes.mpk');
  const w = JournalWriter.create(path, { ...HEADER, addresses: [ETH4] });
  w.noteAddresses({ time: HEADER.start + 1, addresses: [ETH4] });
  w.close({ stop: HEADER.start + 2 });
  const bytes = readFileSync(path);
  t.equal(bytes.indexOf('routes'), -1, 'no routes key anywhere in the file');
  const headLen = bytes.readUInt32LE(MAGIC.length);
  const keys = Object.keys(
    unpackr.unpack(bytes.subarray(MAGIC.length + 9, MAGIC.length + 9 + headLen)),
  );
  t.same(
    keys,
    [...Object.keys(HEADER), 'format', 'eventFields', 'addresses'],
    'the header keys of a journal with addresses, in the order written before',
  );
  const reader = openJournal(path);
  for (const _ of reader.items());
  t.same(reader.routeSets, [], 'no route sets');
  t.equal(reader.addressSets.length, 2, 'the address sets as before');
  reader.close();
  t.end();
});

/** Values format v1 refuses, each a change to one valid route or to the list. */
const BAD_ROUTES: Array<[string, unknown]> = [
  ['family 5', [{ ...LAN4, family: 5 }]],
  ['family missing', [{ ...LAN4, family: undefined }]],
  ['IPv4 dst of 16 bytes', [{ ...LAN4, dst: LAN6.dst }]],
  ['IPv6 dst of 4 bytes', [{ ...LAN6, dst: LAN4.dst }]],
  ['dst an array', [{ ...LAN4, dst: [192, 0, 2, 0] }]],
  ['dst with host bits set', [{ ...LAN4, dst: Uint8Array.of(192, 0, 2, 1) }]],
  ['IPv4 prefix 33', [{ ...LAN4, prefix: 33 }]],
  ['IPv6 prefix 129', [{ ...LAN6, prefix: 129 }]],
  ['prefix 1.5', [{ ...LAN4, prefix: 1.5 }]],
  ['dev empty', [{ ...LAN4, dev: '' }]],
  ['dev of 65 characters', [{ ...LAN4, dev: 'x'.repeat(65) }]],
  ['dev a number', [{ ...LAN4, dev: 7 }]],
  ['dev nil', [{ ...LAN4, dev: null }]],
  ['IPv4 gateway of 16 bytes', [{ ...DEFAULT4, gateway: LAN6.dst }]],
  ['gateway a string', [{ ...DEFAULT4, gateway: '192.0.2.1' }]],
  ['type missing', [{ ...LAN4, type: undefined }]],
  ['type with an escape', [{ ...LAN4, type: 'uni\u001b[2Jcast' }]],
  ['type of 17 letters', [{ ...LAN4, type: 'x'.repeat(17) }]],
  ['type a number', [{ ...LAN4, type: 1 }]],
  ['table −1', [{ ...LAN4, table: -1 }]],
  ['table 2^32', [{ ...LAN4, table: 2 ** 32 }]],
  ['metric missing', [{ ...LAN4, metric: undefined }]],
  ['metric 2^53', [{ ...LAN4, metric: 2 ** 53 }]],
  ['an entry that is not a map', [[4, LAN4.dst, 24]]],
  ['the list nil', null],
  ['the list a map', { 0: LAN4 }],
  [`${MAX_ROUTES + 1} entries`, Array.from({ length: MAX_ROUTES + 1 }, () => LAN4)],
];

/** The route without its undefined keys (msgpack would write them as nil). */
function dropUndefined(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  return v.map((r) =>
    r !== null && typeof r === 'object' && !Array.isArray(r) && !(r instanceof Uint8Array)
      ? Object.fromEntries(Object.entries(r).filter(([, x]) => x !== undefined))
      : r,
  );
}

t.test('journal: a route out of range is Damage in the header and in a checkpoint', (t) => {
  for (const [what, bad] of BAD_ROUTES) {
    const routes = dropUndefined(bad);
    t.throws(() => decodeHeader(packr.pack({ ...FULL, routes })), Damage, `header: ${what}`);
    const set = { time: HEADER.start, routes };
    t.throws(
      () => decodeCheckpoint(packr.pack(checkpointWith(set))),
      Damage,
      `checkpoint: ${what}`,
    );
  }
  const badSets: Array<[string, unknown]> = [
    ['time −1', { time: -1, routes: [] }],
    ['time missing', { routes: [] }],
    ['routes missing', { time: HEADER.start }],
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

t.test(
  'journal: a route decoded before is taken as it is only with exactly its fields; a bad one is still Damage',
  (t) => {
    const interning = new RouteInterning();
    const valid = [DEFAULT4, LAN4, LAN6, HOLE4];
    const first = interning.set({ time: HEADER.start, routes: valid });
    const again = decodeCheckpoint(
      packr.pack(checkpointWith({ time: HEADER.start + 1, routes: dropUndefined(valid) })),
      interning.known,
    );
    t.ok(
      again.routes?.routes.every((r, i) => r === first.routes[i]),
      'the same fields give the interned objects, not new ones',
    );
    for (const [what, bad] of BAD_ROUTES) {
      const set = { time: HEADER.start + 2, routes: dropUndefined(bad) };
      t.throws(
        () => decodeCheckpoint(packr.pack(checkpointWith(set)), interning.known),
        Damage,
        `${what}, after its valid twin was interned`,
      );
    }
    const near: Array<[string, HostRoute]> = [
      ['another metric', { ...LAN4, metric: 1 }],
      ['another table', { ...LAN4, table: TABLE_MAIN + 1 }],
      ['another device', { ...LAN4, dev: 'eth9' }],
      ['no device', { ...DEFAULT4, dev: undefined }],
      ['another gateway', { ...DEFAULT4, gateway: Uint8Array.of(192, 0, 2, 2) }],
      ['no gateway', { ...DEFAULT4, gateway: undefined }],
      ['another type', { ...HOLE4, type: 'unreachable' }],
    ];
    for (const [what, r] of near) {
      const [raw] = dropUndefined([r]) as unknown[];
      t.equal(interning.known(unpackr.unpack(packr.pack(raw))), undefined, `${what}: not known`);
    }
    t.end();
  },
);

t.test(
  'journal: route lists flapping between two are two arrays, however many checkpoints',
  (t) => {
    const interning = new RouteInterning();
    const lists = [
      [LAN4, LAN6],
      [LAN4, DEFAULT4],
    ];
    const sets = Array.from({ length: 6 }, (_, i) =>
      interning.set({
        time: HEADER.start + i,
        routes: (lists[i % 2] as HostRoute[]).map((r) => ({ ...r })),
      }),
    );
    t.equal(sets[2]?.routes, sets[0]?.routes, 'the third list is the first');
    t.equal(sets[5]?.routes, sets[1]?.routes, 'the sixth list is the second');
    t.not(sets[0]?.routes, sets[1]?.routes);
    t.strictSame(
      sets.map((s) => s.time),
      [0, 1, 2, 3, 4, 5].map((i) => HEADER.start + i),
      'each set keeps its time',
    );
    t.end();
  },
);

t.test('journal: hostile route maps never decode into anything but a valid route', (t) => {
  // Any msgpack value where a route list goes: either Damage, or routes that hold up.
  fc.assert(
    fc.property(fc.anything({ maxDepth: 3, withTypedArray: true }), (junk) => {
      for (const routes of [junk, [junk], [{ ...LAN4, dev: junk }], [{ ...LAN4, type: junk }]]) {
        let decoded: HostRoute[] | undefined;
        try {
          decoded = decodeHeader(packr.pack({ ...FULL, routes })).routes;
        } catch (err) {
          if (!(err instanceof Damage)) throw err;
          continue;
        }
        for (const r of decoded ?? []) {
          if (r.dst.length !== (r.family === 4 ? 4 : 16)) return false;
          if (typeof r.type !== 'string' || !/^[a-z]{1,16}$/.test(r.type)) return false;
          if (r.dev !== undefined && (typeof r.dev !== 'string' || r.dev.length > 64)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('every hostile value was Damage or a valid route list');
  t.end();
});

t.test('journal: the writer refuses routes its reader would reject, before writing', (t) => {
  const bad = { ...LAN4, prefix: 33 };
  const never = join(dir, 'never.mpk');
  t.throws(() => JournalWriter.create(never, { ...HEADER, routes: [bad] }), TypeError);
  t.throws(() => statSync(never), { code: 'ENOENT' }, 'no file was created');

  const path = join(dir, 'refused.mpk');
  const w = JournalWriter.create(path, { ...HEADER, routes: [LAN4] });
  w.append([tcpNew(0)]);
  const size = w.bytesWritten;
  t.throws(() => w.noteNetwork({ routes: { time: HEADER.start + 1, routes: [bad] } }), TypeError);
  t.throws(
    () =>
      w.noteNetwork({
        addresses: { time: HEADER.start + 1, addresses: [ETH4] },
        routes: { time: -1, routes: [] },
      }),
    TypeError,
    'a bad route set takes its good address set with it',
  );
  w.noteNetwork({});
  t.equal(w.bytesWritten, size, 'nothing was written');
  t.equal(w.checkpoints, 0);
  w.close({ stop: HEADER.start + 2 });
  t.equal(verifyJournal(path).verdict, 'OK', 'the journal still verifies');
  t.end();
});

t.test(
  'journal: a writer keeps only the known keys of a route, and no absent optional one',
  (t) => {
    const path = join(dir, 'extra-keys.mpk');
    const extra = { ...HOLE4, secret: 'x', gateway: undefined } as HostRoute;
    const w = JournalWriter.create(path, { ...HEADER, routes: [extra] });
    w.noteNetwork({ routes: { time: HEADER.start + 5, routes: [extra] } });
    w.close({ stop: HEADER.start + 6 });
    const bytes = readFileSync(path);
    t.equal(bytes.indexOf('secret'), -1, 'no extra key in the file');
    t.equal(bytes.indexOf('gateway'), -1, 'no nil gateway key');
    const reader = openJournal(path);
    for (const _ of reader.items());
    t.same(plain(reader.header.routes), plain([HOLE4]));
    reader.close();
    t.end();
  },
);

t.test(
  'journal: route and address changes read back in order, each set where it was written',
  (t) => {
    const path = join(dir, 'changes.mpk');
    const routeSets: RouteSet[] = [
      { time: HEADER.start, routes: [DEFAULT4, LAN4] },
      { time: HEADER.start + 1_000_000, routes: [DEFAULT4, LAN4, HOLE4] },
      { time: HEADER.start + 2_000_000, routes: [LAN4, LAN6] },
    ];
    const w = JournalWriter.create(path, {
      ...HEADER,
      addresses: [ETH4],
      routes: routeSets[0]?.routes,
    });
    w.append([tcpNew(0)]);
    // Routes alone changed.
    w.noteNetwork({ routes: routeSets[1] as RouteSet });
    w.append([tcpNew(1)]);
    // Both changed at once: one checkpoint carries both.
    w.noteNetwork({
      addresses: { time: HEADER.start + 2_000_000, addresses: [] },
      routes: routeSets[2] as RouteSet,
    });
    w.append([tcpNew(2)]);
    w.close({ stop: HEADER.start + 3_000_000 });
    t.equal(w.checkpoints, 2, 'one checkpoint per change, whatever it carries');

    const reader = openJournal(path);
    t.same(
      plainSets(reader.routeSets),
      plainSets(routeSets.slice(0, 1)),
      'the header’s set at open',
    );
    const seen: number[][] = [];
    for (const item of reader.items()) {
      if (item.kind === 'events') seen.push([reader.routeSets.length, reader.addressSets.length]);
    }
    t.same(
      seen,
      [
        [1, 1],
        [2, 1],
        [3, 2],
      ],
      'each set is read where it was written, between the events',
    );
    t.same(plainSets(reader.routeSets), plainSets(routeSets), 'every route set, in order');
    for (const _ of reader.columns()) {
      // A second pass starts over: the sets are not read twice.
    }
    t.equal(reader.routeSets.length, 3, 'a second pass has the same sets');
    reader.close();
    const v = verifyJournal(path);
    t.equal(v.verdict, 'OK', v.detail);
    t.equal(v.checkpoints, 2);
    t.end();
  },
);

t.test(
  'journal: a bad route in a checkpoint frame makes the journal CORRUPT at that frame',
  (t) => {
    const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
    const head = Buffer.concat([
      MAGIC,
      encodeFrame(FrameKind.HEADER, packr.pack({ ...FULL, routes: [LAN4] })),
    ]);
    const cp = (routes: unknown) => ({
      frames: 1,
      events: 0,
      gaps: 0,
      lost: 0,
      digest: sha256(head),
      routes: { time: HEADER.start + 1, routes },
    });
    const bad = join(dir, 'bad-checkpoint.mpk');
    writeFileSync(
      bad,
      Buffer.concat([
        head,
        encodeFrame(FrameKind.CHECKPOINT, packr.pack(cp([{ ...LAN4, family: 6 }]))),
      ]),
    );
    const c = verifyJournal(bad);
    t.equal(c.verdict, 'CORRUPT', c.detail);
    t.equal(c.offset, head.length, 'at the checkpoint frame');
    t.match(c.detail, /checkpoint routes\.routes\[0\]\.dst is 4 bytes, expected 16/);

    const good = join(dir, 'good-checkpoint.mpk');
    writeFileSync(
      good,
      Buffer.concat([head, encodeFrame(FrameKind.CHECKPOINT, packr.pack(cp([LAN6])))]),
    );
    const g = verifyJournal(good);
    t.equal(g.verdict, 'INCOMPLETE', g.detail);
    t.equal(g.checkpoints, 1);
    t.end();
  },
);

/** `n` distinct routes, numbered from `from`: 10.x.y.0/24 via eth0. */
function manyRoutes(from: number, n: number): HostRoute[] {
  return Array.from({ length: n }, (_, i) => {
    const k = from + i;
    return {
      ...LAN4,
      dst: Uint8Array.of(10, (k >> 8) & 0xff, k & 0xff, 0),
      metric: k >> 16,
    };
  });
}

t.test('journal: a route repeated by later checkpoints is one object', (t) => {
  const path = join(dir, 'flap.mpk');
  const w = JournalWriter.create(path, HEADER);
  const flap = [manyRoutes(0, 100), manyRoutes(50, 100)];
  for (let i = 0; i < 4; i++) {
    w.noteNetwork({ routes: { time: HEADER.start + i, routes: flap[i % 2] as HostRoute[] } });
  }
  w.close({ stop: HEADER.start + 10 });
  const reader = openJournal(path);
  for (const _ of reader.items());
  const [a, b, c] = reader.routeSets as [RouteSet, RouteSet, RouteSet];
  t.ok(
    a.routes.every((r, i) => c.routes[i] === r),
    'the third set shares the first’s objects',
  );
  t.equal(a.routes[50], b.routes[0], 'a route both lists hold is one object');
  reader.close();
  t.end();
});

t.test(
  `journal: checkpoints bringing more than ${MAX_DISTINCT_ROUTES} distinct routes are ECORRUPT there`,
  (t) => {
    const path = join(dir, 'distinct.mpk');
    const full = MAX_DISTINCT_ROUTES / MAX_ROUTES;
    const w = JournalWriter.create(path, HEADER);
    for (let i = 0; i <= full; i++) {
      const routes = manyRoutes(i * MAX_ROUTES, MAX_ROUTES);
      w.noteNetwork({ routes: { time: HEADER.start + i, routes } });
    }
    w.close({ stop: HEADER.start + 60_000_000 });
    const reader = openJournal(path);
    const err = ctErrorOf(t, () => {
      for (const _ of reader.items());
    });
    reader.close();
    t.equal(err?.code, 'ECORRUPT');
    t.match(err?.message, `past ${MAX_DISTINCT_ROUTES}, more than any host has`);
    t.equal(reader.routeSets.length, full, 'the sets up to the limit were read');
    t.end();
  },
);

t.test('journal: ct-analyze redact leaves the routes out, header and checkpoints', (t) => {
  // redact does not map routes (docs/journal-format.md): an unmapped route would tell the real
  // addresses, so the redacted journal must hold none.
  const input = join(dir, 'to-redact.mpk');
  const w = JournalWriter.create(input, { ...HEADER, addresses: [ETH4], routes: [DEFAULT4] });
  w.append([tcpNew(0)]);
  w.noteNetwork({ routes: { time: HEADER.start + 1, routes: [DEFAULT4, HOLE4] } });
  w.close({ stop: HEADER.start + 2 });
  const keyFile = join(dir, 'redact.key');
  writeFileSync(keyFile, Buffer.alloc(32, 7), { mode: 0o600 });
  const output = join(dir, 'redacted.mpk');
  const quiet = { warn: () => {}, note: () => {} };
  redactJournal({ input, output, keyFile, force: false }, quiet);
  const bytes = readFileSync(output);
  t.equal(bytes.indexOf('routes'), -1, 'no routes key anywhere in the redacted file');
  t.equal(bytes.indexOf(Buffer.from(DEFAULT4.gateway as Uint8Array)), -1, 'nor the gateway');
  const reader = openJournal(output);
  for (const _ of reader.items());
  t.same(reader.routeSets, [], 'no route sets');
  t.equal(reader.addressSets.length, 1, 'the (mapped) addresses are still there');
  reader.close();
  t.equal(verifyJournal(output).verdict, 'OK');
  t.end();
});
