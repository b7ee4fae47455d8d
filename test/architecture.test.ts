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

/**
 * analyzer/'s rooms and the rooms each may import (besides itself, common/ and journal/):
 * core ← report ← rules/check/diff/verify ← commands ← cli; import/, redact/ and export/ stand
 * on core alone; recorder/ may use core and report for its live table, nothing else.
 */
const ROOM_DOORS: Readonly<Record<string, readonly string[]>> = {
  'analyzer/core': [],
  'analyzer/report': ['analyzer/core'],
  'analyzer/rules': ['analyzer/core', 'analyzer/report'],
  'analyzer/check': ['analyzer/core', 'analyzer/report'],
  'analyzer/diff': ['analyzer/core', 'analyzer/report'],
  'analyzer/verify': ['analyzer/core', 'analyzer/report'],
  'analyzer/import': ['analyzer/core'],
  'analyzer/redact': ['analyzer/core'],
  'analyzer/export': ['analyzer/core'],
  'analyzer/commands': [
    'analyzer/core',
    'analyzer/report',
    'analyzer/rules',
    'analyzer/check',
    'analyzer/diff',
    'analyzer/verify',
    'analyzer/import',
    'analyzer/redact',
    'analyzer/export',
  ],
  'analyzer/cli.ts': ['analyzer/commands'],
  recorder: ['analyzer/core', 'analyzer/report'],
};

/** The room of a source file: `analyzer/ROOM` for analyzer's sub-folders, else its top folder. */
function roomOf(file: string): string {
  const parts = file.split('/');
  return parts[0] === 'analyzer' ? `analyzer/${parts[1]}` : (parts[0] as string);
}

/** Every direct import that crosses a door the map does not open, as `a.ts → b.ts`. */
function closedDoors(graph: Graph, doors: Readonly<Record<string, readonly string[]>>): string[] {
  const out: string[] = [];
  for (const [file, targets] of graph.edges) {
    const from = roomOf(file);
    const open = doors[from];
    if (open === undefined) continue;
    for (const target of targets) {
      const to = roomOf(target);
      if (to === from || !to.startsWith('analyzer')) continue;
      if (!open.includes(to)) out.push(`${file} → ${target}`);
    }
  }
  return out.sort();
}

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

t.test('analyzer rooms: every import goes through an open door, one way', (t) => {
  const sources = loadSources();
  const graph = importGraph(sources);
  const rooms = new Set([...sources.keys()].map(roomOf).filter((r) => r.startsWith('analyzer/')));
  t.strictSame(
    [...rooms].filter((r) => ROOM_DOORS[r] === undefined),
    [],
    'every analyzer file lives in a room the door map knows',
  );
  t.ok(
    graph.edges.get('analyzer/report/text.ts')?.has('analyzer/core/flows.ts'),
    'report → core is seen (the check is not vacuous)',
  );
  t.strictSame(closedDoors(graph, ROOM_DOORS), [], 'no import upward or sideways between rooms');
  t.end();
});

t.test('a door check finds an upward and a sideways import', (t) => {
  const graph = importGraph(
    new Map([
      ['analyzer/core/a.ts', "import { r } from '../report/r.js';\n"],
      ['analyzer/report/r.ts', "import { a } from '../core/a.js';\n"],
      ['analyzer/check/c.ts', "import { p } from '../rules/p.js';\nimport '../report/r.js';\n"],
      ['analyzer/rules/p.ts', "import { a } from '../core/a.js';\n"],
      ['recorder/x.ts', "import '../analyzer/check/c.js';\nimport '../analyzer/core/a.js';\n"],
    ]),
  );
  t.strictSame(closedDoors(graph, ROOM_DOORS), [
    'analyzer/check/c.ts → analyzer/rules/p.ts',
    'analyzer/core/a.ts → analyzer/report/r.ts',
    'recorder/x.ts → analyzer/check/c.ts',
  ]);
  t.end();
});
