// Golden samples: ct-analyze on each bundled journal prints exactly its recorded text and JSON.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

for (const name of ['lan', 'nat-router']) {
  for (const [format, ext] of [
    ['text', 'txt'],
    ['json', 'json'],
  ] as const) {
    t.test(`samples/${name}.mpk analyzes to exactly samples/${name}.${ext}`, (t) => {
      // Relative paths from the root, as make-samples.ts ran it: the JSON names the journal.
      const res = spawnSync(
        process.execPath,
        ['dist/analyzer/cli.js', `samples/${name}.mpk`, '--format', format],
        { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
      );
      t.equal(res.status, 0, `ct-analyze exits 0: ${res.stderr}`);
      const golden = readFileSync(`${ROOT}samples/${name}.${ext}`, 'utf8');
      // The text is compared byte for byte; the JSON by value (the file is biome-formatted).
      if (format === 'text') t.equal(res.stdout, golden);
      else t.strictSame(JSON.parse(res.stdout), JSON.parse(golden));
      t.end();
    });
  }
}
