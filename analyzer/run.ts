// What `ct-analyze` and `ct-analyze verify` do once their options are parsed.
import type { Writable } from 'node:stream';
import type { ExitCode } from '../common/errors.js';
import type { Collapse } from './flows.js';
import { jsonChunks, tableReport } from './format-json.js';
import { reportChunks } from './format-text.js';
import { writeFileAtomic, writeToStream } from './output.js';
import { analyzeJournals } from './replay.js';
import type { TimeWindow } from './slice.js';
import { type VerifyResult, verdictLine, verifyExit, verifyJournal } from './verify.js';

export type ReportFormat = 'text' | 'json';

export interface AnalyzeCommand {
  journals: string[];
  format: ReportFormat;
  /** Report file; undefined: the stdout stream. */
  output?: string;
  collapse: Collapse;
  /** --since/--until: only events inside it reach the table; undefined: every event. */
  window?: TimeWindow;
  /** --show-hosts: the text report names each flow's hosts. */
  showHosts?: boolean;
}

export interface AnalyzeIo {
  stdout: Writable;
  /** One line for the user on stderr (the caller adds the program name). */
  warn(message: string): void;
  note(message: string): void;
}

export async function runAnalyze(cmd: AnalyzeCommand, io: AnalyzeIo): Promise<void> {
  const { table, journals } = analyzeJournals(cmd.journals, {
    collapse: cmd.collapse,
    ...(cmd.window === undefined ? {} : { window: cmd.window }),
    warn: (m) => io.warn(m),
  });
  const skipped = Object.entries(table.skipped);
  if (skipped.length > 0) {
    const detail = skipped.map(([reason, n]) => `${reason}: ${n}`).join(', ');
    io.note(`${table.skippedTotal} events belong to no flow table (${detail})`);
  }
  const chunks =
    cmd.format === 'json'
      ? jsonChunks(tableReport(table, journals))
      : reportChunks(journals, table.flows(), { hosts: cmd.showHosts === true });
  if (cmd.output === undefined) await writeToStream(chunks, io.stdout);
  else writeFileAtomic(cmd.output, chunks);
}

export interface VerifyCommand {
  journals: string[];
  format: ReportFormat;
}

/**
 * Verifies each journal in turn: a text line as soon as its verdict is known, or one JSON array
 * at the end. Returns the exit code (verifyExit); verdicts are output, not errors.
 */
export function runVerify(cmd: VerifyCommand, io: { stdout: Writable }): ExitCode {
  const results: VerifyResult[] = [];
  for (const path of cmd.journals) {
    const r = verifyJournal(path);
    results.push(r);
    if (cmd.format === 'text') io.stdout.write(`${verdictLine(r)}\n`);
  }
  if (cmd.format === 'json') io.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return verifyExit(results);
}
