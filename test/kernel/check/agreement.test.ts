// The kernel's word on real rulesets: each corpus ruleset loaded in a firewall namespace judges
// whole TCP/UDP/ICMP conversations (input, output, forward; IPv4 and IPv6) recorded without it,
// and `ct-analyze check` on that recording must say what the kernel did.
// While developing: CT_AGREE_ONLY=<part of a file name> judges only those rulesets (the count
// checks then fail), CT_AGREE_DEBUG=1 prints every exchange that was not accepted.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { ANALYZER, RECORDER, startRecorder } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import {
  connectionKey,
  type Exchange,
  exchangesFor,
  type KernelVerdict,
  kernelVerdicts,
  keyOf,
  loadInFirewall,
  type Outcome,
  type Servers,
  startServers,
  warmUp,
} from '../../helpers/agreement.js';
import { createTopology, exitedWithin, run, type Topology } from '../../helpers/netns.js';
import { CORPUS_DIR, type CorpusEntry, corpusTable } from '../../helpers/rulesets.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();
for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

/** The firewall's interfaces: the one facing the client, the one facing the server. */
interface Faces {
  client: string;
  server: string;
  /** Why these names: which zone or rule of the ruleset each one meets. */
  why: string;
}

const PLAIN: Faces = {
  client: 'eth0',
  server: 'eth1',
  why: 'names no interface beyond lo: the default eth0 / eth1',
};

/**
 * Every corpus ruleset the kernel here loads into ip / ip6 / inet tables with a chain that can
 * drop. Left out: nftables-example-{arp,bridge}-filter (no IP hook: arp and bridge families),
 * nftables-example-netdev-ingress (netdev: before any IP hook, on a device of its own),
 * nftables-example-{inet,ipv4,ipv6}-nat and -nat (nat chains only: they rewrite the exchanges
 * instead of judging them), nftables-example-ipv{4,6}-mangle (a route chain that only marks),
 * nftables-example-overview, nftables-test-maps-typeof_maps_0 and
 * nftables-test-sets-0045concat_ipv4_service (no base chain: nothing is hooked), and the files
 * SOURCES.md says the kernel here refuses (flowtables, the rtsp helper, secmark, xt matches in
 * JSON, nfacct, nft 1.0.8 syntax, ufw's fragments).
 */
