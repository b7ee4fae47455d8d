// What `ct-analyze` and `ct-analyze verify` do once their options are parsed.
import type { Writable } from 'node:stream';
import { colorLines, paint } from '../../common/color.js';
import { CtError, Exit, type ExitCode } from '../../common/errors.js';
import { safeChunks, safeText } from '../../common/printable.js';
import type { Collapse, FlowTable } from '../core/flows.js';
import { followJournal } from '../core/follow.js';
import {
  type Analysis,
  analyzeJournalsInParallel,
  type JournalSummary,
  type ReplayProgress,
} from '../core/replay.js';
import type { TimeWindow } from '../core/slice.js';
import { htmlChunks } from '../report/html.js';
import { jsonChunks, tableReport } from '../report/json.js';
import { writeFileAtomic, writeToStream } from '../report/output.js';
import { ProgressLine, type ProgressStream } from '../report/progress.js';
import { csvChunks, mdChunks } from '../report/table.js';
import { colorReportLine, reportChunks, type TextOptions } from '../report/text.js';
import {
  chainLine,
  checkChains,
  type VerifyResult,
  verdictLine,
  verifyExit,
  verifyJournal,
} from '../verify/verify.js';

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
  if (cmd.output === undefined) {
    const color = io.color === true && cmd.format === 'text';
    await writeToStream(colorLines(chunks, color, colorReportLine), io.stdout);
  } else writeFileAtomic(cmd.output, chunks);
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

export interface VerifyCommand {
  journals: string[];
  format: ReportFormat;
}

/**
 * Verifies each journal in turn: a text line as soon as its verdict is known, or one JSON array
 * at the end. Returns the exit code (verifyExit); verdicts are output, not errors.
 */
export function runVerify(cmd: VerifyCommand, io: { stdout: Writable; color?: boolean }): ExitCode {
  const results: VerifyResult[] = [];
  for (const path of cmd.journals) {
    const r = verifyJournal(path);
    results.push(r);
    if (cmd.format === 'text') {
      const good = r.verdict === 'OK';
      const line = safeText(verdictLine(r));
      io.stdout.write(`${paint(io.color === true, good ? 'green' : 'boldRed', line)}\n`);
    }
  }
  // Journals of rotated runs: one line per run, once every journal has been read.
  const chains = checkChains(results);
  if (cmd.format === 'text') {
    for (const c of chains) {
      const color = c.faults.length === 0 ? 'green' : 'boldRed';
      io.stdout.write(`${paint(io.color === true, color, safeText(chainLine(c)))}\n`);
    }
  }
  if (cmd.format === 'json') io.stdout.write(safeText(`${JSON.stringify(results, null, 2)}\n`));
  return verifyExit(results, chains);
}
