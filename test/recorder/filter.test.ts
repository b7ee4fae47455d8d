// The recorder's filters keep exactly what they say, and reject what they cannot parse.
import fc from 'fast-check';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import {
  compileFilter,
  type EventFilter,
  filterInPlace,
  parseMark,
  parseProtos,
} from '../../recorder/filter.js';
import { arbEvent, checkProperty } from '../helpers/arbitraries.js';

t.test('parseProtos reads names and numbers, rejects unknown words', (t) => {
  t.same(parseProtos('tcp,UDP, 58,tcp'), [6, 17, 58]);
  t.same(parseProtos('icmp,icmpv6,sctp'), [1, 58, 132]);
  t.throws(() => parseProtos('tcp,foo'), /unknown protocol 'foo'/);
  t.throws(() => parseProtos('256'), /unknown protocol/);
  t.end();
});

t.test('parseMark reads VALUE[/MASK] in decimal or hex like conntrack --mark', (t) => {
  t.same(parseMark('16'), { value: 16, mask: 0xffffffff });
  t.same(parseMark('0x10/0xf0'), { value: 0x10, mask: 0xf0 });
  t.same(parseMark('0xff/0x0f'), { value: 0x0f, mask: 0x0f }, 'value bits outside the mask drop');
  t.same(parseMark('0xffffffff'), { value: 0xffffffff, mask: 0xffffffff });
  for (const bad of ['', 'x', '0x1ffffffff', '1/2/3', '-1', '4294967296']) {
    t.throws(() => parseMark(bad), /VALUE\[\/MASK\]/, `rejects '${bad}'`);
  }
  t.end();
});

t.test('an empty filter compiles to nothing: no per-event work', (t) => {
  t.equal(compileFilter({}), undefined);
  t.equal(compileFilter({ noLoopback: false }), undefined);
  t.end();
});

const loop4 = Uint8Array.of(127, 1, 2, 3);
const loop6 = Uint8Array.from([...Array(15).fill(0), 1]);
const isLoop = (a: Uint8Array) =>
  a.length === 4 ? a[0] === 127 : a.every((b, i) => b === (i === 15 ? 1 : 0));

const arbFilter: fc.Arbitrary<EventFilter> = fc.record(
  {
    protos: fc.uniqueArray(fc.constantFrom(1, 6, 17, 58, 47, 132), { minLength: 1, maxLength: 3 }),
    mark: fc
      .tuple(fc.constantFrom(0, 1, 0x10, 0xff), fc.constantFrom(0xffffffff, 0xf0, 0x0f))
      .map(([v, m]) => ({ value: (v & m) >>> 0, mask: m })),
    noLoopback: fc.boolean(),
  },
  { requiredKeys: [] },
);
// Events with small marks and sometimes loopback addresses, so every branch is exercised.
const arbFilteredEvent: fc.Arbitrary<CtEvent> = fc
  .tuple(
    arbEvent(),
    fc.option(fc.constantFrom(1, 0x10, 0x11, 0xff, 0x1f0), { nil: undefined }),
    fc.nat(3),
  )
  .map(([ev, mark, loop]) => {
    const lo = ev.family === 4 ? loop4 : loop6;
    const orig = { ...ev.orig };
    if (loop === 1) orig.src = lo;
    if (loop === 2) orig.dst = lo;
    return { ...ev, orig, mark };
  });

t.test('filterInPlace keeps exactly the events every given filter accepts, in order', (t) => {
  checkProperty(
    t,
    fc.property(arbFilter, fc.array(arbFilteredEvent, { maxLength: 40 }), (f, events) => {
      const expected = events.filter(
        (e) =>
          (f.protos === undefined || f.protos.includes(e.proto)) &&
          (f.mark === undefined || ((e.mark ?? 0) & f.mark.mask) >>> 0 === f.mark.value) &&
          !(f.noLoopback === true && (isLoop(e.orig.src) || isLoop(e.orig.dst))),
      );
      const batch = [...events];
      const keep = compileFilter(f);
      const dropped = keep === undefined ? 0 : filterInPlace(batch, keep);
      return (
        batch.length === expected.length &&
        batch.every((e, i) => e === expected[i]) &&
        dropped === events.length - expected.length
      );
    }),
    { numRuns: 500 },
  );
  t.end();
});
