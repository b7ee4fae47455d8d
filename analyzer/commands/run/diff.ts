// ct-analyze diff, run: both sides analyzed alike, the report written, its exit status.
import type { Writable } from 'node:stream';
import { Exit, type ExitCode } from '../../../common/errors.js';
import { safeChunks } from '../../../common/printable.js';
import type { Collapse } from '../../core/flows.js';
import { analyzeJournalsInParallel } from '../../core/replay.js';
import {
  colorDiffLine,
  type DiffReport,
  diffFlows,
  diffJsonChunks,
  diffTextChunks,
} from '../../diff/diff.js';
import { writeReport } from '../options.js';

export interface DiffCommand {
  before: string[];
  after: string[];
  format: 'text' | 'json';
  /** Report file; undefined: the stdout stream. */
  output?: string;
  collapse: Collapse;
  /** --exit-code: exit 1 when there are differences, like `git diff --exit-code`. */
  exitCode: boolean;
}

/** Analyzes both sides with the same collapsing mode, writes the report, returns the exit code. */
export async function runDiff(
  cmd: DiffCommand,
  io: { stdout: Writable; warn(message: string): void; color?: boolean },
): Promise<ExitCode> {
  const opts = { collapse: cmd.collapse, warn: (m: string) => io.warn(m) };
  const before = await analyzeJournalsInParallel(cmd.before, opts);
  const after = await analyzeJournalsInParallel(cmd.after, opts);
  const report: DiffReport = {
    before: before.journals,
    after: after.journals,
    collapse: cmd.collapse,
    diff: diffFlows(before.table.flows(), after.table.flows()),
  };
  const chunks = safeChunks(
    cmd.format === 'json' ? diffJsonChunks(report) : diffTextChunks(report),
  );
  await writeReport(chunks, cmd, io, colorDiffLine);
  return cmd.exitCode && report.diff.changes.length > 0 ? Exit.RUNTIME : Exit.OK;
}
