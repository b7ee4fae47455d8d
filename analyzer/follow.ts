// ct-analyze --follow: replays a journal ct-record is still writing, reporting every interval.
import { setTimeout as sleep } from 'node:timers/promises';
import { CtError } from '../common/errors.js';
import { type JournalReader, openJournal } from '../journal/reader.js';
import { type Collapse, FlowTable } from './flows.js';
import { JournalReplay, type JournalSummary, warnAbout } from './replay.js';
import { NO_WINDOW, type TimeWindow } from './slice.js';

export interface FollowOptions {
  collapse?: Collapse;
  window?: TimeWindow;
  /** Time between reports, ms. */
  intervalMs: number;
  /** Time between looks at the file's size, ms (default 250). */
  pollMs?: number;
  /** Ends the following (SIGINT, SIGTERM): one last report is made. */
  signal: AbortSignal;
  warn?: (message: string) => void;
  now?: () => number;
}

/**
 * A report: the table so far and the journal's summary. `final` is the last one (the journal
 * ended, or following was stopped).
 */
export type ReportFn = (
  table: FlowTable,
  journals: JournalSummary[],
  final: boolean,
) => Promise<void>;

/**
 * Reads the journal as far as it goes, reports, then keeps reading what ct-record appends,
 * reporting every interval, until the journal's trailer arrives or the signal aborts; then
 * reports once more. Returns the last summary.
 */
export async function followJournal(
  path: string,
  opts: FollowOptions,
  report: ReportFn,
): Promise<JournalSummary | undefined> {
  const now = opts.now ?? (() => Date.now());
  const pollMs = opts.pollMs ?? 250;
  const reader = await openWhenReady(path, opts.signal, pollMs);
  if (reader === undefined) return undefined;
  const table = new FlowTable(opts.collapse === undefined ? {} : { collapse: opts.collapse });
  const replay = new JournalReplay(reader, table, opts.window ?? NO_WINDOW);
  if (replay.collapseNote !== undefined) opts.warn?.(replay.collapseNote);
  try {
    let due = now();
    while (!replay.advance(true) && !opts.signal.aborted) {
      if (now() >= due) {
        await report(table, [replay.summary(true)], false);
        due = now() + opts.intervalMs;
      }
      await pause(pollMs, opts.signal);
    }
    const summary = replay.summary(!replay.ended);
    if (replay.ended) warnAbout(summary, opts.warn ?? (() => {}));
    await report(table, [summary], true);
    return summary;
  } finally {
    replay.close();
  }
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
