// The two suites stay apart: every kernel test is guarded and lives in test/kernel/, no laptop test
// needs root; `npm test` names each kernel test it does not run, with the command that runs it.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { KERNEL_COMMAND, kernelRequired, kernelSkipReason } from './helpers/kernel.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => relative(ROOT, join(ROOT, dir, f)))
    .sort();
}

const kernel = testFiles('test/kernel');
const SELF = relative(ROOT, fileURLToPath(import.meta.url));
const laptop = testFiles('test').filter((f) => !f.startsWith('test/kernel/') && f !== SELF);

/** What only root can do, as the kernel tests do it. */
const ROOT_ONLY: [string, RegExp][] = [
  ['network namespaces', /\b(createTopology|makeNetns)\(|'netns', '(add|exec)'/],
  ['chown', /\bchownSync\(/],
  ['another user', /'setpriv'|\b(defaultAccount|ensureDefaultUser)\(/],
  ['the native capture', /\bCaptureChild\b|\bstartCapture\(\s*\{/],
];

t.test('every kernel test imports the guard before anything else', (t) => {
  t.ok(kernel.length >= 20, `test/kernel/ holds the kernel suite (${kernel.length} files)`);
  for (const file of kernel) {
    const firstImport = readFileSync(join(ROOT, file), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('import '));
    t.match(firstImport, /^import '(\.\.\/)+helpers\/kernel\.js';$/, `${file}: the guard first`);
  }
  t.end();
});

t.test('no laptop test does what needs root: those live in test/kernel/', (t) => {
  t.ok(laptop.length >= 40, `${laptop.length} laptop test files`);
  const offenders = laptop.flatMap((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    return ROOT_ONLY.filter(([, re]) => re.test(text)).map(([what]) => `${file}: ${what}`);
  });
  t.strictSame(offenders, [], 'move such a test (or its root half) under test/kernel/');
  t.end();
});

t.test('the guard: root runs kernel tests; anyone else skips, and under CI fails', (t) => {
  t.equal(kernelSkipReason(0), undefined, 'root: no reason to skip');
  t.match(kernelSkipReason(1000), /needs root/, 'a user: says why');
  t.match(kernelSkipReason(1000), KERNEL_COMMAND, 'and names the command');
  t.equal(kernelRequired({ CI: 'true' }), true, 'CI=true: a skip would be a failure');
  t.equal(kernelRequired({ CT_REQUIRE_KERNEL: '1' }), true, 'CT_REQUIRE_KERNEL=1 too');
  t.equal(kernelRequired({}), false, 'on a laptop a skip is a skip');
  t.end();
});

// One skip line per kernel test, so `npm test` never leaves them out in silence.
const reason =
  kernelSkipReason() ?? `kernel test: not part of npm test; it runs with ${KERNEL_COMMAND}`;
for (const file of kernel) t.test(file, { skip: reason }, () => {});
