// ct-analyze check: a set or map looked up with a collapsed port range answers as checking each port one by one would.
import fc from 'fast-check';
import t from 'tap';
import type { Tri } from '../../../analyzer/check/model.js';
import { Table } from '../../../analyzer/check/sets.js';
import { decide, payload, pkt, port, rule, run } from './compile-helpers.js';

/** Ports near each other, so ranges and elements overlap often. */
const portArb = fc.integer({ min: 0, max: 300 });
const elemArb = fc.oneof(
  portArb,
  fc.tuple(portArb, fc.integer({ min: 0, max: 40 })).map(([a, w]) => ({ range: [a, a + w] })),
);
const rangeArb = fc
  .tuple(portArb, fc.integer({ min: 0, max: 60 }))
  .map(([a, w]) => ({ from: a, to: a + w }));

/** All ports match: true; none: false; some: unknown. */
function expected(each: boolean[]): Tri {
  if (each.every(Boolean)) return true;
  return each.some(Boolean) ? 'unknown' : false;
}

t.test('a port range against a random set agrees with each port checked alone', async (t) => {
  fc.assert(
    fc.property(
      fc.array(elemArb, { minLength: 1, maxLength: 8 }),
      rangeArb,
      fc.boolean(),
      (elems, range, neg) => {
        const op = neg ? '!=' : '==';
        const r = rule([
          { match: { op, left: payload('tcp', 'dport'), right: { set: elems } } },
          { accept: null },
        ]);
        const each: boolean[] = [];
        for (let n = range.from; n <= range.to; n++)
          each.push(run(r, pkt({ dport: port(n) })) === 'accept');
        const step = r.steps[0];
        if (step?.kind !== 'match') return false;
        return (
          step.test(pkt({ dport: range }), { meta: undefined, ct: undefined }) === expected(each)
        );
      },
    ),
    { numRuns: 400 },
  );
  t.pass('400 random sets and ranges agree');
});

t.test(
  'a port range against a random map gives data only when one datum covers it all',
  async (t) => {
    fc.assert(
      fc.property(
        fc.uniqueArray(portArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 8, maxLength: 8 }),
        rangeArb,
        (starts, data, range) => {
          // Disjoint elements, as nft keeps a map's intervals: [s, next start - 1].
          const sorted = [...starts].sort((a, b) => a - b);
          const elems = sorted.map((s, i) => {
            const end = Math.min((sorted[i + 1] ?? Infinity) - 1, s + 15);
            return {
              key: { range: [s, end] },
              data: data[i] === 1 ? { accept: null } : { drop: null },
            };
          });
          const table = new Table<unknown>(['number'], elems);
          const each: string[] = [];
          for (let n = range.from; n <= range.to; n++) {
            const r = table.lookup([{ t: 'v', v: n }]);
            each.push(r.kind === 'hit' ? JSON.stringify(r.data) : 'miss');
          }
          const got = table.lookup([{ t: 'range', from: range.from, to: range.to }]);
          const same = each.every((x) => x === each[0]);
          if (same && each[0] === 'miss') return got.kind === 'miss';
          if (same) return got.kind === 'hit' && JSON.stringify(got.data) === each[0];
          return got.kind === 'unknown';
        },
      ),
      { numRuns: 400 },
    );
    t.pass('400 random maps and ranges agree');
  },
);

t.test(
  'addresses against random prefixes agree with a linear scan, including the binary search',
  async (t) => {
    const prefixArb = fc
      .tuple(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 16, max: 32 }),
      )
      .map(([a, b, len]) => ({ prefix: { addr: `10.${a}.${b}.0`, len: Math.min(len, 24) } }));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            prefixArb,
            fc
              .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
              .map(([a, b]) => `10.${a}.${b}.1`),
          ),
          { minLength: 1, maxLength: 12 },
        ),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        (elems, a, b) => {
          const saddr = `10.${a}.${b}.1`;
          const inside = elems.some((e) => {
            if (typeof e === 'string') return e === saddr;
            const [, x = '0', y = '0'] = e.prefix.addr.split('.');
            const bits = (Number(x) << 8) | Number(y);
            const mine = (a << 8) | b;
            const shift = 24 - e.prefix.len;
            return bits >> shift === mine >> shift;
          });
          return (
            decide(payload('ip', 'saddr'), { set: elems }, pkt({ saddr })) ===
            (inside ? 'accept' : 'no')
          );
        },
      ),
      { numRuns: 300 },
    );
    t.pass('300 random prefix sets agree');
  },
);
