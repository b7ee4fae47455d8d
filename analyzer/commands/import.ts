// ct-analyze import: its options and help; what it runs (run/import.ts) is loaded only when it runs.
import { Option } from 'commander';
import { optionParser } from '../../common/cli.js';
// format-version.ts, not format.ts: msgpackr would load with every command's help.
import { type FormatVersion, parseFormatVersion } from '../../journal/format-version.js';
import { NAME, type Subcommand } from './options.js';

const IMPORT_HELP = `
Each line is one event ([NEW], [UPDATE], [DESTROY]) or, without a tag, one table entry (-L).
A line without [UNREPLIED] has seen a reply (confirmed). -o ktimestamp's [stop=…] is a
DESTROY's time and [start=…] an -L entry's (read as UTC: capture with TZ=UTC conntrack …).
Lines with no time get the import time, in file order. Unreadable lines are warned with
their numbers, as is a protocol name that contradicts its number (udp 6).
FILE may be - (standard input) or a pipe: it is copied to a temporary file beside the journal
(needs as much free disk as the capture), because a capture is read twice. Memory use does not
grow with the capture's size.

Examples:
  $ conntrack -E -o timestamp > capture.txt; ${NAME} import capture.txt -o capture.mpk
      a capture made where conntracker is not installed, then analyzed like a recording
  $ ssh fw1 conntrack -L | ${NAME} import - -o fw1-now.mpk --host fw1
      the table of another host as it is now (- reads standard input)

Exit status: 0 something was imported (warnings included), 1 nothing readable, 2 usage error.`;

/** The options as commander parses them. */
interface ImportFlags {
  output: string;
  force?: boolean;
  host: string;
  formatVersion: FormatVersion;
}

export const importCommand: Subcommand = {
  usage: 'import [options] <file> -o <journal>',
  register(program, ctx) {
    program
      .command('import')
      .description(
        'convert saved conntrack -E or conntrack -L text into a journal ct-analyze can read',
      )
      .argument(
        '<file>',
        'text output of conntrack -E (any -o timestamp,id,extended,ktimestamp) or -L',
      )
      .requiredOption('-o, --output <journal>', 'the journal to write (.mpk)')
      .option('--force', 'replace the output journal if it exists')
      .option('--host <name>', 'host name to record in the journal header', 'unknown')
      .addOption(
        new Option(
          '--format-version <n>',
          'journal format: 2 compresses the events, 1 is for ct-analyze versions older than format 2',
        )
          .argParser(optionParser(parseFormatVersion))
          .default(2, '2'),
      )
      .addHelpText('after', IMPORT_HELP)
      .action(async (file: string, o: ImportFlags) => {
        const cmd = {
          file,
          output: o.output,
          force: o.force === true,
          host: o.host,
          formatVersion: o.formatVersion,
        };
        const { runImport } = await import('./run/import.js');
        ctx.exit(runImport(cmd, ctx));
      });
  },
};
