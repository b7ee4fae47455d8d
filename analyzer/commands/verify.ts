// ct-analyze verify: its options and help; what it runs (run/verify.ts) is loaded only when it runs.
import { Option } from 'commander';
import { journalsCommand, NAME, type Subcommand } from './options.js';
import type { VerifyCommand } from './run/verify.js';

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
      .action(async (journals: string[], o: { format: VerifyCommand['format'] }) => {
        const { runVerify } = await import('./run/verify.js');
        ctx.exit(
          runVerify({ journals, format: o.format }, { stdout: process.stdout, color: ctx.color }),
        );
      });
  },
};
