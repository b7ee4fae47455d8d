// ct-analyze export from the command line: usage errors, an output it cannot write, flat memory in the journal's size, the bench script.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseCollapse } from '../../../analyzer/core/flows.js';
import { runExport } from '../../../analyzer/export/export.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { tempDir } from '../../helpers/journals.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const PEAK_RSS = join(PACKAGE_ROOT, 'test', 'helpers', 'peak-rss.cjs');
const GEN = join(PACKAGE_ROOT, 'bench', 'replay-gen.mjs');
const SAMPLE = join(PACKAGE_ROOT, 'test', 'fixtures', 'v1', 'lan-0.1.0.mpk');

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const res = spawnSync(process.execPath, ['-r', PEAK_RSS, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 170_000,
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

t.test('an unknown option or format is a usage error (exit 2) naming the choices', async (t) => {
  const dir = tempDir(t, 'export-cli');
  const out = join(dir, 'out');
  const unknown = cli(['export', '--bogus', '-o', out, SAMPLE]);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /unknown option '--bogus'/);
  const format = cli(['export', '--format', 'csv', '-o', out, SAMPLE]);
  t.equal(format.code, 2);
  t.match(format.err, /parquet, ndjson/);
  const missing = cli(['export', SAMPLE]);
  t.equal(missing.code, 2);
  t.match(missing.err, /-o, --output/);
  t.notOk(existsSync(out), 'nothing written');
});

t.test('an output path through a file is a clear error without a stack trace', async (t) => {
  const dir = tempDir(t, 'export-cli');
  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  const res = cli(['export', '-o', join(file, 'out'), SAMPLE]);
  t.equal(res.code, 1);
  t.match(res.err, /^ct-analyze: .*ENOTDIR|not a directory/m);
  t.match(res.err, /choose another -o/);
  t.notMatch(res.err, /\n\s+at /, 'no stack trace');
});

t.test('a journal that is no journal fails as ct-analyze does, writing nothing', async (t) => {
  const dir = tempDir(t, 'export-cli');
  const bogus = join(dir, 'bogus.mpk');
  writeFileSync(bogus, 'not a journal at all');
  const out = join(dir, 'out');
  const analyze = spawnSync(process.execPath, [CLI, bogus], { encoding: 'utf8' });
  const res = cli(['export', '-o', out, bogus]);
  t.equal(res.code, analyze.status);
  t.equal(res.err, analyze.stderr);
  t.notOk(existsSync(join(out, 'schema.json')));
});

t.test(
  'peak memory is flat in the journal size (4x the events, < 1.5x the peak RSS)',
  async (t) => {
    const dir = tempDir(t, 'export-mem');
    const peak: Record<string, number> = {};
    // Both journals above 1 MB (read by the reading thread, as large journals are) and past
    // the first row groups, where RSS settles (210-245 MB from 300,000 to 4,000,000 events).
    for (const events of [300_000, 1_200_000]) {
      const journal = join(dir, `j${events}.mpk`);
      const gen = spawnSync(
        process.execPath,
        [
          GEN,
          '--events',
          String(events),
          '--flows',
          '20000',
          '--journal',
          journal,
          '--text',
          '/dev/null',
        ],
        { encoding: 'utf8', timeout: 170_000 },
      );
      t.equal(gen.status, 0, gen.stderr);
      for (const format of ['ndjson', 'parquet']) {
        const rss = join(dir, `rss-${format}-${events}`);
        const out = join(dir, `out-${format}-${events}`);
        // Events only: the flow table (--what flows) grows with the flows, as ct-analyze's does.
        const res = cli(['export', '--format', format, '-o', out, journal], {
          CT_PEAK_RSS_FILE: rss,
        });
        t.equal(res.code, 0, res.err);
        peak[`${format} ${events}`] = Number(readFileSync(rss, 'utf8'));
      }
      if (events === 300_000) {
        // The built CLI read it on its second thread; from sources it is read on this one.
        const here = join(dir, 'here');
        const collapse = parseCollapse('1024');
        const cmd = { journals: [journal], what: 'events' as const, collapse, force: false };
        await runExport({ ...cmd, format: 'ndjson', output: here }, { warn() {}, note() {} });
        const [part] = readdirSync(join(here, 'events', 'host=bench-replay'), { recursive: true })
          .map(String)
          .filter((f) => f.endsWith('.ndjson'));
        const rel = join('events', 'host=bench-replay', part as string);
        t.ok(
          readFileSync(join(here, rel)).equals(
            readFileSync(join(dir, `out-ndjson-${events}`, rel)),
          ),
          'the reading thread and this one give the same bytes',
        );
      }
    }
    t.comment(`peak RSS (kB): ${JSON.stringify(peak)}`);
    for (const format of ['ndjson', 'parquet']) {
      const ratio = (peak[`${format} 1200000`] as number) / (peak[`${format} 300000`] as number);
      t.ok(ratio < 1.5, `${format}: peak RSS ratio ${ratio.toFixed(2)} for 4x the events`);
    }
  },
);

const NO_TIME = existsSync('/usr/bin/time')
  ? false
  : 'bench/export.mjs needs GNU time (/usr/bin/time): apt-get install time';

t.test(
  'bench/export.mjs prints events/s and peak RSS for both formats',
  { skip: NO_TIME },
  async (t) => {
    const dir = tempDir(t, 'export-bench');
    const res = spawnSync(
      process.execPath,
      [join(PACKAGE_ROOT, 'bench', 'export.mjs'), '--events', '2000,8000', '--dir', dir],
      { encoding: 'utf8', timeout: 170_000 },
    );
    t.equal(res.status, 0, res.stderr);
    for (const format of ['ndjson', 'parquet']) {
      t.match(res.stdout, new RegExp(`${format} +8,000 events .* events/s\\) .* peak RSS \\d+ MB`));
      t.match(
        res.stdout,
        new RegExp(`${format}: peak RSS at 8,000 events / at 2,000 events = \\d`),
      );
    }
  },
);
