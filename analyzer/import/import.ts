// A saved conntrack -E / -L capture becomes a journal marked as imported (ct-analyze import).
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isatty } from 'node:tty';
import { CtError, Exit, sysCode } from '../../common/errors.js';
import { TOOL_VERSION } from '../../common/package.js';
import type { CtEvent } from '../../journal/event.js';
import type { FormatVersion } from '../../journal/format.js';
import { JournalWriter } from '../../journal/writer.js';
import { type BadLine, CaptureParser } from './conntrack-text.js';
import { LineSplitter } from './lines.js';

export interface ImportIo {
  /** An unreadable line, or how many more there were. */
  warn(message: string): void;
}

export interface ImportCommand {
  /**
   * A file holding the text output of `conntrack -E` or `conntrack -L`, or `-` for standard
   * input. A regular file is read twice in place; any other (a pipe, a FIFO, a terminal's
   * redirect) is copied once to an unlinked temporary file beside the output first.
   */
  file: string;
  /** The journal to write. */
  output: string;
  force: boolean;
  /** Host name for the header (the capture does not say where it was made). */
  host: string;
  /** The journal format to write; JournalWriter's default (the newest) when undefined. */
  formatVersion?: FormatVersion;
}

export interface ImportProgress {
  /** 1 finds the time range and counts, 2 writes the journal. */
  pass: 1 | 2;
  /** Bytes of the capture read so far in this pass. */
  bytes: number;
  /** The capture's size, when known (always in pass 2; in pass 1 for a regular file). */
  total: number | undefined;
  /** Entries read so far in this pass. */
  entries: number;
}

export interface ImportOptions {
  /** Bytes per read; default 1 MiB. */
  chunkSize?: number;
  /** Events per journal frame, which is also the most parsed events held at once; default 4096. */
  batchSize?: number;
  /** Import time (µs since the epoch) that lines without a timestamp count from; default now. */
  importUs?: number;
  /** The descriptor FILE `-` reads; default 0, standard input. */
  stdin?: number;
  /** Called after every chunk read, in both passes (a progress bar; a memory probe in tests). */
  progress?: (p: ImportProgress) => void;
}

/** What an import wrote, for the command's closing note. */
export interface ImportSummary {
  /** The capture as messages name it: its path, or STDIN_NAME. */
  source: string;
  /** `conntrack -E`, `conntrack -L`, or both: what the lines look like. */
  tool: string;
  entries: number;
  /** Lines that are no conntrack entry (warned, the first ten one by one). */
  unreadable: number;
  /** Entries without a timestamp, given the import time in file order. */
  unstamped: number;
}

/** Lines shown one by one before the rest of the unreadable ones are only counted. */
export const BAD_LINES_SHOWN = 10;
export const IMPORT_CHUNK = 1 << 20;
export const IMPORT_BATCH = 4096;
/** How FILE `-` is named in messages and in the header. */
export const STDIN_NAME = '(standard input)';

/**
 * Converts a saved conntrack capture into a journal whose header option `importedFrom` names
 * the tool and the file. Unreadable lines are warned with their numbers (the first ten, then
 * a count); none readable at all is an error, since there would be nothing to analyze.
 *
 * Memory stays bounded whatever the capture's size: the header needs the earliest time and
 * the counts before the first event, so a first pass reads the capture only for those and the
 * first bad lines, and a second pass parses it again and appends events a batch at a time.
 */
