#!/usr/bin/env node
// ct-analyze: parse the options, run the analysis or verify; exit codes and errors in common/cli.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { runCli } from '../common/cli.js';
import { CtError, type ExitCode } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { type Collapse, DEFAULT_COLLAPSE, parseCollapse } from './flows.js';
import { type ReportFormat, runAnalyze, runVerify } from './run.js';

const NAME = 'ct-analyze';

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
  $ ${NAME} --collapse none journal.mpk
      keep every source port instead of showing ports above 1024 as 1024
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

Exit status: 0 every journal OK, 1 any other verdict, 2 usage error, 3 only TOO NEW ones.`;

async function main(): Promise<number> {
  let exit: ExitCode | undefined;
  const program = new Command(NAME)
    .description(
      'Replay conntracker journals (written by ct-record) into the sorted table of the flows ' +
        'your firewall rules must allow. Needs no root and no kernel access.',
    )
    .usage('[options] <journal...>\n       ct-analyze verify [options] <journal...>')
    .argument('<journal...>', 'journal files (.mpk) written by ct-record')
    .addOption(
      new Option('--format <format>', 'report format').choices(['text', 'json']).default('text'),
    )
    .option('-o, --output <file>', 'write the report to FILE (replaced atomically), not stdout')
    .addOption(
      new Option('--collapse <mode>', 'source-port collapsing: 1024, none, or a range LO-HI')
        .argParser(collapseOption)
        .default(DEFAULT_COLLAPSE, '1024'),
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
      exit = runVerify({ journals, format: o.format }, { stdout: process.stdout });
    });
  program.action(
    async (
      journals: string[],
      o: { format: ReportFormat; output?: string; collapse: Collapse },
    ) => {
      await runAnalyze(
        {
          journals,
          format: o.format,
          collapse: o.collapse,
          ...(o.output === undefined ? {} : { output: o.output }),
        },
        {
          stdout: process.stdout,
          warn: (m) => process.stderr.write(`${NAME}: warning: ${m}\n`),
          note: (m) => process.stderr.write(`${NAME}: note: ${m}\n`),
        },
      );
    },
  );
  await program.parseAsync(process.argv);
  return exit ?? 0;
}

await runCli(NAME, main);
