// ct-analyze JOURNAL…, the default command: its options, help, and the flow report it writes.
import type { Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSeconds } from '../../common/cli.js';
import { CtError, Exit } from '../../common/errors.js';
import { TOOL_VERSION } from '../../common/package.js';
import { safeChunks } from '../../common/printable.js';
import type { Collapse, FlowTable } from '../core/flows.js';
import { followJournal } from '../core/follow.js';
import {
  type Analysis,
  analyzeJournalsInParallel,
  type JournalSummary,
  type ReplayProgress,
} from '../core/replay.js';
import { makeWindow, type TimeWindow } from '../core/slice.js';
import { htmlChunks } from '../report/html.js';
import { jsonChunks, tableReport } from '../report/json.js';
import { ProgressLine, type ProgressStream } from '../report/progress.js';
import { csvChunks, mdChunks } from '../report/table.js';
import { colorReportLine, reportChunks, SHOW_COLUMNS, type TextOptions } from '../report/text.js';
import {
  type CommandContext,
  collapseOpt,
  JOURNALS_HELP,
  NAME,
  reportOutputOpt,
  type Subcommand,
  writeReport,
} from './options.js';

export type ReportFormat = 'text' | 'json';
/** The flow report's formats: the verdict and diff reports have text and JSON only. */
export type FlowFormat = ReportFormat | 'csv' | 'md' | 'html';

export interface AnalyzeCommand {
  journals: string[];
  format: FlowFormat;
  /** Report file; undefined: the stdout stream. */
  output?: string;
  collapse: Collapse;
  /** --since/--until: only events inside it reach the table; undefined: every event. */
  window?: TimeWindow;
  /** --show: what the text report adds to each flow line. */
  show?: TextOptions;
}

export interface AnalyzeIo {
  stdout: Writable;
  /** One line for the user on stderr (the caller adds the program name). */
  warn(message: string): void;
  note(message: string): void;
  /** Where a progress bar goes (a terminal's stderr); undefined: no bar. */
  progress?: ProgressStream;
  /** --follow: ends the following (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /** Colour the text report written to stdout (a terminal, NO_COLOR unset: common/color.ts). */
  color?: boolean;
}

/** --follow: one journal, reported every interval until it ends or the signal aborts. */
export interface FollowCommand {
  intervalMs: number;
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
        await runAnalyze(analyzeCommand(journals, o), {
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

export async function runAnalyze(
  cmd: AnalyzeCommand & { follow?: FollowCommand },
  io: AnalyzeIo,
): Promise<void> {
  if (cmd.follow !== undefined) return runFollow(cmd, cmd.follow, io);
  const bar = io.progress === undefined ? undefined : new ProgressLine(io.progress);
  let analysis: Analysis;
  try {
    analysis = await analyzeJournalsInParallel(cmd.journals, {
      collapse: cmd.collapse,
      ...(cmd.window === undefined ? {} : { window: cmd.window }),
      warn: (m) => {
        bar?.clear();
        io.warn(m);
      },
      ...(bar === undefined ? {} : { progress: (p: ReplayProgress) => bar.update(p) }),
    });
  } finally {
    bar?.clear();
  }
  await report(cmd, io, analysis.table, analysis.journals, true);
}

async function runFollow(cmd: AnalyzeCommand, follow: FollowCommand, io: AnalyzeIo) {
  const [path, ...more] = cmd.journals;
  if (path === undefined || more.length > 0) {
    throw new CtError(
      'EUSAGE',
      `--follow reads one journal, not ${cmd.journals.length}: follow the one ct-record is writing and analyze the others without --follow`,
      { exit: Exit.USAGE },
    );
  }
  // On a terminal each report replaces the last, like watch(1); elsewhere they follow each other.
  const tty = cmd.output === undefined && (io.stdout as { isTTY?: boolean }).isTTY === true;
  await followJournal(
    path,
    {
      collapse: cmd.collapse,
      ...(cmd.window === undefined ? {} : { window: cmd.window }),
      intervalMs: follow.intervalMs,
      signal: io.signal ?? new AbortController().signal,
      warn: (m) => io.warn(m),
    },
    async (table, journals, final) => {
      if (tty) io.stdout.write('\x1b[H\x1b[2J');
      await report(cmd, io, table, journals, final);
    },
  );
}

/** Writes one report of the table, text or JSON; the last one notes the skipped events. */
async function report(
  cmd: AnalyzeCommand,
  io: AnalyzeIo,
  table: FlowTable,
  journals: JournalSummary[],
  final: boolean,
): Promise<void> {
  const skipped = Object.entries(table.skipped);
  if (final && skipped.length > 0) {
    const detail = skipped.map(([reason, n]) => `${reason}: ${n}`).join(', ');
    io.note(`${table.skippedTotal} events belong to no flow table (${detail})`);
  }
  // Every format but HTML (escaped for a browser) passes the terminal filter (common/printable.ts).
  const chunks =
    cmd.format === 'html'
      ? htmlChunks(journals, () => table.flows())
      : safeChunks(formatChunks(cmd, table, journals));
  await writeReport(chunks, cmd, io, colorReportLine);
}

function formatChunks(
  cmd: AnalyzeCommand,
  table: FlowTable,
  journals: JournalSummary[],
): Iterable<string> {
  return cmd.format === 'json'
    ? jsonChunks(tableReport(table, journals))
    : cmd.format === 'csv'
      ? csvChunks(table.flows())
      : cmd.format === 'md'
        ? mdChunks(journals, table.flows())
        : reportChunks(journals, table.flows(), cmd.show ?? {});
}
