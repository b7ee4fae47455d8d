// bench/event-diet.mjs smoke test: over the samples it prints every column, keeps the flows, and exits 1 on none.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';

const SCRIPT = join(PACKAGE_ROOT, 'bench', 'event-diet.mjs');
const DIET = join(PACKAGE_ROOT, 'dist', 'recorder', 'diet.js');
if (!existsSync(DIET)) throw new Error(`${DIET} is missing: run \`npm run build\` first`);

const bench = (args: string[]) =>
  spawnSync(process.execPath, [SCRIPT, ...args], { cwd: PACKAGE_ROOT, encoding: 'utf8' });

t.test(
  'bench/event-diet: the samples keep their flows with fewer events, in both formats',
  async (t) => {
    for (const format of [[], ['--format-version', '1']]) {
      const run = bench([...format, 'samples/lan.mpk', 'samples/nat-router.mpk']);
      t.equal(run.status, 0, `exit 0\n${run.stderr}`);
      const rows = run.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split('\t'));
      t.equal(rows.length, 2, 'a row per journal');
      for (const row of rows) {
        t.equal(row.length, 13, 'every column');
        t.ok(
          Number(row[2]) < Number(row[1]),
          `${row[0]}: fewer events kept (${row[2]} of ${row[1]})`,
        );
        t.ok(Number(row[7]) < Number(row[6]), `${row[0]}: fewer bytes (${row[7]} of ${row[6]})`);
        t.equal(row[11], 'yes', `${row[0]}: the same flows but for lastSeen`);
      }
    }
    t.equal(bench([]).status, 2, 'no journal: usage, exit 2');
  },
);
