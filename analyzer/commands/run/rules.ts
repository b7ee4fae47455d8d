// ct-analyze rules, run: the journals analyzed, the ruleset planned and written as nft or iptables input.
import type { Writable } from 'node:stream';
import { CtError, Exit, type ExitCode } from '../../../common/errors.js';
import { safeChunks } from '../../../common/printable.js';
import type { Collapse } from '../../core/flows.js';
import { analyzeJournalsInParallel } from '../../core/replay.js';
import { writeFileAtomic, writeToStream } from '../../report/output.js';
import type { EmitOptions } from '../../rules/emit.js';
import { checkScanOptions, type ScanOptions } from '../../rules/evidence.js';
import { iptablesBoth, iptablesRuleset } from '../../rules/iptables.js';
import type { OutputMode } from '../../rules/model.js';
import { nftRuleset } from '../../rules/nft.js';
import { checkMaxPrefix, checkMinDensity, planRules } from '../../rules/planner.js';
import type { ServiceKey } from '../../rules/services.js';

export interface RulesCommand {
  journals: string[];
  format: 'nft' | 'iptables';
  /** iptables only: write this family's part alone. */
  family?: 4 | 6;
  policy: 'drop' | 'reject';
  /** Log what is refused, rate-limited. */
  log: boolean;
  outputChain: OutputMode;
  maxPrefix4: number;
  maxPrefix6: number;
  minDensity: number;
  /** Services pinned to exact sources besides the default list. */
  sensitive?: ServiceKey[];
  allowOneWay?: boolean;
  scan: ScanOptions;
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
  const plan0 = {
    maxPrefix4: cmd.maxPrefix4,
    maxPrefix6: cmd.maxPrefix6,
    minDensity: cmd.minDensity,
    sensitive: cmd.sensitive ?? [],
    allowOneWay: cmd.allowOneWay === true,
    scan: cmd.scan,
    outputChain: cmd.outputChain,
  };
  // Bad values are usage errors before any journal is read.
  checkMaxPrefix(plan0.maxPrefix4, 4);
  checkMaxPrefix(plan0.maxPrefix6, 6);
  checkMinDensity(plan0.minDensity);
  checkScanOptions(plan0.scan);
  const analysis = await analyzeJournalsInParallel(cmd.journals, {
    collapse: cmd.collapse,
    warn: (m) => io.warn(m),
  });
  const plan = planRules(analysis.table.flows(), plan0);
  const lost = analysis.journals.reduce((n, j) => n + j.coverage.lost, 0);
  const opts: EmitOptions = {
    policy: cmd.policy,
    log: cmd.log,
    outputChain: cmd.outputChain,
    lost,
  };
  // No journal string is written into a ruleset (comments hold counts and times only); the
  // terminal filter is there for the one someone adds (common/printable.ts).
  const write = async (ruleset: Iterable<string>, path: string | undefined) => {
    const chunks = safeChunks(ruleset);
    if (path === undefined) await writeToStream(chunks, io.stdout);
    else writeFileAtomic(path, chunks);
  };
  if (cmd.format === 'nft') {
    await write(nftRuleset(plan, opts), cmd.output);
  } else if (cmd.family !== undefined) {
    await write(iptablesRuleset(plan, cmd.family, opts), cmd.output);
  } else if (cmd.output === undefined) {
    await write(iptablesBoth(plan, opts), undefined);
  } else {
    await write(iptablesRuleset(plan, 4, opts), `${cmd.output}.v4`);
    await write(iptablesRuleset(plan, 6, opts), `${cmd.output}.v6`);
  }
  return Exit.OK;
}
