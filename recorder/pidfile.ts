// --pidfile: written atomically once recording, refused while it names a live ct-record, removed at exit.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { CtError, Exit, sysCode } from '../common/errors.js';
import type { PasswdEntry } from '../native/index.js';
import { inDir, openDirNoFollow, PathRefused, refusal } from './no-follow.js';

/** -d without --pidfile: a directory of its own, so the dropped user can remove the file. */
export const DEFAULT_PIDFILE = '/run/ct-record/ct-record.pid';

/** A pid is a few digits: a longer file holds none (and is not read whole). */
const MAX_PIDFILE = 64;

/**
 * The pid a pidfile holds, or undefined when it is missing or holds no pid. Opened with
 * O_NOFOLLOW|O_NONBLOCK and checked to be a regular file: a symlink or a FIFO planted there is
 * refused (a FIFO would block the read until someone writes to it).
 */
export function readPidfile(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (sysCode(err) === 'ELOOP') {
      throw planted(path, 'is a symbolic link: ct-record never follows one there');
    }
    return undefined;
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw planted(path, `is not a regular file (${kind(st)})`);
    const buf = Buffer.alloc(MAX_PIDFILE);
    const n = readSync(fd, buf, 0, MAX_PIDFILE, 0);
    if (n === MAX_PIDFILE) return undefined;
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = Number(m?.[1]);
  return m !== null && Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function planted(path: string, what: string): CtError {
  return new CtError(
    'EPIDFILE',
    `pidfile ${path} ${what}; ct-record never writes one: remove it (rm ${path}) and check who else can write to ${dirname(path)}`,
    { exit: Exit.USAGE },
  );
}

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
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

/** Where preparePidfileDir looks (tests replace both). */
export interface PidfileDirOptions {
  /** The effective uid ct-record runs as now, before any drop. */
  euid?: number;
  /** The default pidfile, whose directory is ct-record's own. */
  defaultPidfile?: string;
}

/**
 * The pidfile is written and removed as the user ct-record runs as after the privilege drop
 * (`user`; undefined: no drop), so its directory must be writable by that user (mode bits, as
 * for --rotate), and no directory of the path may be a symbolic link. Whoever can write to the
 * directory can swap the file under its writer, so root never writes where another user can:
 *
 * - The default directory is ct-record's own, and it is made fit for this run rather than
 *   refused: only root can create entries in /run, so nobody else can have made it or swap it
 *   for a link, and an earlier run with another --user legitimately left it to that user (a
 *   refusal would make every --user change a manual chown). It is created if missing, then,
 *   through an fd opened without following links, given to this run's writer (root with no
 *   drop) with mode 0755. Anything the earlier owner left inside is harmless from then on: the
 *   pidfile is read with O_NOFOLLOW|O_NONBLOCK and checked, the temporary file is created with
 *   O_EXCL, and rename replaces an entry without writing through it.
 * - Any other directory is the admin's: ct-record changes nothing, it refuses (exit 2) a
 *   directory the dropped user cannot write, or, with no drop, one that is not root's alone.
 */
export function preparePidfileDir(
  path: string,
  user: PasswdEntry | undefined,
  opts: PidfileDirOptions = {},
): void {
  const euid = opts.euid ?? process.geteuid?.() ?? 0;
  const abs = resolve(path);
  const dir = dirname(abs);
  if (abs === (opts.defaultPidfile ?? DEFAULT_PIDFILE)) {
    takeOwnDir(path, dir, user ?? { name: 'root', uid: 0, gid: 0 }, euid);
    return;
  }
  const st = dirStat(path, dir);
  if (user === undefined) {
    if (euid !== 0) return;
    const why =
      st.uid !== 0
        ? `which belongs to uid ${st.uid}`
        : (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0
          ? 'which users other than root can write to'
          : undefined;
    if (why === undefined) return;
    throw new CtError(
      'EACCES',
      `--pidfile ${path}: ct-record would write it as root into ${dir}, ${why}: whoever can write there could swap the file under root; leave out --pidfile (default ${DEFAULT_PIDFILE}), choose a directory only root can write, or drop to an account with --user`,
      { exit: Exit.USAGE },
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

/** The directory of the pidfile, opened without following links, as fstat sees it. */
function dirStat(path: string, dir: string): Stats {
  const fd = openPidfileDir(path, dir);
  try {
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

function openPidfileDir(path: string, dir: string): number {
  try {
    return openDirNoFollow(dir);
  } catch (err) {
    if (!(err instanceof PathRefused)) throw err;
    const what =
      err.code === 'ELOOP'
        ? `${err.message}: ct-record follows none in the pidfile's path; give the real path`
        : `${err.message}; give a file in an existing directory`;
    throw new CtError('EPIDFILE', `cannot use --pidfile ${path}: ${what}`, {
      exit: Exit.USAGE,
      cause: err,
    });
  }
}

/** See preparePidfileDir: the default directory, made or taken back for this run's writer. */
function takeOwnDir(path: string, dir: string, owner: PasswdEntry, euid: number): void {
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if (sysCode(err) !== 'EEXIST') {
      throw new CtError('EPIDFILE', `cannot create ${dir} for the pidfile: ${msg(err)}`, {
        cause: err,
      });
    }
  }
  const fd = openPidfileDir(path, dir);
  try {
    if (euid === 0) {
      fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, 0o755);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `pid` atomically: a temporary file created with O_EXCL|O_NOFOLLOW in the directory
 * opened without following links, fchmod-ed to 0644 (whatever the umask) through its fd — a
 * chmod by path would follow a link swapped in meanwhile — then renamed over the pidfile.
 */
export function writePidfile(path: string, pid = process.pid): void {
  const abs = resolve(path);
  const name = basename(abs);
  const tmp = `${name}.${pid}.tmp`;
  const dirFd = openPidfileDir(path, dirname(abs));
  let created = false;
  try {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    let fd: number;
    try {
      fd = openSync(inDir(dirFd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    } catch (err) {
      throw refusal(dirFd, tmp, `${dirname(abs)}/${tmp}`, err);
    }
    created = true;
    try {
      fchmodSync(fd, 0o644);
      writeSync(fd, `${pid}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(inDir(dirFd, tmp), inDir(dirFd, name));
  } catch (err) {
    if (created) {
      try {
        unlinkSync(inDir(dirFd, tmp));
      } catch {
        // already gone
      }
    }
    throw new CtError('EPIDFILE', `cannot write pidfile ${path}: ${msg(err)}`, { cause: err });
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Removes the pidfile if it still holds `pid` (another recorder may have replaced a file it took
 * for stale). Returns why it could not, or undefined when it is gone.
 */
export function removePidfile(path: string, pid = process.pid): string | undefined {
  try {
    if (readPidfile(path) !== pid) return undefined;
  } catch (err) {
    return msg(err);
  }
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
