// Where a report goes: a stream (with backpressure) or a file replaced atomically.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { CtError, sysCode } from '../../common/errors.js';

/**
 * Writes the chunks to the stream, waiting for 'drain' when it is full. A reader that went away
 * (EPIPE, e.g. `ct-analyze x.mpk | head`) ends the output quietly; other errors are thrown.
 */
export async function writeToStream(chunks: Iterable<string>, out: Writable): Promise<void> {
  let failure: Error | undefined;
  const onError = (err: Error) => {
    failure ??= err;
  };
  out.on('error', onError);
  try {
    for (const chunk of chunks) {
      if (failure !== undefined) break;
      if (!out.write(chunk)) await drained(out);
    }
  } catch (err) {
    failure ??= err as Error;
  } finally {
    out.off('error', onError);
  }
  if (failure !== undefined && sysCode(failure) !== 'EPIPE') {
    throw new CtError('EOUTPUT', `cannot write the report: ${failure.message}`, {
      cause: failure,
    });
  }
}

/** Resolves once the stream can take more, or will never (closed, failed). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

const WRITE_ADVICE: Record<string, string> = {
  ENOENT: 'no such directory — create it or choose another path',
  EACCES: 'permission denied — choose a writable directory',
  EISDIR: 'it is a directory — give a file name',
  ENOSPC: 'no space left on the device — free some space or write elsewhere',
  EROFS: 'read-only file system — write elsewhere',
};

/**
 * Writes the chunks to a temporary file beside `path`, then renames it over `path`: a failed
 * run leaves the previous file (or none), never half a report.
 */
export function writeFileAtomic(path: string, chunks: Iterable<string>): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o666);
    for (const chunk of chunks) writeSync(fd, chunk);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary file was never made, or is already gone
    }
    const code = sysCode(err);
    if (code === undefined) throw err;
    const why = WRITE_ADVICE[code] ?? `${code} — check the path`;
    throw new CtError('EOUTPUT', `cannot write ${path}: ${why}`, { cause: err });
  }
}
