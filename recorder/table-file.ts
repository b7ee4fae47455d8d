// The live table's file: opened once at start (before the privilege drop), rewritten in place.
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { CtError, sysCode } from '../common/errors.js';
import { inDir, openDirNoFollow, PathRefused, refusal } from './no-follow.js';

export interface TableFileOptions {
  /** The uid ct-record runs as after the privilege drop (--user); undefined: no drop. */
  uid?: number;
}

/**
 * Opened while ct-record is still root, so that after it drops to --user it can still rewrite
 * the table wherever the admin asked for it, through this one fd: the dropped user need not be
 * able to create files in the directory. The price: a rewrite is not atomic (no temporary file
 * and rename), a reader that opens the file during one may see a shorter table (rewrites happen
 * only on SIGUSR1 and at exit).
 *
 * Because root opens it, nothing in the path may redirect the open: no directory of the path and
 * not the file itself may be a symbolic link (openDirNoFollow, then O_NOFOLLOW), the file is
 * created with O_EXCL, and an existing one is taken only when it is a regular file with one
 * link (another link would be truncated along with it) owned by root, by ct-record's own uid or
 * by the --user of this run. Mode 0600 whatever the umask, like the journals: the table lists
 * every flow. A FIFO or socket at the path is refused without blocking (O_NONBLOCK).
 */
export class TableFile {
  readonly #fd: number;

  constructor(
    readonly path: string,
    opts: TableFileOptions = {},
  ) {
    const abs = resolve(path);
    const name = basename(abs);
    let dirFd: number;
    try {
      dirFd = openDirNoFollow(dirname(abs));
    } catch (err) {
      throw this.#refused(err);
    }
    let fd: number;
    try {
      fd = openAt(dirFd, name, abs);
    } catch (err) {
      throw this.#refused(err);
    } finally {
      closeSync(dirFd);
    }
    try {
      this.#check(fd, opts);
      fchmodSync(fd, 0o600);
    } catch (err) {
      closeSync(fd);
      throw err instanceof CtError ? err : this.#refused(err);
    }
    this.#fd = fd;
  }

  #refused(err: unknown): CtError {
    if (err instanceof PathRefused && err.code === 'ELOOP') {
      return new CtError(
        'ETABLE',
        `cannot open --table ${this.path}: ${err.message}: ct-record follows none in --table, which it opens as root; give the path without links (realpath ${this.path})`,
        { cause: err },
      );
    }
    const why = err instanceof PathRefused ? err.message : (sysCode(err) ?? String(err));
    return new CtError('ETABLE', `cannot open --table ${this.path}: ${why}`, { cause: err });
  }

  #check(fd: number, opts: TableFileOptions): void {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new CtError('ETABLE', `--table ${this.path} is not a regular file: choose a file path`);
    }
    if (st.nlink > 1) {
      throw new CtError(
        'ETABLE',
        `--table ${this.path} has ${st.nlink} hard links: rewriting it would rewrite the file under its other names too; remove it (rm ${this.path}) or choose another path`,
      );
    }
    const euid = process.geteuid?.() ?? 0;
    const owners = new Set([0, euid, ...(opts.uid === undefined ? [] : [opts.uid])]);
    if (!owners.has(st.uid)) {
      const who = [...owners].filter((u) => u !== 0).map((u) => `uid ${u}`);
      throw new CtError(
        'ETABLE',
        `--table ${this.path} belongs to uid ${st.uid}, not to root or to the user ct-record runs as${who.length > 0 ? ` (${who.join(', ')})` : ''}: ct-record does not rewrite another user's file as root: remove it (rm ${this.path}) or choose another path`,
      );
    }
  }

  /** Replaces the file's content with the chunks. */
  write(chunks: Iterable<string>): void {
    try {
      ftruncateSync(this.#fd, 0);
      let at = 0;
      for (const chunk of chunks) {
        const buf = Buffer.from(chunk, 'utf8');
        let off = 0;
        while (off < buf.length) off += writeSync(this.#fd, buf, off, buf.length - off, at + off);
        at += buf.length;
      }
      fsyncSync(this.#fd);
    } catch (err) {
      throw new CtError('ETABLE', `cannot write --table ${this.path}: ${sysCode(err) ?? err}`, {
        cause: err,
      });
    }
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Creates `name` in `dirFd` (O_EXCL), or opens the existing one; never follows a link there. */
function openAt(dirFd: number, name: string, abs: string): number {
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
  try {
    return openSync(inDir(dirFd, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    if (sysCode(err) !== 'EEXIST') throw refusal(dirFd, name, abs, err);
  }
  try {
    // O_NONBLOCK: a FIFO planted at the path must not block the recorder at open.
    return openSync(inDir(dirFd, name), O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = sysCode(err);
    // A FIFO with no reader (ENXIO), a socket (ENXIO), a directory (EISDIR).
    if (code === 'ENXIO' || code === 'EISDIR') {
      throw new PathRefused(abs, code, `${abs} is not a regular file`);
    }
    throw refusal(dirFd, name, abs, err);
  }
}
