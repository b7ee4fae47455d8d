// Paths ct-record writes as root: walked from / one directory at a time, following no symbolic link.
import { closeSync, constants, existsSync, lstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { sysCode } from '../common/errors.js';

/** Why a path was refused; `at` is the component that is to blame. Callers wrap it in a CtError. */
export class PathRefused extends Error {
  constructor(
    readonly at: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PathRefused';
  }
}

/**
 * `name` inside the directory open on `dirFd`: /proc/self/fd/N is the directory itself, not a
 * path to it, so whatever is renamed or swapped above it afterwards, the kernel resolves only
 * `name` — openat(2) with the one syscall Node has. O_NOFOLLOW then guards `name` itself.
 */
export function inDir(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

/**
 * Opens directory `dir` (relative to the working directory, whose getcwd(3) path holds no link)
 * and returns its fd; throws PathRefused when any component is a symbolic link or not a
 * directory. Each component is opened with O_NOFOLLOW relative to the fd of the one before
 * (inDir), so there is no window between a check and a use: a link swapped in after a component
 * was opened is never reached. openat2(RESOLVE_NO_SYMLINKS) would do the same in one call, but
 * needs a native function and Linux 5.6; this needs only /proc, which ct-record reads anyway.
 * `..` is resolved lexically first, which is exact when no component may be a link.
 */
export function openDirNoFollow(dir: string): number {
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
  let fd = openSync('/', O_RDONLY | O_DIRECTORY);
  if (!existsSync(inDir(fd, '.'))) {
    closeSync(fd);
    throw new PathRefused('/proc', 'ENOENT', '/proc is not mounted (ct-record needs it)');
  }
  let at = '';
  try {
    for (const name of resolve(dir)
      .split('/')
      .filter((n) => n !== '')) {
      at += `/${name}`;
      let next: number;
      try {
        next = openSync(inDir(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (err) {
        throw refusal(fd, name, at, err);
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** What a failed open of `name` in `dirFd` means for the user: a link, no directory, or errno. */
export function refusal(dirFd: number, name: string, at: string, err: unknown): PathRefused {
  const code = sysCode(err) ?? 'error';
  // O_NOFOLLOW|O_DIRECTORY on a link says ENOTDIR, without O_DIRECTORY ELOOP: lstat tells.
  if (code === 'ELOOP' || code === 'ENOTDIR') {
    try {
      const st = lstatSync(inDir(dirFd, name));
      if (st.isSymbolicLink()) return new PathRefused(at, 'ELOOP', `${at} is a symbolic link`);
      if (code === 'ENOTDIR') return new PathRefused(at, code, `${at} is not a directory`);
    } catch {
      // gone meanwhile: the errno says enough
    }
  }
  return new PathRefused(at, code, `cannot open ${at}: ${code}`);
}
