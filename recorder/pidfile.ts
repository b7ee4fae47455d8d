// --pidfile: written atomically once recording, refused while it names a live ct-record, removed at exit.
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import { CtError, Exit, sysCode } from '../common/errors.js';
import type { PasswdEntry } from '../native/index.js';

/** -d without --pidfile: a directory of its own, so the dropped user can remove the file. */
export const DEFAULT_PIDFILE = '/run/ct-record/ct-record.pid';

/** The pid a pidfile holds, or undefined when it is missing or holds no pid. */
export function readPidfile(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = Number(m?.[1]);
  return m !== null && Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether argv (from /proc/PID/cmdline) runs ct-record: the bin link or dist/recorder/cli.js. */
export function isRecorderCommand(argv: readonly string[]): boolean {
  return argv.some((a) => basename(a) === 'ct-record' || /(^|\/)recorder\/cli\.[jt]s$/.test(a));
}

/** A running (not zombie) process whose command line is ct-record's. */
export function isRunningRecorder(pid: number, proc = '/proc'): boolean {
  try {
    // A zombie keeps its /proc entry until reaped, with an empty cmdline: not running.
    const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    const argv = readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0');
    return isRecorderCommand(argv);
  } catch {
    return false;
  }
}

/**
 * Refuses a pidfile that names another running ct-record (two recorders would share one file,
 * and stopping "the" recorder would stop the wrong one); a stale one (that process is gone, or
 * the pid was reused by something else) is replaced.
 */
export function refuseRunning(path: string, self = process.pid, proc = '/proc'): void {
  const pid = readPidfile(path);
  if (pid === undefined || pid === self || !isRunningRecorder(pid, proc)) return;
  throw new CtError(
    'EEXIST',
    `pidfile ${path} names ct-record pid ${pid}, which is still running: stop it first (kill ${pid}), or give another --pidfile`,
    { exit: Exit.USAGE },
  );
}

/**
 * The pidfile is written and removed as the user ct-record runs as after the privilege drop, so
 * its directory must be writable by that user (mode bits, as for --rotate). The default
 * directory is made for it, as root before the drop: mode 0755, owned by that user.
 */
export function preparePidfileDir(path: string, user: PasswdEntry | undefined): void {
  const dir = dirname(path);
  if (path === DEFAULT_PIDFILE) {
    try {
      mkdirSync(dir, { mode: 0o755 });
    } catch (err) {
      if (sysCode(err) !== 'EEXIST') {
        throw new CtError('EPIDFILE', `cannot create ${dir} for the pidfile: ${msg(err)}`, {
          cause: err,
        });
      }
    }
    // Ours (made by an earlier run, maybe for another --user): hand it to this run's user.
    if (user !== undefined && lstatSync(dir).isDirectory()) chownSync(dir, user.uid, user.gid);
    return;
  }
  if (user === undefined) return;
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (err) {
    throw new CtError(
      'EPIDFILE',
      `cannot use --pidfile ${path}: ${msg(err)}; give a file in an existing directory`,
      { exit: Exit.USAGE, cause: err },
    );
  }
  const bits = st.uid === user.uid ? 0o300 : st.gid === user.gid ? 0o030 : 0o003;
  if ((st.mode & bits) === bits) return;
  throw new CtError(
    'EACCES',
    `--pidfile ${path}: ct-record writes and removes it as user ${user.name} (--user), who cannot write to ${dir}: leave out --pidfile (default ${DEFAULT_PIDFILE}), give it the directory (chown ${user.name} ${dir}), or pass --user root`,
    { exit: Exit.USAGE },
  );
}

/** Writes `pid` atomically (a temporary file, then rename), mode 0644. */
export function writePidfile(path: string, pid = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { flag: 'wx', mode: 0o644 });
    chmodSync(tmp, 0o644); // whatever the umask
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CtError('EPIDFILE', `cannot write pidfile ${path}: ${msg(err)}`, { cause: err });
  }
}

/**
 * Removes the pidfile if it still holds `pid` (another recorder may have replaced a file it took
 * for stale). Returns why it could not, or undefined when it is gone.
 */
export function removePidfile(path: string, pid = process.pid): string | undefined {
  if (readPidfile(path) !== pid) return undefined;
  try {
    unlinkSync(path);
    return undefined;
  } catch (err) {
    return sysCode(err) === 'ENOENT' ? undefined : `cannot remove pidfile ${path}: ${msg(err)}`;
  }
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
