// ct-analyze import, run: the capture imported, the closing note, the exit status.
import { Exit, type ExitCode } from '../../../common/errors.js';
import {
  type ImportCommand,
  type ImportIo,
  type ImportOptions,
  type ImportSummary,
  importCapture,
} from '../../import/import.js';

/**
 * Imports the capture (import/import.ts: unreadable lines warned as they are found), then says
 * what was written. Exit 0 whenever a journal was written; nothing readable is a CtError.
 */
export function runImport(
  cmd: ImportCommand,
  io: ImportIo & { note(message: string): void },
  opts: ImportOptions = {},
): ExitCode {
  io.note(importedText(importCapture(cmd, io, opts), cmd.output));
  return Exit.OK;
}

function importedText(s: ImportSummary, output: string): string {
  const skipped =
    s.unreadable > 0 ? `; skipped ${s.unreadable} unreadable lines (warned above)` : '';
  const clock =
    s.unstamped > 0
      ? `; ${s.unstamped} lines had no timestamp and got the import time, in file order`
      : '';
  return `imported ${s.entries} entries (${s.tool}) from ${s.source} into ${output}${skipped}${clock}`;
}
