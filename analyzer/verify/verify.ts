// `ct-analyze verify`: one verdict per journal — complete and intact, or what is wrong and where.
import { basename, dirname, join } from 'node:path';
import { CtError, Exit, type ExitCode } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import { JournalFault } from '../../journal/fault.js';
import { type JournalChain, sequencePath, splitOutput } from '../../journal/format.js';
import { type JournalCounts, openJournal } from '../../journal/reader.js';

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
  /** The header's format version (1 or 2), null when no header could be read. */
  format: number | null;
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
  /** Its place in a rotated run (header `chain`), null when it is not chained or unreadable. */
  chain: ChainPlace | null;
}

/** A chained journal's place in its run, and what checkChains found wrong with it. */
export interface ChainPlace {
  /** The run id: 32 hex digits. */
  run: string;
  sequence: number;
  /** The journal it continues: its whole-file SHA-256 (hex) and base name; null for sequence 1. */
  previous: { sha256: string; file: string } | null;
  /** The journal its trailer says the run goes on in; null for a run's last (or without trailer). */
  next: string | null;
  /** What checkChains found wrong with its link to the journals around it; empty: nothing. */
  faults: string[];
}

/** One run's verdict over the journals given: complete, or its faults (each on a journal's place). */
export interface ChainVerdict {
  /** The run id: 32 hex digits. */
  run: string;
  /** Journals of the run given (each path once). */
  journals: number;
  faults: string[];
  /** The last journal given has no trailer: complete as far as it goes (still recording?). */
  open: boolean;
  /** The path of the run's last journal given (highest sequence). */
  last: string;
}

/** Reads the whole journal once, checking everything the format lets a reader check. */
export function verifyJournal(path: string): VerifyResult {
  let reader: ReturnType<typeof openJournal>;
  try {
    reader = openJournal(path);
  } catch (err) {
    return failed(path, err, undefined);
  }
  const chain = reader.header.chain;
  const format = reader.header.format;
  try {
    for (const _ of reader.columns()) {
      // Reading is the check.
    }
  } catch (err) {
    return { ...failed(path, err, reader.counts), format, chain: placeOf(chain, null) };
  } finally {
    reader.close();
  }
  const c = reader.counts;
  const base = {
    ...counted(path, c),
    format,
    chain: placeOf(chain, reader.trailer?.next ?? null),
  };
  const trailer = reader.trailer;
  if (trailer !== undefined && reader.sha256 !== undefined) {
    return {
      ...base,
      verdict: 'OK',
      detail: `complete, format ${format}, ${n(c.events, 'event')}, ${gapsText(c)}, ${n(c.frames + 1, 'frame')}; sha256 ${reader.sha256}`,
      frames: c.frames + 1,
      verifiedEvents: c.events,
      sha256: reader.sha256,
    };
  }
  const ignored = reader.tail?.ignoredBytes ?? 0;
  const parts = [`no trailer, format ${format}, ${verifiedText(c)}`];
  if (ignored > 0) parts.push(`${n(ignored, 'trailing byte')} ignored`);
  return { ...base, verdict: 'INCOMPLETE', detail: parts.join('; '), ignoredBytes: ignored };
}

/** `PATH: VERDICT — detail`, safe to print (control characters escaped). */
export function verdictLine(r: VerifyResult): string {
  return `${printable(r.path)}: ${r.verdict} — ${printable(r.detail)}`;
}

/** 0 when every journal is OK and every run whole; else 1, or 3 when the only trouble is a newer format. */
export function verifyExit(
  results: readonly VerifyResult[],
  chains: readonly ChainVerdict[] = [],
): ExitCode {
  if (chains.some((c) => c.faults.length > 0)) return Exit.RUNTIME;
  if (results.every((r) => r.verdict === 'OK')) return Exit.OK;
  if (results.every((r) => r.verdict === 'OK' || r.verdict === 'TOO NEW')) return Exit.VERSION;
  return Exit.RUNTIME;
}

function counted(path: string, c: JournalCounts | undefined): VerifyResult {
  return {
    path,
    verdict: 'INCOMPLETE',
    format: null,
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
    chain: null,
  };
}

function placeOf(chain: JournalChain | undefined, next: string | null): ChainPlace | null {
  if (chain === undefined) return null;
  const prev = chain.previous;
  return {
    run: Buffer.from(chain.run).toString('hex'),
    sequence: chain.sequence,
    previous:
      prev === null ? null : { sha256: Buffer.from(prev.sha256).toString('hex'), file: prev.file },
    next,
    faults: [],
  };
}

/** A run as the text names it: the first 8 hex digits of its id. */
export function runName(run: string): string {
  return run.slice(0, 8);
}

/**
 * Checks each run among the journals given (in any order): it starts at sequence 1, no
 * sequence is missing or given twice, each journal's `previous` digest is the whole-file
 * SHA-256 of the one before it, and the last one given does not name a next. Each fault is
 * also added to the `faults` of the journal it was found at (the one after a hole, the first
 * one, the last one). One verdict per run, in the order the runs first appear.
 */