const FACES: Record<string, Faces> = {
  'debian-etc-nftables.conf.nft': PLAIN,
  'docker-usernet-portmap.iptables-save.rules': {
    client: 'eth0',
    server: 'eth1',
    why: 'the host outside its bridges docker0 / bridge1: eth0 / eth1 meet the "! -i bridge" rules',
  },
  'docker-usernet-portmap.nft': {
    client: 'eth0',
    server: 'eth1',
    why: 'as its iptables-save twin',
  },
  'firewalld-configured.nft': {
    client: 'eth0',
    server: 'eth1',
    why: 'eth0 is in zone public (services, ports, rich rules), eth1 in zone trusted',
  },
  'firewalld-configured.json': {
    client: 'eth0',
    server: 'eth1',
    why: 'as its nft twin',
  },
  'firewalld-default.nft': {
    client: 'eth0',
    server: 'eth1',
    why: "no interface in a zone: the default zone's rules apply to any name",
  },
  'firewalld-default.json': {
    client: 'eth0',
    server: 'eth1',
    why: 'as its nft twin',
  },
  'nftables-example-ct_helpers.nft': PLAIN,
  'nftables-example-inet-filter.nft': PLAIN,
  'nftables-example-ipv4-filter.nft': PLAIN,
  'nftables-example-ipv4-raw.nft': PLAIN,
  'nftables-example-ipv6-filter.nft': PLAIN,
  'nftables-example-ipv6-raw.nft': PLAIN,
  'nftables-example-workstation.nft': PLAIN,
  'nftables-test-chains-0040mark_shift_0.nft': PLAIN,
  'nftables-test-chains-0041chain_binding_0.nft': PLAIN,
  'nftables-test-sets-0024named_objects_0.nft': PLAIN,
  'openwrt-fw4-02_zones-02_masq.nft': {
    client: 'zone1',
    server: 'zone3',
    why: 'zone1 (test1) accepts from and to itself; zone3 (test3) rejects: forwarding meets both',
  },
  'openwrt-fw4-02_zones-04_wildcard_devices.nft': {
    client: 'test1',
    server: 'foo0',
    why: 'test1 matches "test*" and the set { test1, test2 }; foo0 matches the wildcard "foo*"',
  },
  'openwrt-fw4-03_rules-04_icmp.nft': PLAIN,
  'openwrt-fw4-03_rules-05_mangle.nft': {
    client: 'eth0',
    server: 'eth2',
    why: 'eth0 is in zone lan { eth0, eth1 }, eth2 in zone wan { eth2, eth3 }',
  },
  'openwrt-fw4-03_rules-07_redirect.nft': {
    client: 'pppoe-wan',
    server: 'br-lan',
    why: 'the client on the wan zone (its redirects), the server on lan',
  },
  'openwrt-fw4-03_rules-09_time.nft': PLAIN,
  'openwrt-fw4-03_rules-12_mark.nft': PLAIN,
  'openwrt-fw4-05_ipsets-02_usage.nft': PLAIN,
  'public-debian-raspi3-image-spec.nft': PLAIN,
  'public-debian-raspi3-image-spec.v4.rules': PLAIN,
  'public-debian-raspi3-image-spec.v6.rules': PLAIN,
  'public-debian-router-failover.nft': {
    client: 'br0',
    server: 'enp1s0',
    why: 'br0 is $DEV_PRIVATE (inbound_private: ssh, dns, icmp), enp1s0 $DEV_WORLD',
  },
  'public-hcl-debian-firewall.v4.rules': PLAIN,
  'public-hcl-debian-firewall.v6.rules': PLAIN,
  'public-larsks-bridged-containers.v4.rules': {
    client: 'eth1',
    server: 'eth0',
    why: 'its one named interface is the masquerading uplink -o eth0: the server side',
  },
  'public-nixos-networking.nftables.ruleset-example.nft': PLAIN,
  'ufw-default.iptables-save.rules': PLAIN,
  'ufw-enabled.iptables-save.rules': {
    client: 'eth0',
    server: 'eth1',
    why: 'its rules name eth0 (allow in on eth0 to 53, route in on eth0 out on eth1) and eth1',
  },
  'ufw-enabled.ip6tables-save.rules': {
    client: 'eth0',
    server: 'eth1',
    why: 'as its iptables twin',
  },
};

// 2.5 to 4.5 minutes here (36 rulesets × 66 exchanges, 7 recordings; the longer with the
// machine's load at 13): tap's 180 s is too short.
t.setTimeout(600_000);

const corpus = new Map(corpusTable().map((e) => [e.file, e]));

