// Gap bookkeeping: every lost event lands in exactly one gap, each written after its resync.
import fc from 'fast-check';
import t from 'tap';
import type { JournalGap } from '../../journal/format.js';
import { GapTracker, type ResyncCount } from '../../recorder/gaps.js';

/** A resync the test settles by hand, to interleave losses with a running dump. */
function manualResync() {
  const calls: { resolve: (n: number | ResyncCount) => void; reject: (e: Error) => void }[] = [];
  const resync = () =>
    new Promise<number | ResyncCount>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { calls, resync };
}
const tick = () => new Promise((r) => setImmediate(r));

/** A tracker over a manual resync, collecting the gaps it writes; `clock.now` is its time. */
function setup(clock = { now: 10 }) {
  const { calls, resync } = manualResync();
  const gaps: JournalGap[] = [];
  const tr = new GapTracker(
    resync,
    (g) => gaps.push(g),
    () => clock.now,
  );
  return { calls, gaps, tr, clock };
}

t.test('a loss starts one resync; losses during it wait for the next cycle', async (t) => {
  const { calls, gaps, tr, clock } = setup({ now: 100 });
  tr.observe(7, 0, 50);
  tr.observe(3, 0, 60);
  t.equal(calls.length, 1, 'one dump at a time');
  t.equal(gaps.length, 0, 'nothing written while the dump runs');
  clock.now = 200;
  calls[0]?.resolve(42);
  await tick();
  t.same(gaps, [{ from: 50, to: 200, lost: 7, lostKnown: true, cause: 'ENOBUFS', resync: 42 }]);
  t.equal(calls.length, 2, 'a second dump for the loss seen while the first ran');
  clock.now = 300;
  calls[1]?.resolve(43);
  await tick();
  t.same(gaps[1], { from: 60, to: 300, lost: 3, lostKnown: true, cause: 'ENOBUFS', resync: 43 });
  t.end();
});

t.test('the first cycle writes only what preceded its dump', async (t) => {
  const { calls, gaps, tr, clock } = setup({ now: 100 });
  tr.observe(7, 2, 50);
  clock.now = 150;
  calls[0]?.resolve(42);
  await tick();
  t.same(gaps, [
    { from: 50, to: 150, lost: 7, lostKnown: true, cause: 'ENOBUFS', resync: 42 },
    { from: 50, to: 150, lost: 2, lostKnown: true, cause: 'QUEUE', resync: 42 },
  ]);
  t.equal(calls.length, 1, 'no loss pending: no second dump');
  t.end();
});

t.test('a failed dump still writes the gap, with resync -1', async (t) => {
  const { calls, gaps, tr } = setup();
  tr.observe(1, 0, 5);
  calls[0]?.reject(Object.assign(new Error('EPERM'), { code: 'EPERM' }));
  await tick();
  t.same(
    gaps.map((g) => [g.lost, g.resync]),
    [[1, -1]],
  );
  t.end();
});

t.test('finish waits for the running dump and writes late losses without a dump', async (t) => {
  const { calls, gaps, tr } = setup();
  tr.observe(4, 0, 1);
  tr.observe(5, 0, 2);
  const done = tr.finish();
  tr.observe(6, 0, 3);
  t.equal(calls.length, 1, 'no new dump once finishing');
  calls[0]?.resolve(9);
  await done;
  t.same(
    gaps.map((g) => [g.lost, g.resync, g.from]),
    [
      [4, 9, 1],
      [11, -1, 2],
    ],
  );
  t.end();
});

