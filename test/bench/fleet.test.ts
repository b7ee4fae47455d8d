// bench/fleet.sh smoke test: a tiny fleet gives DuckDB's SQL the table ct-analyze prints, and every figure is printed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { benchCopy, grab, NUM, runBench } from '../helpers/bench.js';
import { tempDir } from '../helpers/journals.js';

const SCRIPT = join(PACKAGE_ROOT, 'bench', 'fleet.sh');
const GEN = join(PACKAGE_ROOT, 'bench', 'fleet-gen.mjs');
const ANALYZER = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');

if (!existsSync(ANALYZER)) throw new Error(`${ANALYZER} is missing: run \`npm run build\` first`);
// Five bench runs of a few seconds each, slower on a busy 2-core machine than the 180 s default.
t.setTimeout(400_000);

const bench = (tmp: string, args: string[], script = SCRIPT) =>
  runBench(script, tmp, args, 250_000);

t.test(
  'bench/fleet: 4 hosts at scale 0.01 give the same flow table from ct-analyze (v1, v2) and DuckDB, with every figure',
  async (t) => {
    const tmp = tempDir(t, 'bench-fleet');
    const args = ['--hosts', '4', '--scale', '0.01', '--runs', '1', '--no-build'];
    const run = bench(tmp, [...args, '--sizes', '2 4', '--keep']);
    t.equal(run.code, 0, `exit 0\n${run.out}\n${run.err}`);
    const out = run.out;

    // One busy web front (host 0), one NAT gateway (host 1), two quiet servers.
    t.match(out, /^data: \d+ events; roles: 1 gw, 2 quiet, 1 web$/m);
    for (const n of [2, 4]) {
      t.match(
        out,
        new RegExp(
          `^tables: identical at ${n} hosts: ct-analyze v1 = v2 = DuckDB, \\d+ lines, sha256 [0-9a-f]{64}$`,
          'm',
        ),
        `${n} hosts: the engine's table is ct-analyze's, byte for byte`,
      );
      for (const step of ['ct-analyze-v1', 'ct-analyze-v2', 'export-parquet', 'duckdb-sql']) {
        t.match(
          out,
          new RegExp(`^1 +${step} +${NUM} +${NUM} +${NUM}$`, 'm'),
          `${n} hosts: ${step} run line`,
        );
      }
      t.match(
        out,
        new RegExp(
          `^  ratio duckdb-sql / ct-analyze-v2: wall ${NUM}, cpu ${NUM}, peak RSS ${NUM}$`,
          'm',
        ),
      );
    }
    t.equal(
      out.match(/^tables: identical at /gm)?.length,
      2,
      'a table check per fleet size, and no other',
    );
    for (const what of [
      'journals, format 1',
      'journals, format 2',
      'export, parquet \\(events\\)',
    ]) {
      t.match(
        out,
        new RegExp(`^  ${what} +\\d+ B +${NUM} MiB +${NUM} B/event +${NUM} x v1$`, 'm'),
        `bytes on disk: ${what}`,
      );
    }
    t.match(out, new RegExp(`^ +4 +\\d+( +${NUM}){8}$`, 'm'), 'summary row of the whole fleet');
    t.match(out, /^where the engine starts to win: (the SQL over the export beats|not within)/m);

    // The journals: the fleet-gen fleet, with snapshots at start and IPv6, as ct-analyze reads them.
    const v1 = grab(run.err + out, /^data: (?:reusing|generating .* into) (\S+\/v1)/m);
    const names = readdirSync(v1).filter((f) => f.endsWith('.mpk'));
    t.equal(names.length, 4, 'one journal per host');
    const report = spawnSync(process.execPath, [ANALYZER, ...names.map((n) => join(v1, n))], {
      encoding: 'utf8',
    });
    t.equal(report.status, 0, report.stderr);
    const snapshots = [...report.stdout.matchAll(/^# coverage: .*snapshot (\d+)\)/gm)];
    t.equal(snapshots.length, 4, 'a coverage line per journal');
    t.ok(
      snapshots.every((m) => Number(m[1]) > 0),
      'every journal starts with snapshot events',
    );
    t.match(report.stdout, /^ TCPv6 \[/m, 'IPv6 flows');
    t.match(report.stdout, /^ICMPv4 \[/m, 'ICMP flows');

    // The generator is deterministic: host 1 again, alone, is the same file byte for byte.
    const again = join(tmp, 'again');
    const gen = spawnSync(
      process.execPath,
      [GEN, '--hosts', '2', '--scale', '0.01', '--shard', '1/2', '--out', again],
      { encoding: 'utf8' },
    );
    t.equal(gen.status, 0, gen.stderr);
    const gw = 'gw-001.dc1.example.net.mpk';
    t.ok(
      readFileSync(join(again, gw)).equals(readFileSync(join(v1, gw))),
      'host 1 of a 2-host fleet = host 1 of a 4-host fleet',
    );

    // Again without --keep: the fleet is reused, and this run leaves nothing of its own behind.
    const runsBefore = readdirSync(tmp).filter((f) => f.startsWith('ct-bench-fleet-run.'));
    const second = bench(tmp, [...args, '--sizes', '4']);
    t.equal(second.code, 0, second.err);
    t.match(second.out, /^data: reusing /m);
    t.match(second.out, /^tables: identical at 4 hosts: /m);
    t.strictSame(
      readdirSync(tmp).filter((f) => f.startsWith('ct-bench-fleet-run.')),
      runsBefore,
      'its work dir is gone',
    );
    t.ok(existsSync(join(v1, gw)), 'the kept fleet is still there');
  },
);

t.test(
  'bench/fleet: a SQL table that differs from ct-analyze by one line fails the bench',
  async (t) => {
    // A copy of bench/ and docs/sql/ beside the real dist/ and node_modules/, with the SQL's
    // confirmation rule broken (status & 4, ASSURED, instead of & 2, SEEN_REPLY).
    const tmp = tempDir(t, 'bench-fleet-broken');
    const root = join(tmp, 'root');
    benchCopy(root, ['fleet.sh', 'fleet-gen.mjs', 'fleet-sql.mjs', 'gen-common.mjs']);
    mkdirSync(join(root, 'docs', 'sql'), { recursive: true });
    const sql = readFileSync(join(PACKAGE_ROOT, 'docs', 'sql', 'flows.duckdb.sql'), 'utf8');
    const broken = sql.replace('bool_or(status & 2 <> 0)', 'bool_or(status & 4 <> 0)');
    t.not(broken, sql, 'the confirmation rule was there to break');
    writeFileSync(join(root, 'docs', 'sql', 'flows.duckdb.sql'), broken);

    const run = bench(
      tmp,
      ['--hosts', '2', '--scale', '0.01', '--runs', '1', '--sizes', '2', '--no-build'],
      join(root, 'bench', 'fleet.sh'),
    );
    t.equal(run.code, 1, 'exit 1');
    t.match(
      run.out,
      /^tables: MISMATCH at 2 hosts: ct-analyze sha256 [0-9a-f]{64} \(\d+ lines\), DuckDB sha256 [0-9a-f]{64}/m,
    );
    t.notMatch(run.out, /^bytes on disk/m, 'no figures after a failed check');
    t.match(run.err, /DuckDB's flow table differs from ct-analyze's at 2 hosts/);
    t.match(run.err, /kept this run's outputs in /, 'the outputs stay for a look');
  },
);