const dir = mkdtempSync(join(tmpdir(), `ct-agree-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * No corpus ruleset breaks a connection after its first packet here (each accepts established
 * traffic), so one is derived, apart from the corpus and its count: the NixOS example without
 * its established rule (every reply to the host's own connections is dropped: breaks on the
 * reply) and with ssh accepted only when new (the client's later packets are dropped: breaks
 * later). Written into the test's folder; judged with the plain interfaces.
 */
const NIXOS = 'public-nixos-networking.nftables.ruleset-example.nft';
const DERIVED = join(dir, 'derived-nixos-new-only.nft');
{
  const text = readFileSync(join(CORPUS_DIR, NIXOS), 'utf8');
  const derived = text
    .replace('ct state {established, related} accept', '')
    .replace('tcp dport 22 accept', 'ct state new tcp dport 22 accept');
  if (derived.includes('established') || !derived.includes('ct state new tcp dport 22')) {
    throw new Error(`${NIXOS} changed: the derived ruleset no longer says what it should`);
  }
  writeFileSync(DERIVED, derived);
  FACES[DERIVED] = PLAIN;
  const nixos = corpus.get(NIXOS) as CorpusEntry;
  corpus.set(DERIVED, { ...nixos, file: DERIVED, source: `derived from ${NIXOS}` });
}

/**
 * The socket owner where no local socket exists: nothing the kernel hooks before input or on
 * forward has one, nor a connection's first packet on input (early demux attaches only an
 * established socket), so `meta skuid` / `skgid` never match there, negated or not, and every
 * exchange passes. check must decide them all, none undetermined.
 */
const SKUID = join(dir, 'derived-skuid-without-socket.nft');
writeFileSync(
  SKUID,
  [
    'table inet socketless {',
    '  chain before { type filter hook prerouting priority -5; meta skuid 0 drop; meta skgid != 0 drop; }',
    '  chain local_in {',
    '    type filter hook input priority 5;',
    '    ct state new meta skuid 0 drop',
    '    ct state new meta skuid != 0 drop',
    '    ct state new meta skgid { 0, 1000 } drop',
    '  }',
    '  chain forwarded { type filter hook forward priority 5; meta skuid 0 drop; meta skgid != 0 drop; }',
    '}',
    '',
  ].join('\n'),
);
FACES[SKUID] = PLAIN;
corpus.set(SKUID, {
  file: SKUID,
  source: 'derived: meta skuid / skgid where no socket exists',
  load: 'nft',
  interfaces: [],
  line: 0,
});
/** Derived rulesets check must decide for every exchange. */
const DECIDES_ALL = new Set([SKUID]);

interface JsonFlow {
  table: string;
  src: string;
  dst: string;
  dport?: number;
}

/** The recorded flows of a journal, by the connection key of the exchange they stand for. */
async function recordedFlows(journal: string): Promise<Map<string, JsonFlow>> {
  const res = await run(
    [process.execPath, ANALYZER, journal, '--format', 'json', '--collapse', 'none'],
    { timeoutMs: 30_000 },
  );
  const flows = (JSON.parse(res.stdout) as { flows: JsonFlow[] }).flows;
  return new Map(flows.map((f) => [flowKey(f), f]));
}

function flowKey(f: JsonFlow): string {
  const proto = f.table.slice(0, -2).toLowerCase();
  return connectionKey(proto, f.src, f.dst, proto === 'icmp' ? undefined : f.dport);
}

/** One topology per pair of interface names: its recording serves every ruleset of the pair. */
interface Bench {
  topo: Topology;
  servers: Servers;
  exchanges: Exchange[];
  journal: string;
}

async function bench(t: Test, faces: Faces, net: number, tag: string): Promise<Bench> {
  const topo = await createTopology(t, 'fw', { net, devices: faces });
  const servers = await startServers(topo, 600);
  const exchanges = exchangesFor(topo);
  t.same(
    await warmUp(topo, exchanges),
    [],
    `${tag}: with no ruleset every exchange completes, so a later failure is the ruleset's`,
  );
  const journal = join(dir, `${tag}.mpk`);
  const rec = await startRecorder(topo, journal);
  const recorded = await kernelVerdicts(topo, servers, exchanges);
  rec.child.kill('SIGTERM');
  const exit = await exitedWithin(rec.child, 20_000);
  if (exit !== 0) throw new Error(`ct-record exited ${exit}: ${rec.stderr()}`);
  const refused = exchanges.filter((x) => recorded.get(x.id)?.outcome !== 'accepted');
  t.same(
    refused.map((x) => x.id),
    [],
    `${tag}: every exchange completes again while ct-record records`,
  );
  const flows = await recordedFlows(journal);
  t.same(
    exchanges.filter((x) => !flows.has(keyOf(x))).map((x) => x.id),
    [],
    `${tag}: ct-record recorded a flow for every exchange`,
  );
  return { topo, servers, exchanges, journal };
}

type CheckVerdict = Outcome | 'undetermined';

/**
 * What `ct-analyze check` (the built CLI) says of each recorded flow of the journal, by
 * connection key: in `blocked`, `breaks` or `undetermined`, else accepted.
 */
