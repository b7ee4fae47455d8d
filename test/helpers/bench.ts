// The bench scripts' smoke tests share these: run a script with its data under a temp dir, read a figure, copy bench/ to break it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../common/package.js';

/** A number as the bench scripts print it (integer or decimal). */
export const NUM = String.raw`\d+(?:\.\d+)?`;

/** Runs a bench script with TMPDIR at `tmp`, so its data cache and work dirs stay in the test's. */
export function runBench(script: string, tmp: string, args: string[], timeoutMs: number) {
  const res = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: tmp },
    timeout: timeoutMs,
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

/** The value of a capture group, or a failed assertion. */
export function grab(out: string, re: RegExp): string {
  const m = re.exec(out);
  if (m === null || m[1] === undefined) throw new Error(`no match for ${re} in:\n${out}`);
  return m[1];
}

/**
 * A copy of the named bench/ files (and bench/common.sh, which every bench script sources) in
 * `root`, beside links to the real dist/ and node_modules/: a test breaks one copied file to
 * see the bench fail. Returns root/bench.
 */
export function benchCopy(root: string, files: string[]): string {
  const bench = join(root, 'bench');
  mkdirSync(bench, { recursive: true });
  symlinkSync(join(PACKAGE_ROOT, 'dist'), join(root, 'dist'));
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(root, 'node_modules'));
  for (const f of ['common.sh', ...files]) {
    copyFileSync(join(PACKAGE_ROOT, 'bench', f), join(bench, f));
  }
  return bench;
}
