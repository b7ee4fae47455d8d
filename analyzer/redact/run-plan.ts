// A rotated run to redact: every input checked and named before any work, and each journal's link to the one before.
import { fstatSync } from 'node:fs';
import { join } from 'node:path';
import { CtError, Exit } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import type { JournalChain } from '../../journal/format.js';
import { openJournal } from '../../journal/reader.js';
import { checkOutput, refuseRedacted, tempPath } from './files.js';
import { hex, redactedName, type Written } from './write.js';

/** One journal of a run to redact, checked and named before any work. */
export interface RunStep {
  input: string;
  /** Run id, 32 hex digits. */
  run: string;
  sequence: number;
  output: string;
  temp: string;
}

/**
 * The redacted predecessor's digest when the step continues the one written just before it and
 * the original link held; else undefined, with why (for the warning).
 */
export function linkOf(
  before: { step: RunStep; written: Written } | undefined,
  step: RunStep,
  chain: JournalChain,
): { digest: Uint8Array | undefined; why: string | undefined } {
  const prev = chain.previous;
  if (prev === null) return { digest: undefined, why: undefined };
  const want = chain.sequence - 1;
  if (before === undefined || before.step.run !== step.run || before.step.sequence !== want) {
    return {
      digest: undefined,
      why: `journal ${want} of its run (${printable(prev.file)}) was not given, and ct-analyze verify will say so`,
    };
  }
  const original = before.written.inputSha256;
  if (original === undefined) {
    return {
      digest: undefined,
      why: `${before.step.input} before it has no trailer, so the link cannot be checked, in the original as in the copy`,
    };
  }
  if (hex(prev.sha256) !== original) {
    return {
      digest: undefined,
      why: `it does not follow ${before.step.input} in the original either (its previous sha256 differs): the link stays broken`,
    };
  }
  return { digest: Buffer.from(before.written.sha256, 'hex'), why: undefined };
}

/**
 * Every input opened once for its header: each chained and not redacted, no journal given twice,
 * no two with one place in a run, every output free (or --force). Sorted by run (in the order
 * the runs first appear) and sequence.
 */
export function planRun(cmd: {
  inputs: readonly string[];
  outputDir: string;
  force: boolean;
}): RunStep[] {
  const steps: (RunStep & { dev: number; ino: number })[] = [];
  for (const input of cmd.inputs) {
    const reader = openJournal(input);
    try {
      refuseRedacted(reader.header, input);
      const chain = reader.header.chain;
      if (chain === undefined) {
        throw new CtError(
          'ENOCHAIN',
          `${input} is not a journal of a rotated run (its header has no chain): redact it on its own, with -o FILE`,
          { exit: Exit.USAGE },
        );
      }
      const st = fstatSync(reader.fd as number);
      const run = hex(chain.run);
      const same = steps.find((s) => s.dev === st.dev && s.ino === st.ino);
      if (same !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${same.input} are one journal: give it once`,
          {
            exit: Exit.USAGE,
          },
        );
      }
      const twin = steps.find((s) => s.run === run && s.sequence === chain.sequence);
      if (twin !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${twin.input} are both journal ${chain.sequence} of run ${run.slice(0, 8)}: give only the one that belongs to the run (ct-analyze verify tells which)`,
          { exit: Exit.USAGE },
        );
      }
      const output = join(cmd.outputDir, redactedName(chain.run, chain.sequence));
      const clash = steps.find((s) => s.output === output);
      if (clash !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${clash.input} are of two runs whose ids start alike (${run.slice(0, 8)}): both would be ${output}; redact each run into its own directory`,
          { exit: Exit.USAGE },
        );
      }
      steps.push({
        input,
        run,
        sequence: chain.sequence,
        output,
        temp: tempPath(output),
        dev: st.dev,
        ino: st.ino,
      });
    } finally {
      reader.close();
    }
  }
  // After all inputs are known: an output must be none of them, whatever their names.
  for (const s of steps) checkOutput(s.output, cmd.force, steps);
  const runs = [...new Set(steps.map((s) => s.run))];
  return steps
    .map(({ dev: _d, ino: _i, ...s }) => s)
    .sort((a, b) => runs.indexOf(a.run) - runs.indexOf(b.run) || a.sequence - b.sequence);
}
