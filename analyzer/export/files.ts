// The files of one export: each written under a temporary name, all renamed into place only once every one is whole.
import {
  close as closeCb,
  closeSync,
  existsSync,
  fdatasync as fdatasyncCb,
  fsync as fsyncCb,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  write as writeCb,
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
  /** writeAt() and syncAsync() calls not yet done: abort() leaves the fd open to them (no write into a reused fd). */
  inflight?: number;
  /** The fd abort() left for the last of them to close. */
  orphan?: number;
}

/**
 * How files are written; tests replace `write` to inject a full disk. `position` is where
 * writeAt() puts the data (pwrite); without it, at the file's offset. A FileIo without
 * writeAsync is called synchronously by writeAt() too.
 */
export interface FileIo {
  write(fd: number, data: Uint8Array, position?: number): void;
  /** The same write on libuv's thread pool, off the thread that encodes the rows. */
  writeAsync?(fd: number, data: Uint8Array, position: number): Promise<void>;
}

const DEFAULT_IO: FileIo = {
  write(fd, data, position) {
    let off = 0;
    while (off < data.length) {
      const at = position === undefined ? null : position + off;
      off += writeSync(fd, data, off, data.length - off, at);
    }
  },
  writeAsync(fd, data, position) {
    return new Promise((resolve, reject) => {
      const more = (off: number) =>
        writeCb(fd, data, off, data.length - off, position + off, (err, n) => {
          if (err) reject(err);
          else if (off + n < data.length) more(off + n);
          else resolve();
        });
      more(0);
    });
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

  /**
   * Writes data at the file's end so far on libuv's thread pool; the caller keeps data unchanged
   * until the promise settles, and awaits every one before closeAsync(). Writes in flight may
   * finish in any order: each has its own position. A file is written either by write() or by
   * writeAt()/writeAtSync(), not both (write() goes to the fd's offset, which pwrite leaves).
   */
  writeAt(f: OutputFile, data: Uint8Array): Promise<void> {
    const position = f.bytes;
    f.bytes += data.length;
    const io = this.#io;
    return this.#inPool(f, (fd) =>
      io.writeAsync === undefined
        ? io.write(fd, data, position)
        : io.writeAsync(fd, data, position),
    );
  }

  /**
   * fdatasync on libuv's thread pool: what was written so far goes to the disk while rows are
   * still encoded, so closing (fsync) a part of hundreds of MB does not wait for all of it.
   */
  syncAsync(f: OutputFile): Promise<void> {
    return this.#inPool(
      f,
      (fd) =>
        new Promise<void>((resolve, reject) =>
          fdatasyncCb(fd, (err) => (err ? reject(err) : resolve())),
        ),
    );
  }

  async #inPool(f: OutputFile, op: (fd: number) => void | Promise<void>): Promise<void> {
    const fd = f.fd;
    if (fd === undefined) throw new Error(`export: ${f.path} is closed`);
    f.inflight = (f.inflight ?? 0) + 1;
    try {
      await op(fd);
    } catch (err) {
      throw writeError(f.path, err);
    } finally {
      f.inflight--;
      if (f.inflight === 0 && f.orphan !== undefined) {
        const fd = f.orphan;
        f.orphan = undefined;
        try {
          closeSync(fd);
        } catch {
          // aborted already: the first error is the one reported
        }
      }
    }
  }

  /** writeAt() done here and now (when enough writes are in flight already). */
  writeAtSync(f: OutputFile, data: Uint8Array): void {
    const fd = f.fd;
    if (fd === undefined) throw new Error(`export: ${f.path} is closed`);
    try {
      this.#io.write(fd, data, f.bytes);
    } catch (err) {
      throw writeError(f.path, err);
    }
    f.bytes += data.length;
  }

  /** close() with the fsync on libuv's thread pool; no writeAt() of the file may be in flight. */
  async closeAsync(f: OutputFile): Promise<void> {
    const fd = f.fd;
    if (fd === undefined) return;
    if ((f.inflight ?? 0) > 0) throw new Error(`export: ${f.path} closed with writes in flight`);
    f.fd = undefined;
    const done = (resolve: () => void, reject: (err: unknown) => void) => (err: unknown) =>
      err ? reject(err) : resolve();
    try {
      await new Promise<void>((resolve, reject) => fsyncCb(fd, done(resolve, reject)));
    } catch (err) {
      closeSync(fd);
      throw writeError(f.path, err);
    }
    await new Promise<void>((resolve, reject) => closeCb(fd, done(resolve, reject)));
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
      if (f.fd !== undefined && (f.inflight ?? 0) > 0) f.orphan = f.fd;
      else if (f.fd !== undefined) {
        try {
          closeSync(f.fd);
        } catch {
          // already failing: the first error is the one reported
        }
      }
      f.fd = undefined;
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
