// ct-record's default --user account for the tests that run it as root: created once if missing.
import { execFileSync } from 'node:child_process';
import type { PasswdEntry } from '../../native/index.js';
import { DEFAULT_USER, USERADD_COMMAND } from '../../recorder/privileges.js';

function passwdEntry(name: string): PasswdEntry | undefined {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' });
    const [, , uid, gid] = line.trim().split(':');
    return { name, uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined; // getent exits 2 for a missing key
  }
}

/**
 * The `conntracker` account as docs/deploy.md says to create it (useradd --system …), made if
 * this machine lacks it; idempotent, also when test files in parallel race to create it: a
 * useradd that fails (exit 9: made meanwhile; exit 10: the other one holds the passwd lock) is
 * judged by getent, and retried while the account is still missing, up to 5 s.
 * Not root: undefined, and nothing is tried.
 */
export function ensureDefaultUser(): PasswdEntry | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const [cmd, ...args] = USERADD_COMMAND.split(' ');
  const end = Date.now() + 5000;
  for (;;) {
    const found = passwdEntry(DEFAULT_USER);
    if (found !== undefined) return found;
    try {
      execFileSync(cmd as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      if (Date.now() > end) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

/** The account, for tests that need its uid (they run as root: it is made when missing). */
export function defaultAccount(): PasswdEntry {
  const entry = ensureDefaultUser() ?? passwdEntry(DEFAULT_USER);
  if (entry === undefined) {
    throw new Error(
      `no ${DEFAULT_USER} account and no root to create it: run as root, or ${USERADD_COMMAND}`,
    );
  }
  return entry;
}
