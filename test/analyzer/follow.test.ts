// --follow: a journal that is still being written is read as it grows, reported, and ended cleanly.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { followJournal } from '../../analyzer/follow.js';
import { textLines } from '../../analyzer/format-text.js';
import { analyzeJournals } from '../../analyzer/replay.js';
import { PACKAGE_ROOT } from '../../common/package.js';
import { JournalWriter } from '../../journal/writer.js';
import { HEADER } from '../helpers/journals.js';
import { SEED_EVENTS, tempDir, writeJournal } from './fixtures.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const lines = (table: Parameters<Parameters<typeof followJournal>[2]>[0]) => [
  ...textLines(table.flows()),
];

t.test('follow: each report holds what was written so far, the last one everything', async (t) => {
  const dir = tempDir(t, 'follow');
  const path = join(dir, 'growing.mpk');
  const w = JournalWriter.create(path, HEADER);
  w.append(SEED_EVENTS.slice(0, 2));
  w.flush();
  const seen: number[] = [];
  let finals = 0;
  const summary = await followJournal(
    path,
    { intervalMs: 0, pollMs: 5, signal: new AbortController().signal },
    async (table, journals, final) => {
      seen.push(table.size);
      if (final) {
        finals++;
        return;
      }
      t.strictSame(
        journals[0]?.coverage.warnings.filter((w) => /did not end cleanly|covers only/.test(w)),
        [],
        'no "did not end cleanly" nor "short" while following',
      );
      // The recorder goes on: one more batch per report, then the trailer.
      const next = seen.length + 1;
      if (next * 2 <= SEED_EVENTS.length) {
        w.append(SEED_EVENTS.slice(next * 2 - 2, next * 2));
        w.flush();
      } else {
        w.close({ stop: HEADER.start + 1 });
      }
    },
  );
  t.equal(finals, 1, 'one final report');
  t.ok(seen.length >= 3, `reported while growing (${seen.join(', ')})`);
  t.ok(
    seen.every((n, i) => i === 0 || n >= (seen[i - 1] as number)),
    'the table only grows',
  );
  t.equal(summary?.complete, true, 'the trailer ended the following');
  t.equal(summary?.events, SEED_EVENTS.length);
  const whole = analyzeJournals([path]).table;
  t.equal(seen.at(-1), whole.size, 'the last report has every flow');
});

t.test('follow: a frame still being written is waited for, not called damage', async (t) => {
  const dir = tempDir(t, 'partial');
  const full = join(dir, 'full.mpk');
  writeJournal(full, [SEED_EVENTS.slice(0, 3), SEED_EVENTS.slice(3)]);
  const bytes = readFileSync(full);
  const path = join(dir, 'partial.mpk');
  // The magic, the header frame and 5 bytes of the next, then a few bytes at a time, cutting
  // frames anywhere.
  let at = 8 + 9 + bytes.readUInt32LE(8) + 5;
  writeFileSync(path, bytes.subarray(0, at));
  const reports: string[][] = [];
  const summary = await followJournal(
    path,
    { intervalMs: 0, pollMs: 2, signal: new AbortController().signal },
    async (table, _journals, final) => {
      reports.push(lines(table));
      if (final) return;
      const step = Math.min(7, bytes.length - at);
      appendFileSync(path, bytes.subarray(at, at + step));
      at += step;
    },
  );
  t.equal(summary?.complete, true);
  t.strictSame(reports.at(-1), lines(analyzeJournals([full]).table), 'same table as the whole');
});

t.test('follow: stopping (SIGINT) makes one last report of what is there', async (t) => {
  const dir = tempDir(t, 'stop');
  const path = join(dir, 'live.mpk');
  const w = JournalWriter.create(path, HEADER);
  t.teardown(() => w.closeAfterFailure());
  w.append(SEED_EVENTS);
  w.flush();
  const stop = new AbortController();
  const finals: boolean[] = [];
  const summary = await followJournal(
    path,
    { intervalMs: 0, pollMs: 5, signal: stop.signal },
    async (_table, _journals, final) => {
      finals.push(final);
      stop.abort();
    },
  );
  t.strictSame(finals, [false, true]);
  t.equal(summary?.complete, false, 'no trailer yet');
  t.strictSame(
    summary?.coverage.warnings,
    [
      'nf_conntrack_timestamp=0: last-seen times are when events arrived (an ended flow is reported 10–40 s late); set net.netfilter.nf_conntrack_timestamp=1 before recording',
    ],
    'in progress is not a fault, only the fixture header’s timestamps are',
  );
});

t.test('follow: a journal that shrinks is an error that says what happened', async (t) => {
  const dir = tempDir(t, 'shrink');
  const path = join(dir, 'j.mpk');
  const w = JournalWriter.create(path, HEADER);
  t.teardown(() => w.closeAfterFailure());
  w.append(SEED_EVENTS);
  w.flush();
  await t.rejects(
    followJournal(
      path,
      { intervalMs: 0, pollMs: 5, signal: new AbortController().signal },
      async () => truncateSync(path, 100),
    ),
    { code: 'ETRUNCATED', message: /shrank from \d+ to 100 bytes while being followed/ },
  );
});

t.test('follow CLI: reports, then SIGINT ends it with exit 0 and a last report', async (t) => {
  const dir = tempDir(t, 'cli');
  const path = join(dir, 'live.mpk');
  const w = JournalWriter.create(path, HEADER);
  t.teardown(() => w.closeAfterFailure());
  w.append(SEED_EVENTS);
  w.flush();
  const child = spawn(process.execPath, [CLI, '--follow', '--interval', '0.2', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d) => {
      out += d;
      // Two reports: it keeps reporting while the journal is open.
      if (out.split('# conntracker flows').length > 2) resolve();
    });
  });
  child.kill('SIGINT');
  t.equal(await exited, 0, err);
  const reports = out.split('# conntracker flows').length - 1;
  t.ok(reports >= 3, `periodic reports and a last one (${reports})`);
  t.notMatch(out, /did not end cleanly/);
  t.equal(err, 'ct-analyze: note: 1 events belong to no flow table (IPv4 proto 47: 1)\n', 'once');
});

t.test('follow CLI: one journal only, as a usage error', async (t) => {
  const dir = tempDir(t, 'usage');
  const a = join(dir, 'a.mpk');
  writeJournal(a, [SEED_EVENTS]);
  const child = spawn(process.execPath, [CLI, '-f', a, a], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 2);
  t.match(err, /--follow reads one journal, not 2/);
  t.notMatch(err, /\n\s+at /, 'no stack');
});