async function checkVerdicts(
  entry: CorpusEntry,
  journal: string,
): Promise<{ said: Map<string, CheckVerdict>; undecidable: string[] }> {
  const args = ['check', '--ruleset', resolve(CORPUS_DIR, entry.file), '--format', 'json'];
  const res = await run([process.execPath, ANALYZER, ...args, '--collapse', 'none', journal], {
    check: false,
    timeoutMs: 60_000,
  });
  if (res.code !== 0) {
    throw new Error(`ct-analyze ${args.join(' ')}: exit ${res.code}: ${res.stderr.trim()}`);
  }
  const report = JSON.parse(res.stdout) as Record<CheckVerdict, JsonFlow[] | undefined> & {
    version: number;
    undecidable?: { chain: string; rule: number; match: string; flows: number }[];
  };
  const out = new Map<string, CheckVerdict>();
  for (const kind of ['blocked', 'breaks', 'undetermined'] as const) {
    const list = report[kind];
    if (!Array.isArray(list))
      throw new Error(`check's report (version ${report.version}) has no ${kind}`);
    for (const f of list) out.set(flowKey(f), kind);
  }
  const undecidable = (report.undecidable ?? []).map(
    (u) => `${u.chain} rule ${u.rule}: ${u.match} (${u.flows} flows)`,
  );
  return { said: out, undecidable };
}

/** Exchanges whose verdicts were compared, over all rulesets. */
const totals = { exchanges: 0, agree: 0, undetermined: 0, rewritten: 0 };

/**
 * Compares check's verdicts with the kernel's for every exchange of one ruleset: equal where
 * check decides; undetermined ones counted apart; ones the ruleset's DNAT sent elsewhere (the
 * recording, made without the ruleset, saw another connection) left out and counted.
 */
async function compare(t: Test, b: Bench, entry: CorpusEntry, kernel: Map<string, KernelVerdict>) {
  const { said, undecidable: open } = await checkVerdicts(entry, b.journal);
  const wrong: string[] = [];
  let agree = 0;
  let undetermined = 0;
  let rewritten = 0;
  for (const x of b.exchanges) {
    const k = kernel.get(x.id) as KernelVerdict;
    const c = said.get(keyOf(x)) ?? 'accepted';
    if (k.dnat) rewritten++;
    else if (c === 'undetermined') undetermined++;
    else if (c === k.outcome) agree++;
    else wrong.push(`${x.id}: kernel ${k.outcome} (${k.step}), check ${c}`);
  }
  const n = b.exchanges.length;
  const dnat = rewritten > 0 ? `, ${rewritten} sent elsewhere by its DNAT (not compared)` : '';
  t.comment(
    `${basename(entry.file)}: ${n} exchanges, agree ${agree}, undetermined ${undetermined}${dnat}`,
  );
  for (const u of open) t.comment(`  undecidable: ${u}`);
  if (DECIDES_ALL.has(entry.file)) {
    t.equal(undetermined, 0, `${basename(entry.file)}: check decides every exchange`);
  }
  t.same(
    wrong,
    [],
    `${basename(entry.file)}: check's verdict is the kernel's for every decided exchange`,
  );
  totals.exchanges += n - rewritten;
  totals.agree += agree;
  totals.undetermined += undetermined;
  totals.rewritten += rewritten;
}

/** What the kernel decided for each exchange of `entry`, by id. */
async function judge(b: Bench, entry: CorpusEntry): Promise<Map<string, KernelVerdict>> {
  await loadInFirewall(b.topo, entry);
  return kernelVerdicts(b.topo, b.servers, b.exchanges);
}

const groups = new Map<string, string[]>();
for (const [file, faces] of Object.entries(FACES)) {
  const key = `${faces.client}/${faces.server}`;
  groups.set(key, [...(groups.get(key) ?? []), file]);
}

/** The kernel's verdicts of every ruleset, filled by the test below. */
const verdicts = new Map<string, Map<string, KernelVerdict>>();

