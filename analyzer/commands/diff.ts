// ct-analyze diff: its options and help; what it runs (run/diff.ts) is loaded only when it runs.
import { NAME, type Subcommand, verdictReportOptions } from './options.js';
import type { DiffCommand } from './run/diff.js';

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
        const { runDiff } = await import('./run/diff.js');
        ctx.exit(await runDiff(cmd, { stdout: process.stdout, warn: ctx.warn, color: ctx.color }));
      });
  },
};
