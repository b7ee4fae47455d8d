// bench/check-gen.mjs: the kube-proxy-shaped rulesets and journal are reproducible, hold as many rules as they say, and the journal as many connections.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { tempDir } from '../helpers/journals.js';

const GEN = join(PACKAGE_ROOT, 'bench', 'check-gen.mjs');
const WRITER = join(PACKAGE_ROOT, 'dist', 'journal', 'writer.js');
if (!existsSync(WRITER)) throw new Error(`${WRITER} is missing: run \`npm run build\` first`);

function generate(out: string): Record<string, string> {
  const run = spawnSync(
    process.execPath,
    [GEN, '--rules', '400', '--flows', '2000', '--out', out],
    {
      encoding: 'utf8',
    },
  );
  if (run.status !== 0) throw new Error(run.stderr);
  return Object.fromEntries(
    run.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
}

t.test(
  'check-gen: the same arguments give the same bytes, and the counts it prints are true',
  async (t) => {
    const a = tempDir(t, 'check-gen-a');
    const b = tempDir(t, 'check-gen-b');
    const said = generate(a);
    generate(b);
    for (const f of ['kube-nft.nft', 'kube-iptables.rules', 'journal.mpk']) {
      t.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} is reproducible`);
    }
    const nft = readFileSync(join(a, 'kube-nft.nft'), 'utf8');
    const ipt = readFileSync(join(a, 'kube-iptables.rules'), 'utf8');
    const nftRules = nft.split('\n').filter((l) => l.startsWith('add rule ')).length;
    const iptRules = ipt.split('\n').filter((l) => l.startsWith('-A ')).length;
    t.equal(String(nftRules), said.nft_rules);
    t.equal(String(iptRules), said.iptables_rules);
    t.ok(
      nftRules >= 400 && iptRules >= 400,
      `both hold at least 400 rules (${nftRules}, ${iptRules})`,
    );
    // kube-proxy's shapes: the service-ips verdict map and numgen endpoints; one KUBE-SERVICES rule per service.
    t.match(
      nft,
      /^add rule ip kube-proxy services ip daddr \. meta l4proto \. th dport vmap @service-ips$/m,
    );
    t.match(nft, /numgen random mod \d+ vmap \{ 0 : goto endpoint-/);
    t.match(
      ipt,
      /^-A KUBE-SERVICES -m comment --comment "\S+ cluster IP" -m tcp -p tcp -d 172\.30\.\d+\.\d+ --dport \d+ -j KUBE-SVC-/m,
    );
    t.equal(
      ['cluster', 'noEndpoints', 'nodePort', 'loadBalancer', 'unrelated']
        .map((k) => Number(said[`flows_${k}`]))
        .reduce((x, y) => x + y, 0),
      2000,
      'every connection is of one kind',
    );
    const { openJournal } = await import(join(PACKAGE_ROOT, 'dist', 'journal', 'reader.js'));
    const reader = openJournal(join(a, 'journal.mpk'));
    try {
      for (const _ of reader.items());
      t.match(
        reader.trailer,
        { events: 4000, byType: { new: 2000, destroy: 2000 } },
        'a NEW and a DESTROY per connection, closed cleanly',
      );
      t.equal(reader.addressSets[0]?.addresses.length, 3, "the node's addresses are in the header");
      t.equal(reader.routeSets[0]?.routes.length, 3, 'and its routes');
    } finally {
      reader.close();
    }
  },
);
