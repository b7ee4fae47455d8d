#!/usr/bin/env node
// `npm run test:kernel`: tap over test/kernel/, then a count of the kernel test files that really
// ran (each one's guard, test/helpers/kernel.ts, writes a ledger line) against the files present.
// Under CI (CI=true or CT_REQUIRE_KERNEL=1) a skip fails tap and a missing ledger line fails here.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMAND = 'sudo npm run test:kernel';
const required = process.env.CT_REQUIRE_KERNEL === '1' || process.env.CI === 'true';

// `npm run test:kernel -- test/kernel/native` runs (and counts) only what is named. tap is given
// the files themselves: a folder would make it run helpers such as capture-child.ts as tests.
const args = process.argv.slice(2);
const named = args.filter((a) => a.startsWith('test/kernel'));
const present = readdirSync(join(ROOT, 'test', 'kernel'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => relative(ROOT, join(ROOT, 'test', 'kernel', f)))
  .filter((f) => named.length === 0 || named.some((n) => f.startsWith(n)))
  .sort();

const dir = mkdtempSync(join(tmpdir(), 'ct-kernel-ledger-'));
const ledger = join(dir, 'ran');
const tap = spawnSync(
  join(ROOT, 'node_modules', '.bin', 'tap'),
  [...(required ? ['--fail-skip'] : []), ...args.filter((a) => !named.includes(a)), ...present],
  { cwd: ROOT, stdio: 'inherit', env: { ...process.env, CT_KERNEL_LEDGER: ledger } },
);
let ran = [];
try {
  ran = readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
} catch {
  // no kernel test got past its guard
}
rmSync(dir, { recursive: true, force: true });

// Under sudo, tap's .tap/ (results, coverage, process info) would stay root's, and the user's next
// `npm test` could not write there: hand it back to the user who called sudo.
const sudoUid = process.env.SUDO_UID;
if (process.geteuid?.() === 0 && sudoUid && existsSync(join(ROOT, '.tap'))) {
  spawnSync('chown', ['-R', `${sudoUid}:${process.env.SUDO_GID ?? sudoUid}`, join(ROOT, '.tap')]);
}

const missing = present.filter((f) => !ran.includes(f));
const ranCount = present.length - missing.length;
process.stdout.write(`kernel tests: ${ranCount} of ${present.length} files in test/kernel/ ran\n`);
let status = tap.status ?? 1;
if (missing.length > 0) {
  const why = process.geteuid?.() === 0 ? 'they did not reach their guard' : `not root: ${COMMAND}`;
  process.stdout.write(`not run (${why}):\n${missing.map((f) => `  ${f}\n`).join('')}`);
  if (required) {
    process.stdout.write('CI=true or CT_REQUIRE_KERNEL=1: every kernel test must run\n');
    status = 1;
  }
}
if (required && present.length === 0) {
  process.stdout.write('no kernel test files found under test/kernel/\n');
  status = 1;
}
process.exit(status);
