// Where the installed package lives and which version it is, from source (tap) or from dist/.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  let dir = from;
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'conntracker') return dir;
    } catch {
      // not here: keep walking up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`conntracker package.json not found above ${from}`);
    dir = up;
  }
}

/** The package's root folder (the one holding package.json, binding.gyp and build/). */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** The package version, written into every journal header. */
export const TOOL_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
