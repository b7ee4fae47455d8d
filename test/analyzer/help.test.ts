// Every command's --help ends with examples a user can copy, and no help needs root or a kernel.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';

const ANALYZE = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const RECORD = join(PACKAGE_ROOT, 'dist', 'recorder', 'cli.js');

const help = (cli: string, ...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8', timeout: 30_000 });

/** The subcommands ct-analyze's own help lists in its usage lines. */
function subcommands(): string[] {
  const usage = help(ANALYZE).stdout;
  return [...usage.matchAll(/^\s+ct-analyze (\w+) /gm)].map((m) => m[1] as string);
}

t.test('help: ct-analyze and each of its subcommands show at least one example', (t) => {
  const subs = subcommands();
  t.ok(subs.length >= 6, `the usage lists the subcommands (${subs.join(', ')})`);
  for (const args of [[], ...subs.map((s) => [s])]) {
    const r = help(ANALYZE, ...args);
    const name = ['ct-analyze', ...args].join(' ');
    t.equal(r.status, 0, `${name} --help exits 0`);
    t.match(r.stdout, /\nExamples?:\n/, `${name} --help has an Examples section`);
    const example = new RegExp(`\\n  \\$ (.*; )?(conntrack .*\\| )?ct-analyze ${args.join(' ')}`);
    t.match(r.stdout, example, `${name} --help shows ${name} being run`);
  }
  t.end();
});

t.test('help: ct-record shows examples without root or the kernel being asked', (t) => {
  const r = help(RECORD);
  t.equal(r.status, 0);
  t.match(r.stdout, /\nExamples:\n/);
  t.match(r.stdout, /\n {2}sudo ct-record -o /, 'a recording being started');
  t.end();
});
