// Time slicing: --since/--until parse as documented and keep exactly the events inside the window.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { FlowTable } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { inWindow, makeWindow, parseTime, type TimeWindow } from '../../../analyzer/core/slice.js';
import { coverageLines, textLines } from '../../../analyzer/report/text.js';
import { CtError } from '../../../common/errors.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { SEED_EVENTS, tempDir, writeJournal } from '../fixtures.js';

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0) * 1000;

t.test('slice: relative spans mean that long before now, like journalctl', async (t) => {
  t.equal(parseTime('90s', NOW), NOW - 90e6);
  t.equal(parseTime('30m', NOW), NOW - 1800e6);
  t.equal(parseTime('2h', NOW), NOW - 7200e6);
  t.equal(parseTime('1d', NOW), NOW - 86400e6);
  t.equal(parseTime('1h30m', NOW), NOW - 5400e6);
  t.equal(parseTime('1.5s', NOW), NOW - 1.5e6);
  t.equal(parseTime('now', NOW), NOW);
});

t.test('slice: ISO 8601 times, UTC without a zone, to the microsecond', async (t) => {
  const base = Date.UTC(2026, 10, 27, 7, 39, 43) * 1000;
  t.equal(parseTime('2026-11-27T07:39:43Z', NOW), base);
  t.equal(parseTime('2026-11-27T07:39:43', NOW), base, 'no zone: UTC, as reports print');
  t.equal(parseTime('2026-11-27 07:39:43.692123', NOW), base + 692_123);
  t.equal(parseTime('2026-11-27T07:39:43.5Z', NOW), base + 500_000);
  t.equal(parseTime('2026-11-27T08:39:43+01:00', NOW), base);
  t.equal(parseTime('2026-11-27T02:39:43-0500', NOW), base);
  t.equal(parseTime('2026-11-27T07:39Z', NOW), base - 43e6);
  t.equal(parseTime('2026-11-27', NOW), Date.UTC(2026, 10, 27) * 1000);
});

t.test('slice: a time that cannot be read is a usage error naming the forms', async (t) => {
  for (const bad of ['yesterday', '2h ago', '-5m', '2026-02-30', '2026-13-01', '12:00', '', '5w']) {
    let err: unknown;
    try {
      parseTime(bad, NOW);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof CtError && err.exit === 2, `${JSON.stringify(bad)}: usage error`);
    t.match((err as Error | undefined)?.message, /ISO 8601.*90s, 30m, 2h, 1d/);
  }
  t.throws(() => makeWindow('1h', '2h', NOW), /--until 2h is before --since 1h/);
  t.strictSame(makeWindow('2h', undefined, NOW), { since: NOW - 7200e6, until: null });
});

t.test('slice: both bounds are inclusive', async (t) => {
  const w: TimeWindow = { since: 10, until: 20 };
  t.strictSame(
    [9, 10, 15, 20, 21].map((x) => inWindow(w, x)),
    [false, true, true, true, false],
  );
  t.ok(inWindow({ since: null, until: null }, 0));
});

t.test(
  'slice: a sliced replay equals the table of the plain filter of the events, with their count',
  async (t) => {
    const dir = tempDir(t, 'slice');
    const T0 = SEED_EVENTS[0]?.time ?? 0;
    let n = 0;
    const bound = fc.option(fc.integer({ min: T0 - 2, max: T0 + 42 }), { nil: null });
    const arbCase = arbFlowEvents().chain((evs) =>
      fc.record({
        evs: fc.constant(evs),
        times: fc.array(fc.integer({ min: T0, max: T0 + 40 }), {
          minLength: evs.length,
          maxLength: evs.length,
        }),
        since: bound,
        until: bound,
        cut: fc.nat(evs.length),
      }),
    );
    checkProperty(
      t,
      fc.property(arbCase, ({ evs, times, since, until, cut }) => {
        const timed = evs.map((ev, i) => ({ ...ev, time: times[i] ?? T0 }));
        const window = { since, until };
        const path = join(dir, `s${n++}.mpk`);
        writeJournal(path, [timed.slice(0, cut), timed.slice(cut)]);
        const inside = timed.filter(
          (ev) => (since === null || ev.time >= since) && (until === null || ev.time <= until),
        );
        const plain = new FlowTable();
        plain.addAll(inside);
        const { table, journals } = analyzeJournals([path], { window });
        assert.deepEqual([...textLines(table.flows())], [...textLines(plain.flows())]);
        assert.deepEqual(table.skipped, plain.skipped);
        const c = journals[0]?.coverage;
        const sliced = since !== null || until !== null;
        assert.deepEqual(
          c?.window,
          sliced
            ? { since, until, inside: inside.length, outside: timed.length - inside.length }
            : undefined,
        );
      }),
      { numRuns: 150 },
    );
  },
);

t.test('slice: the coverage block states the window and how many events it kept', async (t) => {
  const dir = tempDir(t, 'slicetext');
  const path = join(dir, 'w.mpk');
  const T0 = SEED_EVENTS[0]?.time ?? 0;
  writeJournal(path, [SEED_EVENTS.map((ev, i) => ({ ...ev, time: T0 + i * 1_000_000 }))]);
  const { table, journals } = analyzeJournals([path], {
    window: { since: T0 + 2_000_000, until: null },
  });
  const lines = coverageLines(journals);
  const since = new Date((T0 + 2_000_000) / 1000).toISOString();
  const total = SEED_EVENTS.length;
  t.equal(
    lines.find((l) => l.startsWith('# window:')),
    `# window: ${since} → end of recording (--since/--until, inclusive): ${total - 2} of ${total} events inside, 2 left out of the table`,
  );
  t.equal(
    lines.findIndex((l) => l.startsWith('# window:')),
    3,
    'right after the settings line',
  );
  t.equal(table.size + table.skippedTotal, total - 2, 'the two earliest events made no flow');
});
