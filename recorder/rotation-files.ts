// --rotate's files: an earlier run's journals, a directory --user cannot write, a taken next name.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CtError } from '../common/errors.js';
import { splitOutput } from '../journal/format.js';
import type { PasswdEntry } from '../native/index.js';

/**
 * --rotate without --force: journals of an earlier run with the same -o would mix with this
 * one's (and a clash hours later would end it), so any of them refuses the start.
 */
export function refuseEarlierRun(output: string): void {
  const { stem, ext } = splitOutput(output);
  const head = `${basename(stem)}-`;
  let names: string[];
  try {
    names = readdirSync(dirname(output));
  } catch {
    return; // creating the first journal says what is wrong with the directory
  }
  const earlier = names
    .filter((n) => {
      const digits = n.slice(head.length, n.length - ext.length);
      return n.startsWith(head) && n.endsWith(ext) && /^\d{6,}$/.test(digits);
    })
    .sort();
  const first = earlier[0];
  if (first === undefined) return;
  const more = earlier.length > 1 ? ` and ${earlier.length - 1} more` : '';
  throw new CtError(
    'EEXIST',
    `${join(dirname(output), first)}${more} ${more === '' ? 'exists' : 'exist'} from an earlier run: move ${more === '' ? 'it' : 'them'} away, choose another -o, or pass --force to replace each as this run reaches it`,
  );
}

/**
 * Journals after the first are created after the privilege drop, as --user: a directory that
 * user cannot write would end the run at its first rotation, so it refuses the start. Mode bits
 * only (the user keeps no supplementary group); an ACL that grants more is not looked at.
 */
export function refuseUnwritable(dir: string, user: PasswdEntry): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    return; // creating the first journal says what is wrong with the directory
  }
  const bits = st.uid === user.uid ? 0o300 : st.gid === user.gid ? 0o030 : 0o003;
  if ((st.mode & bits) === bits) return;
  throw new CtError(
    'EACCES',
    `--rotate: each journal after the first is created as user ${user.name} (--user), who cannot write to ${dir}: give it the directory (e.g. chown ${user.name} ${dir}), choose one it can write to, or pass --user root`,
  );
}

/** O_EXCL would refuse it too, but only after the current journal was closed. */
export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
