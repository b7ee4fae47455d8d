// ct-analyze --follow: replays a recording in progress, rotated journals too, reporting every interval.
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CtError } from '../../common/errors.js';
import type { JournalChain } from '../../journal/format.js';
import { type JournalReader, openJournal } from '../../journal/reader.js';
import { type Collapse, FlowTable } from './flows.js';
import { JournalReplay, type JournalSummary, judgeRuns, warnAbout } from './replay.js';
import { NO_WINDOW, type TimeWindow } from './slice.js';

export interface FollowOptions {
  collapse?: Collapse;
  window?: TimeWindow;
  /** Time between reports, ms. */
  intervalMs: number;
  /** Time between looks at the file's size (or for the next journal), ms (default 250). */
  pollMs?: number;
  /** Ends the following (SIGINT, SIGTERM): one last report is made. */
  signal: AbortSignal;
  warn?: (message: string) => void;
  now?: () => number;
}

/**
 * A report: the table so far and a summary of each journal read (the run so far). `final` is
 * the last one (the run ended, or following was stopped).
 */
export type ReportFn = (
  table: FlowTable,
  journals: JournalSummary[],
  final: boolean,
) => Promise<void>;

/** A journal read to its trailer: its summaries as a finished run and while following. */
interface Finished {
  chain: JournalChain | undefined;
  ended: JournalSummary;
  following: JournalSummary;
}

/** The journal a trailer's `next` names, until it has appeared and been checked. */
interface Awaited {
  path: string;
  after: { path: string; chain: JournalChain | undefined; sha256: string | undefined };
  /** A mismatch seen once: ct-record --force may not have replaced an old file of that name yet. */
  mismatch: boolean;
}

/**
 * Reads the journal as far as it goes, reports, then keeps reading what ct-record appends,
 * reporting every interval. When its trailer names a `next` journal (ct-record --rotate), waits
 * for that one, checks it continues the run, and goes on into the same table. Ends at a trailer
 * without `next` or when the signal aborts, with one more report. Returns the summaries of the
 * last report: one per journal read, in run order (none when stopped before the first opened).
 */
export async function followJournal(
  path: string,
  opts: FollowOptions,
  report: ReportFn,
): Promise<JournalSummary[]> {
  const now = opts.now ?? (() => Date.now());
  const pollMs = opts.pollMs ?? 250;
  const warn = opts.warn ?? (() => {});
  const first = await openWhenReady(path, opts.signal, pollMs);
  if (first === undefined) return [];
  const table = new FlowTable(opts.collapse === undefined ? {} : { collapse: opts.collapse });
  const start = (reader: JournalReader) => {
    const replay = new JournalReplay(reader, table, opts.window ?? NO_WINDOW);
    if (replay.collapseNote !== undefined) warn(replay.collapseNote);
    return replay;
  };
  const finished: Finished[] = [];
  let replay: JournalReplay | undefined = start(first);
  let awaited: Awaited | undefined;

  /** The run so far, as a report shows it; `final` also puts its warnings on stderr. */
  const summaries = (final: boolean): JournalSummary[] => {
    const ended = replay === undefined && awaited === undefined;
    const journals = finished.map((f) => copy(ended ? f.ended : f.following));
    const chains = finished.map((f) => f.chain);
    if (replay !== undefined) {
      journals.push(replay.summary(true));
      chains.push(replay.reader.header.chain);
    }
    const last = journals.at(-1);
    if (awaited !== undefined && last !== undefined) {
      const w = waitingText(awaited.path, final);
      last.coverage.warnings.push(w);
      if (final) warn(`${last.path}: ${w}`);
    }
    judgeRuns(journals, chains, final ? warn : undefined);
    return journals;
  };

  try {
    let due = now();
    for (;;) {
      if (replay?.advance(true) === true) {
        const done = replay;
        replay = undefined;
        const ended = done.summary();
        warnAbout(ended, warn);
        const { header, trailer, sha256 } = done.reader;
        finished.push({ chain: header.chain, ended, following: done.summary(true) });
        done.close();
        if (trailer?.next === undefined) break;
        awaited = {
          path: join(dirname(done.reader.path), trailer.next),
          after: { path: done.reader.path, chain: header.chain, sha256 },
          mismatch: false,
        };
      }
      if (awaited !== undefined) {
        const reader = openNext(awaited);
        if (reader !== undefined) {
          awaited = undefined;
          replay = start(reader);
          continue;
        }
      }
      if (opts.signal.aborted) break;
      if (now() >= due) {
        await report(table, summaries(false), false);
        due = now() + opts.intervalMs;
      }
      await pause(pollMs, opts.signal);
    }
    const journals = summaries(true);
    await report(table, journals, true);
    return journals;
  } finally {
    replay?.close();
  }
}

