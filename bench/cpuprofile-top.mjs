// bench helper: the functions a `node --cpu-prof` profile spent most self time in, and the share of each file.
//
// Usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [--top N]
// Self time is each sample's innermost function; "total" lines add up self time per source file
// (dist/ paths shortened), so the stage that costs the most shows first.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  options: { top: { type: 'string', default: '15' } },
  allowPositionals: true,
});
const file = positionals[0];
if (file === undefined) {
  process.stderr.write('cpuprofile-top: name a .cpuprofile file\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const hits = new Map();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const total = profile.samples.length;

const short = (url) =>
  url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^file:\/\//, '') || '(native)';
const fns = new Map();
const files = new Map();
for (const [id, n] of hits) {
  const node = byId.get(id);
  const f = node.callFrame;
  const where = `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
  fns.set(where, (fns.get(where) ?? 0) + n);
  files.set(short(f.url), (files.get(short(f.url)) ?? 0) + n);
}
const pct = (n) => `${((100 * n) / total).toFixed(1).padStart(5)} %`;
const top = Number(opt.top);
const lines = [`samples=${total}`, 'self time by function:'];
for (const [where, n] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  lines.push(`  ${pct(n)}  ${where}`);
}
lines.push('self time by file:');
for (const [url, n] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  lines.push(`  ${pct(n)}  ${url}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