t.test('property: the gaps account for every lost event exactly once', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          drops: fc.nat(5),
          dropped: fc.nat(3),
          settle: fc.boolean(),
          fail: fc.boolean(),
        }),
        { maxLength: 30 },
      ),
      async (steps) => {
        const { calls, gaps, tr } = setup();
        let settled = 0;
        for (const [i, s] of steps.entries()) {
          tr.observe(s.drops, s.dropped, i);
          if (s.settle && settled < calls.length) {
            const c = calls[settled++];
            if (s.fail) c?.reject(new Error('x'));
            else c?.resolve(i);
            await tick();
          }
        }
        const done = tr.finish();
        while (settled < calls.length) {
          calls[settled++]?.resolve(0);
          await tick();
        }
        await done;
        const lostIn = (cause: string) =>
          gaps.filter((g) => g.cause === cause).reduce((a, g) => a + g.lost, 0);
        const sum = (k: 'drops' | 'dropped') => steps.reduce((a, s) => a + s[k], 0);
        return (
          lostIn('ENOBUFS') === sum('drops') &&
          lostIn('QUEUE') === sum('dropped') &&
          gaps.every((g) => g.lost > 0 && g.to >= g.from)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held for 300 runs');
  t.end();
});

/** A tracker paced by `intervalMs` on a hand-driven monotonic clock and timer. */
function paced(intervalMs: number) {
  const { calls, resync } = manualResync();
  const gaps: JournalGap[] = [];
  const mono = { ms: 0 };
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const tr = new GapTracker(
    resync,
    (g) => gaps.push(g),
    () => mono.ms * 1000,
    {
      intervalMs,
      monoMs: () => mono.ms,
      setTimer: (fn, ms) => {
        const timer = { at: mono.ms + ms, fn, live: true };
        timers.push(timer);
        return () => {
          timer.live = false;
        };
      },
    },
  );
  /** Moves the clock to `ms`, firing the timers due by then. */
  const advance = (ms: number) => {
    mono.ms = ms;
    for (const timer of timers) {
      if (timer.live && timer.at <= ms) {
        timer.live = false;
        timer.fn();
      }
    }
  };
  return { calls, gaps, tr, advance, timers };
}

t.test('pacing: losses after a dump wait for the interval and share one dump', async (t) => {
  const { calls, gaps, tr, advance } = paced(30_000);
  tr.observe(5, 0, 1);
  t.equal(calls.length, 1, 'the first loss dumps at once');
  advance(1000);
  calls[0]?.resolve(100);
  await tick();
  t.same(
    gaps.map((g) => [g.lost, g.resync]),
    [[5, 100]],
  );
  advance(2000);
  tr.observe(3, 0, 2);
  advance(20_000);
  tr.observe(4, 2, 3);
  t.equal(calls.length, 1, 'no dump within 30 s of the last one ending');
  advance(30_999);
  t.equal(calls.length, 1, 'not even 1 ms early');
  advance(31_000);
  t.equal(calls.length, 2, 'one dump for every loss of the wait');
  calls[1]?.resolve(7);
  await tick();
  t.same(
    gaps.slice(1).map((g) => [g.cause, g.lost, g.from, g.resync]),
    [
      ['ENOBUFS', 7, 2, 7],
      ['QUEUE', 2, 3, 7],
    ],
  );
  t.end();
});

t.test('pacing: an overrun during a dump starts no second dump before the interval', async (t) => {
  const { calls, tr, advance } = paced(10_000);
  tr.observe(1, 0, 1);
  tr.observe(1, 0, 2);
  advance(500);
  calls[0]?.resolve(1);
  await tick();
  t.equal(calls.length, 1, 'the loss seen during the dump waits');
  advance(10_499);
  t.equal(calls.length, 1);
  advance(10_500);
  t.equal(calls.length, 2, 'then one dump');
  t.end();
});

t.test(
  'pacing: finish cancels the wait and writes the waiting losses with resync -1',
  async (t) => {
    const { calls, gaps, tr, advance, timers } = paced(30_000);
    tr.observe(2, 0, 1);
    calls[0]?.resolve(9);
    await tick();
    tr.observe(6, 0, 5);
    await tr.finish();
    advance(60_000);
    t.equal(calls.length, 1, 'no dump after finish');
    t.ok(
      timers.every((x) => !x.live),
      'no timer left',
    );
    t.same(
      gaps.map((g) => [g.lost, g.resync]),
      [
        [2, 9],
        [6, -1],
      ],
    );
    t.end();
  },
);

