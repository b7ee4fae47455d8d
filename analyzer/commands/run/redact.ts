// ct-analyze redact, run: one journal to a file, or journals into a directory.
import { statSync } from 'node:fs';
import { CtError, Exit } from '../../../common/errors.js';
import { type RedactIo, type RedactResult, redactJournal, redactRun } from '../../redact/redact.js';

export interface RedactCliCommand {
  inputs: readonly string[];
  output: string;
  keyFile: string | undefined;
  force: boolean;
}

/**
 * `ct-analyze redact`: one journal to the file `output`; several, or `output` an existing
 * directory, redactRun into that directory.
 */
export function runRedact(cmd: RedactCliCommand, io: RedactIo): RedactResult[] {
  const { inputs, output, keyFile, force } = cmd;
  const isDir = statSync(output, { throwIfNoEntry: false })?.isDirectory() === true;
  const [only] = inputs;
  if (inputs.length === 1 && only !== undefined && !isDir) {
    return [redactJournal({ input: only, output, keyFile, force }, io)];
  }
  if (!isDir) {
    throw new CtError(
      'ENOTDIR',
      `${inputs.length} journals are given and ${output} is not a directory: with several journals (a rotated run), -o names an existing directory to write them in (mkdir it first)`,
      { exit: Exit.USAGE },
    );
  }
  return redactRun({ inputs, outputDir: output, keyFile, force }, io);
}
