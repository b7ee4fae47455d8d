#!/usr/bin/env node
// ct-analyze: registers the commands of analyzer/commands/ and runs one; exit codes and errors in common/cli.ts.
import { messagePrinter, runCli } from '../common/cli.js';
import { colorFor } from '../common/color.js';
import type { ExitCode } from '../common/errors.js';
import { analyzeProgram } from './commands/analyze.js';
import { checkCommand } from './commands/check.js';
import { diffCommand } from './commands/diff.js';
import { exportCommand } from './commands/export.js';
import { importCommand } from './commands/import.js';
import { type CommandContext, NAME } from './commands/options.js';
import { redactCommand } from './commands/redact.js';
import { rulesCommand } from './commands/rules.js';
import { verifyCommand } from './commands/verify.js';

/** In the order `ct-analyze --help` lists them. */
const SUBCOMMANDS = [
  verifyCommand,
  importCommand,
  redactCommand,
  diffCommand,
  rulesCommand,
  checkCommand,
  exportCommand,
];

async function main(): Promise<number> {
  let status: ExitCode | undefined;
  const { warn, note } = messagePrinter(NAME);
  const ctx: CommandContext = {
    color: colorFor(process.stdout),
    warn,
    note,
    exit: (code) => {
      status = code;
    },
  };
  // The program is the default command (ct-analyze JOURNAL…); each subcommand adds itself.
  const program = analyzeProgram(ctx, SUBCOMMANDS);
  for (const command of SUBCOMMANDS) command.register(program, ctx);
  await program.parseAsync(process.argv);
  return status ?? 0;
}

await runCli(NAME, main);
