// Imported first by every test under test/kernel/: without root the file is one skip line that
// names the command to run it; under CI (CI=true or CT_REQUIRE_KERNEL=1) that skip is a failure.
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

export const KERNEL_COMMAND = 'sudo npm run test:kernel';

/** Why this process cannot run kernel tests, or undefined when it can. */
export function kernelSkipReason(euid = process.geteuid?.()): string | undefined {
  if (euid === 0) return undefined;
  return `kernel test: needs root (network namespaces, nftables, conntrack netlink, other users' files): run ${KERNEL_COMMAND}`;
}

/** CI must run every kernel test: there a skip would pass a suite that never ran. */
export function kernelRequired(env = process.env): boolean {
  return env.CT_REQUIRE_KERNEL === '1' || env.CI === 'true';
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const reason = kernelSkipReason();
const file = relative(ROOT, process.argv[1] ?? '');

if (reason !== undefined && file.startsWith('test/kernel/')) {
  if (kernelRequired()) {
    throw new Error(`${reason} (CI=true or CT_REQUIRE_KERNEL=1: a skipped kernel test fails)`);
  }
  // The file's own body never runs: its top level may already need root (chown, namespaces).
  t.plan(0, reason);
  process.exit(0);
}

// test/kernel/run.mjs compares this ledger with the files present, so a run where kernel tests
// silently did not start (a glob, a missing guard) cannot pass.
if (reason === undefined && process.env.CT_KERNEL_LEDGER) {
  appendFileSync(process.env.CT_KERNEL_LEDGER, `${file}\n`);
}
