// bench: ct-analyze export, NDJSON and Parquet: events per second and peak memory at two journal sizes.
//
// Usage: node bench/export.mjs [--events 1000000,4000000] [--dir /tmp/ct-export-bench]
//                              [--journal-format 1|2]
// Per size, a journal from bench/replay-gen.mjs (the replay benchmark's mix: 20,000 flows;
// made once, kept in --dir; format 2, ct-record's default, unless --journal-format 1), then `ct-analyze export --format F` of it, run under GNU time
// (Debian package `time`) for wall time, CPU time and peak RSS. Prints one line per run and
// the ratio of peak RSS between the largest and the smallest journal: flat memory is ~1.
// Reads dist/ (npm run build first). Figures depend on the machine's load: the load average
// is printed with them.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000,4000000' },
    dir: { type: 'string', default: '/tmp/ct-export-bench' },
    formats: { type: 'string', default: 'ndjson,parquet' },
    'journal-format': { type: 'string', default: '2' },
  },
});
const sizes = opt.events.split(',').map(Number);
if (!sizes.every((n) => Number.isSafeInteger(n) && n > 0)) {
  process.stderr.write('export bench: --events takes positive integers, comma-separated\n');
  process.exit(2);
}
if (!existsSync('/usr/bin/time')) {
  process.stderr.write('export bench: needs GNU time (/usr/bin/time): apt-get install time\n');
  process.exit(2);
}
const version = opt['journal-format'];
if (version !== '1' && version !== '2') {
  process.stderr.write('export bench: --journal-format takes 1 or 2\n');
  process.exit(2);
}
mkdirSync(opt.dir, { recursive: true });

function bytesUnder(dir) {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    n += st.isDirectory() ? bytesUnder(p) : st.size;
  }
  return n;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const peaks = new Map();
process.stdout.write(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
for (const events of sizes) {
  const journal = join(
    opt.dir,
    version === '2' ? `replay-${events}.mpk` : `replay-v1-${events}.mpk`,
  );
  if (!existsSync(journal)) {
    execFileSync(
      process.execPath,
      [
        join(root, 'bench', 'replay-gen.mjs'),
        '--events',
        String(events),
        '--flows',
        '20000',
      ].concat(['--journal', journal, '--text', '/dev/null', '--format-version', version]),
      { stdio: 'ignore' },
    );
  }
  const journalBytes = statSync(journal).size;
  for (const format of opt.formats.split(',')) {
    const out = join(opt.dir, `out-${format}-${events}`);
    rmSync(out, { recursive: true, force: true });
    const cli = join(root, 'dist', 'analyzer', 'cli.js');
    const args = ['-f', '%e %U %S %M', process.execPath, cli, 'export', '--format', format];
    const run = spawnSync('/usr/bin/time', [...args, '-o', out, journal], { encoding: 'utf8' });
    if (run.status !== 0) {
      process.stderr.write(run.stderr);
      process.exit(1);
    }
    const [wall, user, sys, kB] = run.stderr.trim().split('\n').at(-1).split(' ').map(Number);
    const cpu = user + sys;
    peaks.set(`${format} ${events}`, kB);
    process.stdout.write(
      `${format.padEnd(7)} ${fmt(events).padStart(10)} events  journal ${fmt(journalBytes / 1e6)} MB → ` +
        `${fmt(bytesUnder(out) / 1e6)} MB  wall ${wall.toFixed(2)} s (${fmt(events / wall)} events/s)  ` +
        `cpu ${cpu.toFixed(2)} s (${fmt(events / cpu)} events/cpu-s)  peak RSS ${fmt(kB / 1024)} MB\n`,
    );
    rmSync(out, { recursive: true, force: true });
  }
}
if (sizes.length > 1) {
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  for (const format of opt.formats.split(',')) {
    const ratio = peaks.get(`${format} ${hi}`) / peaks.get(`${format} ${lo}`);
    process.stdout.write(
      `${format}: peak RSS at ${fmt(hi)} events / at ${fmt(lo)} events = ${ratio.toFixed(2)} (${(hi / lo).toFixed(0)}x the events)\n`,
    );
  }
}
process.stdout.write(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
