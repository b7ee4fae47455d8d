// bench/check.sh smoke test: a small kube-proxy-shaped run loads both shapes, gives every flow a fate, blocks the services without endpoints, and prints every figure.
import '../../helpers/kernel.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../../common/package.js';

const SCRIPT = join(PACKAGE_ROOT, 'bench', 'check.sh');
const BUILT = join(PACKAGE_ROOT, 'dist', 'analyzer', 'check', 'connection.js');

t.test('bench/check.sh: 300 rules against 3,000 connections, both shapes, sane', async (t) => {
  t.ok(existsSync(BUILT), `${BUILT} exists (npm run build)`);
  const started = Date.now();
  const run = spawnSync(
    SCRIPT,
    ['--rules', '300', '--flows', '3000', '--runs', '1', '--no-build'],
    { encoding: 'utf8', timeout: 170_000 },
  );
  const seconds = (Date.now() - started) / 1000;
  t.equal(run.status, 0, `exit 0: ${run.stderr.slice(-500)}`);
  const out = run.stdout;
  t.comment(out);
  t.match(out, /^data: \d+ services \(\d+ without endpoints\), 3000 connections/m);
  for (const shape of ['nft', 'iptables']) {
    const section = out.split(`== ${shape} mode`)[1]?.split('\n== ')[0] ?? '';
    t.ok(section !== '', `a section for ${shape} mode`);
    const m =
      /rules (\d+) \(via [\w-]+\), flows (\d+): accepted (\d+), blocked (\d+), breaks (\d+), undetermined (\d+)/.exec(
        section,
      );
    t.ok(m, `${shape}: the fates line`);
    const [rules, flows, accepted, blocked, breaks, undetermined] = (m ?? []).slice(1).map(Number);
    t.ok((rules ?? 0) >= 300, `${shape}: at least 300 rules (${rules})`);
    t.equal(
      (accepted ?? 0) + (blocked ?? 0) + (breaks ?? 0) + (undetermined ?? 0),
      flows,
      `${shape}: a fate for every flow`,
    );
    t.ok((blocked ?? 0) > 0, `${shape}: connections to services without endpoints are blocked`);
    t.match(
      section,
      /median of 1: load \d+ ms, compile \d+ ms \(cpu \d+\), replay \d+ ms, evaluate \d+ ms \(cpu \d+\)/,
    );
    t.match(section, /baseline, evaluate without the chain index \(--plain\): \d+ ms/);
    t.match(
      section,
      /target: compile \+ evaluate of \d+ rules against \d+ flows \(3000 connections\) < 2 s: [\d.]+ s \(cpu [\d.]+ s\): (met|NOT met)/,
    );
    t.notMatch(section, /NOT SANE/);
  }
  // 56 s measured here with load 10 on 2 cores: the bound (2.7× that) only catches a hang.
  t.ok(seconds < 150, `ran in ${seconds.toFixed(0)} s`);
});
