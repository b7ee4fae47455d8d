// Every ruleset of the real-world corpus, loaded for real by nft / iptables-nft-restore into a
// fresh namespace: the ones SOURCES.md says load do, the others fail with the error it names.
import '../../helpers/kernel.js';
import t from 'tap';
import { makeNetns, run, type TeardownHost } from '../../helpers/netns.js';
import { CORPUS_DIR, type CorpusEntry, corpusTable, type Loader } from '../../helpers/rulesets.js';

const LOAD: Record<Loader, (file: string) => string[]> = {
  nft: (file) => ['nft', '-f', file],
  json: (file) => ['nft', '-j', '-f', file],
  iptables: (file) => ['iptables-nft-restore', file],
  ip6tables: (file) => ['ip6tables-nft-restore', file],
};

const inNs = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];

/** A fresh namespace with the interfaces the file names (veth: no dummy module everywhere). */
async function namespaceFor(t: TeardownHost, entry: CorpusEntry): Promise<string> {
  const ns = makeNetns(t, 'corpus');
  for (const dev of entry.interfaces) {
    await run(['ip', '-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}-p`]);
  }
  return ns;
}

/** Loads the file in `ns`; relative includes resolve from the corpus folder. */
function load(ns: string, entry: CorpusEntry, extra: string[] = []) {
  const [cmd, ...args] = LOAD[entry.load](entry.file);
  return run(inNs(ns, [cmd as string, ...extra, ...args]), {
    check: false,
    cwd: CORPUS_DIR,
    timeoutMs: 30_000,
  });
}

const table = corpusTable();

for (const entry of table.filter((e) => e.failure === undefined)) {
  t.test(`corpus: ${entry.file} loads with ${LOAD[entry.load]('').join(' ')}`, async (t) => {
    const ns = await namespaceFor(t, entry);
    const res = await load(ns, entry);
    t.equal(res.code, 0, `${entry.file} loads: ${res.stderr.trim()}`);
    // Loaded, not merely parsed: the kernel lists tables beyond the harness's own probe table.
    const listed = await run(inNs(ns, ['nft', '-j', 'list', 'tables']));
    const tables = (JSON.parse(listed.stdout).nftables as Record<string, { name: string }>[])
      .filter((o) => o.table !== undefined && o.table.name !== 'conntracker_probe')
      .map((o) => o.table?.name);
    t.ok(tables.length > 0, `${entry.file} left tables in the kernel: ${tables.join(', ')}`);
  });
}

for (const entry of table.filter((e) => e.failure !== undefined)) {
  t.test(`corpus: ${entry.file} is refused here as SOURCES.md says (${entry.why})`, async (t) => {
    const ns = await namespaceFor(t, entry);
    const res = await load(ns, entry);
    t.not(res.code, 0, `${entry.file} does not load`);
    t.match(res.stderr, entry.failure as string, `the error names ${entry.failure}`);
    if (entry.load === 'iptables' || entry.load === 'ip6tables') {
      // The file is well-formed iptables-save text all the same: the parser alone accepts it.
      const parsed = await load(ns, entry, ['--test']);
      t.equal(parsed.code, 0, `${entry.file} passes --test: ${parsed.stderr.trim()}`);
    }
  });
}
