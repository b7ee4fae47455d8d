// ct-analyze rules: its options and help; the journals analyzed, the ruleset planned and written as nft or iptables input.
import type { Writable } from 'node:stream';
import { InvalidArgumentError, Option } from 'commander';
import { CtError, Exit, type ExitCode } from '../../common/errors.js';
import { safeChunks } from '../../common/printable.js';
import type { Collapse } from '../core/flows.js';
import { analyzeJournalsInParallel } from '../core/replay.js';
import { writeFileAtomic, writeToStream } from '../report/output.js';
import { iptablesBoth, iptablesRuleset } from '../rules/iptables.js';
import { nftRuleset } from '../rules/nft.js';
import {
  checkMaxPrefix,
  DEFAULT_MAX_PREFIX4,
  DEFAULT_MAX_PREFIX6,
  type EmitOptions,
  planRules,
} from '../rules/plan.js';
import { collapseOpt, journalsCommand, NAME, type Subcommand } from './options.js';

const RULES_HELP = `
One table inet conntracker (nft) or a filter table per family (iptables): input and forward
chains that accept established/related traffic, loopback, IPv6 neighbour discovery and one rule
per recorded service (protocol + destination port, or ICMP type; forward also the destination
after DNAT), sources aggregated into prefixes no wider than --max-prefix4/6. Unconfirmed flows
are listed as comments, not allowed. What the host sends itself (output) is not filtered.
--format iptables writes IPv4, a line "# ip6tables-restore:", then IPv6 to stdout; with -o BASE
it writes BASE.v4 and BASE.v6; with --family 4 or 6 only that part (to stdout or -o FILE).

Examples:
  $ ${NAME} rules -o conntracker.nft fw1.mpk && nft -c -f conntracker.nft
      the ruleset for the recorded services, checked by nft before anything is loaded
  $ ${NAME} rules --format iptables --policy drop -o fw1 fw1.mpk
      fw1.v4 and fw1.v6 for iptables-restore and ip6tables-restore, dropping the rest

Exit status: 0 ok, 1 unreadable journal, 2 usage error, 3 journal too new for this version.`;

function prefixOption(value: string): number {
  const n = Number(value);
  if (!/^\d{1,3}$/.test(value)) {
    throw new InvalidArgumentError('give a prefix length, a whole number such as 24');
  }
  return n;
}

/** --max-prefix4 and --max-prefix6: one definition, two families. */
function maxPrefixOpt(family: 4 | 6, fallback: number): Option {
  return new Option(
    `--max-prefix${family} <n>`,
    `widest IPv${family} prefix sources are aggregated into`,
  )
    .argParser(prefixOption)
    .default(fallback);
}

type RulesOptions = Omit<RulesCommand, 'journals' | 'log'> & { log?: boolean };

export const rulesCommand: Subcommand = {
  usage: 'rules [options] <journal...>',
  register(program, ctx) {
    const description = 'a firewall ruleset (nftables or iptables) allowing the recorded flows';
    journalsCommand(program, 'rules', description)
      .addOption(
        new Option('--format <format>', 'ruleset format')
          .choices(['nft', 'iptables'])
          .default('nft'),
      )
      .addOption(
        new Option('--family <family>', 'iptables: only the IPv4 or IPv6 part')
          .choices(['4', '6'])
          .argParser((v) => Number(v) as 4 | 6),
      )
      .addOption(
        new Option('--policy <policy>', 'what happens to the rest')
          .choices(['drop', 'reject'])
          .default('reject'),
      )
      .option('--log', 'log what the policy refuses')
      .addOption(maxPrefixOpt(4, DEFAULT_MAX_PREFIX4))
      .addOption(maxPrefixOpt(6, DEFAULT_MAX_PREFIX6))
      .addOption(collapseOpt())
      .option('-o, --output <file>', 'write the ruleset to FILE (replaced atomically), not stdout')
      .addHelpText('after', RULES_HELP)
      .action(async (journals: string[], o: RulesOptions) => {
        const cmd = { ...o, journals, log: o.log === true };
        ctx.exit(await runRules(cmd, { stdout: process.stdout, warn: ctx.warn }));
      });
  },
};

export interface RulesCommand {
  journals: string[];
  format: 'nft' | 'iptables';
  /** iptables only: write this family's part alone. */
  family?: 4 | 6;
  policy: 'drop' | 'reject';
  log: boolean;
  maxPrefix4: number;
  maxPrefix6: number;
  collapse: Collapse;
  /**
   * The ruleset file; undefined: stdout. iptables without --family writes OUTPUT.v4 and
   * OUTPUT.v6 (the iptables-persistent names), one per restore command.
   */
  output?: string;
}

/** Analyzes the journals, plans the rules, writes them; returns the exit code. */
export async function runRules(
  cmd: RulesCommand,
  io: { stdout: Writable; warn(message: string): void },
): Promise<ExitCode> {
  if (cmd.family !== undefined && cmd.format !== 'iptables') {
    throw new CtError(
      'EUSAGE',
      '--family applies to --format iptables only: an nft ruleset holds both families in one inet table',
      { exit: Exit.USAGE },
    );
  }
  const plan0 = { maxPrefix4: cmd.maxPrefix4, maxPrefix6: cmd.maxPrefix6 };
  // Bad prefixes are usage errors before any journal is read.
  checkMaxPrefix(plan0.maxPrefix4, 4);
  checkMaxPrefix(plan0.maxPrefix6, 6);
  const analysis = await analyzeJournalsInParallel(cmd.journals, {
    collapse: cmd.collapse,
    warn: (m) => io.warn(m),
  });
  const plan = planRules(analysis.table.flows(), plan0);
  const lost = analysis.journals.reduce((n, j) => n + j.coverage.lost, 0);
  const opts: EmitOptions = { policy: cmd.policy, log: cmd.log };
  // No journal string is written into a ruleset (comments hold counts and times only); the
  // terminal filter is there for the one someone adds (common/printable.ts).
  const write = async (ruleset: Iterable<string>, path: string | undefined) => {
    const chunks = safeChunks(ruleset);
    if (path === undefined) await writeToStream(chunks, io.stdout);
    else writeFileAtomic(path, chunks);
  };
  if (cmd.format === 'nft') {
    await write(nftRuleset(plan, opts, lost), cmd.output);
  } else if (cmd.family !== undefined) {
    await write(iptablesRuleset(plan, cmd.family, opts, lost), cmd.output);
  } else if (cmd.output === undefined) {
    await write(iptablesBoth(plan, opts, lost), undefined);
  } else {
    await write(iptablesRuleset(plan, 4, opts, lost), `${cmd.output}.v4`);
    await write(iptablesRuleset(plan, 6, opts, lost), `${cmd.output}.v6`);
  }
  return Exit.OK;
}
