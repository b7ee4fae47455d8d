#!/usr/bin/env node
// ct-analyze: parse the options, run the analysis; exit codes and error messages in common/cli.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { runCli } from '../common/cli.js';
import { CtError } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { type Collapse, DEFAULT_COLLAPSE, parseCollapse } from './flows.js';
import { type ReportFormat, runAnalyze } from './run.js';

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

Exit status: 0 ok, 1 runtime error, 2 usage error, 3 journal too new for this version.`;

async function main(): Promise<number> {
  const program = new Command(NAME)
    .description(
      'Replay conntracker journals (written by ct-record) into the sorted table of the flows ' +
        'your firewall rules must allow. Needs no root and no kernel access.',
    )
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
    .exitOverride()
    .action(
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
  return 0;
}

await runCli(NAME, main);
