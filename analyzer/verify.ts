// `ct-analyze verify`: one verdict per journal — complete and intact, or what is wrong and where.
import { CtError, Exit, type ExitCode } from '../common/errors.js';
import { JournalFault } from '../journal/fault.js';
import { type JournalCounts, openJournal } from '../journal/reader.js';
import { printable } from './coverage.js';

/**
 * OK: complete (trailer) and intact (every checksum, checkpoint and the trailer's digest match).
 * INCOMPLETE: no trailer (crash, kill -9, full disk, or cut short); intact up to where it ends.
 * CORRUPT: damaged bytes or invalid content with more journal after them.
 * MODIFIED: well-formed frames whose digest or counts disagree: removed, reordered or replaced.
 * TOO NEW: a later format version (exit 3). UNREADABLE: missing, not a file, not a journal.
 */
export type Verdict = 'OK' | 'INCOMPLETE' | 'CORRUPT' | 'MODIFIED' | 'TOO NEW' | 'UNREADABLE';

/** One journal's verdict; the JSON element of `ct-analyze verify --format json`. */
export interface VerifyResult {
  path: string;
  verdict: Verdict;
  /** The verdict line after `PATH: VERDICT — `. */
  detail: string;
  /** The CtError code behind a verdict other than OK and a clean INCOMPLETE, else null. */
  code: string | null;
  /** Where the fault is (file offset), null when there is none or it has no place. */
  offset: number | null;
  /** Complete frames read (header and checkpoints included), and what they hold. */
  frames: number;
  events: number;
  gaps: number;
  lost: number;
  checkpoints: number;
  /** Events a digest vouches for: all of them when OK, else those before the last checkpoint. */
  verifiedEvents: number;
  /** Torn bytes after the last complete frame, 0 if none. */
  ignoredBytes: number;
  /** SHA-256 (hex) of the whole file when OK (what `sha256sum` prints), else null. */
  sha256: string | null;
}

/** Reads the whole journal once, checking everything the format lets a reader check. */
export function verifyJournal(path: string): VerifyResult {
  let reader: ReturnType<typeof openJournal>;
  try {
    reader = openJournal(path);
  } catch (err) {
    return failed(path, err, undefined);
  }
  try {
    for (const _ of reader.columns()) {
      // Reading is the check.
    }
  } catch (err) {
    return failed(path, err, reader.counts);
  } finally {
    reader.close();
  }
  const c = reader.counts;
  const base = counted(path, c);
  const trailer = reader.trailer;
  if (trailer !== undefined && reader.sha256 !== undefined) {
    return {
      ...base,
      verdict: 'OK',
      detail: `complete, ${n(c.events, 'event')}, ${gapsText(c)}, ${n(c.frames + 1, 'frame')}; sha256 ${reader.sha256}`,
      frames: c.frames + 1,
      verifiedEvents: c.events,
      sha256: reader.sha256,
    };
  }
  const ignored = reader.tail?.ignoredBytes ?? 0;
  const parts = [`no trailer, ${verifiedText(c)}`];
  if (ignored > 0) parts.push(`${n(ignored, 'trailing byte')} ignored`);
  return { ...base, verdict: 'INCOMPLETE', detail: parts.join('; '), ignoredBytes: ignored };
}

/** `PATH: VERDICT — detail`, safe to print (control characters escaped). */
export function verdictLine(r: VerifyResult): string {
  return `${printable(r.path)}: ${r.verdict} — ${printable(r.detail)}`;
}

/** 0 when every journal is OK; else 1, or 3 when the only trouble is a newer format. */
export function verifyExit(results: readonly VerifyResult[]): ExitCode {
  if (results.every((r) => r.verdict === 'OK')) return Exit.OK;
  if (results.every((r) => r.verdict === 'OK' || r.verdict === 'TOO NEW')) return Exit.VERSION;
  return Exit.RUNTIME;
}

function counted(path: string, c: JournalCounts | undefined): VerifyResult {
  return {
    path,
    verdict: 'INCOMPLETE',
    detail: '',
    code: null,
    offset: null,
    frames: c?.frames ?? 0,
    events: c?.events ?? 0,
    gaps: c?.gaps ?? 0,
    lost: c?.lost ?? 0,
    checkpoints: c?.checkpoints ?? 0,
    verifiedEvents: c?.verified?.events ?? 0,
    ignoredBytes: 0,
    sha256: null,
  };
}

function failed(path: string, err: unknown, c: JournalCounts | undefined): VerifyResult {
  // Anything but a CtError is a bug: let the CLI show it as one.
  if (!(err instanceof CtError)) throw err;
  const base = { ...counted(path, c), code: err.code };
  if (err instanceof JournalFault) {
    const where = `${err.atFrame ? 'frame at byte' : 'byte'} ${err.offset}`;
    if (err.code === 'EMODIFIED') {
      return { ...base, verdict: 'MODIFIED', offset: err.offset, detail: `${err.why} (${where})` };
    }
    return { ...base, verdict: 'CORRUPT', offset: err.offset, detail: `${where}: ${err.why}` };
  }
  const detail = withoutPath(err.message, path);
  if (err.code === 'EVERSION') return { ...base, verdict: 'TOO NEW', detail };
  if (err.code === 'ETRUNCATED') return { ...base, verdict: 'INCOMPLETE', detail };
  if (err.code === 'ECORRUPT') return { ...base, verdict: 'CORRUPT', detail };
  return { ...base, verdict: 'UNREADABLE', detail };
}

/** Reader messages start with the path; the verdict line already does. */
function withoutPath(message: string, path: string): string {
  return message.startsWith(`${path} `) ? message.slice(path.length + 1) : message;
}

function verifiedText(c: JournalCounts): string {
  const v = c.verified;
  if (v === undefined) {
    return `no checkpoint: ${n(c.events, 'event')} read, none vouched for by a digest`;
  }
  const after = c.events - v.events;
  const rest = after > 0 ? `, ${n(after, 'event')} after it unverified` : '';
  return `verified up to checkpoint ${c.checkpoints} (${n(v.events, 'event')})${rest}`;
}

function gapsText(c: JournalCounts): string {
  return c.gaps === 0 ? '0 gaps' : `${n(c.gaps, 'gap')} (${n(c.lost, 'event')} lost)`;
}

function n(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
