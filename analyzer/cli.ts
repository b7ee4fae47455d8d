#!/usr/bin/env node
// ct-analyze: parse the options, run the analysis or verify; exit codes and errors in common/cli.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { messagePrinter, parseSeconds, runCli } from '../common/cli.js';
import { colorFor } from '../common/color.js';
import { CtError, type ExitCode } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { type CheckCommand, runCheck } from './check/check.js';
import { type FlowFormat, type ReportFormat, runAnalyze, runVerify } from './commands/analyze.js';
import { type RulesCommand, runRules } from './commands/rules.js';
import { type Collapse, DEFAULT_COLLAPSE, parseCollapse } from './core/flows.js';
import { makeWindow } from './core/slice.js';
import { runDiff } from './diff/diff.js';
import { runImport } from './import/import.js';
import { runRedact } from './redact/redact.js';
import { SHOW_COLUMNS, type TextOptions } from './report/text.js';
import { DEFAULT_MAX_PREFIX4, DEFAULT_MAX_PREFIX6 } from './rules/plan.js';

const NAME = 'ct-analyze';

/** `--show direction,nat`: the columns asked for, each one of SHOW_COLUMNS. */
function showOption(value: string): TextOptions {
  const out: TextOptions = {};
  for (const name of value.split(',')) {
    if (!(SHOW_COLUMNS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown column '${name}': use ${SHOW_COLUMNS.join(', ')}`);
    }
    out[name as (typeof SHOW_COLUMNS)[number]] = true;
  }
  return out;
}

function collapseOption(value: string): Collapse {
  try {
    return parseCollapse(value);
  } catch (err) {
    throw err instanceof CtError ? new InvalidArgumentError(err.message) : err;
  }
}

const EXAMPLES = `
Examples:
  $ ${NAME} journal.mpk
      the flow table, line for line as the original conntracker printed it
  $ ${NAME} --format json -o flows.json monday.mpk tuesday.mpk
      the flows of both recordings as one JSON document, written to flows.json
  $ ${NAME} --format html -o flows.html journal.mpk
      one page to open in a browser: coverage, who talks to what, a sortable, filterable table
  $ ${NAME} --show direction,nat,hosts fw1.mpk fw2.mpk
      two firewalls merged; lines end with e.g. (input) (DNAT to 10.0.0.5:8080) (hosts=fw1,fw2)
  $ ${NAME} --collapse none journal.mpk
      keep every source port instead of showing ports above 1024 as 1024
  $ ${NAME} --since 2h journal.mpk
      only the flows of the last two hours (events at or after now minus 2 h)
  $ ${NAME} --since 2026-11-27T08:00Z --until 2026-11-27T09:00Z journal.mpk
      only the events of that hour (both ends inclusive)
  $ ${NAME} --follow --interval 30 /var/lib/conntracker/now.mpk
      the table of a recording still in progress, again every 30 s and when it ends (Ctrl-C)
  $ ${NAME} import capture.txt -o journal.mpk
      turn saved conntrack -E or -L text into a journal (then analyze that)
  $ ${NAME} redact --key redact.key -o shared.mpk journal.mpk
      keyed pseudonyms for addresses and host names: a journal to attach to a ticket
  $ ${NAME} diff monday.mpk friday.mpk
      the flows that appeared (+), disappeared (-) or changed confirmation (~) since monday
  $ ${NAME} rules -o conntracker.nft journal.mpk
      an nftables ruleset allowing the recorded flows (check it: nft -c -f conntracker.nft)
  $ ${NAME} check --ruleset /etc/nftables.conf journal.mpk
      which recorded flows the ruleset would block, and by which rule
  $ ${NAME} verify journal.mpk
      is the journal complete and unmodified? (a journal named "verify": ./verify)

Exit status: 0 ok, 1 runtime error, 2 usage error, 3 journal too new for this version.`;

const VERIFY_HELP = `
Verdicts, one line per journal:
  OK          complete, every checksum, checkpoint and the trailer digest match
  INCOMPLETE  no trailer (crash, kill -9, full disk, or cut short): intact as far as it goes
  CORRUPT     damaged bytes or invalid content, with more journal after them
  MODIFIED    well-formed frames were removed, reordered or replaced (digest mismatch)
  TOO NEW     written by a later format version: upgrade conntracker
  UNREADABLE  missing, not a regular file, or not a conntracker journal

Examples:
  $ ${NAME} verify fw1.mpk fw2.mpk
      one verdict line per journal; exit 0 only when every one is OK
  $ ${NAME} verify --format json /var/lib/conntracker/*.mpk > verdicts.json
      the verdicts with their counts and digests, for a ticket or a script

Exit status: 0 every journal OK, 1 any other verdict, 2 usage error, 3 only TOO NEW ones.`;

const IMPORT_HELP = `
Each line is one event ([NEW], [UPDATE], [DESTROY]) or, without a tag, one table entry (-L).
A line without [UNREPLIED] has seen a reply (confirmed). Lines without a [seconds.micros]
timestamp get the import time, in file order. Unreadable lines are warned with their numbers.
FILE may be - (standard input) or a pipe: it is copied to a temporary file beside the journal
(needs as much free disk as the capture), because a capture is read twice. Memory use does not
grow with the capture's size.

Examples:
  $ conntrack -E -o timestamp > capture.txt; ${NAME} import capture.txt -o capture.mpk
      a capture made where conntracker is not installed, then analyzed like a recording
  $ ssh fw1 conntrack -L | ${NAME} import - -o fw1-now.mpk --host fw1
      the table of another host as it is now (- reads standard input)

Exit status: 0 something was imported (warnings included), 1 nothing readable, 2 usage error.`;

const REDACT_HELP = `
Every address (events, NAT, the host's interface addresses) is replaced by a keyed,
prefix-preserving pseudonym (Crypto-PAn): hosts of one subnet stay in one subnet, loopback,
link-local, multicast and private blocks keep their prefix. The host name becomes host-XXXXXXXX,
interface names if-XXXXXXXX (lo stays), identifying header text "redacted". Ports, protocols,
times, counts and gaps stay: the redacted journal analyzes to the same table, pseudonymised.
The same key gives the same pseudonyms in every journal; keep it secret (whoever has it can undo
the mapping). Make one: head -c 32 /dev/urandom > redact.key && chmod 600 redact.key
See docs/redact.md for what is kept and the limits.

A rotated run (ct-record --rotate) is redacted in one go into an existing directory: each
journal becomes run-XXXXXXXX-NNNNNN.mpk (its run id and place), chained to the redacted one
before it, so ct-analyze verify calls the copy complete exactly when it calls the run complete.

Examples:
  $ ${NAME} redact --key redact.key -o fw1-shared.mpk fw1.mpk
  $ mkdir shared && ${NAME} redact --key redact.key -o shared fw1-*.mpk

Exit status: 0 written, 1 unreadable or damaged journal, existing output (--force replaces it),
2 usage error (no key, a short key, an already redacted journal, several journals and -o not a
directory), 3 journal too new. A failure writes nothing: not one journal of a run.`;

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

function prefixOption(value: string): number {
  const n = Number(value);
  if (!/^\d{1,3}$/.test(value)) {
    throw new InvalidArgumentError('give a prefix length, a whole number such as 24');
  }
  return n;
}

/** --collapse, the same for every command that builds a flow table. */
function collapseOpt(): Option {
  return new Option(
    '--collapse <mode>',
    "source-port collapsing: 1024, none, ephemeral (the host's ip_local_port_range), or LO-HI",
  )
    .argParser(collapseOption)
    .default(DEFAULT_COLLAPSE, '1024');
}

/** --format text|json and -o FILE of the commands that write a report. */
function reportFormatOpt(): Option {
  return new Option('--format <format>', 'report format').choices(['text', 'json']).default('text');
}

function reportOutputOpt(): Option {
  return new Option(
    '-o, --output <file>',
    'write the report to FILE (replaced atomically), not stdout',
  );
}

/** Aborts on SIGINT or SIGTERM: --follow then makes its last report and exits 0. */
function stopSignal(): AbortSignal {
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  return stop.signal;
}

async function main(): Promise<number> {
  let exit: ExitCode | undefined;
  const color = colorFor(process.stdout);
  const { warn, note } = messagePrinter(NAME);
  const program = new Command(NAME)
    .description(
      'Replay conntracker journals (written by ct-record) into the sorted table of the flows ' +
        'your firewall rules must allow. Needs no root and no kernel access.',
    )
    .usage(
      '[options] <journal...>\n       ct-analyze verify [options] <journal...>\n       ct-analyze import [options] <file> -o <journal>\n       ct-analyze redact --key <file> -o <journal|dir> [options] <journal...>\n       ct-analyze diff [options] <before> <after>\n       ct-analyze rules [options] <journal...>\n       ct-analyze check --ruleset <file> [options] <journal...>',
    )
    .argument('<journal...>', 'journal files (.mpk) written by ct-record')
    .addOption(
      new Option(
        '--format <format>',
        "report format: text (the original tool's lines), json, csv (spreadsheets), md (tickets), html (one page for a browser)",
      )
        .choices(['text', 'json', 'csv', 'md', 'html'])
        .default('text'),
    )
    .addOption(reportOutputOpt())
    .addOption(collapseOpt())
    .option(
      '--since <time>',
      'only events at or after TIME: ISO 8601 (UTC unless a zone is given) or a span before now (2h, 30m, 90s, 1d)',
    )
    .option('--until <time>', 'only events at or before TIME (same forms as --since)')
    .option(
      '-f, --follow',
      'keep reading a journal ct-record is still writing (one journal, then the next ones of its --rotate run)',
    )
    .addOption(
      new Option('--interval <seconds>', 'with --follow: report every SECONDS, and at the end')
        .argParser(parseSeconds)
        .default(10),
    )
    .option('-q, --quiet', 'no progress bar (it is drawn only when stderr is a terminal)')
    .addOption(
      new Option(
        '--show <columns>',
        `text report: end each flow line with these, comma-separated: ${SHOW_COLUMNS.join(', ')}`,
      ).argParser(showOption),
    )
    .version(TOOL_VERSION, '-V, --version')
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError(`(run ${NAME} --help for usage)`)
    // `verify --format json` is verify's own option, not the report's of the same name.
    .enablePositionalOptions()
    .exitOverride();
  // After exitOverride and showHelpAfterError: a subcommand copies them when it is made.
  program
    .command('verify')
    .description('check that journals are complete and unmodified: one verdict line per journal')
    .argument('<journal...>', 'journal files (.mpk) written by ct-record')
    .addOption(
      new Option('--format <format>', 'verdict format').choices(['text', 'json']).default('text'),
    )
    .addHelpText('after', VERIFY_HELP)
    .action((journals: string[], o: { format: ReportFormat }) => {
      exit = runVerify({ journals, format: o.format }, { stdout: process.stdout, color });
    });
  program
    .command('import')
    .description(
      'convert saved conntrack -E or conntrack -L text into a journal ct-analyze can read',
    )
    .argument('<file>', 'text output of conntrack -E (any -o timestamp,id,extended) or -L')
    .requiredOption('-o, --output <journal>', 'the journal to write (.mpk)')
    .option('--force', 'replace the output journal if it exists')
    .option('--host <name>', 'host name to record in the journal header', 'unknown')
    .addHelpText('after', IMPORT_HELP)
    .action((file: string, o: { output: string; force?: boolean; host: string }) => {
      exit = runImport(
        { file, output: o.output, force: o.force === true, host: o.host },
        { warn, note },
      );
    });
  program
    .command('redact')
    .description('a copy of a journal with keyed pseudonyms for addresses and names, to share')
    .argument('<journal...>', 'the journal to redact (.mpk), or the journals of a rotated run')
    .requiredOption(
      '-o, --output <path>',
      'the redacted journal to write (.mpk); for a run, the directory to write it in',
    )
    .option('--key <file>', 'secret key: a file of at least 16 random bytes (see below)')
    .option('--force', 'replace the output journal if it exists')
    .addHelpText('after', REDACT_HELP)
    .action((journals: string[], o: { output: string; key?: string; force?: boolean }) => {
      runRedact(
        { inputs: journals, output: o.output, keyFile: o.key, force: o.force === true },
        { warn, note },
      );
      exit = 0;
    });
  program
    .command('diff')
    .description('the flows that appeared, disappeared or changed confirmation between journals')
    .argument('<before>', 'the earlier journal (.mpk)')
    .argument('<after>', 'the later journal (.mpk)')
    .addOption(reportFormatOpt())
    .addOption(reportOutputOpt())
    .addOption(collapseOpt())
    .option('--exit-code', 'exit 1 when there are differences (like git diff --exit-code)')
    .addHelpText('after', DIFF_HELP)
    .action(
      async (
        before: string,
        after: string,
        o: { format: ReportFormat; output?: string; collapse: Collapse; exitCode?: boolean },
      ) => {
        exit = await runDiff(
          {
            before: [before],
            after: [after],
            format: o.format,
            collapse: o.collapse,
            exitCode: o.exitCode === true,
            ...(o.output === undefined ? {} : { output: o.output }),
          },
          { stdout: process.stdout, warn, color },
        );
      },
    );
  program
    .command('rules')
    .description('a firewall ruleset (nftables or iptables) allowing the recorded flows')
    .argument('<journal...>', 'journal files (.mpk) written by ct-record')
    .addOption(
      new Option('--format <format>', 'ruleset format').choices(['nft', 'iptables']).default('nft'),
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
    .addOption(
      new Option('--max-prefix4 <n>', 'widest IPv4 prefix sources are aggregated into')
        .argParser(prefixOption)
        .default(DEFAULT_MAX_PREFIX4),
    )
    .addOption(
      new Option('--max-prefix6 <n>', 'widest IPv6 prefix sources are aggregated into')
        .argParser(prefixOption)
        .default(DEFAULT_MAX_PREFIX6),
    )
    .addOption(collapseOpt())
    .option('-o, --output <file>', 'write the ruleset to FILE (replaced atomically), not stdout')
    .addHelpText('after', RULES_HELP)
    .action(
      async (journals: string[], o: Omit<RulesCommand, 'journals' | 'log'> & { log?: boolean }) => {
        exit = await runRules(
          { ...o, journals, log: o.log === true },
          { stdout: process.stdout, warn },
        );
      },
    );
  program
    .command('check')
    .description('which recorded flows a ruleset (nft or iptables-save) would block, and by what')
    .argument('<journal...>', 'journal files (.mpk) written by ct-record')
    .requiredOption('--ruleset <file>', 'the ruleset: an nft -f file or iptables-save output')
    .addOption(reportFormatOpt())
    .addOption(reportOutputOpt())
    .addOption(collapseOpt())
    .option('--exit-code', 'exit 1 when a recorded flow would be blocked')
    .addHelpText('after', CHECK_HELP)
    .action(
      async (
        journals: string[],
        o: Omit<CheckCommand, 'journals' | 'exitCode'> & { exitCode?: boolean },
      ) => {
        exit = await runCheck(
          { ...o, journals, exitCode: o.exitCode === true },
          { stdout: process.stdout, warn, color },
        );
      },
    );
  program.action(
    async (
      journals: string[],
      o: {
        format: FlowFormat;
        output?: string;
        collapse: Collapse;
        since?: string;
        until?: string;
        show?: TextOptions;
        follow?: boolean;
        interval: number;
        quiet?: boolean;
      },
    ) => {
      const sliced = o.since !== undefined || o.until !== undefined;
      await runAnalyze(
        {
          journals,
          format: o.format,
          collapse: o.collapse,
          ...(o.show === undefined ? {} : { show: o.show }),
          ...(o.follow === true ? { follow: { intervalMs: o.interval * 1000 } } : {}),
          ...(sliced ? { window: makeWindow(o.since, o.until, Date.now() * 1000) } : {}),
          ...(o.output === undefined ? {} : { output: o.output }),
        },
        {
          stdout: process.stdout,
          warn,
          note,
          color,
          ...(process.stderr.isTTY && o.quiet !== true ? { progress: process.stderr } : {}),
          // Only --follow stops on a signal; otherwise Ctrl-C ends ct-analyze as usual.
          ...(o.follow === true ? { signal: stopSignal() } : {}),
        },
      );
    },
  );
  await program.parseAsync(process.argv);
  return exit ?? 0;
}

await runCli(NAME, main);
