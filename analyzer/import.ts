// `ct-analyze import`: a saved conntrack -E / -L capture becomes a journal marked as imported.
import { readFileSync } from 'node:fs';
import { CtError, type ExitCode, sysCode } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { JournalWriter } from '../journal/writer.js';
import { type BadLine, parseConntrackText } from './import-conntrack.js';

export interface ImportIo {
  warn(message: string): void;
  note(message: string): void;
}

export interface ImportCommand {
  /** A file holding the text output of `conntrack -E` or `conntrack -L`. */
  file: string;
  /** The journal to write. */
  output: string;
  force: boolean;
  /** Host name for the header (the capture does not say where it was made). */
  host: string;
}

/** Lines shown one by one before the rest of the unreadable ones are only counted. */
export const BAD_LINES_SHOWN = 10;
const BATCH = 4096;

/**
 * Converts a saved conntrack capture into a journal whose header option `importedFrom` names
 * the tool and the file. Unreadable lines are warned with their numbers (the first ten, then
 * a count); none readable at all is an error, since there would be nothing to analyze.
 */
export function runImport(cmd: ImportCommand, io: ImportIo): ExitCode {
  let text: string;
  try {
    text = readFileSync(cmd.file, 'utf8');
  } catch (err) {
    const code = sysCode(err) ?? 'EIO';
    throw new CtError(code, `cannot read ${cmd.file}: ${(err as Error).message}; check the path`);
  }
  const cap = parseConntrackText(text, Date.now() * 1000);
  for (const b of cap.bad.slice(0, BAD_LINES_SHOWN)) io.warn(badLineText(cmd.file, b));
  if (cap.bad.length > BAD_LINES_SHOWN) {
    io.warn(`${cmd.file}: … and ${cap.bad.length - BAD_LINES_SHOWN} more unreadable lines`);
  }
  if (cap.events.length === 0) {
    throw new CtError(
      'ENOENTRIES',
      `${cmd.file} holds no conntrack entries (${cap.bad.length} unreadable lines): give the text output of conntrack -E or conntrack -L (default or -o timestamp,id,extended format)`,
    );
  }
  const tool =
    cap.tagged > 0 && cap.untagged > 0
      ? 'conntrack -E and -L'
      : cap.tagged > 0
        ? 'conntrack -E'
        : 'conntrack -L';
  let start = Number.POSITIVE_INFINITY;
  let stop = 0;
  for (const ev of cap.events) {
    if (ev.time < start) start = ev.time;
    if (ev.time > stop) stop = ev.time;
  }
  const w = JournalWriter.create(
    cmd.output,
    {
      tool: { name: 'conntracker', version: TOOL_VERSION },
      host: cmd.host,
      kernel: 'unknown',
      netns: 'unknown',
      start,
      options: {
        importedFrom: {
          tool,
          file: cmd.file,
          lines: cap.events.length + cap.bad.length,
          unreadable: cap.bad.length,
          unstamped: cap.unstamped,
        },
      },
      sysctls: {
        nf_conntrack_events: null,
        nf_conntrack_timestamp: null,
        nf_conntrack_acct: null,
        ip_local_port_range: null,
      },
    },
    { force: cmd.force },
  );
  try {
    for (let i = 0; i < cap.events.length; i += BATCH) w.append(cap.events.slice(i, i + BATCH));
    w.close({ stop });
  } catch (err) {
    w.closeAfterFailure();
    throw err;
  }
  const skipped =
    cap.bad.length > 0 ? `; skipped ${cap.bad.length} unreadable lines (warned above)` : '';
  const clock =
    cap.unstamped > 0
      ? `; ${cap.unstamped} lines had no timestamp and got the import time, in file order`
      : '';
  io.note(
    `imported ${cap.events.length} entries (${tool}) from ${cmd.file} into ${cmd.output}${skipped}${clock}`,
  );
  return 0;
}

function badLineText(file: string, b: BadLine): string {
  const shown = b.text.length > 120 ? `${b.text.slice(0, 120)}…` : b.text;
  return `${file}:${b.line}: not a conntrack entry (${b.reason}): ${JSON.stringify(shown)}`;
}