t.test(
  'property: paced dumps start at least the interval apart; every loss counted once',
  async (t) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            drops: fc.nat(4),
            dropped: fc.nat(2),
            step: fc.nat(4000),
            settle: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        async (steps) => {
          const { calls, gaps, tr, advance } = paced(2000);
          let now = 0;
          let settled = 0;
          const starts: number[] = [];
          const ends: number[] = [];
          const note = () => {
            while (starts.length < calls.length) starts.push(now);
          };
          for (const [i, s] of steps.entries()) {
            now += s.step;
            advance(now);
            note();
            tr.observe(s.drops, s.dropped, i);
            note();
            if (s.settle && settled < calls.length) {
              calls[settled++]?.resolve(i);
              ends.push(now);
              await tick();
              note();
            }
          }
          const done = tr.finish();
          while (settled < calls.length) {
            calls[settled++]?.resolve(0);
            await tick();
          }
          await done;
          const lost = gaps.reduce((a, g) => a + g.lost, 0);
          const sent = steps.reduce((a, s) => a + s.drops + s.dropped, 0);
          const spaced = starts.every((at, k) => k === 0 || at - (ends[k - 1] as number) >= 2000);
          return lost === sent && spaced;
        },
      ),
      { numRuns: 300 },
    );
    t.pass('held for 300 runs');
    t.end();
  },
);

t.test(
  'pacing: resyncNow makes the waiting dump at once, whatever the interval, and writes its counts',
  async (t) => {
    const { calls, gaps, tr, advance, timers } = paced(30_000);
    tr.observe(2, 0, 1);
    calls[0]?.resolve(9);
    await tick();
    advance(1000);
    tr.observe(6, 1, 5);
    t.equal(calls.length, 1, 'the second loss waits for the interval');
    const now = tr.resyncNow();
    t.equal(calls.length, 2, 'the stop dumps at once, 29 s early');
    calls[1]?.resolve({ entries: 40, skipped: 12 });
    await now;
    tr.observe(1, 0, 7);
    await tr.finish();
    t.equal(calls.length, 2, 'one stop dump; a loss after it waits for none');
    t.ok(
      timers.every((x) => !x.live),
      'no timer left',
    );
    t.same(
      gaps.map((g) => [g.cause, g.lost, g.resync, g.skipped]),
      [
        ['ENOBUFS', 2, 9, undefined],
        ['ENOBUFS', 6, 40, 12],
        ['QUEUE', 1, 40, 12],
        ['ENOBUFS', 1, -1, undefined],
      ],
    );
    t.end();
  },
);

t.test('resyncNow waits for a running dump, then dumps once for what waited', async (t) => {
  const { calls, gaps, tr } = setup();
  tr.observe(1, 0, 1);
  tr.observe(2, 0, 2);
  t.ok(tr.busy);
  t.equal(tr.waiting, 2, 'the loss seen during the dump waits');
  const now = tr.resyncNow();
  calls[0]?.resolve(5);
  await tick();
  t.equal(calls.length, 2, 'then the stop dump');
  calls[1]?.reject(new Error('ECANCELED'));
  await now;
  await tr.finish();
  t.notOk(tr.busy);
  t.same(
    gaps.map((g) => [g.lost, g.resync]),
    [
      [1, 5],
      [2, -1],
    ],
  );
  t.end();
});

t.test('a skipped count above the dump entries is clamped to them', async (t) => {
  const { calls, gaps, tr } = setup();
  tr.observe(1, 0, 1);
  calls[0]?.resolve({ entries: 3, skipped: 8 });
  await tick();
  t.equal(gaps[0]?.skipped, 3);
  t.end();
});
