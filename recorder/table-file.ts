// The live table's file: opened once at start (before the privilege drop), rewritten in place.
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  writeSync,
} from 'node:fs';
import { CtError, sysCode } from '../common/errors.js';

/**
 * Opened while ct-record is still root, so that after it drops to nobody it can still rewrite
 * the table wherever the admin asked for it. The price: a rewrite is not atomic, a reader that
 * opens the file during one may see a shorter table (rewrites happen only on SIGUSR1 and at exit).
 * Never follows a symbolic link and never writes into anything but a regular file.
 */
export class TableFile {
  readonly #fd: number;

  constructor(readonly path: string) {
    const { O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = constants;
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO planted at the path must not block the recorder at open.
      fd = openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o644);
    } catch (err) {
      const code = sysCode(err) ?? 'error';
      const why = code === 'ELOOP' ? 'it is a symbolic link; refusing to write through it' : code;
      throw new CtError('ETABLE', `cannot open --table ${path}: ${why}`, { cause: err });
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new CtError('ETABLE', `--table ${path} is not a regular file: choose a file path`);
    }
    this.#fd = fd;
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
