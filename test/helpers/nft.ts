// A ruleset's text through check's whole pipeline (nft loads it, compile, the walk) for laptop tests; without nft or a namespace the test says why and how to run it, and under CI that is a failure.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileRuleset } from '../../analyzer/check/compile.js';
import { evaluateFlow } from '../../analyzer/check/connection.js';
import { loadRuleset } from '../../analyzer/check/load.js';
import type { HostView, Ruleset } from '../../analyzer/check/model.js';
import { type CheckResult, checkFlows } from '../../analyzer/check/verdicts.js';
import type { Collapse, Flow } from '../../analyzer/core/flows.js';
import { kernelRequired } from './kernel.js';

function probe(): string | undefined {
  const nft = spawnSync('nft', ['--version'], {
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
  });
  if (nft.status !== 0) return 'needs nft (apt-get install nftables)';
  const ns =
    process.geteuid?.() === 0
      ? spawnSync('unshare', ['--net', 'true'])
      : spawnSync('unshare', ['--user', '--map-root-user', '--net', 'true']);
  if (ns.status !== 0)
    return 'needs a network namespace: run as root, or allow unprivileged user namespaces';
  return undefined;
}

const why = probe();
if (why !== undefined && kernelRequired()) {
  throw new Error(`${why} (CI=true or CT_REQUIRE_KERNEL=1: a skipped test fails)`);
}

/** tap's `skip` option for a test that loads rulesets with nft: false, or why not and what to do. */
export const NEEDS_NFT: string | false =
  why === undefined ? false : `${why}; CI runs it (sudo .ci/run)`;

/** Loads `text` (nft or iptables-save) from a file in `dir` and compiles it. */
export async function rulesetOf(dir: string, text: string, name = 'ruleset'): Promise<Ruleset> {
  const file = join(dir, name);
  writeFileSync(file, text);
  return compileRuleset((await loadRuleset(file)).json).ruleset;
}

/** Every flow judged against `ruleset`, as `ct-analyze check` judges it. */
export function judgeFlows(
  ruleset: Ruleset,
  flows: Iterable<Flow>,
  collapse: Collapse,
  host?: HostView,
): CheckResult {
  return checkFlows(ruleset, flows, (flow, hit) =>
    evaluateFlow(ruleset, flow, { collapse, host }, hit),
  );
}
