// ct-analyze verify, run: one verdict line per journal as it is read, the exit status they make.
import type { Writable } from 'node:stream';
import { paint } from '../../../common/color.js';
import type { ExitCode } from '../../../common/errors.js';
import { safeText } from '../../../common/printable.js';
import {
  chainLine,
  checkChains,
  type VerifyResult,
  verdictLine,
  verifyExit,
  verifyJournal,
} from '../../verify/verify.js';

export interface VerifyCommand {
  journals: string[];
  format: 'text' | 'json';
}

/**
 * Verifies each journal in turn: a text line as soon as its verdict is known, or one JSON array
 * at the end. Returns the exit code (verifyExit); verdicts are output, not errors.
 */
export function runVerify(cmd: VerifyCommand, io: { stdout: Writable; color?: boolean }): ExitCode {
  const results: VerifyResult[] = [];
  for (const path of cmd.journals) {
    const r = verifyJournal(path);
    results.push(r);
    if (cmd.format === 'text') {
      const good = r.verdict === 'OK';
      const line = safeText(verdictLine(r));
      io.stdout.write(`${paint(io.color === true, good ? 'green' : 'boldRed', line)}\n`);
    }
  }
  // Journals of rotated runs: one line per run, once every journal has been read.
  const chains = checkChains(results);
  if (cmd.format === 'text') {
    for (const c of chains) {
      const color = c.faults.length === 0 ? 'green' : 'boldRed';
      io.stdout.write(`${paint(io.color === true, color, safeText(chainLine(c)))}\n`);
    }
  }
  if (cmd.format === 'json') io.stdout.write(safeText(`${JSON.stringify(results, null, 2)}\n`));
  return verifyExit(results, chains);
}