export function importCapture(
  cmd: ImportCommand,
  io: ImportIo,
  opts: ImportOptions = {},
): ImportSummary {
  const chunkSize = positive(opts.chunkSize ?? IMPORT_CHUNK, 'chunkSize');
  const batchSize = positive(opts.batchSize ?? IMPORT_BATCH, 'batchSize');
  const importUs = opts.importUs ?? Date.now() * 1000;
  const progress = opts.progress ?? (() => {});
  const buf = Buffer.allocUnsafe(chunkSize);
  const src = openCapture(cmd.file, opts.stdin ?? 0);
  let spool: Spool | undefined;
  try {
    // Pass 1: counts, time range, the bad lines to show; a pipe is copied as it goes.
    const scan = new CaptureParser(importUs, BAD_LINES_SHOWN);
    const lines1 = new LineSplitter((text, n, long) => {
      scan.line(text, n, long);
    });
    const total = src.regular ? src.size : undefined;
    let copy: (chunk: Buffer, at: number) => void = () => {};
    if (!src.regular) {
      const s = openSpool(cmd.output, src.name);
      spool = s;
      copy = (chunk, at) => s.write(chunk, at);
    }
    const size = readPass(src, buf, Number.POSITIVE_INFINITY, (chunk, at) => {
      copy(chunk, at);
      lines1.push(chunk);
      progress({ pass: 1, bytes: at + chunk.length, total, entries: scan.entries });
    });
    lines1.end();

    for (const b of scan.bad) io.warn(badLineText(src.name, b));
    if (scan.badLines > BAD_LINES_SHOWN) {
      io.warn(`${src.name}: … and ${scan.badLines - BAD_LINES_SHOWN} more unreadable lines`);
    }
    if (scan.entries === 0) {
      throw new CtError(
        'ENOENTRIES',
        `${src.name} holds no conntrack entries (${scan.badLines} unreadable lines): give the text output of conntrack -E or conntrack -L (default or -o timestamp,id,extended format)`,
      );
    }
    const tool =
      scan.tagged > 0 && scan.untagged > 0
        ? 'conntrack -E and -L'
        : scan.tagged > 0
          ? 'conntrack -E'
          : 'conntrack -L';

    // Pass 2: the same bytes again (a file still growing is imported as pass 1 saw it).
    const again: Capture =
      spool === undefined
        ? src
        : { name: spool.name, fd: spool.fd, own: false, regular: true, size: spool.size };
    const w = createJournal(cmd, src.name, scan, tool);
    const check = new CaptureParser(importUs, 0);
    const batch: CtEvent[] = [];
    const lines2 = new LineSplitter((text, n, long) => {
      const ev = check.line(text, n, long);
      if (ev === undefined) return;
      batch.push(ev);
      if (batch.length >= batchSize) {
        w.append(batch);
        batch.length = 0;
      }
    });
    try {
      readPass(again, buf, size, (chunk, at) => {
        lines2.push(chunk);
        progress({ pass: 2, bytes: at + chunk.length, total: size, entries: check.entries });
      });
      lines2.end();
      w.append(batch);
      if (!sameScan(scan, check)) {
        throw new CtError(
          'ECHANGED',
          `${src.name} changed while it was being imported (${check.entries} entries the second time it was read, ${scan.entries} the first): import a copy nobody writes to`,
        );
      }
      w.close({ stop: scan.stop });
    } catch (err) {
      w.closeAfterFailure();
      if (!(err instanceof CtError)) throw err;
      throw new CtError(
        err.code,
        `${err.message}; ${cmd.output} is incomplete (${w.events} of ${scan.entries} entries, no trailer): import again with --force once that is fixed`,
        { exit: err.exit, cause: err },
      );
    }

    return {
      source: src.name,
      tool,
      entries: scan.entries,
      unreadable: scan.badLines,
      unstamped: scan.unstamped,
    };
  } finally {
    spool?.close();
    if (src.own) closeSync(src.fd);
  }
}

function createJournal(
  cmd: ImportCommand,
  name: string,
  scan: CaptureParser,
  tool: string,
): JournalWriter {
  return JournalWriter.create(
    cmd.output,
    {
      tool: { name: 'conntracker', version: TOOL_VERSION },
      host: cmd.host,
      kernel: 'unknown',
      netns: 'unknown',
      start: scan.start,
      options: {
        importedFrom: {
          tool,
          file: name,
          lines: scan.entries + scan.badLines,
          unreadable: scan.badLines,
          unstamped: scan.unstamped,
        },
      },
      sysctls: {
        nf_conntrack_events: null,
        nf_conntrack_timestamp: null,
        nf_conntrack_acct: null,
        ip_local_port_range: null,
      },
    },
    { force: cmd.force, formatVersion: cmd.formatVersion },
  );
}

/** Both passes read the same lines the same way: anything else means the input changed. */
function sameScan(a: CaptureParser, b: CaptureParser): boolean {
  return (
    a.entries === b.entries &&
    a.badLines === b.badLines &&
    a.tagged === b.tagged &&
    a.unstamped === b.unstamped &&
    a.start === b.start &&
    a.stop === b.stop
  );
}

