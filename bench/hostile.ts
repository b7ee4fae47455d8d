// bench: crafted worst-case journals of two or more sizes, and the time and peak RSS ct-analyze takes on each.
//
// Usage: npm run build && node --import=@tapjs/typescript/import bench/hostile.ts [CASE...]
//          [--mb 2,8] [--timeout 60] [--keep]
//   CASE       resync, addresses, addresses-distinct, routes, gaps, header, tiny (default: all)
//   --mb       journal sizes in MB, comma-separated (default 2,8); `audit` for the audit's cases
//              (a 33 MB resync journal, 400 address checkpoints of 4,096 addresses)
//   --timeout  seconds before a run is killed and reported as "> timeout" (default 60)
//
// Runs `ct-analyze`, `ct-analyze verify` and `ct-analyze redact` (dist/analyzer/cli.js: the
// three commands that read journals from strangers) on each journal and prints one line per
// run: case, size, command, exit status, wall time, peak RSS, and the time and RSS ratio to the
// smallest size of the same case and command. Linear work shows a time ratio near the size
// ratio; the hostile-journal tests (test/analyzer/untrusted.test.ts) assert that bound.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  runCli,
  writeAddressBomb,
  writeGapBomb,
  writeHugeHeader,
  writeResyncBomb,
  writeRouteBomb,
  writeTinyFrames,
} from '../test/helpers/hostile.js';

const MB = 1_000_000;

/** Each case: how to write a journal of about `mb` MB. */
const CASES: Record<string, (path: string, mb: number) => void> = {
  resync: (path, mb) => writeResyncBomb(path, mb * MB),
  // One checkpoint of 4,096 addresses is ~0.49 MB.
  addresses: (path, mb) => writeAddressBomb(path, Math.round(mb / 0.49), false),
  'addresses-distinct': (path, mb) => writeAddressBomb(path, Math.round(mb / 0.49), true),
  // One checkpoint of 4,096 routes is ~0.69 MB.
  routes: (path, mb) => writeRouteBomb(path, Math.round(mb / 0.69)),
  // ~105 bytes per gap frame.
  gaps: (path, mb) => writeGapBomb(path, Math.round((mb * MB) / 105)),
  header: (path, mb) => writeHugeHeader(path, Math.min(mb, 16) * MB),
  // ~150 bytes per one-event frame and its checkpoint.
  tiny: (path, mb) => writeTinyFrames(path, Math.round((mb * MB) / 150)),
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mb: { type: 'string', default: '2,8' },
    timeout: { type: 'string', default: '60' },
    keep: { type: 'boolean', default: false },
  },
});
const audit = values.mb === 'audit';
const sizes = audit ? [0] : values.mb.split(',').map(Number);
const names = positionals.length > 0 ? positionals : Object.keys(CASES);
const timeout = Number(values.timeout) * 1000;
for (const n of names)
  if (!(n in CASES)) throw new Error(`unknown case ${n}: ${Object.keys(CASES).join(', ')}`);

const dir = mkdtempSync(join(tmpdir(), 'ct-bench-hostile-'));
const key = join(dir, 'redact.key');
writeFileSync(key, Buffer.alloc(32, 7), { mode: 0o600 });

const row = (...cells: (string | number)[]) => console.log(cells.map(String).join('\t'));
row('case', 'MB', 'command', 'exit', 'ms', 'peakMB', 'ms/ms0', 'MB/MB0');
try {
  for (const name of names) {
    const base = new Map<string, { ms: number; rss: number }>();
    for (const mb of sizes) {
      const path = join(dir, `${name}-${mb}.mpk`);
      if (audit && name === 'resync') writeResyncBomb(path, 33 * MB);
      else if (audit && name.startsWith('addresses'))
        writeAddressBomb(path, 400, name !== 'addresses');
      else (CASES[name] as (p: string, mb: number) => void)(path, mb);
      const size = (statSync(path).size / MB).toFixed(1);
      const out = join(dir, 'redacted.mpk');
      const commands: Record<string, string[]> = {
        analyze: [path],
        verify: ['verify', path],
        redact: ['redact', path, '-o', out, '--key', key, '--force'],
      };
      for (const [command, args] of Object.entries(commands)) {
        const r = runCli(args, dir, timeout);
        const ms = r.timedOut ? `>${timeout}` : r.ms.toFixed(0);
        const first = base.get(command) ?? { ms: r.ms, rss: r.rssMB };
        base.set(command, first);
        const ratio = (a: number, b: number) => (a / b).toFixed(2);
        row(
          name,
          size,
          command,
          r.status ?? 'killed',
          ms,
          r.rssMB.toFixed(0),
          ratio(r.ms, first.ms),
          ratio(r.rssMB, first.rss),
        );
      }
      rmSync(join(dir, 'redacted.mpk'), { force: true });
      if (!values.keep) rmSync(path);
    }
  }
} finally {
  if (values.keep) console.error(`kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