export function checkChains(results: readonly VerifyResult[]): ChainVerdict[] {
  const runs = new Map<string, Array<VerifyResult & { chain: ChainPlace }>>();
  const seen = new Set<string>();
  for (const r of results) {
    if (r.chain === null || seen.has(r.path)) continue;
    seen.add(r.path);
    const list = runs.get(r.chain.run) ?? [];
    list.push(r as VerifyResult & { chain: ChainPlace });
    runs.set(r.chain.run, list);
  }
  const byName = new Map<string, VerifyResult & { chain: ChainPlace }>();
  for (const list of runs.values()) for (const r of list) byName.set(basename(r.path), r);
  const verdicts: ChainVerdict[] = [];
  for (const [run, unsorted] of runs) {
    const list = [...unsorted].sort((a, b) => a.chain.sequence - b.chain.sequence);
    const faults: string[] = [];
    const fault = (at: VerifyResult & { chain: ChainPlace }, text: string) => {
      at.chain.faults.push(text);
      faults.push(text);
    };
    const first = list[0] as VerifyResult & { chain: ChainPlace };
    if (first.chain.sequence > 1) {
      fault(first, missingText(first, 1, first.chain.sequence - 1, byName));
    }
    for (let i = 1; i < list.length; i++) {
      const p = list[i - 1] as VerifyResult & { chain: ChainPlace };
      const q = list[i] as VerifyResult & { chain: ChainPlace };
      const [ps, qs] = [p.chain.sequence, q.chain.sequence];
      if (qs === ps) {
        fault(q, `${q.path} and ${p.path} are both sequence ${qs} of run ${runName(run)}`);
      } else if (qs > ps + 1) {
        fault(q, missingText(q, ps + 1, qs - 1, byName));
      } else if (p.sha256 === null) {
        fault(q, `cannot check that ${q.path} follows ${p.path}: ${p.path} is not OK`);
      } else if (q.chain.previous?.sha256 !== p.sha256) {
        fault(q, `${q.path} does not follow ${p.path}: its previous sha256 differs`);
      }
    }
    const last = list[list.length - 1] as VerifyResult & { chain: ChainPlace };
    if (last.chain.next !== null) {
      const next = join(dirname(last.path), last.chain.next);
      fault(
        last,
        `${next} is missing: ${last.path} says the run goes on in it (sequence ${last.chain.sequence + 1} of run ${runName(run)})`,
      );
    }
    verdicts.push({
      run,
      journals: list.length,
      faults,
      open: last.verdict === 'INCOMPLETE',
      last: last.path,
    });
  }
  return verdicts;
}

/**
 * Sequences `from`–`to` of `at`'s run are not among the journals given. Named as `at` names its
 * predecessor, else by `at`'s own name pattern; a journal of that name from another run is
 * the mix-up it is.
 */
function missingText(
  at: VerifyResult & { chain: ChainPlace },
  from: number,
  to: number,
  byName: ReadonlyMap<string, VerifyResult & { chain: ChainPlace }>,
): string {
  const run = runName(at.chain.run);
  const prevFile = at.chain.previous?.file;
  if (to === at.chain.sequence - 1 && prevFile !== undefined) {
    const other = byName.get(prevFile);
    if (other !== undefined && other.chain.run !== at.chain.run) {
      return `${at.path} does not follow ${other.path}: ${other.path} is of another run (${runName(other.chain.run)}); sequence ${to} of run ${run} is missing`;
    }
  }
  const name = (seq: number) =>
    seq === at.chain.sequence - 1 && prevFile !== undefined
      ? join(dirname(at.path), prevFile)
      : siblingName(at.path, at.chain.sequence, seq);
  const [a, b] = [name(from), name(to)];
  if (from === to) {
    return a === undefined
      ? `sequence ${from} of run ${run} is missing (before ${at.path})`
      : `${a} is missing: sequence ${from} of run ${run}`;
  }
  const names = a === undefined || b === undefined ? '' : `${a} … ${b} are missing: `;
  const what = `sequences ${from}–${to} of run ${run}`;
  return names === '' ? `${what} are missing (before ${at.path})` : `${names}${what}`;
}

/** The name of journal `want` of the run `path` (journal `sequence`) is in, if it is named as ct-record names them. */
function siblingName(path: string, sequence: number, want: number): string | undefined {
  const { stem, ext } = splitOutput(basename(path));
  const m = /^(.*)-(\d{6,})$/.exec(stem);
  if (m === null || Number(m[2]) !== sequence) return undefined;
  return join(dirname(path), sequencePath(`${m[1]}${ext}`, want));
}

/** `chain 1a2b3c4d: 3 journals, complete`, or what is wrong; safe to print. */
export function chainLine(c: ChainVerdict): string {
  const n = `${c.journals} journal${c.journals === 1 ? '' : 's'}`;
  if (c.faults.length > 0) {
    return printable(`chain ${runName(c.run)}: ${n}, BROKEN — ${c.faults.join('; ')}`);
  }
  const open = c.open
    ? ` as far as it goes (${c.last} has no trailer: still being recorded, or the recording did not end cleanly)`
    : '';
  return printable(`chain ${runName(c.run)}: ${n}, complete${open}`);
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
  if (c.gaps === 0) return '0 gaps';
  // The resync dumps' entries left out as held already: fewer snapshot events than dumped.
  const held = c.resyncSkipped ?? 0;
  const skipped =
    held > 0
      ? `; ${held} resync dump ${held === 1 ? 'entry' : 'entries'} left out as held already`
      : '';
  return `${n(c.gaps, 'gap')} (${n(c.lost, 'event')} lost${skipped})`;
}

function n(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
