// ct-analyze rules: analyze the journals, plan the ruleset, write it as nft or iptables input.
import type { Writable } from 'node:stream';
import { CtError, Exit, type ExitCode } from '../../common/errors.js';
import { safeChunks } from '../../common/printable.js';
import type { Collapse } from '../core/flows.js';
import { analyzeJournalsInParallel } from '../core/replay.js';
import { writeFileAtomic, writeToStream } from '../report/output.js';
import { iptablesBoth, iptablesRuleset } from '../rules/iptables.js';
import { nftRuleset } from '../rules/nft.js';
import { checkMaxPrefix, type EmitOptions, planRules } from '../rules/plan.js';

export interface RulesCommand {
  journals: string[];
  format: 'nft' | 'iptables';
  /** iptables only: write this family's part alone. */
  family?: 4 | 6;
  policy: 'drop' | 'reject';
  log: boolean;
  maxPrefix4: number;
  maxPrefix6: number;
  collapse: Collapse;
  /**
   * The ruleset file; undefined: stdout. iptables without --family writes OUTPUT.v4 and
   * OUTPUT.v6 (the iptables-persistent names), one per restore command.
   */
  output?: string;
}

/** Analyzes the journals, plans the rules, writes them; returns the exit code. */
export async function runRules(
  cmd: RulesCommand,
  io: { stdout: Writable; warn(message: string): void },
): Promise<ExitCode> {
  if (cmd.family !== undefined && cmd.format !== 'iptables') {
    throw new CtError(
      'EUSAGE',
      '--family applies to --format iptables only: an nft ruleset holds both families in one inet table',
      { exit: Exit.USAGE },
    );
  }
  const plan0 = { maxPrefix4: cmd.maxPrefix4, maxPrefix6: cmd.maxPrefix6 };
  // Bad prefixes are usage errors before any journal is read.
  checkMaxPrefix(plan0.maxPrefix4, 4);
  checkMaxPrefix(plan0.maxPrefix6, 6);
  const analysis = await analyzeJournalsInParallel(cmd.journals, {
    collapse: cmd.collapse,
    warn: (m) => io.warn(m),
  });
  const plan = planRules(analysis.table.flows(), plan0);
  const lost = analysis.journals.reduce((n, j) => n + j.coverage.lost, 0);
  const opts: EmitOptions = { policy: cmd.policy, log: cmd.log };
  // No journal string is written into a ruleset (comments hold counts and times only); the
  // terminal filter is there for the one someone adds (common/printable.ts).
  const write = async (ruleset: Iterable<string>, path: string | undefined) => {
    const chunks = safeChunks(ruleset);
    if (path === undefined) await writeToStream(chunks, io.stdout);
    else writeFileAtomic(path, chunks);
  };
  if (cmd.format === 'nft') {
    await write(nftRuleset(plan, opts, lost), cmd.output);
  } else if (cmd.family !== undefined) {
    await write(iptablesRuleset(plan, cmd.family, opts, lost), cmd.output);
  } else if (cmd.output === undefined) {
    await write(iptablesBoth(plan, opts, lost), undefined);
  } else {
    await write(iptablesRuleset(plan, 4, opts, lost), `${cmd.output}.v4`);
    await write(iptablesRuleset(plan, 6, opts, lost), `${cmd.output}.v6`);
  }
  return Exit.OK;
}
