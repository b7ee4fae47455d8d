// ct-analyze JOURNAL…, the default command: its options and help; what it runs (run/analyze.ts) is loaded only when it runs.
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSeconds } from '../../common/cli.js';
import { TOOL_VERSION } from '../../common/package.js';
import type { Collapse } from '../core/flows.js';
import { makeWindow } from '../core/slice.js';
// show-columns.ts, not text.ts: the report (and the flow table under it) loads only when it runs.
import { SHOW_COLUMNS } from '../report/show-columns.js';
import type { TextOptions } from '../report/text.js';
import {
  type CommandContext,
  collapseOpt,
  JOURNALS_HELP,
  NAME,
  reportOutputOpt,
  type Subcommand,
} from './options.js';
import type { AnalyzeCommand, FlowFormat, FollowCommand } from './run/analyze.js';

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
  $ ${NAME} export -o /srv/flows fw1-*.mpk
      the events as Parquet, one directory per host and day, for DuckDB, ClickHouse or Spark
  $ ${NAME} verify journal.mpk
      is the journal complete and unmodified? (a journal named "verify": ./verify)

Exit status: 0 ok, 1 runtime error, 2 usage error, 3 journal too new for this version.`;

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

/** Aborts on SIGINT or SIGTERM: --follow then makes its last report and exits 0. */
function stopSignal(): AbortSignal {
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  return stop.signal;
}

interface AnalyzeOptions {
  format: FlowFormat;
  output?: string;
  collapse: Collapse;
  since?: string;
  until?: string;
  show?: TextOptions;
  follow?: boolean;
  interval: number;
  quiet?: boolean;
}

/**
 * The program itself, which is the default command (`ct-analyze JOURNAL…`): its options, help
 * and action. Made before the subcommands, which copy its exit and help-after-error settings.
 */
export function analyzeProgram(ctx: CommandContext, subcommands: readonly Subcommand[]): Command {
  const usage = ['[options] <journal...>', ...subcommands.map((c) => `${NAME} ${c.usage}`)];
  return (
    new Command(NAME)
      .description(
        'Replay conntracker journals (written by ct-record) into the sorted table of the flows ' +
          'your firewall rules must allow. Needs no root and no kernel access.',
      )
      .usage(usage.join('\n       '))
      .argument('<journal...>', JOURNALS_HELP)
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
      .exitOverride()
      .action(async (journals: string[], o: AnalyzeOptions) => {
        const cmd = analyzeCommand(journals, o);
        const { runAnalyze } = await import('./run/analyze.js');
        await runAnalyze(cmd, {
          stdout: process.stdout,
          warn: ctx.warn,
          note: ctx.note,
          color: ctx.color,
          ...(process.stderr.isTTY && o.quiet !== true ? { progress: process.stderr } : {}),
          // Only --follow stops on a signal; otherwise Ctrl-C ends ct-analyze as usual.
          ...(o.follow === true ? { signal: stopSignal() } : {}),
        });
      })
  );
}

function analyzeCommand(
  journals: string[],
  o: AnalyzeOptions,
): AnalyzeCommand & { follow?: FollowCommand } {
  const sliced = o.since !== undefined || o.until !== undefined;
  return {
    journals,
    format: o.format,
    collapse: o.collapse,
    ...(o.show === undefined ? {} : { show: o.show }),
    ...(o.follow === true ? { follow: { intervalMs: o.interval * 1000 } } : {}),
    ...(sliced ? { window: makeWindow(o.since, o.until, Date.now() * 1000) } : {}),
    ...(o.output === undefined ? {} : { output: o.output }),
  };
}
