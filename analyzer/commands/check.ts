// ct-analyze check: its options and help; what it runs (run/check.ts) is loaded only when it runs.
import { Option } from 'commander';
import type { RulesetFormat } from '../check/load.js';
import { journalsCommand, NAME, type Subcommand, verdictReportOptions } from './options.js';
import type { CheckCommand } from './run/check.js';

const CHECK_HELP = `
The ruleset is read by nft itself: loaded into a throwaway network namespace (as root a new
netns, else an unprivileged user namespace) and listed back as nft's JSON. It may be an nft -f
file (includes, defines, sets, maps), \`nft list ruleset\` output, \`nft -j list ruleset\` JSON
(needs no nft at all) or iptables-save / ip6tables-save output.

Each recorded flow's connection is judged as the kernel would: its first packet (ct state new),
its reply and a later packet (established), on every hook they cross, through the base chains
of every ip, ip6 and inet table in priority order. A flow is blocked (the first packet is
refused), breaks after the first packet (a reply or later packet is refused), undetermined (a
match the recording cannot decide: each such construct is listed once) or accepted.

Examples:
  $ nft list ruleset > now.nft; ${NAME} check --ruleset now.nft fw1.mpk
      which recorded flows today's ruleset blocks or breaks, and by which rule
  $ ${NAME} check --ruleset candidate.nft --exit-code --collapse none fw1.mpk
      exit 1 if the candidate would block or break any recorded flow (source ports exact)
  $ ssh fw1 nft -j list ruleset > fw1.json; ${NAME} check --ruleset fw1.json fw1.mpk
      the same on a machine without nft

Exit status: 0 report written (with --exit-code: 1 when a recorded flow would be blocked or
break), 1 unreadable journal, ruleset the kernel would not load, or nft missing (pass JSON
instead), 2 usage error or ruleset syntax error, 3 journal too new.`;

const RULESET_FORMATS: readonly RulesetFormat[] = ['nft', 'nft-json', 'iptables', 'ip6tables'];

type CheckOptions = Omit<CheckCommand, 'journals' | 'exitCode'> & { exitCode?: boolean };

export const checkCommand: Subcommand = {
  usage: 'check --ruleset <file> [options] <journal...>',
  register(program, ctx) {
    const description =
      'which recorded flows a ruleset (nft, nft JSON or iptables-save) would block or break, and by what';
    const command = journalsCommand(program, 'check', description)
      .requiredOption(
        '--ruleset <file>',
        'the ruleset: an nft -f file, nft list ruleset or nft -j list ruleset output, or iptables-save output',
      )
      .addOption(
        new Option(
          '--ruleset-format <format>',
          'what the ruleset file holds (default: told by its text)',
        ).choices(RULESET_FORMATS),
      );
    verdictReportOptions(command, 'exit 1 when a recorded flow would be blocked or break')
      .addHelpText('after', CHECK_HELP)
      .action(async (journals: string[], o: CheckOptions) => {
        const cmd = { ...o, journals, exitCode: o.exitCode === true };
        const { runCheck } = await import('./run/check.js');
        ctx.exit(await runCheck(cmd, { stdout: process.stdout, warn: ctx.warn, color: ctx.color }));
      });
  },
};
