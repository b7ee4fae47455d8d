// ct-analyze check: the evaluate stage's shortcuts (address ring, one-value matches, per-component key maps) answer as the plain searches do.
import fc from 'fast-check';
import t from 'tap';
import { compileMatch } from '../../../analyzer/check/expr.js';
import { field } from '../../../analyzer/check/fields.js';
import { Table } from '../../../analyzer/check/sets.js';
import { addressKey, exact, type LVal } from '../../../analyzer/check/values.js';
import { marks, payload, pkt } from './compile-helpers.js';

const noSets = { table: () => undefined };

t.test(
  'fields: more distinct address arrays than the read ring holds are each read as their own',
  async (t) => {
    const saddr = field(payload('ip', 'saddr'));
    const packets = Array.from({ length: 20 }, (_, i) => pkt({ saddr: `10.1.${i}.${i + 1}` }));
    // Interleaved and repeated: every slot of the ring is reused, some arrays come back after eviction.
    const order = [
      0, 1, 2, 0, 3, 4, 5, 6, 7, 8, 9, 1, 10, 11, 12, 13, 14, 15, 16, 0, 17, 18, 19, 2,
    ];
    for (const i of order) {
      const p = packets[i];
      if (p === undefined) continue;
      const v = saddr.get(p, marks());
      t.same(v, exact(addressKey(p.saddr)), `packet ${i}`);
    }
  },
);

t.test(
  'expr: a one-value match answers as a search of a two-value set would, on every value and op',
  async (t) => {
    const ports = [0, 1, 22, 80, 443, 65535];
    for (const value of ports) {
      for (const op of ['==', '!=']) {
        const one = compileMatch({ op, left: payload('tcp', 'dport'), right: value }, noSets);
        // A set of the value and one no packet here has: no shortcut, the table is searched.
        const two = compileMatch(
          { op, left: payload('tcp', 'dport'), right: { set: [value, 70000] } },
          noSets,
        );
        if (one.kind !== 'match' || two.kind !== 'match') throw new Error('not a match');
        for (const d of ports) {
          const p = pkt({ dport: { from: d, to: d } });
          t.equal(one.test(p, marks()), two.test(p, marks()), `dport ${d} ${op} ${value}`);
        }
        const range = pkt({ dport: { from: 20, to: 90 } });
        t.equal(one.test(range, marks()), two.test(range, marks()), `dport 20-90 ${op} ${value}`);
        const udp = pkt({ proto: 17 });
        t.equal(one.test(udp, marks()), false, `a UDP packet has no tcp dport (${op})`);
      }
    }
  },
);

t.test(
  'sets: a concatenated key is found by each component, whatever the mix of elements',
  async (t) => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            fc.integer({ min: 0, max: 7 }),
            fc.constantFrom(6, 17),
            fc.integer({ min: 0, max: 5 }),
          ),
          { minLength: 1, maxLength: 12, selector: (e) => e.join(',') },
        ),
        fc.tuple(
          fc.integer({ min: 0, max: 8 }),
          fc.constantFrom(6, 17, 1),
          fc.integer({ min: 0, max: 6 }),
        ),
        (elems, [a, proto, dport]) => {
          const kinds = ['addr4', 'proto', 'number'] as const;
          const table = new Table(
            kinds,
            elems.map(([x, pr, d], i) => ({ key: { concat: [`10.0.0.${x}`, pr, d] }, data: i })),
          );
          const key: LVal[] = [
            exact(addressKey(new Uint8Array([10, 0, 0, a]))),
            exact(proto),
            exact(dport),
          ];
          const at = elems.findIndex(([x, pr, d]) => x === a && pr === proto && d === dport);
          const r = table.lookup(key);
          return at === -1 ? r.kind === 'miss' : r.kind === 'hit' && r.data === at;
        },
      ),
    );
    // A component written as text (`tcp`) and one written as a number land on one key.
    const named = new Table(
      ['addr4', 'proto', 'number'],
      [{ key: { concat: ['10.0.0.1', 'tcp', 80] }, data: 'x' }],
    );
    const hit = named.lookup([
      exact(addressKey(new Uint8Array([10, 0, 0, 1]))),
      exact(6),
      exact(80),
    ]);
    t.equal(hit.kind, 'hit', 'ip daddr . meta l4proto . th dport with l4proto written as tcp');
  },
);
