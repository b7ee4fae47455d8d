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
 * The `conntracker` account as the README says to create it (useradd --system …), made if this
 * machine lacks it; idempotent, also when test files in parallel race to create it (useradd's
 * exit 9, "already exists", counts as done). Not root: undefined, and nothing is tried.
 */
export function ensureDefaultUser(): PasswdEntry | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const found = passwdEntry(DEFAULT_USER);
  if (found !== undefined) return found;
  const [cmd, ...args] = USERADD_COMMAND.split(' ');
  try {
    execFileSync(cmd as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    if ((err as { status?: number }).status !== 9) throw err;
  }
  const made = passwdEntry(DEFAULT_USER);
  if (made === undefined)
    throw new Error(`${USERADD_COMMAND} ran, yet getent finds no ${DEFAULT_USER}`);
  return made;
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
