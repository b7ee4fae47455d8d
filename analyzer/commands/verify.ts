// ct-analyze verify: its options and help, one verdict line per journal, the exit status they make.
import type { Writable } from 'node:stream';
import { Option } from 'commander';
import { paint } from '../../common/color.js';
import type { ExitCode } from '../../common/errors.js';
import { safeText } from '../../common/printable.js';
import {
  chainLine,
  checkChains,
  type VerifyResult,
  verdictLine,
  verifyExit,
  verifyJournal,
} from '../verify/verify.js';
import { journalsCommand, NAME, type Subcommand } from './options.js';

const VERIFY_HELP = `
Verdicts, one line per journal:
  OK          complete, every checksum, checkpoint and the trailer digest match
  INCOMPLETE  no trailer (crash, kill -9, full disk, or cut short): intact as far as it goes
  CORRUPT     damaged bytes or invalid content, with more journal after them
  MODIFIED    well-formed frames were removed, reordered or replaced (digest mismatch)
  TOO NEW     written by a later format version: upgrade conntracker
  UNREADABLE  missing, not a regular file, or not a conntracker journal

Examples:
  $ ${NAME} verify fw1.mpk fw2.mpk
      one verdict line per journal; exit 0 only when every one is OK
  $ ${NAME} verify --format json /var/lib/conntracker/*.mpk > verdicts.json
      the verdicts with their counts and digests, for a ticket or a script

Exit status: 0 every journal OK, 1 any other verdict, 2 usage error, 3 only TOO NEW ones.`;

export interface VerifyCommand {
  journals: string[];
  format: 'text' | 'json';
}

export const verifyCommand: Subcommand = {
  usage: 'verify [options] <journal...>',
  register(program, ctx) {
    const description =
      'check that journals are complete and unmodified: one verdict line per journal';
    journalsCommand(program, 'verify', description)
      .addOption(
        new Option('--format <format>', 'verdict format').choices(['text', 'json']).default('text'),
      )
      .addHelpText('after', VERIFY_HELP)
      .action((journals: string[], o: { format: VerifyCommand['format'] }) => {
        ctx.exit(
          runVerify({ journals, format: o.format }, { stdout: process.stdout, color: ctx.color }),
        );
      });
  },
};

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
