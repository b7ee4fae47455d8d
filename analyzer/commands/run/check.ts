// ct-analyze check, run: the ruleset loaded and compiled first, the journals, the report, the exit status.
import type { Writable } from 'node:stream';
import { Exit, type ExitCode } from '../../../common/errors.js';
import { safeChunks } from '../../../common/printable.js';
import { compileRuleset } from '../../check/compile.js';
import { evaluateFlow } from '../../check/connection.js';
import { loadRuleset, type RulesetFormat } from '../../check/load.js';
import {
  type CheckReport,
  checkJsonChunks,
  checkTextChunks,
  colorCheckLine,
} from '../../check/report.js';
import { checkFlows } from '../../check/verdicts.js';
import type { Collapse } from '../../core/flows.js';
import { analyzeJournalsInParallel } from '../../core/replay.js';
import { writeReport } from '../options.js';

export interface CheckCommand {
  ruleset: string;
  /** What the ruleset file holds; default: told by its text. */
  rulesetFormat?: RulesetFormat;
  journals: string[];
  format: 'text' | 'json';
  collapse: Collapse;
  output?: string;
  /** --exit-code: exit 1 when any recorded flow would be blocked or break. */
  exitCode: boolean;
}

/** Loads and compiles the ruleset, analyzes the journals, writes the report; returns the exit code. */
export async function runCheck(
  cmd: CheckCommand,
  io: { stdout: Writable; warn(message: string): void; color?: boolean },
): Promise<ExitCode> {
  // The ruleset first: a bad one fails before any journal is read.
  const loaded = await loadRuleset(cmd.ruleset, { format: cmd.rulesetFormat });
  const { ruleset, notes } = compileRuleset(loaded.json);
  const analysis = await analyzeJournalsInParallel(cmd.journals, {
    collapse: cmd.collapse,
    warn: (m) => io.warn(m),
  });
  const judge: Parameters<typeof checkFlows>[2] = (flow, hit) =>
    evaluateFlow(
      ruleset,
      flow,
      { collapse: cmd.collapse, host: analysis.networks.get(flow.hosts[0] ?? '') },
      hit,
    );
  const report: CheckReport = {
    rulesetPath: cmd.ruleset,
    ruleset,
    loaded: {
      format: loaded.format,
      via: loaded.via,
      notLoaded: loaded.notLoaded,
      xtRules: loaded.xtRules ?? [],
    },
    notes,
    journals: analysis.journals,
    collapse: cmd.collapse,
    result: checkFlows(ruleset, analysis.table.flows(), judge),
  };
  const chunks = safeChunks(
    cmd.format === 'json' ? checkJsonChunks(report) : checkTextChunks(report),
  );
  await writeReport(chunks, cmd, io, colorCheckLine);
  const broken = report.result.blocked.length + report.result.breaks.length;
  return cmd.exitCode && broken > 0 ? Exit.RUNTIME : Exit.OK;
}