/** A summary whose warnings a report may add to without changing the original. */
function copy(s: JournalSummary): JournalSummary {
  return { ...s, coverage: { ...s.coverage, warnings: [...s.coverage.warnings] } };
}

function waitingText(next: string, final: boolean): string {
  return final
    ? `following stopped while waiting for ${next}, where the run goes on (ct-record --rotate): its events are not included; once it exists, analyze every journal of the run together`
    : `waiting for ${next}, where the run goes on (ct-record --rotate)`;
}

/**
 * Opens the journal a trailer named once it is there and checked to continue the run, as
 * `ct-analyze verify` checks a run; undefined while it is not there yet (or has no header yet).
 * A journal that does not continue the run is an error, once a second look found it the same.
 */
function openNext(awaited: Awaited): JournalReader | undefined {
  let reader: JournalReader;
  try {
    reader = openJournal(awaited.path);
  } catch (err) {
    if (err instanceof CtError && (err.code === 'ENOENT' || err.code === 'ETRUNCATED')) {
      return undefined;
    }
    throw err;
  }
  const fault = chainFault(awaited, reader.header.chain);
  if (fault === undefined) return reader;
  reader.close();
  if (!awaited.mismatch) {
    awaited.mismatch = true;
    return undefined;
  }
  throw new CtError(
    'ECHAIN',
    `${fault}; following stops: check the run with ct-analyze verify on all its journals`,
  );
}

/** What is wrong with `chain` as the header of the journal after `awaited.after`, if anything. */
function chainFault(awaited: Awaited, chain: JournalChain | undefined): string | undefined {
  const { path, after } = awaited;
  const prefix = `${path} does not follow ${after.path}`;
  if (after.chain === undefined) {
    return `${after.path} names ${path} as the next journal but is not itself a journal of a rotated run (no chain in its header)`;
  }
  if (chain === undefined) {
    return `${prefix}: it is not a journal of a rotated run (no chain in its header)`;
  }
  const run = runName(after.chain.run);
  if (runName(chain.run) !== run) {
    return `${prefix}: it is of another run (${runName(chain.run).slice(0, 8)}, not ${run.slice(0, 8)})`;
  }
  if (chain.sequence !== after.chain.sequence + 1) {
    return `${prefix}: it is sequence ${chain.sequence} of run ${run.slice(0, 8)}, not ${after.chain.sequence + 1}`;
  }
  const previous = chain.previous === null ? undefined : Buffer.from(chain.previous.sha256);
  if (previous?.toString('hex') !== after.sha256) {
    return `${prefix}: its previous sha256 differs`;
  }
  return undefined;
}

function runName(run: Uint8Array): string {
  return Buffer.from(run).toString('hex');
}

/**
 * Opens the journal, waiting while ct-record has created it but not yet written its header;
 * undefined when the signal aborts first. Any other problem is the usual error.
 */
async function openWhenReady(
  path: string,
  signal: AbortSignal,
  pollMs: number,
): Promise<JournalReader | undefined> {
  for (;;) {
    try {
      return openJournal(path);
    } catch (err) {
      if (!(err instanceof CtError && err.code === 'ETRUNCATED')) throw err;
    }
    if (!(await pause(pollMs, signal))) return undefined;
  }
}

/** Waits ms; false when the signal aborted (now or before). */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