interface Capture {
  /** For messages: the path, or STDIN_NAME. */
  name: string;
  fd: number;
  /** Whether the descriptor is ours to close. */
  own: boolean;
  /** A regular file is read with positional reads, from its start, as often as needed. */
  regular: boolean;
  size: number;
}

function openCapture(file: string, stdin: number): Capture {
  const name = file === '-' ? STDIN_NAME : file;
  if (file === '-' && isatty(stdin)) {
    throw new CtError(
      'ETTY',
      'standard input is a terminal, not a capture: pipe one in (zcat capture.txt.gz | ct-analyze import - -o journal.mpk) or give its file',
      { exit: Exit.USAGE },
    );
  }
  let fd = stdin;
  if (file !== '-') {
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      throw readError(name, err);
    }
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (err) {
    if (file !== '-') closeSync(fd);
    throw readError(name, err);
  }
  if (st.isDirectory()) {
    if (file !== '-') closeSync(fd);
    throw new CtError('EISDIR', `${name} is a directory: give the file holding the capture`);
  }
  return { name, fd, own: file !== '-', regular: st.isFile(), size: st.size };
}

/**
 * Reads up to `limit` bytes in chunks of `buf`'s size, handing each on with its offset;
 * returns how many were read. `buf` is reused: a chunk is only valid during its call.
 */
function readPass(
  src: Capture,
  buf: Buffer,
  limit: number,
  onChunk: (chunk: Buffer, at: number) => void,
): number {
  let at = 0;
  while (at < limit) {
    const want = Math.min(buf.length, limit - at);
    const n = readChunk(src, buf, want, at);
    if (n === 0) break;
    onChunk(buf.subarray(0, n), at);
    at += n;
  }
  return at;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function readChunk(src: Capture, buf: Buffer, want: number, at: number): number {
  for (;;) {
    try {
      return readSync(src.fd, buf, 0, want, src.regular ? at : null);
    } catch (err) {
      // A pipe another process left non-blocking: nothing to read yet, so wait for it.
      if (sysCode(err) === 'EAGAIN') Atomics.wait(pause, 0, 0, 10);
      else throw readError(src.name, err);
    }
  }
}

function readError(name: string, err: unknown): CtError {
  const code = sysCode(err) ?? 'EIO';
  return new CtError(code, `cannot read ${name}: ${(err as Error).message}; check the path`, {
    cause: err,
  });
}

interface Spool {
  name: string;
  fd: number;
  size: number;
  write(chunk: Buffer, at: number): void;
  close(): void;
}

/**
 * A capture that cannot be read twice (a pipe) is copied to a temporary file as pass 1 reads
 * it. Beside the output, not in the temp directory: /tmp is often a tmpfs, i.e. memory, and
 * the output's filesystem must have room for the journal anyway. Unlinked at once, so nothing
 * is left behind even if the import is killed.
 */
function openSpool(output: string, what: string): Spool {
  const dir = dirname(output);
  const path = join(dir, `.${basename(output)}.${process.pid}.import`);
  const failed = (err: unknown): CtError => {
    const code = sysCode(err) ?? 'EIO';
    return new CtError(
      code,
      `cannot copy ${what} to a temporary file in ${dir} (${(err as Error).message}): it must be read twice; make room there, or save the capture to a file and import that`,
      { cause: err },
    );
  };
  let fd: number;
  try {
    const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    fd = openSync(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    throw failed(err);
  }
  let linked = true;
  const unlink = () => {
    try {
      unlinkSync(path);
      linked = false;
    } catch {
      // Tried again at close.
    }
  };
  unlink();
  const spool: Spool = {
    name: `the copy of ${what}`,
    fd,
    size: 0,
    write(chunk, at) {
      let done = 0;
      try {
        while (done < chunk.length) {
          done += writeSync(fd, chunk, done, chunk.length - done, at + done);
        }
      } catch (err) {
        throw failed(err);
      }
      spool.size = at + chunk.length;
    },
    close() {
      closeSync(fd);
      if (linked) unlink();
    },
  };
  return spool;
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`import: ${what} must be an integer ≥ 1`);
  return n;
}

function badLineText(file: string, b: BadLine): string {
  const shown = b.text.length > 120 ? `${b.text.slice(0, 120)}…` : b.text;
  return `${file}:${b.line}: not a conntrack entry (${b.reason}): ${JSON.stringify(shown)}`;
}
