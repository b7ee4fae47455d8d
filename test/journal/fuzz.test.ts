// Byte mutations of a real journal with gaps, and forged gap maps: the reader ends or throws CtError.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { CtError } from '../../common/errors.js';
import { FrameKind, GAP_CAUSE, MAGIC, packr } from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { applyByteMutation, arbByteMutation } from '../helpers/mutations.js';
import { gap, readAll, tcpNew, tempDir, writeItems } from './fixtures.js';

const dir = tempDir(t, 'fuzz');
const source = join(dir, 'source.mpk');
writeItems(source, [
  gap({ lost: 0, lostKnown: false, resync: -1, cause: 'QUEUE' }),
  [
    tcpNew(0),
    {
      ...tcpNew(1),
      type: 3,
      start: 1,
      counters: { origPackets: 1, origBytes: 60, replyPackets: 0, replyBytes: 0 },
    },
  ],
  gap(),
  [{ ...tcpNew(2), mark: 7, zone: 3, reply: { ...tcpNew(2).reply, dport: 61000 } }],
]);
const original = readFileSync(source);

const mutation = arbByteMutation;
const apply = applyByteMutation;

t.test('journal: mutated journals end normally or with a CtError, never another exception', (t) => {
  const path = join(dir, 'mutant.mpk');
  const outcomes = new Map<string, number>();
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
      writeFileSync(path, ms.reduce(apply, original));
      let outcome = 'read';
      try {
        const { reader } = readAll(path, { chunkSize: 32 });
        if (reader.tail) outcome = 'torn';
      } catch (err) {
        if (!(err instanceof CtError)) throw err;
        outcome = err.code;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }),
    { numRuns: 4000 },
  );
  t.ok(
    (outcomes.get('ECORRUPT') ?? 0) > 0 && (outcomes.get('torn') ?? 0) > 0,
    JSON.stringify(Object.fromEntries(outcomes)),
  );
  t.end();
});

t.test('journal: forged gap maps are read only when every value is in range', (t) => {
  const bytes = readFileSync(source);
  const headerEnd = MAGIC.length + 9 + bytes.readUInt32LE(MAGIC.length);
  const path = join(dir, 'forged-gap.mpk');
  const value = fc.oneof(
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(2 ** 53, 2 ** 53 - 1, 0.5, -1, 'ENOBUFS', 'a b', '', null, true, false),
    fc.string({ maxLength: 70 }),
    fc.array(fc.nat(), { maxLength: 2 }),
  );
  // Mostly valid values, so both outcomes are common.
  const mostly = (ok: fc.Arbitrary<unknown>) =>
    fc.oneof({ weight: 6, arbitrary: ok }, { weight: 1, arbitrary: value });
  const arbMap = fc.record(
    {
      from: mostly(fc.nat(100)),
      to: mostly(fc.nat(100)),
      lost: mostly(fc.nat()),
      lostKnown: mostly(fc.boolean()),
      cause: mostly(fc.constantFrom('ENOBUFS', 'QUEUE', 'x:y-z.1_2')),
      resync: mostly(fc.integer({ min: -1, max: 10 })),
    },
    { requiredKeys: [] },
  );
  let read = 0;
  fc.assert(
    fc.property(arbMap, (m) => {
      const frame = encodeFrame(FrameKind.GAP, packr.pack(m));
      writeFileSync(path, Buffer.concat([bytes.subarray(0, headerEnd), frame]));
      try {
        const [g] = readAll(path).gaps;
        read++;
        t.ok(g && g.to >= g.from && GAP_CAUSE.test(g.cause) && g.resync >= -1, JSON.stringify(m));
        t.ok(g && Number.isSafeInteger(g.lost) && g.lost >= 0 && typeof g.lostKnown === 'boolean');
      } catch (err) {
        if (!(err instanceof CtError)) throw err;
        t.equal(err.code, 'ECORRUPT');
      }
    }),
    { numRuns: 2000 },
  );
  t.ok(read > 20 && read < 1980, `${read} of 2000 forged gaps were valid`);
  t.end();
});
