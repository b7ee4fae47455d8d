// An install whose native build failed: ct-record says what to install, ct-analyze still works.
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { run } from '../helpers/netns.js';

const STACK = /^ {4}at /m;
const SAMPLE = join('samples', 'lan.mpk');

for (const cli of ['recorder', 'analyzer']) {
  const file = join(PACKAGE_ROOT, 'dist', cli, 'cli.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
}

/** The package as npm leaves it when node-gyp failed: dist/ and package.json, no build/. */
const copy = mkdtempSync(join(tmpdir(), `ct-no-addon-${process.pid}-`));
t.teardown(() => rmSync(copy, { recursive: true, force: true }));
cpSync(join(PACKAGE_ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
cpSync(join(PACKAGE_ROOT, 'package.json'), join(copy, 'package.json'));
symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(copy, 'node_modules'));

const cli = (root: string, tool: 'recorder' | 'analyzer', args: string[], cwd: string) =>
  run([process.execPath, join(root, 'dist', tool, 'cli.js'), ...args], {
    check: false,
    timeoutMs: 30_000,
    cwd,
  });

t.test(
  'no addon built: ct-record exits 1 with what to install and run, creates no file',
  async (t) => {
    t.notOk(existsSync(join(copy, 'build')), 'the copy has no native build');
    const before = readdirSync(copy).sort();
    // --duration bounds the run should the addon load after all (it would then record and exit 0).
    const res = await cli(copy, 'recorder', ['-o', 'x.mpk', '--duration', '1'], copy);
    t.equal(res.code, 1, `exit 1\n${res.stderr}`);
    t.match(
      res.stderr,
      /^ct-record: the conntrack addon is not built/,
      'says the addon is not built',
    );
    t.match(
      res.stderr,
      join(copy, 'build', 'Release', 'ct_native.node'),
      'names the addon file it looked for, in this installation',
    );
    t.match(res.stderr, /install g\+\+, make, python3 and linux-libc-dev/, 'says what to install');
    t.match(res.stderr, /npm rebuild conntracker/, 'says what to run');
    t.notMatch(res.stderr, STACK, 'no stack trace');
    t.notMatch(res.stderr, /internal error/, 'a user error, not a bug');
    t.equal(res.stdout, '', 'nothing on stdout');
    t.notOk(existsSync(join(copy, 'x.mpk')), 'no journal file is created');
    t.strictSame(readdirSync(copy).sort(), before, 'nothing at all is created');
  },
);

t.test('no addon built: ct-analyze prints exactly what the full install prints', async (t) => {
  for (const args of [[SAMPLE], ['--format', 'json', SAMPLE], ['--collapse', 'none', SAMPLE]]) {
    const real = await cli(PACKAGE_ROOT, 'analyzer', args, PACKAGE_ROOT);
    const bare = await cli(copy, 'analyzer', args, PACKAGE_ROOT);
    const what = `ct-analyze ${args.join(' ')}`;
    t.equal(real.code, 0, `${what}: the full install exits 0\n${real.stderr}`);
    t.equal(bare.code, 0, `${what}: the copy without addon exits 0\n${bare.stderr}`);
    t.ok(real.stdout.length > 0, `${what}: prints a report`);
    t.equal(bare.stdout, real.stdout, `${what}: identical report`);
    t.equal(bare.stderr, real.stderr, `${what}: identical notes`);
  }
});
