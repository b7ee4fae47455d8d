// ct-analyze rules: its options and help; what it runs (run/rules.ts) is loaded only when it runs.
import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_SCAN } from '../rules/evidence.js';
import { DEFAULT_MAX_PREFIX4, DEFAULT_MAX_PREFIX6, DEFAULT_MIN_DENSITY } from '../rules/planner.js';
import { parseServiceList, type ServiceKey } from '../rules/services.js';
import { collapseOpt, journalsCommand, NAME, type Subcommand } from './options.js';
import type { RulesCommand } from './run/rules.js';

const RULES_HELP = `
One table inet conntracker (nft) or chains CT-INPUT, CT-FORWARD, CT-OUTPUT (iptables) with a
baseline (loopback, ct state, ICMP and ICMPv6 essentials with rate-limited echo, IPv6 neighbour
discovery and MLD, counters, rate-limited logging of what is refused) and one rule per group of
sources and protocol. Only established flows become rules: TCP that reached ASSURED, UDP and
ICMP that got a reply. Scan suspects (--scan-*) are listed apart and never allowed. Sources are
grouped into prefixes only where --min-density of the prefix was seen, and never over a source
that failed; IPv6 per /64; sensitive services (ssh, databases, snmp …; --sensitive adds) admit
exactly the sources seen. Unanswered flows are summarised as comments, one-way UDP services
(syslog, traps, NetFlow) first; --allow-one-way writes those as rules. docs/rules.md explains
every choice.
--format iptables writes IPv4, a line "# ip6tables-restore:", then IPv6 to stdout; with -o BASE
it writes BASE.v4 and BASE.v6; with --family 4 or 6 only that part (to stdout or -o FILE).
Load it with iptables-restore --noflush: it touches only its own chains.

Examples:
  $ ${NAME} rules -o conntracker.nft fw1.mpk && nft -c -f conntracker.nft
      the ruleset for the recorded services, checked by nft before anything is loaded
  $ ${NAME} rules --sensitive tcp/8443 --output-chain enforce -o fw1.nft fw1.mpk
      also pin 8443 to its sources, and refuse what the host sends that was not recorded
  $ ${NAME} rules --format iptables --policy drop -o fw1 fw1.mpk
      fw1.v4 and fw1.v6 for iptables-restore --noflush and ip6tables-restore --noflush

Exit status: 0 ok, 1 unreadable journal, 2 usage error, 3 journal too new for this version.`;

function wholeOption(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('give a whole number such as 10');
  return Number(value);
}

function shareOption(value: string): number {
  const n = Number(value);
  if (!/^(?:0|1)?(?:\.\d+)?$/.test(value) || value === '' || value === '.' || n <= 0 || n > 1) {
    throw new InvalidArgumentError('give a share greater than 0 and at most 1, such as 0.5');
  }
  return n;
}

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

type RulesOptions = Omit<RulesCommand, 'journals' | 'scan'> & {
  scanWindow: number;
  scanPorts: number;
  scanHosts: number;
};

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
      // --log stays accepted (scripts written when logging was off by default); it is the default.
      .option('--log', 'log what is refused, rate-limited (the default)', true)
      .option('--no-log', 'do not log what is refused')
      .addOption(
        new Option(
          '--output-chain <mode>',
          'what the host sends: log (the unrecorded), enforce, none',
        )
          .choices(['log', 'enforce', 'none'])
          .default('log'),
      )
      .addOption(maxPrefixOpt(4, DEFAULT_MAX_PREFIX4))
      .addOption(maxPrefixOpt(6, DEFAULT_MAX_PREFIX6))
      .addOption(
        new Option(
          '--min-density <share>',
          'share of a prefix that must have been seen to allow it',
        )
          .argParser(shareOption)
          .default(DEFAULT_MIN_DENSITY),
      )
      .addOption(
        new Option(
          '--sensitive <ports>',
          'also pin these services to their exact sources: tcp/PORT, udp/PORT or PORT, comma-separated (repeatable)',
        )
          .argParser((v: string, prev: ServiceKey[] | undefined) => parseServiceList(v, prev ?? []))
          .default(undefined),
      )
      .option(
        '--allow-one-way',
        'write unanswered one-way UDP services (syslog, traps, NetFlow) as rules',
      )
      .addOption(
        new Option(
          '--scan-window <seconds>',
          'scan suspects: the window their targets are counted in',
        )
          .argParser(wholeOption)
          .default(DEFAULT_SCAN.window),
      )
      .addOption(
        new Option(
          '--scan-ports <n>',
          'scan suspects: distinct ports of one host within the window',
        )
          .argParser(wholeOption)
          .default(DEFAULT_SCAN.ports),
      )
      .addOption(
        new Option(
          '--scan-hosts <n>',
          'scan suspects: distinct hosts on one port within the window',
        )
          .argParser(wholeOption)
          .default(DEFAULT_SCAN.hosts),
      )
      .addOption(collapseOpt())
      .option('-o, --output <file>', 'write the ruleset to FILE (replaced atomically), not stdout')
      .addHelpText('after', RULES_HELP)
      .action(async (journals: string[], o: RulesOptions) => {
        const { scanWindow, scanPorts, scanHosts, ...rest } = o;
        const scan = { window: scanWindow, ports: scanPorts, hosts: scanHosts };
        const cmd: RulesCommand = { ...rest, journals, scan };
        const { runRules } = await import('./run/rules.js');
        ctx.exit(await runRules(cmd, { stdout: process.stdout, warn: ctx.warn }));
      });
  },
};
