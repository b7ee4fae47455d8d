// The ruleset corpus names its sources: SOURCES.md lists every file of the folder, once, and
// every file it lists exists, with a source section and a generation script where it says so.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CORPUS_DIR, corpusFiles, corpusTable, sourceSections } from './helpers/rulesets.js';

const table = corpusTable();
const listed = table.map((e) => e.file);
const present = corpusFiles();

t.test('SOURCES.md lists every file of test/fixtures/rulesets/', async (t) => {
  t.strictSame(
    present.filter((f) => !listed.includes(f)),
    [],
    'files in the folder that SOURCES.md does not list',
  );
});

t.test('every file SOURCES.md lists exists, and is listed once', async (t) => {
  t.strictSame(
    listed.filter((f) => !existsSync(join(CORPUS_DIR, f))),
    [],
    'listed files missing from the folder',
  );
  t.strictSame(
    listed.filter((f, i) => listed.indexOf(f) !== i),
    [],
    'files listed twice',
  );
});

t.test('the corpus holds at least 30 rulesets', async (t) => {
  t.ok(table.length >= 30, `${table.length} rulesets`);
});

t.test('every row names a source that has its own section in SOURCES.md', async (t) => {
  const sections = sourceSections();
  t.strictSame(
    table.filter((e) => !sections.includes(e.source)).map((e) => `${e.file}: ${e.source}`),
    [],
  );
});

t.test('every generation script SOURCES.md names exists in make/', async (t) => {
  const text = readFileSync(join(CORPUS_DIR, 'SOURCES.md'), 'utf8');
  const scripts = [...new Set([...text.matchAll(/`make\/([\w.-]+\.sh)/g)].map((m) => m[1]))];
  t.ok(scripts.length > 0, 'SOURCES.md names its scripts');
  t.strictSame(
    scripts.filter((s) => !existsSync(join(CORPUS_DIR, 'make', s as string))),
    [],
  );
});

t.test('a row whose load is json holds JSON, an iptables row a *table section', async (t) => {
  for (const e of table) {
    const text = readFileSync(join(CORPUS_DIR, e.file), 'utf8');
    if (e.load === 'json') t.doesNotThrow(() => JSON.parse(text), e.file);
    if (e.load === 'iptables' || e.load === 'ip6tables') {
      t.match(text, /^\*(filter|nat|mangle|raw|security)$/m, e.file);
    }
  }
});

t.test('a malformed row is refused with its line number', async (t) => {
  t.throws(() => corpusTable('x\n| `a.nft` | public | nft | |\n'), /SOURCES\.md:2: a row needs 5/);
  t.throws(() => corpusTable('| `a.nft` | public | pf | | loads |\n'), /SOURCES\.md:1: load/);
  t.throws(() => corpusTable('| `a.nft` | public | nft | | broken |\n'), /"loads" or "fails/);
});