t.test('kernel: each corpus ruleset judges the recorded exchanges', async (t) => {
  let net = 80;
  for (const [pair, all] of groups) {
    const only = process.env.CT_AGREE_ONLY;
    const files = all.filter((f) => only === undefined || f.includes(only));
    if (files.length === 0) continue;
    const faces = FACES[files[0] as string] as Faces;
    const b = await bench(t, faces, net, pair.replace('/', '-'));
    net += 2;
    for (const file of files) {
      const entry = corpus.get(file);
      if (entry === undefined || entry.failure !== undefined) {
        throw new Error(`${file}: SOURCES.md must list it as loading here`);
      }
      const v = await judge(b, entry);
      verdicts.set(file, v);
      const count = (o: string) => [...v.values()].filter((x) => x.outcome === o).length;
      t.comment(
        `${basename(file)} (${pair}): accepted ${count('accepted')}, blocked ${count('blocked')}, breaks ${count('breaks')}`,
      );
      if (process.env.CT_AGREE_DEBUG) {
        for (const [id, x] of v)
          if (x.outcome !== 'accepted')
            t.comment(`  ${id}: ${x.outcome} ${x.step}${x.dnat ? ' dnat' : ''}`);
      }
      await compare(t, b, entry, v);
    }
    await b.topo.destroy();
  }
  t.equal(verdicts.size, Object.keys(FACES).length, 'every listed ruleset was judged');
  t.ok(verdicts.size - 2 >= 30, `at least 30 corpus rulesets (${verdicts.size - 2})`);
  const { exchanges, agree, undetermined, rewritten } = totals;
  t.comment(
    `all: ${exchanges} exchanges compared, agree ${agree}, undetermined ${undetermined}, ${rewritten} sent elsewhere by DNAT`,
  );
  t.equal(
    agree + undetermined,
    exchanges,
    'check agrees with the kernel on every decided exchange',
  );
  t.ok(
    undetermined < exchanges / 10,
    `under 10 % of the flows stay undetermined (${undetermined} of ${exchanges})`,
  );
});

/** Outcomes read off the rulesets by hand: the harness must find them before check is compared. */
const KNOWN: [file: string, exchange: string, outcome: Outcome, why: string][] = [
  ['debian-etc-nftables.conf.nft', '*', 'accepted', 'policy accept on every hook, no rule'],
  ['ufw-default.iptables-save.rules', 'input tcpv4 80', 'blocked', 'INPUT policy DROP, no allow'],
  [
    'ufw-default.iptables-save.rules',
    'output tcpv4 443',
    'accepted',
    'OUTPUT accepts, input established',
  ],
  [
    'ufw-default.iptables-save.rules',
    'input tcpv6 80',
    'accepted',
    'an iptables file: IPv6 unfiltered',
  ],
  [
    'ufw-default.iptables-save.rules',
    'input icmpv4',
    'accepted',
    'ufw-before-input allows echo-request',
  ],
  ['openwrt-fw4-02_zones-02_masq.nft', 'input tcpv4 22', 'accepted', 'zone1 accepts from itself'],
  ['openwrt-fw4-02_zones-02_masq.nft', 'forward udpv6 53', 'blocked', 'forwarding zone1 → zone3'],
  ['openwrt-fw4-03_rules-07_redirect.nft', 'input tcpv4 80', 'blocked', 'wan input is rejected'],
  ['openwrt-fw4-03_rules-07_redirect.nft', 'output udpv4 53', 'blocked', 'output_wan drops'],
  ['public-debian-router-failover.nft', 'input tcpv4 22', 'accepted', 'inbound_private: ssh'],
  ['public-debian-router-failover.nft', 'input tcpv4 80', 'blocked', 'rejected after the vmap'],
  ['public-debian-router-failover.nft', 'forward tcpv6 443', 'accepted', 'iifname br0 accept'],
  [DERIVED, 'output tcpv4 443', 'breaks', 'no established rule: the reply is dropped'],
  [DERIVED, 'output udpv6 53', 'breaks', 'no established rule: the reply is dropped'],
  [DERIVED, 'input tcpv4 22', 'breaks', 'ssh accepted when new only: later packets dropped'],
  [DERIVED, 'input icmpv6', 'accepted', 'echo-request accepted whatever its state'],
  [SKUID, '*', 'accepted', 'meta skuid / skgid never match without a local socket'],
];

t.test('kernel: the outcomes read off the rulesets by hand are what the kernel does', async (t) => {
  for (const [file, exchange, outcome, why] of KNOWN) {
    const v = verdicts.get(file);
    if (v === undefined) {
      if (process.env.CT_AGREE_ONLY === undefined) t.fail(`${file} was not judged`);
      continue;
    }
    const ids = exchange === '*' ? [...v.keys()] : [exchange];
    t.same(
      ids.filter((id) => v.get(id)?.outcome !== outcome),
      [],
      `${basename(file)}: ${exchange} ${outcome} (${why})`,
    );
  }
});
