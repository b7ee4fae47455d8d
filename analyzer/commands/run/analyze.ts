// ct-analyze JOURNAL…, run: the journals replayed (or followed) into the flow table, and the report written.
import type { Writable } from 'node:stream';
import { CtError, Exit } from '../../../common/errors.js';
import { safeChunks } from '../../../common/printable.js';
import type { Collapse, FlowTable } from '../../core/flows.js';
import { followJournal } from '../../core/follow.js';
import {
  type Analysis,
  analyzeJournalsInParallel,
  type JournalSummary,
  type ReplayProgress,
} from '../../core/replay.js';
import type { TimeWindow } from '../../core/slice.js';
import { htmlChunks } from '../../report/html.js';
import { jsonChunks, tableReport } from '../../report/json.js';
import { ProgressLine, type ProgressStream } from '../../report/progress.js';
import { csvChunks, mdChunks } from '../../report/table.js';
import { colorReportLine, reportChunks, type TextOptions } from '../../report/text.js';
import { writeReport } from '../options.js';

export type ReportFormat = 'text' | 'json';
/** The flow report's formats: the verdict and diff reports have text and JSON only. */
export type FlowFormat = ReportFormat | 'csv' | 'md' | 'html';

export interface AnalyzeCommand {
  journals: string[];
  format: FlowFormat;
  /** Report file; undefined: the stdout stream. */
  output?: string;
  collapse: Collapse;
  /** --since/--until: only events inside it reach the table; undefined: every event. */
  window?: TimeWindow;
  /** --show: what the text report adds to each flow line. */
  show?: TextOptions;
}

export interface AnalyzeIo {
  stdout: Writable;
  /** One line for the user on stderr (the caller adds the program name). */
  warn(message: string): void;
  note(message: string): void;
  /** Where a progress bar goes (a terminal's stderr); undefined: no bar. */
  progress?: ProgressStream;
  /** --follow: ends the following (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /** Colour the text report written to stdout (a terminal, NO_COLOR unset: common/color.ts). */
  color?: boolean;
}

/** --follow: one journal, reported every interval until it ends or the signal aborts. */
export interface FollowCommand {
  intervalMs: number;
}

export async function runAnalyze(
  cmd: AnalyzeCommand & { follow?: FollowCommand },
  io: AnalyzeIo,
): Promise<void> {
  if (cmd.follow !== undefined) return runFollow(cmd, cmd.follow, io);
  const bar = io.progress === undefined ? undefined : new ProgressLine(io.progress);
  let analysis: Analysis;
  try {
    analysis = await analyzeJournalsInParallel(cmd.journals, {
      collapse: cmd.collapse,
      ...(cmd.window === undefined ? {} : { window: cmd.window }),
      warn: (m) => {
        bar?.clear();
        io.warn(m);
      },
      ...(bar === undefined ? {} : { progress: (p: ReplayProgress) => bar.update(p) }),
    });
  } finally {
    bar?.clear();
  }
  await report(cmd, io, analysis.table, analysis.journals, true);
}

async function runFollow(cmd: AnalyzeCommand, follow: FollowCommand, io: AnalyzeIo) {
  const [path, ...more] = cmd.journals;
  if (path === undefined || more.length > 0) {
    throw new CtError(
      'EUSAGE',
      `--follow reads one journal, not ${cmd.journals.length}: follow the one ct-record is writing and analyze the others without --follow`,
      { exit: Exit.USAGE },
    );
  }
  // On a terminal each report replaces the last, like watch(1); elsewhere they follow each other.
  const tty = cmd.output === undefined && (io.stdout as { isTTY?: boolean }).isTTY === true;
  await followJournal(
    path,
    {
      collapse: cmd.collapse,
      ...(cmd.window === undefined ? {} : { window: cmd.window }),
      intervalMs: follow.intervalMs,
      signal: io.signal ?? new AbortController().signal,
      warn: (m) => io.warn(m),
    },
    async (table, journals, final) => {
      if (tty) io.stdout.write('\x1b[H\x1b[2J');
      await report(cmd, io, table, journals, final);
    },
  );
}

/** Writes one report of the table, text or JSON; the last one notes the skipped events. */
async function report(
  cmd: AnalyzeCommand,
  io: AnalyzeIo,
  table: FlowTable,
  journals: JournalSummary[],
  final: boolean,
): Promise<void> {
  const skipped = Object.entries(table.skipped);
  if (final && skipped.length > 0) {
    const detail = skipped.map(([reason, n]) => `${reason}: ${n}`).join(', ');
    io.note(`${table.skippedTotal} events belong to no flow table (${detail})`);
  }
  // Every format but HTML (escaped for a browser) passes the terminal filter (common/printable.ts).
  const chunks =
    cmd.format === 'html'
      ? htmlChunks(journals, () => table.flows())
      : safeChunks(formatChunks(cmd, table, journals));
  await writeReport(chunks, cmd, io, colorReportLine);
}

function formatChunks(
  cmd: AnalyzeCommand,
  table: FlowTable,
  journals: JournalSummary[],
): Iterable<string> {
  return cmd.format === 'json'
    ? jsonChunks(tableReport(table, journals))
    : cmd.format === 'csv'
      ? csvChunks(table.flows())
      : cmd.format === 'md'
        ? mdChunks(journals, table.flows())
        : reportChunks(journals, table.flows(), cmd.show ?? {});
}
