// ct-analyze check: its options and help; the ruleset read first, the journals, the report, the exit status.
import type { Writable } from 'node:stream';
import { Exit, type ExitCode } from '../../common/errors.js';
import { safeChunks } from '../../common/printable.js';
import {
  type CheckReport,
  checkFlows,
  checkJsonChunks,
  checkTextChunks,
  colorCheckLine,
  readRuleset,
} from '../check/check.js';
import type { Collapse } from '../core/flows.js';
import { analyzeJournalsInParallel } from '../core/replay.js';
import {
  journalsCommand,
  NAME,
  type Subcommand,
  verdictReportOptions,
  writeReport,
} from './options.js';

const CHECK_HELP = `
Each recorded flow's first packet (ct state new) goes through the ruleset's base chains on the
hook its direction says (input, forward; output only when the ruleset has an output chain),
lowest priority first, with the destination after DNAT. The ruleset is an nft -f file (the
nested form nft list ruleset prints) or iptables-save output, in the subset docs/rules.md lists;
anything else is an error naming it and its line. Source ports are collapsed in the flow table:
a rule matching them decides only with --collapse none (else the flow is "undetermined").

Examples:
  $ nft list ruleset > now.nft; ${NAME} check --ruleset now.nft fw1.mpk
      which recorded flows today's ruleset blocks, and by which rule
  $ ${NAME} check --ruleset candidate.nft --exit-code --collapse none fw1.mpk
      exit 1 if the candidate would block any recorded flow (source ports kept exact)

Exit status: 0 report written (with --exit-code: 1 when a recorded flow would be blocked),
1 unreadable journal or ruleset outside the subset, 2 usage error, 3 journal too new.`;

export interface CheckCommand {
  ruleset: string;
  journals: string[];
  format: 'text' | 'json';
  collapse: Collapse;
  output?: string;
  /** --exit-code: exit 1 when any recorded flow would be blocked. */
  exitCode: boolean;
}

type CheckOptions = Omit<CheckCommand, 'journals' | 'exitCode'> & { exitCode?: boolean };

export const checkCommand: Subcommand = {
  usage: 'check --ruleset <file> [options] <journal...>',
  register(program, ctx) {
    const description =
      'which recorded flows a ruleset (nft or iptables-save) would block, and by what';
    const command = journalsCommand(program, 'check', description).requiredOption(
      '--ruleset <file>',
      'the ruleset: an nft -f file or iptables-save output',
    );
    verdictReportOptions(command, 'exit 1 when a recorded flow would be blocked')
      .addHelpText('after', CHECK_HELP)
      .action(async (journals: string[], o: CheckOptions) => {
        const cmd = { ...o, journals, exitCode: o.exitCode === true };
        ctx.exit(await runCheck(cmd, { stdout: process.stdout, warn: ctx.warn, color: ctx.color }));
      });
  },
};

/** Parses the ruleset, analyzes the journals, writes the report; returns the exit code. */
export async function runCheck(
  cmd: CheckCommand,
  io: { stdout: Writable; warn(message: string): void; color?: boolean },
): Promise<ExitCode> {
  const ruleset = readRuleset(cmd.ruleset);
  const analysis = await analyzeJournalsInParallel(cmd.journals, {
    collapse: cmd.collapse,
    warn: (m) => io.warn(m),
  });
  const report: CheckReport = {
    rulesetPath: cmd.ruleset,
    ruleset,
    journals: analysis.journals,
    collapse: cmd.collapse,
    result: checkFlows(ruleset, analysis.table.flows(), cmd.collapse),
  };
  const chunks = safeChunks(
    cmd.format === 'json' ? checkJsonChunks(report) : checkTextChunks(report),
  );
  await writeReport(chunks, cmd, io, colorCheckLine);
  return cmd.exitCode && report.result.blocked.length > 0 ? Exit.RUNTIME : Exit.OK;
}
