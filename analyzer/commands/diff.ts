// ct-analyze diff: its options and help; both sides analyzed alike, the report written, its exit status.
import type { Writable } from 'node:stream';
import { Exit, type ExitCode } from '../../common/errors.js';
import { safeChunks } from '../../common/printable.js';
import type { Collapse } from '../core/flows.js';
import { analyzeJournalsInParallel } from '../core/replay.js';
import {
  colorDiffLine,
  type DiffReport,
  diffFlows,
  diffJsonChunks,
  diffTextChunks,
} from '../diff/diff.js';
import { NAME, type Subcommand, verdictReportOptions, writeReport } from './options.js';

const DIFF_HELP = `
Both sides are analyzed as ct-analyze would, with the same --collapse mode, and their flows
compared by key. One line per difference, in the table's sort order:
  + FLOW                             in AFTER only (appeared)
  - FLOW                             in BEFORE only (disappeared)
  ~ FLOW (unconfirmed → confirmed)   in both, replied only in AFTER (or the reverse)

Examples:
  $ ${NAME} diff last-month.mpk this-week.mpk
      what traffic is new this week, and what stopped
  $ ${NAME} diff --exit-code --format json before.mpk after.mpk > changes.json
      exit 1 when anything changed (for a script), the changes as JSON

Exit status: 0 (with --exit-code: 0 no differences, 1 differences), 1 unreadable journal,
2 usage error, 3 journal too new for this version.`;

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

type DiffOptions = Omit<DiffCommand, 'before' | 'after' | 'exitCode'> & { exitCode?: boolean };

export const diffCommand: Subcommand = {
  usage: 'diff [options] <before> <after>',
  register(program, ctx) {
    const command = program
      .command('diff')
      .description('the flows that appeared, disappeared or changed confirmation between journals')
      .argument('<before>', 'the earlier journal (.mpk)')
      .argument('<after>', 'the later journal (.mpk)');
    verdictReportOptions(command, 'exit 1 when there are differences (like git diff --exit-code)')
      .addHelpText('after', DIFF_HELP)
      .action(async (before: string, after: string, o: DiffOptions) => {
        const cmd = { ...o, before: [before], after: [after], exitCode: o.exitCode === true };
        ctx.exit(await runDiff(cmd, { stdout: process.stdout, warn: ctx.warn, color: ctx.color }));
      });
  },
};

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
