// Records samples/lan.mpk and samples/nat-router.mpk with the scenario, and their analyzer outputs.
// Run through samples/make-samples.sh (it builds first and loads the TypeScript loader).
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTopology, run, type Topology, type TopologyKind } from '../test/helpers/netns.js';
import { ANALYZER, RECORDER, ROOT, recordScenario } from './record.js';
import { expectedLines, stripCounter } from './scenario.js';

const SAMPLES: ReadonlyArray<{ name: string; kind: TopologyKind }> = [
  { name: 'lan', kind: 'lan' },
  { name: 'nat-router', kind: 'nat' },
];
const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;

/** Runs ct-analyze from the project root on a relative path, as the golden test does. */
async function analyze(args: string[]): Promise<string> {
  const res = await run([process.execPath, ANALYZER, ...args], {
    check: false,
    timeoutMs: 30_000,
    cwd: ROOT,
  });
  if (res.code !== 0) throw new Error(`ct-analyze ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

async function makeOne(name: string, kind: TopologyKind, live: Set<Topology>): Promise<void> {
  const journal = `samples/${name}.mpk`;
  const topo = await createTopology(null, kind);
  live.add(topo);
  try {
    const rec = await recordScenario(topo, join(ROOT, journal), ['--force']);
    if (rec.exit !== 0) throw new Error(`ct-record ended with ${rec.exit}:\n${rec.stderr}`);
    // ct-record keeps journals private (0600); a sample is meant to be read without root.
    chmodSync(join(ROOT, journal), 0o644);
    const text = await analyze([journal]);
    const got = text.split('\n').filter((l) => FLOW_LINE.test(l));
    const want = expectedLines(rec.flows);
    // A sample that disagrees with the scenario would teach newcomers wrong output: refuse it.
    if (got.map(stripCounter).join('\n') !== want.join('\n')) {
      throw new Error(
        `${journal} does not hold the expected flows:\n${text}\nexpected:\n${want.join('\n')}`,
      );
    }
    writeFileSync(join(ROOT, `samples/${name}.txt`), text);
    const json = `samples/${name}.json`;
    writeFileSync(join(ROOT, json), await analyze([journal, '--format', 'json']));
    // Stored as the formatter lays it out, so `biome ci .` passes; the golden test compares
    // the parsed value, since JSON whitespace is no part of the contract.
    await run([join(ROOT, 'node_modules/.bin/biome'), 'format', '--write', json], { cwd: ROOT });
    process.stderr.write(`make-samples: wrote ${journal}, samples/${name}.txt, .json\n`);
  } finally {
    live.delete(topo);
    await topo.destroy();
  }
}

async function main(): Promise<number> {
  const force = process.argv.includes('--force');
  for (const cli of [RECORDER, ANALYZER]) {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  }
  const existing = SAMPLES.map((s) => `samples/${s.name}.mpk`).filter((p) =>
    existsSync(join(ROOT, p)),
  );
  if (existing.length > 0 && !force) {
    throw new Error(
      `${existing.join(', ')} already exist: samples are golden files, regenerate them only on ` +
        'purpose with --force (and say why in the commit)',
    );
  }
  const live = new Set<Topology>();
  const stop = async (signal: NodeJS.Signals) => {
    for (const topo of live) await topo.destroy().catch(() => undefined);
    process.stderr.write(`make-samples: stopped by ${signal}, namespaces removed\n`);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const { name, kind } of SAMPLES) await makeOne(name, kind, live);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`make-samples: ${err.message}\n`);
    process.exitCode = 1;
  },
);
