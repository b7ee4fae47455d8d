// Crafted worst-case journals: ct-analyze, verify and redact judge them in time and memory linear in their size.
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  runCli,
  writeAddressBomb,
  writeGapBomb,
  writeHugeHeader,
  writeResyncBomb,
  writeRouteBomb,
  writeTinyFrames,
} from '../helpers/hostile.js';
import { tempDir } from '../helpers/journals.js';

// 85 s alone on the 2-core test machine, and up to 130 s beside another test file under load:
// tap's default 180 s would kill it on a busy CI run. Its budgets are ratios, not this timeout.
t.setTimeout(400_000);
const dir = tempDir(t, 'budgets');
const STACK = /\n\s+at /;

/** The three commands that read a journal from a stranger, as a user runs them. */
function judgeAll(path: string, key: string) {
  const out = `${path}.redacted.mpk`;
  return {
    analyze: runCli([path], dir),
    verify: runCli(['verify', path], dir),
    redact: runCli(['redact', path, '-o', out, '--key', key, '--force'], dir),
  };
}

const KEY = join(dir, 'redact.key');
writeFileSync(KEY, Buffer.alloc(32, 7), { mode: 0o600 });

/**
 * Crafted worst cases, each written at two sizes: time must grow about linearly with the size
 * (the ratio of the times below `TIME_SLACK` × the ratio of the sizes: node's start-up makes
 * the small run slower, not faster, than linear) and peak RSS stay under `rssMB` at the larger
 * size (measured, doubled). Each run's exit status is the documented one, with no stack.
 */
const TIME_SLACK = 2.5;
const budgets: Array<{
  name: string;
  write: (path: string, small: boolean) => void;
  exit: { analyze: number; verify: number; redact: number };
  why?: RegExp;
  rssMB: number;
}> = [
  {
    name: 'a resync bomb: every 4th byte after a bad frame reads as the largest frame that fits',
    write: (path, small) => writeResyncBomb(path, (small ? 2 : 8) * 1_000_000),
    exit: { analyze: 1, verify: 1, redact: 1 },
    why: /the search for a next one gave up: damaged or forged, not a torn tail/,
    rssMB: 200,
  },
  {
    name: 'address checkpoints: 4,096 addresses flapping between two lists',
    // 100 checkpoints (48 MB): 0.1.0 peaked near 400 MB on it, 8 bytes per byte of file.
    write: (path, small) => writeAddressBomb(path, small ? 25 : 100, false),
    exit: { analyze: 0, verify: 0, redact: 0 },
    rssMB: 300,
  },
  {
    name: 'address checkpoints: 4,096 new addresses each, past the most a journal may bring',
    write: (path, small) => writeAddressBomb(path, small ? 24 : 96, true),
    exit: { analyze: 1, verify: 1, redact: 1 },
    why: /host's distinct addresses past 65536/,
    rssMB: 350,
  },
  {
    name: 'route checkpoints: 4,096 routes flapping between two lists',
    // 96 checkpoints (66 MB): each route decoded and each list kept once per checkpoint, it
    // peaked near 240 MB (262 MB on 193 MB); ~140 MB since (test/journal/routes.test.ts).
    write: (path, small) => writeRouteBomb(path, small ? 24 : 96),
    exit: { analyze: 0, verify: 0, redact: 0 },
    rssMB: 300,
  },
  {
    name: 'gaps: each with its own cause',
    write: (path, small) => writeGapBomb(path, small ? 20_000 : 80_000),
    exit: { analyze: 0, verify: 0, redact: 0 },
    rssMB: 400,
  },
  {
    name: 'a header of huge host, kernel and netns strings',
    write: (path, small) => writeHugeHeader(path, (small ? 2 : 8) * 1_000_000),
    exit: { analyze: 0, verify: 0, redact: 0 },
    rssMB: 300,
  },
  {
    name: 'one-event frames, a checkpoint after each',
    write: (path, small) => writeTinyFrames(path, small ? 12_000 : 48_000),
    exit: { analyze: 0, verify: 0, redact: 0 },
    rssMB: 300,
  },
];

for (const b of budgets) {
  t.test(`untrusted: ${b.name}, judged in time linear in its size`, (t) => {
    const runs = [true, false].map((small) => {
      const path = join(dir, `${b.name.replace(/\W+/g, '-').slice(0, 40)}-${small}.mpk`);
      b.write(path, small);
      const size = statSync(path).size;
      const r = judgeAll(path, KEY);
      rmSync(path);
      return { size, ...r };
    });
    const [small, large] = runs as [(typeof runs)[0], (typeof runs)[0]];
    const sizeRatio = large.size / small.size;
    for (const what of ['analyze', 'verify', 'redact'] as const) {
      const [s, l] = [small[what], large[what]];
      for (const r of [s, l]) {
        t.equal(r.status, b.exit[what], `${what} exits ${b.exit[what]}: ${r.stderr.slice(0, 300)}`);
        t.notMatch(r.stderr, STACK, `${what}: no stack trace`);
        // verify prints its verdict on stdout, the others their error on stderr.
        if (b.why !== undefined) t.match(r.stdout + r.stderr, b.why, `${what} says why`);
      }
      const ratio = l.ms / s.ms;
      t.ok(
        ratio < TIME_SLACK * sizeRatio,
        `${what}: ${(large.size / 1e6).toFixed(1)} MB took ${l.ms.toFixed(0)} ms, ${(small.size / 1e6).toFixed(1)} MB ${s.ms.toFixed(0)} ms: ×${ratio.toFixed(2)} for ×${sizeRatio.toFixed(2)} the size (bound ×${(TIME_SLACK * sizeRatio).toFixed(1)})`,
      );
      t.ok(l.rssMB < b.rssMB, `${what}: peak RSS ${l.rssMB.toFixed(0)} MB (bound ${b.rssMB})`);
    }
    t.end();
  });
}

/**
 * The audit's resync case at its size (issue 18): 33 MB whose every 4th offset after a bad frame
 * reads as a 16 MiB frame. 0.1.0 spent hours on it (a run was killed after 60 s); now ~2 s.
 */
t.test('untrusted: the 33 MB resync bomb of the audit is judged CORRUPT within seconds', (t) => {
  const path = join(dir, 'resync-33mb.mpk');
  writeResyncBomb(path, 33_000_000);
  const runs = judgeAll(path, KEY);
  rmSync(path);
  for (const [what, r] of Object.entries(runs)) {
    t.equal(r.status, 1, `${what} exits 1`);
    t.match(r.stdout + r.stderr, /gave up: damaged or forged, not a torn tail/, `${what} says why`);
    t.ok(r.ms < 10_000, `${what} took ${r.ms.toFixed(0)} ms (bound 10000)`);
    t.ok(r.rssMB < 250, `${what}: peak RSS ${r.rssMB.toFixed(0)} MB (bound 250)`);
  }
  t.end();
});
