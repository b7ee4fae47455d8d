// The dependency direction of the sources, checked on their import graph: nothing imports upward.
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../common/package.js';

const SOURCE_DIRS = ['common', 'native', 'journal', 'analyzer', 'recorder'] as const;

/** Module specifiers of static, re-export, side-effect and dynamic imports (and require). */
const IMPORT_PATTERNS = [
  /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** Comments may quote an import (`// import … from '../native/…'`) without making one. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

function specifiers(text: string): string[] {
  const code = stripComments(text);
  return IMPORT_PATTERNS.flatMap((re) => [...code.matchAll(re)].map((m) => m[1] as string));
}

interface Graph {
  /** file → the source files it imports (paths relative to the package root, posix). */
  edges: Map<string, Set<string>>;
  /** Relative imports that name no source file: a parser or resolver fault, or a broken import. */
  unresolved: string[];
}

/** Builds the graph of `sources` (path → text); bare specifiers (node:, packages) are left out. */
function importGraph(sources: ReadonlyMap<string, string>): Graph {
  const edges = new Map<string, Set<string>>();
  const unresolved: string[] = [];
  for (const [file, text] of sources) {
    const targets = new Set<string>();
    for (const spec of specifiers(text)) {
      if (!spec.startsWith('.')) continue;
      // NodeNext: a .ts file is imported by its emitted .js name.
      const target = posix.join(posix.dirname(file), spec).replace(/\.js$/, '.ts');
      if (sources.has(target)) targets.add(target);
      else unresolved.push(`${file} → ${spec}`);
    }
    edges.set(file, targets);
  }
  return { edges, unresolved };
}

const folder = (file: string) => file.split('/')[0] as string;

/**
 * Every import chain from a file in `from` folders to a file in `to` folders, direct or
 * transitive, as `a.ts → b.ts → c.ts` (the shortest chain per starting file and target).
 */
function forbiddenChains(graph: Graph, from: readonly string[], to: readonly string[]): string[] {
  const chains: string[] = [];
  for (const start of graph.edges.keys()) {
    if (!from.includes(folder(start))) continue;
    const parent = new Map<string, string | null>([[start, null]]);
    const queue = [start];
    while (queue.length > 0) {
      const file = queue.shift() as string;
      for (const next of graph.edges.get(file) ?? []) {
        if (parent.has(next)) continue;
        parent.set(next, file);
        if (to.includes(folder(next))) {
          const chain = [next];
          for (let p = parent.get(next); p != null; p = parent.get(p)) chain.unshift(p);
          chains.push(chain.join(' → '));
        } else {
          queue.push(next);
        }
      }
    }
  }
  return chains.sort();
}

const RULES = [
  { from: ['analyzer', 'journal'], to: ['native'], why: 'replay needs no root and no addon' },
  { from: ['journal'], to: ['analyzer', 'recorder'], why: 'the format depends on no user of it' },
  {
    from: ['native'],
    to: ['recorder', 'analyzer', 'journal'],
    why: 'the addon surface knows nothing above it',
  },
] as const;

function loadSources(): Map<string, string> {
  const sources = new Map<string, string>();
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(join(PACKAGE_ROOT, dir), { recursive: true })) {
      const name = String(entry).split('\\').join('/');
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      const file = `${dir}/${name}`;
      sources.set(file, readFileSync(join(PACKAGE_ROOT, file), 'utf8'));
    }
  }
  return sources;
}

t.test('the parser sees every import form and ignores imports quoted in comments', (t) => {
  const graph = importGraph(
    new Map([
      [
        'analyzer/a.ts',
        "import {\n  x,\n  type Y,\n} from '../common/c.js';\nconst m = await import( '../journal/j.js' );\n",
      ],
      ['common/c.ts', "import { readFileSync } from 'node:fs';\nexport const x = 1;\n"],
      ['journal/j.ts', 'export { k } from \'./k.js\';\nexport * from "./l.js";\n'],
      ['journal/k.ts', "import type { Z } from '../native/index.js';\nexport const k = 1;\n"],
      ['journal/l.ts', "import './side.js';\nimport { gone } from './missing.js';\n"],
      ['journal/side.ts', '/* import { r } from "../recorder/r.js"; */\n'],
      ['native/index.ts', "// import { j } from '../journal/j.js';\nimport '../common/c.js';\n"],
      [
        'recorder/r.ts',
        "import { createRequire } from 'node:module';\nrequire('../native/index.js');",
      ],
    ]),
  );
  t.strictSame(
    Object.fromEntries([...graph.edges].map(([f, s]) => [f, [...s].sort()])),
    {
      'analyzer/a.ts': ['common/c.ts', 'journal/j.ts'],
      'common/c.ts': [],
      'journal/j.ts': ['journal/k.ts', 'journal/l.ts'],
      'journal/k.ts': ['native/index.ts'],
      'journal/l.ts': ['journal/side.ts'],
      'journal/side.ts': [],
      'native/index.ts': ['common/c.ts'],
      'recorder/r.ts': ['native/index.ts'],
    },
    'multi-line, type, dynamic, re-export, side-effect and require imports; no commented one',
  );
  t.strictSame(graph.unresolved, ['journal/l.ts → ./missing.js'], 'a broken import is reported');
  t.strictSame(
    forbiddenChains(graph, ['analyzer', 'journal'], ['native']),
    [
      'analyzer/a.ts → journal/j.ts → journal/k.ts → native/index.ts',
      'journal/j.ts → journal/k.ts → native/index.ts',
      'journal/k.ts → native/index.ts',
    ],
    'a transitive import of native/ is found, with its chain',
  );
  t.strictSame(forbiddenChains(graph, ['native'], ['journal']), [], 'a commented import is none');
  t.end();
});

t.test('the real sources: nothing imports upward', (t) => {
  const sources = loadSources();
  const graph = importGraph(sources);
  t.ok(sources.size >= 20, `the sources were found (${sources.size} files)`);
  t.strictSame(graph.unresolved, [], 'every relative import names a source file');
  // Known edges: a parser that found nothing would pass every rule below vacuously.
  const crosses = (a: string, b: string) =>
    [...graph.edges].some(([f, to]) => folder(f) === a && [...to].some((x) => folder(x) === b));
  t.ok(
    graph.edges.get('recorder/recording.ts')?.has('native/index.ts'),
    'recorder/recording.ts → native/index.ts is seen',
  );
  t.ok(crosses('analyzer', 'journal'), 'analyzer → journal is seen');
  t.ok(crosses('recorder', 'journal'), 'recorder → journal is seen');
  t.ok(crosses('native', 'common'), 'native → common is seen');
  for (const rule of RULES) {
    t.strictSame(
      forbiddenChains(graph, rule.from, rule.to),
      [],
      `nothing in ${rule.from.join(', ')} imports ${rule.to.join(', ')}: ${rule.why}`,
    );
  }
  t.end();
});
