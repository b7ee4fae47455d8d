// --follow: a journal that is still being written is read as it grows, reported, and ended cleanly.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { followJournal } from '../../../analyzer/core/follow.js';
import { analyzeJournals, type JournalSummary } from '../../../analyzer/core/replay.js';
import { textLines } from '../../../analyzer/report/text.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { type JournalHeaderInput, RUN_ID_SIZE, sequencePath } from '../../../journal/format.js';
import { JournalWriter } from '../../../journal/writer.js';
import { HEADER } from '../../helpers/journals.js';
import { SEED_EVENTS, tempDir, writeJournal } from '../fixtures.js';

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
  const [summary] = await followJournal(
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
  const [summary] = await followJournal(
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
  const [summary] = await followJournal(
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

/** A header as ct-record writes it for a rotated run: events=2, table dumped at the run's start. */
const RUN_HEADER: JournalHeaderInput = {
  ...HEADER,
  options: { ...HEADER.options, snapshot: true, rotate: true },
  sysctls: { ...HEADER.sysctls, nf_conntrack_events: 2 },
};
const HOUR = 3_600_000_000;

/** Journal `sequence` of `run` (`fw-00000N.mpk`), continuing `previous` as ct-record chains them. */
function runJournal(
  output: string,
  run: Uint8Array,
  sequence: number,
  previous?: JournalWriter,
  force = false,
): JournalWriter {
  const link =
    previous === undefined
      ? null
      : { sha256: Buffer.from(previous.sha256, 'hex'), file: basename(previous.path) };
  return JournalWriter.create(
    sequencePath(output, sequence),
    {
      ...RUN_HEADER,
      start: HEADER.start + sequence * HOUR,
      chain: { run, sequence, previous: link },
    },
    { force },
  );
}

/** Ends journal `sequence` as a rotation does: its trailer names the next journal of the run. */
function rotateOut(w: JournalWriter, output: string, sequence: number): void {
  w.close({
    stop: HEADER.start + (sequence + 1) * HOUR,
    next: basename(sequencePath(output, sequence + 1)),
  });
}

/** A finished run of two journals as `output` numbered: the first five seed events, the rest. */
function writeTwoJournalRun(output: string): Uint8Array {
  const run = randomBytes(RUN_ID_SIZE);
  const first = runJournal(output, run, 1);
  first.append(SEED_EVENTS.slice(0, 5));
  rotateOut(first, output, 1);
  const second = runJournal(output, run, 2, first);
  second.append(SEED_EVENTS.slice(5));
  second.close({ stop: HEADER.start + 3 * HOUR });
  return run;
}

const NEVER = new AbortController().signal;
const warningsOf = (journals: readonly JournalSummary[]) =>
  journals.map((j) => j.coverage.warnings);

t.test('follow: a run rotated twice while followed is one table of its 3 journals', async (t) => {
  const dir = tempDir(t, 'rotate');
  const output = join(dir, 'fw.mpk');
  const run = randomBytes(RUN_ID_SIZE);
  const paths = [1, 2, 3].map((n) => sequencePath(output, n));
  let w = runJournal(output, run, 1);
  t.teardown(() => w.closeAfterFailure());
  w.append(SEED_EVENTS.slice(0, 2));
  w.flush();
  const waiting: string[] = [];
  /** What ct-record does between two reports; each report runs the next step. */
  const steps: Array<() => void> = [
    () => {
      w.append(SEED_EVENTS.slice(2, 4));
      w.flush();
    },
    () => rotateOut(w, output, 1),
    () => {}, // journal 2 appears a report later than the trailer naming it
    () => {
      w = runJournal(output, run, 2, w);
      w.append(SEED_EVENTS.slice(4, 6));
      w.flush();
    },
    () => {
      rotateOut(w, output, 2);
      // ct-record has created journal 3 but not yet written its header.
      writeFileSync(paths[2] as string, '');
    },
    () => {
      w = runJournal(output, run, 3, w, true);
      w.append(SEED_EVENTS.slice(6, 8));
      w.flush();
    },
    () => {
      w.append(SEED_EVENTS.slice(8));
      w.close({ stop: HEADER.start + 4 * HOUR });
    },
  ];
  let step = 0;
  const journalsPerReport: number[] = [];
  const warned: string[] = [];
  let finals = 0;
  let finalLines: string[] = [];
  const journals = await followJournal(
    paths[0] as string,
    { intervalMs: 0, pollMs: 5, signal: NEVER, warn: (m) => warned.push(m) },
    async (table, journals, final) => {
      if (final) {
        finals++;
        finalLines = lines(table);
        return;
      }
      journalsPerReport.push(journals.length);
      const w = journals.at(-1)?.coverage.warnings.find((w) => w.startsWith('waiting for'));
      if (w !== undefined) waiting.push(w);
      steps[step++]?.();
    },
  );
  t.equal(step, steps.length, 'every step ran');
  t.equal(finals, 1, 'one final report');
  t.strictSame(journalsPerReport.at(0), 1, 'the first reports list journal 1');
  t.strictSame(journalsPerReport.at(-1), 3, 'the later ones every journal read so far');
  t.strictSame(
    waiting.map((w) => w.replace(dir, 'DIR')),
    [
      'waiting for DIR/fw-000002.mpk, where the run goes on (ct-record --rotate)',
      'waiting for DIR/fw-000002.mpk, where the run goes on (ct-record --rotate)',
      'waiting for DIR/fw-000003.mpk, where the run goes on (ct-record --rotate)',
    ],
    'a report while the next journal is missing, and while it has no header yet, says so',
  );
  const whole = analyzeJournals(paths);
  t.strictSame(
    journals.map((j) => j.path),
    paths,
    'the final report lists each journal of the run',
  );
  t.ok(
    journals.every((j) => j.complete),
    'each read to its trailer',
  );
  t.strictSame(finalLines, lines(whole.table), 'the union of the run’s flows');
  t.strictSame(
    warningsOf(journals),
    warningsOf(whole.journals),
    'the same warnings as analyzing the run: the run judged as one recording',
  );
  t.match(
    journals[0]?.coverage.warnings.join('\n'),
    /the rotated run \(3 journals\) covers only 3 h 0 min/,
  );
  t.strictSame(warned, [], 'nothing on stderr: no loss, no hole');
});

t.test('follow: the union of a followed run is the table of the whole run', async (t) => {
  const dir = tempDir(t, 'union');
  const output = join(dir, 'fw.mpk');
  const run = randomBytes(RUN_ID_SIZE);
  let w = runJournal(output, run, 1);
  w.append(SEED_EVENTS.slice(0, 5));
  rotateOut(w, output, 1);
  w = runJournal(output, run, 2, w);
  w.append(SEED_EVENTS.slice(5));
  w.close({ stop: HEADER.start + 3 * HOUR });
  const reports: string[][] = [];
  await followJournal(
    sequencePath(output, 1),
    { intervalMs: 0, pollMs: 5, signal: NEVER },
    async (table) => {
      reports.push(lines(table));
    },
  );
  const one = join(dir, 'one.mpk');
  writeJournal(one, [SEED_EVENTS]);
  t.strictSame(reports.at(-1), lines(analyzeJournals([one]).table), 'every event of both journals');
});

t.test(
  'follow: a next journal of another run, unchained or out of sequence is an error',
  async (t) => {
    const cases: Array<
      [string, (output: string, run: Uint8Array, first: JournalWriter) => void, RegExp]
    > = [
      [
        'another run',
        (output, _run, first) =>
          runJournal(output, randomBytes(RUN_ID_SIZE), 2, first).close({ stop: HEADER.start }),
        /fw-000002\.mpk does not follow \S*fw-000001\.mpk: it is of another run \([0-9a-f]{8}, not [0-9a-f]{8}\)/,
      ],
      [
        'no chain',
        (output) =>
          JournalWriter.create(sequencePath(output, 2), HEADER).close({ stop: HEADER.start }),
        /fw-000002\.mpk does not follow \S*fw-000001\.mpk: it is not a journal of a rotated run/,
      ],
      [
        'sequence 3',
        (output, run, first) =>
          JournalWriter.create(sequencePath(output, 2), {
            ...RUN_HEADER,
            chain: {
              run,
              sequence: 3,
              previous: { sha256: Buffer.from(first.sha256, 'hex'), file: basename(first.path) },
            },
          }).close({ stop: HEADER.start }),
        /fw-000002\.mpk does not follow \S*fw-000001\.mpk: it is sequence 3 of run [0-9a-f]{8}, not 2/,
      ],
    ];
    for (const [what, writeNext, message] of cases) {
      const dir = tempDir(t, `foreign-${what.replace(/\W/g, '')}`);
      const output = join(dir, 'fw.mpk');
      const run = randomBytes(RUN_ID_SIZE);
      const first = runJournal(output, run, 1);
      first.append(SEED_EVENTS);
      rotateOut(first, output, 1);
      writeNext(output, run, first);
      await t.rejects(
        followJournal(
          sequencePath(output, 1),
          { intervalMs: 0, pollMs: 5, signal: NEVER },
          async () => {},
        ),
        { code: 'ECHAIN', message },
        what,
      );
    }
  },
);

t.test('follow: a predecessor replaced after its successor was written is an error', async (t) => {
  const dir = tempDir(t, 'replaced');
  const output = join(dir, 'fw.mpk');
  const run = writeTwoJournalRun(output);
  // The same run and place, other content: a well-formed journal, but not the one continued.
  const impostor = runJournal(output, run, 1, undefined, true);
  impostor.append(SEED_EVENTS.slice(0, 4));
  rotateOut(impostor, output, 1);
  const reports: number[] = [];
  await t.rejects(
    followJournal(
      sequencePath(output, 1),
      { intervalMs: 0, pollMs: 5, signal: NEVER },
      async (_table, journals) => {
        reports.push(journals.length);
      },
    ),
    {
      code: 'ECHAIN',
      message:
        /fw-000002\.mpk does not follow \S*fw-000001\.mpk: its previous sha256 differs; following stops: check the run with ct-analyze verify/,
    },
  );
  t.ok(reports.length >= 1, 'looked a second time before calling it an error');
});

t.test('follow: stopping while waiting for the next journal reports what is missing', async (t) => {
  const dir = tempDir(t, 'waiting');
  const output = join(dir, 'fw.mpk');
  const w = runJournal(output, randomBytes(RUN_ID_SIZE), 1);
  w.append(SEED_EVENTS);
  rotateOut(w, output, 1);
  const stop = new AbortController();
  const warned: string[] = [];
  let finalJournals: JournalSummary[] = [];
  const journals = await followJournal(
    sequencePath(output, 1),
    { intervalMs: 0, pollMs: 5, signal: stop.signal, warn: (m) => warned.push(m) },
    async (_table, journals, final) => {
      if (final) finalJournals = journals;
      else if (journals[0]?.coverage.warnings.some((w) => w.startsWith('waiting for'))) {
        stop.abort();
      }
    },
  );
  t.equal(journals, finalJournals, 'returns the final report’s summaries');
  t.equal(journals.length, 1);
  const next = sequencePath(output, 2);
  const stopped = `following stopped while waiting for ${next}, where the run goes on (ct-record --rotate): its events are not included; once it exists, analyze every journal of the run together`;
  t.strictSame(
    journals[0]?.coverage.warnings,
    [
      'nf_conntrack_timestamp=0: last-seen times are when events arrived (an ended flow is reported 10–40 s late); set net.netfilter.nf_conntrack_timestamp=1 before recording',
      stopped,
    ],
    'no short-recording warning: the recording is in progress',
  );
  t.strictSame(warned, [`${sequencePath(output, 1)}: ${stopped}`], 'and on stderr');
});

t.test(
  'follow: from a later journal of a run, the report says the earlier ones are missing',
  async (t) => {
    const dir = tempDir(t, 'later');
    const output = join(dir, 'fw.mpk');
    writeTwoJournalRun(output);
    const warned: string[] = [];
    const journals = await followJournal(
      sequencePath(output, 2),
      { intervalMs: 0, pollMs: 5, signal: NEVER, warn: (m) => warned.push(m) },
      async () => {},
    );
    t.equal(journals.length, 1);
    const hole = /journal 2 of run [0-9a-f]{8} is analyzed without journal 1 \(fw-000001\.mpk\)/;
    t.match(journals[0]?.coverage.warnings.join('\n'), hole);
    t.match(warned.join('\n'), hole);
    t.strictSame(
      warningsOf(journals),
      warningsOf(analyzeJournals([sequencePath(output, 2)]).journals),
    );
  },
);

t.test(
  'follow CLI: a rotated run is followed to its last journal, all in the last report',
  async (t) => {
    const dir = tempDir(t, 'cli-run');
    const output = join(dir, 'fw.mpk');
    writeTwoJournalRun(output);
    const child = spawn(process.execPath, [CLI, '--follow', sequencePath(output, 1)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.equal(code, 0, err);
    const last = out.slice(out.lastIndexOf(`# conntracker flows from ${sequencePath(output, 1)}`));
    t.match(last, `# conntracker flows from ${sequencePath(output, 2)}`);
    t.match(last, '# coverage of all 2 journals: 10 events recorded');
  },
);
