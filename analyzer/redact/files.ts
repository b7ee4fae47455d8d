// Where a redacted journal may be written: the checks before any work, the temporary file, the publication.
import { linkSync, lstatSync, renameSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CtError, Exit, sysCode } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import type { JournalHeader } from '../../journal/format.js';

export function refuseRedacted(header: JournalHeader, input: string): void {
  const already = header.options.redacted;
  if (already !== undefined) {
    throw new CtError(
      'EREDACTED',
      `${input} is redacted already (${describeMark(already)}): share it as it is; to redact with another key, start from the original journal`,
      { exit: Exit.USAGE },
    );
  }
}

function describeMark(mark: unknown): string {
  if (mark !== null && typeof mark === 'object' && !Array.isArray(mark)) {
    const m = mark as Record<string, unknown>;
    if (typeof m.scheme === 'string' && typeof m.keyId === 'string') {
      return printable(`scheme ${m.scheme}, key id ${m.keyId}`);
    }
  }
  return 'its header says so';
}

/** The temporary file an output is written to before it takes its name. */
export function tempPath(output: string): string {
  return join(dirname(output), `.${basename(output)}.${process.pid}.redact`);
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or never made: nothing to clean up.
  }
}

/**
 * Refuses before any work: an existing output without --force (as import does), a symbolic
 * link or a directory in its place, and an input (by device and inode) as the output.
 */
export function checkOutput(
  output: string,
  force: boolean,
  inputs: readonly { dev: number; ino: number }[],
): void {
  let st: Stats;
  try {
    st = lstatSync(output);
  } catch (err) {
    if (sysCode(err) === 'ENOENT') return;
    throw new CtError(
      sysCode(err) ?? 'EIO',
      `cannot check ${output}: ${(err as Error).message}; choose another path`,
      { cause: err },
    );
  }
  if (st.isSymbolicLink()) {
    throw new CtError('ELOOP', `${output} is a symbolic link; refusing to write through it`);
  }
  if (st.isDirectory()) {
    throw new CtError('EISDIR', `${output} is a directory; choose a file path for the journal`);
  }
  if (inputs.some((i) => i.dev === st.dev && i.ino === st.ino)) {
    throw new CtError(
      'ESAMEFILE',
      `${output} is a journal being redacted; write the redacted copy to another path`,
      { exit: Exit.USAGE },
    );
  }
  if (!force) {
    throw new CtError(
      'EEXIST',
      `${output} exists; choose another path or pass --force to overwrite`,
    );
  }
}

/** Where redactRun writes: an existing directory (it creates none: a typo would go unnoticed). */
export function checkDirectory(dir: string): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory() !== true) {
    throw new CtError(
      'ENOTDIR',
      `${dir} is not a directory: a run is written into an existing directory (mkdir it first)`,
      { exit: Exit.USAGE },
    );
  }
}

/**
 * The finished temporary file takes the output's name. Without --force a hard link, which
 * fails if the name was taken meanwhile; with it a rename, which replaces a file or link
 * itself and never writes through one.
 */
export function publish(temp: string, output: string, force: boolean): void {
  const exists = () =>
    new CtError('EEXIST', `${output} exists; choose another path or pass --force to overwrite`);
  try {
    if (force) {
      renameSync(temp, output);
      return;
    }
    try {
      linkSync(temp, output);
      unlinkSync(temp);
    } catch (err) {
      const code = sysCode(err);
      if (code === 'EEXIST') throw exists();
      // A filesystem without hard links: the name was free a moment ago (checkOutput).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      if (statSync(output, { throwIfNoEntry: false }) !== undefined) throw exists();
      renameSync(temp, output);
    }
  } catch (err) {
    if (err instanceof CtError) throw err;
    const code = sysCode(err) ?? 'EIO';
    throw new CtError(
      code,
      `cannot write ${output}: ${(err as Error).message}; check the path and the filesystem`,
      { cause: err },
    );
  }
}
