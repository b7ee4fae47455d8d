// What the subcommands share: the options every reporting command has, and what cli.ts hands each.
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { optionParser } from '../../common/cli.js';
import { colorLines } from '../../common/color.js';
import type { ExitCode } from '../../common/errors.js';
// collapse.ts, not flows.ts: the table (and sorted-btree) would load with every command's help.
import { DEFAULT_COLLAPSE, parseCollapse } from '../core/collapse.js';
import { writeFileAtomic, writeToStream } from '../report/output.js';

export const NAME = 'ct-analyze';

/** What cli.ts gives every command: where messages go, and where its exit status goes. */
export interface CommandContext {
  /** Colour the report written to stdout (a terminal, NO_COLOR unset: common/color.ts). */
  readonly color: boolean;
  /** One line for the user on stderr, with the program's name. */
  warn(message: string): void;
  note(message: string): void;
  /** The exit status of the command that ran; cli.ts exits with it (0 when never set). */
  exit(code: ExitCode): void;
}

/** A subcommand: its usage line in ct-analyze's help, and how it adds itself to the program. */
export interface Subcommand {
  /** `verify [options] <journal...>`: the line under `Usage:` in `ct-analyze --help`. */
  readonly usage: string;
  register(program: Command, ctx: CommandContext): void;
}

/** The journals argument of every command that reads them. */
export const JOURNALS_HELP = 'journal files (.mpk) written by ct-record';

/** --collapse, the same for every command that builds a flow table. */
export function collapseOpt(): Option {
  return new Option(
    '--collapse <mode>',
    "source-port collapsing: 1024, none, ephemeral (the host's ip_local_port_range), or LO-HI",
  )
    .argParser(optionParser(parseCollapse))
    .default(DEFAULT_COLLAPSE, '1024');
}

/** --format text|json and -o FILE of the commands that write a report. */
function reportFormatOpt(): Option {
  return new Option('--format <format>', 'report format').choices(['text', 'json']).default('text');
}

export function reportOutputOpt(): Option {
  return new Option(
    '-o, --output <file>',
    'write the report to FILE (replaced atomically), not stdout',
  );
}

/** `ct-analyze NAME JOURNAL…`: a subcommand with its description and the journals it reads. */
export function journalsCommand(program: Command, name: string, description: string): Command {
  return program.command(name).description(description).argument('<journal...>', JOURNALS_HELP);
}

/**
 * --format text|json, -o, --collapse and --exit-code: the options of a report a script can act
 * on (diff, check), in the order their help lists them.
 */
export function verdictReportOptions(command: Command, exitCodeHelp: string): Command {
  return command
    .addOption(reportFormatOpt())
    .addOption(reportOutputOpt())
    .addOption(collapseOpt())
    .option('--exit-code', exitCodeHelp);
}

/**
 * Writes a report: to `to.output` (replaced atomically), or to stdout, each line through
 * `colorLine` when the text format goes to a terminal (io.color).
 */
export async function writeReport(
  chunks: Iterable<string>,
  to: { output?: string; format: string },
  io: { stdout: Writable; color?: boolean },
  colorLine: (line: string) => string,
): Promise<void> {
  if (to.output === undefined) {
    const color = io.color === true && to.format === 'text';
    await writeToStream(colorLines(chunks, color, colorLine), io.stdout);
  } else writeFileAtomic(to.output, chunks);
}
