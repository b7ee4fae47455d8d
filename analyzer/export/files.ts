// The files of one export: each written under a temporary name, all renamed into place only once every one is whole.
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CtError, sysCode } from '../../common/errors.js';

/** One file being written: its final path and the temporary one that holds it until commit(). */
export interface OutputFile {
  readonly path: string;
  readonly tmp: string;
  fd: number | undefined;
  bytes: number;
}

/** How files are written; tests replace `write` to inject a full disk. */
export interface FileIo {
  write(fd: number, data: Uint8Array): void;
}

const DEFAULT_IO: FileIo = {
  write(fd, data) {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
  },
};

const ADVICE: Record<string, string> = {
  ENOSPC: 'no space left on the device: free some space or export elsewhere (-o)',
  EDQUOT: 'disk quota exceeded: free some space or export elsewhere (-o)',
  EACCES: 'permission denied: choose a directory you can write (-o)',
  EPERM: 'permission denied: choose a directory you can write (-o)',
  EROFS: 'read-only file system: export elsewhere (-o)',
  ENOTDIR: 'a part of the path is a file, not a directory: choose another -o',
  EISDIR: 'a directory is in the way: choose another -o or remove it',
};

/**
 * The files of an export under `root`. Nothing appears under a final name before commit(): a
 * run that fails (a corrupt journal, a full disk) leaves no file that looks complete, and
 * abort() removes its temporary ones. A final name that exists is refused (EEXIST) unless
 * `force`, both when the file is created and when it is renamed into place.
 */
export class ExportFiles {
  readonly root: string;
  readonly #force: boolean;
  readonly #io: FileIo;
  readonly #files: OutputFile[] = [];
  readonly #paths = new Set<string>();

  constructor(root: string, opts: { force?: boolean; io?: FileIo } = {}) {
    this.root = root;
    this.#force = opts.force === true;
    this.#io = opts.io ?? DEFAULT_IO;
  }

  /** Files created so far (final paths), in creation order. */
  get paths(): string[] {
    return this.#files.map((f) => f.path);
  }

  /** Starts the file `rel` (a path under the root, / separated). */
  create(rel: string): OutputFile {
    const path = join(this.root, rel);
    if (this.#paths.has(path)) throw new Error(`export: ${path} made twice in one run`);
    this.#refuseExisting(path);
    const dir = dirname(path);
    const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
    let fd: number;
    try {
      mkdirSync(dir, { recursive: true });
      fd = openSync(tmp, 'w', 0o644);
    } catch (err) {
      throw writeError(dir, err);
    }
    const f: OutputFile = { path, tmp, fd, bytes: 0 };
    this.#files.push(f);
    this.#paths.add(path);
    return f;
  }

  write(f: OutputFile, data: Uint8Array): void {
    if (f.fd === undefined) throw new Error(`export: ${f.path} is closed`);
    try {
      this.#io.write(f.fd, data);
    } catch (err) {
      throw writeError(f.path, err);
    }
    f.bytes += data.length;
  }

  /** Ends a file: flushed to the disk, closed, waiting for commit(). */
  close(f: OutputFile): void {
    const fd = f.fd;
    if (fd === undefined) return;
    f.fd = undefined;
    try {
      fsyncSync(fd);
    } catch (err) {
      throw writeError(f.path, err);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A small file written whole (schema.json): one that exists with the same content is left
   * as it is, so exports of a fleet can share a root; a different one is refused unless force.
   */
  writeShared(rel: string, text: string): void {
    const path = join(this.root, rel);
    if (existsSync(path) && !this.#force) {
      let same = false;
      try {
        same = readFileSync(path, 'utf8') === text;
      } catch {
        // unreadable: refused below like any other file in the way
      }
      if (same) return;
    }
    const f = this.create(rel);
    this.write(f, Buffer.from(text));
    this.close(f);
  }

  /** Renames every file into place; refuses (EEXIST) a name that appeared meanwhile. */
  commit(): void {
    for (const f of this.#files) {
      if (f.fd !== undefined) throw new Error(`export: ${f.path} committed while open`);
    }
    for (const f of this.#files) {
      try {
        if (this.#force) renameSync(f.tmp, f.path);
        else {
          // link() fails when the name exists: no window in which another file is replaced.
          linkSync(f.tmp, f.path);
          unlinkSync(f.tmp);
        }
      } catch (err) {
        if (sysCode(err) === 'EEXIST') this.#refuseExisting(f.path);
        throw writeError(f.path, err);
      }
    }
    this.#files.length = 0;
  }

  /** Closes and removes every temporary file (after a failure); final names are not touched. */
  abort(): void {
    for (const f of this.#files) {
      if (f.fd !== undefined) {
        try {
          closeSync(f.fd);
        } catch {
          // already failing: the first error is the one reported
        }
        f.fd = undefined;
      }
      try {
        unlinkSync(f.tmp);
      } catch {
        // never made, or renamed already
      }
    }
    this.#files.length = 0;
  }

  #refuseExisting(path: string): void {
    if (this.#force || !existsSync(path)) return;
    throw new CtError(
      'EEXIST',
      `${path} exists: it holds an earlier export of the same journal (or journals); pass --force to replace it, or export into another directory`,
    );
  }
}

/** A failed mkdir, open or write as a CtError named after its errno, with what to do. */
export function writeError(path: string, err: unknown): unknown {
  if (err instanceof CtError) return err;
  const code = sysCode(err);
  if (code === undefined) return err;
  const advice = ADVICE[code] ?? `${(err as Error).message}: check the path and the device`;
  return new CtError(code, `cannot write ${path}: ${advice}; no file of this export was kept`, {
    cause: err,
  });
}
