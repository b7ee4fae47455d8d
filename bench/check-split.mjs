// bench helper: one `ct-analyze check` run split into its stages, each timed: load (nft in a namespace), compile, replay, evaluate.
//
// Usage: node bench/check-split.mjs --ruleset FILE --journal J.mpk [--plain] [--repeat N]
//                                   [--profile OUT.cpuprofile]
// Prints key=value lines: milliseconds of each stage, the rule count, and how many flows each
// fate got (the sanity check: a fate for every flow). Stages run in the order check runs them,
// in one process, through dist/ (build first): loadRuleset, compileRuleset,
// analyzeJournalsInParallel, then evaluateFlow for every flow of the table. --plain evaluates
// without the per-chain key index (every rule in turn): the baseline the index is measured
// against. --repeat N evaluates N times and prints each time (the first includes JIT warm-up).
// --profile writes a CPU profile of the evaluate stage alone (the first time), for
// bench/cpuprofile-top.mjs or Chrome's DevTools.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', ...p.split('/')));
const { loadRuleset } = await dist('analyzer/check/load.js');
const { compileRuleset } = await dist('analyzer/check/compile.js');
const { evaluateFlow } = await dist('analyzer/check/connection.js');
const { analyzeJournalsInParallel } = await dist('analyzer/core/replay.js');
const { DEFAULT_COLLAPSE } = await dist('analyzer/core/collapse.js');

const { values: opt } = parseArgs({
  options: {
    ruleset: { type: 'string' },
    journal: { type: 'string' },
    plain: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
    profile: { type: 'string' },
  },
});
if (opt.ruleset === undefined || opt.journal === undefined) {
  process.stderr.write('check-split: --ruleset FILE and --journal J.mpk are required\n');
  process.exit(2);
}
const repeat = Number(opt.repeat);
const ms = (t0) => (performance.now() - t0).toFixed(1);
/** CPU milliseconds of this process (all its threads) since `c0`: what waiting for a busy core does not inflate. */
const cpu = (c0) => {
  const d = process.cpuUsage(c0);
  return ((d.user + d.system) / 1000).toFixed(1);
};
let c0 = process.cpuUsage();
const out = [];

let t0 = performance.now();
const loaded = await loadRuleset(opt.ruleset);
out.push(`load_ms=${ms(t0)}`, `load_via=${loaded.via}`, `load_runs=${loaded.runs}`);

t0 = performance.now();
c0 = process.cpuUsage();
const { ruleset, notes } = compileRuleset(loaded.json);
out.push(`compile_ms=${ms(t0)}`, `compile_cpu_ms=${cpu(c0)}`);
const rules = ruleset.chains.reduce((n, c) => n + c.rules.length, 0);
out.push(`chains=${ruleset.chains.length}`, `rules=${rules}`, `compile_notes=${notes.length}`);

t0 = performance.now();
c0 = process.cpuUsage();
const analysis = await analyzeJournalsInParallel([opt.journal], { collapse: DEFAULT_COLLAPSE });
const flows = [...analysis.table.flows()];
out.push(`replay_ms=${ms(t0)}`, `replay_cpu_ms=${cpu(c0)}`, `flows=${flows.length}`);

// The recorded host's network, where the analysis has one (addresses in the journal's header).
const networks = analysis.networks ?? new Map();
const hostOf = (flow) => {
  const name = flow.hosts?.[0];
  return name === undefined ? undefined : networks.get(name);
};
const fates = {};
const undecided = new Map();
for (let r = 0; r < repeat; r++) {
  const hit = new Set();
  for (const k of Object.keys(fates)) delete fates[k];
  undecided.clear();
  const session = r === 0 && opt.profile !== undefined ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  t0 = performance.now();
  c0 = process.cpuUsage();
  for (const flow of flows) {
    const host = hostOf(flow);
    const fate = evaluateFlow(
      ruleset,
      flow,
      { collapse: DEFAULT_COLLAPSE, plain: opt.plain, ...(host ? { host } : {}) },
      hit,
    );
    fates[fate.kind] = (fates[fate.kind] ?? 0) + 1;
    if (fate.kind === 'undetermined')
      undecided.set(fate.match, (undecided.get(fate.match) ?? 0) + 1);
  }
  const nth = repeat > 1 ? `_${r + 1}` : '';
  out.push(`evaluate_ms${nth}=${ms(t0)}`, `evaluate_cpu_ms${nth}=${cpu(c0)}`);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(opt.profile, JSON.stringify(profile));
    session.disconnect();
  }
  if (r === 0) out.push(`rules_hit=${hit.size}`);
}
for (const kind of ['accepted', 'blocked', 'breaks', 'undetermined']) {
  out.push(`fate_${kind}=${fates[kind] ?? 0}`);
}
const top = [...undecided].sort((a, b) => b[1] - a[1]).slice(0, 3);
top.forEach(([match, n], i) => {
  out.push(`undetermined_${i + 1}=${n} ${match.replace(/\s+/g, ' ')}`);
});
out.push(`host_network=${networks.size > 0 ? 'yes' : 'no'}`, '');
process.stdout.write(out.join('\n'));
