// ct-analyze loads what a command runs only when it runs: --version and --help stay cheap (issue 15).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { tempDir } from '../helpers/journals.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const HOOK = join(PACKAGE_ROOT, 'test', 'helpers', 'loaded-modules.mjs');
const LAN = join(PACKAGE_ROOT, 'samples', 'lan.mpk');

/** What start-up must not load: each command's implementation and the packages under them. */
const HEAVY = [
  'dist/analyzer/export/export.js',
  'dist/analyzer/verify/verify.js',
  'dist/analyzer/core/flows.js',
  'dist/analyzer/core/replay.js',
  'dist/analyzer/commands/run/',
  'node_modules/sorted-btree/',
  'node_modules/msgpackr/',
];

const dir = tempDir(t, 'lazy');
let runs = 0;

/** Runs the built CLI with the module-recording hook; the package-relative paths it loaded. */
function loaded(args: string[]): { status: number | null; stderr: string; modules: string[] } {
  const log = join(dir, `modules-${++runs}.log`);
  const r = spawnSync(process.execPath, ['--import', HOOK, CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, LOADED_MODULES_LOG: log, NO_COLOR: '1' },
  });
  const root = pathToFileURL(`${PACKAGE_ROOT}/`).href;
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const modules = [
    ...new Set(urls.filter((u) => u.startsWith(root)).map((u) => u.slice(root.length))),
  ];
  return { status: r.status, stderr: r.stderr, modules };
}

const heavyIn = (modules: string[]) => modules.filter((m) => HEAVY.some((h) => m.startsWith(h)));

for (const args of [['--version'], ['--help'], ['export', '--help'], ['verify', '--help']]) {
  t.test(`lazy commands: ct-analyze ${args.join(' ')} loads no command's implementation`, (t) => {
    const r = loaded(args);
    t.equal(r.status, 0, r.stderr);
    t.ok(r.modules.includes('dist/analyzer/commands/export.js'), 'the commands were registered');
    t.same(
      heavyIn(r.modules),
      [],
      'nothing of export/, verify/, the flow table or the journal reader',
    );
    t.end();
  });
}

t.test('lazy commands: a real export loads export/, the journal reader and the flow table', (t) => {
  // The other side of the tests above: the hook sees these modules when they are used.
  const r = loaded(['export', '--what', 'both', '--format', 'ndjson', '-o', join(dir, 'out'), LAN]);
  t.equal(r.status, 0, r.stderr);
  for (const m of [
    'dist/analyzer/export/export.js',
    'dist/analyzer/core/flows.js',
    'node_modules/sorted-btree/',
    'node_modules/msgpackr/',
  ]) {
    t.ok(
      r.modules.some((l) => l.startsWith(m)),
      `${m} is loaded`,
    );
  }
  t.end();
});
