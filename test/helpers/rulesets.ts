// The corpus of real rulesets (test/fixtures/rulesets/): its files and the table of SOURCES.md
// that says where each comes from, what loads it and what the kernel here does with it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CORPUS_DIR = fileURLToPath(new URL('../fixtures/rulesets/', import.meta.url));

export type Loader = 'nft' | 'json' | 'iptables' | 'ip6tables';
const LOADERS: readonly Loader[] = ['nft', 'json', 'iptables', 'ip6tables'];

export interface CorpusEntry {
  file: string;
  /** The Sources section that says where the file comes from. */
  source: string;
  load: Loader;
  /** Interfaces that must exist before the file loads (iif/oif, devices, fwd to). */
  interfaces: string[];
  /** undefined: the file loads; otherwise a piece of the error the tool prints here. */
  failure?: string;
  /** Why it fails (the rest of the cell). */
  why?: string;
  line: number;
}

/** The files of the corpus folder, without SOURCES.md and the make/ scripts. */
export function corpusFiles(dir = CORPUS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f !== 'SOURCES.md' && statSync(join(dir, f)).isFile())
    .sort();
}

/** The `| file | source | load | interfaces | kernel here |` rows; throws on a malformed row. */
export function corpusTable(text = readFileSync(join(CORPUS_DIR, 'SOURCES.md'), 'utf8')) {
  const entries: CorpusEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (!raw.startsWith('| `')) return;
    const cells = raw
      .slice(1, raw.endsWith('|') ? -1 : undefined)
      .split('|')
      .map((c) => c.trim());
    const [fileCell, source, load, interfaces, outcome] = cells;
    const file = /^`([^`]+)`$/.exec(fileCell ?? '')?.[1];
    if (cells.length !== 5 || file === undefined || source === undefined || outcome === undefined) {
      throw new Error(`SOURCES.md:${line}: a row needs 5 cells, the first a \`file\`: ${raw}`);
    }
    if (!LOADERS.includes(load as Loader)) {
      throw new Error(`SOURCES.md:${line}: load must be one of ${LOADERS.join(', ')}: ${load}`);
    }
    const entry: CorpusEntry = {
      file,
      source,
      load: load as Loader,
      interfaces: (interfaces ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      line,
    };
    if (outcome !== 'loads') {
      const m = /^fails: `([^`]+)` — (.+)$/.exec(outcome);
      if (!m)
        throw new Error(`SOURCES.md:${line}: "loads" or "fails: \`error\` — why": ${outcome}`);
      entry.failure = m[1];
      entry.why = m[2];
    }
    entries.push(entry);
  });
  return entries;
}

/** The `### name` headings under `## Sources`. */
export function sourceSections(text = readFileSync(join(CORPUS_DIR, 'SOURCES.md'), 'utf8')) {
  const after = text.split('\n## Sources\n')[1] ?? '';
  return [...after.matchAll(/^### (\S+)$/gm)].map((m) => m[1] as string);
}
