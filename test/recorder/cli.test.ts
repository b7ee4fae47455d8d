// ct-record's option parsing as a user meets it: usage faults exit 2 before anything needs root.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RECORDER } from '../../samples/record.js';
import { run, type TeardownHost } from '../helpers/netns.js';

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const STACK = /^ {4}at /m;

const dir = mkdtempSync(join(tmpdir(), `ct-record-usage-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh directory per test, so no test sees another's files. */
function testDir(t: TeardownHost, name: string): string {
  const d = mkdtempSync(join(dir, `${name}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const record = (args: readonly string[]) =>
  run([process.execPath, RECORDER, ...args], { check: false, timeoutMs: 20_000 });

t.test('usage faults exit 2 with a pointer to --help and no stack', async (t) => {
  const d = testDir(t, 'usage');
  const out = join(d, 'x.mpk');
  for (const [fault, args, pattern] of [
    ['missing -o', [], /required option '-o, --output <file>'/],
    ['unknown option', ['-o', out, '--bogus'], /unknown option '--bogus'/],
    ['--duration -1', ['-o', out, '--duration', '-1'], /--duration.*'-1' is invalid/],
    ['--duration abc', ['-o', out, '--duration', 'abc'], /--duration.*'abc' is invalid/],
    ['-e FOO', ['-o', out, '-e', 'FOO'], /--events.*'FOO' is invalid.*NEW, UPDATE, DESTROY/],
  ] as const) {
    const res = await record(args);
    t.equal(res.code, 2, `${fault}: exit 2\n${res.stderr}`);
    t.match(res.stderr, pattern, `${fault}: says what is wrong`);
    t.match(res.stderr, /--help/, `${fault}: points to --help`);
    t.notMatch(res.stderr, STACK, `${fault}: no stack trace`);
    t.equal(res.stdout, '', `${fault}: nothing on stdout`);
  }
  t.strictSame(readdirSync(d), [], 'no usage error created a journal');
});
