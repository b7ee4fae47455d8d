// Byte mutations of a real journal: the reader only ever ends, or fails with a CtError.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { CtError } from '../../common/errors.js';
import { readAll, tcpNew, tempDir, writeJournal } from './fixtures.js';

const dir = tempDir(t, 'fuzz');
const source = join(dir, 'source.mpk');
writeJournal(source, [
  [
    tcpNew(0),
    {
      ...tcpNew(1),
      type: 3,
      start: 1,
      counters: { origPackets: 1, origBytes: 60, replyPackets: 0, replyBytes: 0 },
    },
  ],
  [{ ...tcpNew(2), mark: 7, zone: 3, reply: { ...tcpNew(2).reply, dport: 61000 } }],
]);
const original = readFileSync(source);

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function apply(buf: Buffer, m: Mutation): Buffer {
  const at = m.at % (buf.length + 1);
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(buf);
      if (at < out.length) out[at] = (out[at] as number) ^ m.xor;
      return out;
    }
    case 'set': {
      const out = Buffer.from(buf);
      out.set(m.bytes.subarray(0, Math.max(0, out.length - at)), Math.min(at, out.length));
      return out;
    }
    case 'cut':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
  }
}

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
