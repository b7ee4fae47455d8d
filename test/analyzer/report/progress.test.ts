// The progress bar: drawn on a terminal only, late and throttled, erased before anything else.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import type { ReplayProgress } from '../../../analyzer/core/replay.js';
import { ProgressLine, progressText } from '../../../analyzer/report/progress.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { SEED_EVENTS, tempDir, writeJournal } from '../fixtures.js';

const MB = 1024 * 1024;
const at = (bytes: number, events: number, extra: Partial<ReplayProgress> = {}) => ({
  path: 'fw1.mpk',
  index: 0,
  count: 1,
  bytes,
  total: 200 * MB,
  events,
  ...extra,
});

t.test('progress: the text says how far, of what, and how fast', async (t) => {
  t.equal(
    progressText(at(50 * MB, 3_000_000), 1),
    'fw1.mpk [#####...............]  25%  50/200 MB  3.0 M events/s',
  );
  t.equal(
    progressText(at(200 * MB, 9000, { index: 1, count: 3, path: 'a\nb' }), 3),
    '[2/3] a\\x0ab [####################] 100%  200/200 MB  3 k events/s',
  );
});

t.test('progress: nothing for a short replay, then at most every 200 ms, erased by clear', (t) => {
  let clock = 0;
  const out: string[] = [];
  const bar = new ProgressLine(
    { write: (s: string) => out.push(s), columns: 40 },
    {
      now: () => clock,
    },
  );
  bar.update(at(MB, 10));
  clock = 400;
  bar.update(at(2 * MB, 20));
  bar.clear();
  t.strictSame(out, [], 'a replay under 500 ms draws nothing, and clear erases nothing');
  clock = 600;
  bar.update(at(3 * MB, 30));
  clock = 700;
  bar.update(at(4 * MB, 40));
  clock = 800;
  bar.update(at(5 * MB, 50));
  t.equal(out.length, 2, 'throttled: at 600 and 800 ms, not 700');
  t.ok(
    out.every((s) => s.startsWith('\r') && s.endsWith('\x1b[K')),
    'redrawn in place',
  );
  t.ok(
    out.every((s) => s.length - 4 <= 39),
    'fits the terminal width',
  );
  bar.clear();
  t.equal(out.at(-1), '\r\x1b[K');
  t.end();
});

t.test('progress: a report piped or redirected has no bar on stderr', async (t) => {
  const dir = tempDir(t, 'progress');
  const path = join(dir, 'j.mpk');
  writeJournal(path, [SEED_EVENTS]);
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js'), path], {
    encoding: 'utf8',
  });
  t.equal(r.status, 0);
  t.notMatch(r.stderr, /\r|events\/s/, 'stderr is not a terminal: no bar');
});
