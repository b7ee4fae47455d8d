// ct-analyze redact: its options and help; what it runs (run/redact.ts) is loaded only when it runs.
import { Exit } from '../../common/errors.js';
import { NAME, type Subcommand } from './options.js';

const REDACT_HELP = `
Every address (events, NAT, the host's interface addresses) is replaced by a keyed,
prefix-preserving pseudonym (Crypto-PAn): hosts of one subnet stay in one subnet, loopback,
link-local, multicast and private blocks keep their prefix. The host name becomes host-XXXXXXXX,
interface names if-XXXXXXXX (lo stays), identifying header text "redacted". Ports, protocols,
times, counts and gaps stay: the redacted journal analyzes to the same table, pseudonymised.
The same key gives the same pseudonyms in every journal; keep it secret (whoever has it can undo
the mapping). Make one: head -c 32 /dev/urandom > redact.key && chmod 600 redact.key
See docs/redact.md for what is kept and the limits.

A rotated run (ct-record --rotate) is redacted in one go into an existing directory: each
journal becomes run-XXXXXXXX-NNNNNN.mpk (its run id and place), chained to the redacted one
before it, so ct-analyze verify calls the copy complete exactly when it calls the run complete.

Examples:
  $ ${NAME} redact --key redact.key -o fw1-shared.mpk fw1.mpk
  $ mkdir shared && ${NAME} redact --key redact.key -o shared fw1-*.mpk

Exit status: 0 written, 1 unreadable or damaged journal, existing output (--force replaces it),
2 usage error (no key, a short key, an already redacted journal, several journals and -o not a
directory), 3 journal too new. A failure writes nothing: not one journal of a run.`;

export const redactCommand: Subcommand = {
  usage: 'redact --key <file> -o <journal|dir> [options] <journal...>',
  register(program, ctx) {
    program
      .command('redact')
      .description('a copy of a journal with keyed pseudonyms for addresses and names, to share')
      .argument('<journal...>', 'the journal to redact (.mpk), or the journals of a rotated run')
      .requiredOption(
        '-o, --output <path>',
        'the redacted journal to write (.mpk); for a run, the directory to write it in',
      )
      .option('--key <file>', 'secret key: a file of at least 16 random bytes (see below)')
      .option('--force', 'replace the output journal if it exists')
      .addHelpText('after', REDACT_HELP)
      .action(async (inputs: string[], o: { output: string; key?: string; force?: boolean }) => {
        const { runRedact } = await import('./run/redact.js');
        runRedact({ inputs, output: o.output, keyFile: o.key, force: o.force === true }, ctx);
        ctx.exit(Exit.OK);
      });
  },
};
