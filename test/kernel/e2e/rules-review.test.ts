// Issue 17's review scenario end to end in the kernel: a realistic server recorded by ct-record, its generated rules loaded, probed.
//
// What the scenario holds (test/helpers/review-scenario.ts, topology `review` of netns.ts), and why:
// - the server 10.66.0.10 / 2001:db8:66::10 with tcp 22, 80, 443, 5432, 8080, udp 53 and 161
//   (answered) and udp 514 (syslog: read, never answered), behind a router whose interface toward
//   the clients has MTU 1280 (the clients' side 1500): the server's 100 KB answers need ICMP
//   fragmentation-needed / packet-too-big, which the rules must let in (path-MTU discovery);
// - office clients (150 over 10.66.10.0/24) and DHCP clients (80 in 10.66.11.0/25) on 80, 443
//   and 53: with the default density 0.5 these stand for the /24 and the /25, so new clients of
//   those subnets get their services. One DHCP client's DNS query is never answered: it must not
//   split the DNS rule (it got its web pages, so it is no failed source);
// - twelve app servers spread over 10.66.2.0/24 on both sides of .128 (5432, 8080): too sparse
//   for a prefix, and 5432 is sensitive anyway, so 10.66.2.100 next to them must be refused;
// - the admin host 10.66.1.5 (ssh, snmp): sensitive services pinned to it, so office clients are
//   refused there;
// - six IPv6 privacy addresses in 2001:db8:66:10::/64: a new address of that /64 gets 80 and 443;
// - four syslog senders (one-way udp 514): refused by default, allowed with --allow-one-way;
// - an nmap SYN scan from 10.66.1.67 and a connect scan from 10.66.11.200 (the DHCP /24's other
//   half) of 1-1024, 5432 and 8080: scan suspects, never allow-listed;
// - three office clients and an IPv6 one ping; the server checks its own 8080 over loopback,
//   asks its gateway for DNS and pings it: the baseline's echo, loopback and output ICMP rules are
//   exercised by the recording, and the output chain has a recorded service (log mode refuses
//   nothing; --output-chain enforce refuses the server's unrecorded tcp 80 to its gateway).
// Every probe is a row of the table this test prints (probe, source, expected, got); before any
// rule is loaded every probe is answered, so a refusal afterwards is the ruleset's. The probes run
// against the nft ruleset, then against the same plan as iptables (restored with --noflush).
// CT_REVIEW_KEEP=DIR keeps the journal and the rulesets for reading.
import '../../helpers/kernel.js';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ANALYZER, RECORDER } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, REVIEW_NET, run, type Topology } from '../../helpers/netns.js';
import {
  addClientAddresses,
  learnedMtu,
  type ReviewFlow,
  type ReviewHosts,
  recordedFlows,
  recordReview,
  reviewHosts,
  runFlows,
  SERVER,
  type Services,
  serverFlows,
  startServices,
} from '../../helpers/review-scenario.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();
for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}
const nmap = await run(['sh', '-c', 'command -v nmap'], { check: false });
if (nmap.code !== 0) throw new Error('nmap is missing: install the nmap package (.ci/run does)');

// CT_REVIEW_KEEP=DIR keeps the journal and the generated rulesets there (for the note,
// or to rerun ct-analyze on them); otherwise they live in a temporary directory.
const keep = process.env.CT_REVIEW_KEEP;
const dir = keep ?? mkdtempSync(join(tmpdir(), `ct-e2e-review-${process.pid}-`));
if (keep === undefined) t.teardown(() => rmSync(dir, { recursive: true, force: true }));
else mkdirSync(keep, { recursive: true });

type Expect = 'accepted' | 'refused';

interface Probe {
  name: string;
  flow: Omit<ReviewFlow, 'label' | 'expect'>;
  expect: Expect;
}

async function analyze(args: string[]) {
  return run([process.execPath, ANALYZER, ...args], { check: false, timeoutMs: 60_000 });
}

const tcp = (src: string, port: number, dst: string = SERVER.v4) =>
  ({ proto: 'tcp', src, dst, port }) as const;
const udp = (src: string, port: number) => ({ proto: 'udp', src, dst: SERVER.v4, port }) as const;

function probes(h: ReviewHosts): Probe[] {
  const list: Probe[] = [];
  const add = (name: string, flow: Probe['flow'], expect: Expect) =>
    list.push({ name, flow, expect });
  // Recorded legitimate flows: each service from a sample of its recorded sources.
  const dhcpAnswered = h.dhcp.filter((a) => a !== h.silentDns);
  for (const src of [h.office[0], h.office[77], h.office[149]] as string[]) {
    add('recorded office web 80', tcp(src, 80), 'accepted');
    add('recorded office web 443', tcp(src, 443), 'accepted');
    add('recorded office dns 53', udp(src, 53), 'accepted');
  }
  for (const src of [dhcpAnswered[0], dhcpAnswered[40], dhcpAnswered[78]] as string[]) {
    add('recorded dhcp web 80', tcp(src, 80), 'accepted');
    add('recorded dhcp web 443', tcp(src, 443), 'accepted');
    add('recorded dhcp dns 53', udp(src, 53), 'accepted');
  }
  for (const src of [
    h.appServers[0],
    h.appServers[5],
    h.appServers[6],
    h.appServers[11],
  ] as string[]) {
    add('recorded app db 5432', tcp(src, 5432), 'accepted');
    add('recorded app 8080', tcp(src, 8080), 'accepted');
  }
  add('recorded admin ssh 22', tcp(h.admin, 22), 'accepted');
  add('recorded admin snmp 161', udp(h.admin, 161), 'accepted');
  for (const src of [h.v6Clients[1], h.v6Clients[5]] as string[]) {
    add('recorded v6 web 80', tcp(src, 80, SERVER.v6), 'accepted');
    add('recorded v6 web 443', tcp(src, 443, SERVER.v6), 'accepted');
  }
  add('recorded ping', { proto: 'icmp', src: h.pingers[0] as string, dst: SERVER.v4 }, 'accepted');
  add(
    'recorded ping v6',
    { proto: 'icmp', src: h.pingers[3] as string, dst: SERVER.v6 },
    'accepted',
  );
  // New clients of observed subnets.
  add('new office client web 80', tcp(h.unseen.office, 80), 'accepted');
  add('new office client web 443', tcp(h.unseen.office, 443), 'accepted');
  add('new office client dns 53', udp(h.unseen.office, 53), 'accepted');
  add('new dhcp /25 client web 80', tcp(h.unseen.dhcp, 80), 'accepted');
  add('new dhcp /25 client web 443', tcp(h.unseen.dhcp, 443), 'accepted');
  add('new dhcp /25 client dns 53', udp(h.unseen.dhcp, 53), 'accepted');
  add('new v6 privacy address web 80', tcp(h.unseen.v6, 80, SERVER.v6), 'accepted');
  add('new v6 privacy address web 443', tcp(h.unseen.v6, 443, SERVER.v6), 'accepted');
  // Refused.
  for (const port of [22, 80, 443, 5432]) {
    add(`syn scanner ${port}`, tcp(h.synScanner, port), 'refused');
    add(`connect scanner ${port}`, tcp(h.connectScanner, port), 'refused');
  }
  add("app servers' neighbour db 5432", tcp(h.appNeighbour, 5432), 'refused');
  add("app server's /31 mate 8080", tcp(h.appPairMate, 8080), 'refused');
  add('office client snmp 161', udp(h.office[3] as string, 161), 'refused');
  add('office client ssh 22', tcp(h.office[3] as string, 22), 'refused');
  return list;
}

/** The first `n` lines of `text`, and how many more there were. */
function head(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  const more = lines.length - n;
  return more > 0 ? `${lines.slice(0, n).join('\n')}\n… ${more} more lines` : lines.join('\n');
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Runs the probes and prints their table. */
async function probeAll(
  t: Test,
  topo: Topology,
  list: readonly Probe[],
  title: string,
): Promise<void> {
  const got = await runFlows(
    topo,
    list.map((p) => p.flow),
    { waitMs: 2000 },
  );
  const rows = [['probe', 'source', 'expected', 'got']];
  list.forEach((p, i) => {
    const outcome = got[i] ?? 'missing';
    const ok = p.expect === 'accepted' ? outcome === 'accepted' : outcome !== 'accepted';
    rows.push([p.name, p.flow.src, p.expect, `${outcome}${ok ? '' : ' ✗'}`]);
    t.ok(ok, `${title}: ${p.name} from ${p.flow.src}: ${p.expect} (got ${outcome})`);
  });
  t.comment(`${title}\n${table(rows)}`);
}

/** The syslog rows: the server's sink tells whether a datagram got in (nothing ever answers). */
async function probeSyslog(
  t: Test,
  topo: Topology,
  services: Services,
  h: ReviewHosts,
  expect: Expect,
  title: string,
): Promise<void> {
  const before = services.syslogFrom.length;
  await runFlows(
    topo,
    h.syslogSenders.map((src) => ({ ...udp(src, 514), oneWay: true })),
  );
  // The sink prints each datagram it reads: wait until every sender's has come, or 3 s (a
  // refusal always waits the whole bound, so a datagram that gets in late is still seen).
  const got = new Set<string>();
  for (let waited = 0; waited < 3000 && got.size < h.syslogSenders.length; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
    for (const src of services.syslogFrom.slice(before)) got.add(src);
  }
  const rows = [['probe', 'source', 'expected', 'got']];
  for (const src of h.syslogSenders) {
    const outcome = got.has(src) ? 'accepted' : 'refused';
    const ok = outcome === expect;
    rows.push(['syslog 514', src, expect, `${outcome}${ok ? '' : ' ✗'}`]);
    t.ok(ok, `${title}: syslog 514 from ${src}: ${expect} (got ${outcome})`);
  }
  t.comment(`${title}\n${table(rows)}`);
}

/** Rules from the journal (with `extra` options), loaded into the server; the file's path. */
async function loadRules(t: Test, topo: Topology, journal: string, extra: string[], name: string) {
  const res = await analyze(['rules', ...extra, journal]);
  if (res.code !== 0)
    return { error: `ct-analyze rules ${extra.join(' ')}: exit ${res.code}: ${res.stderr.trim()}` };
  const file = join(dir, name);
  writeFileSync(file, res.stdout);
  const load = await topo.exec(topo.server.ns, ['nft', '-f', file], { check: false });
  t.equal(load.code, 0, `nft -f loads the ruleset of rules ${extra.join(' ')}: ${load.stderr}`);
  return { file, text: res.stdout };
}

t.test(
  "the review scenario: the generated rules keep every recorded legitimate flow and new clients of observed subnets, refuse scanners, sparse servers' neighbours and admin-only services, and keep path-MTU discovery",
  async (t) => {
    const started = Date.now();
    const topo = await createTopology(t, 'review');
    const h = reviewHosts();
    await addClientAddresses(topo, h);
    const services = await startServices(topo, h);
    await startServices(topo, h, (topo.router as { ns: string }).ns);
    const journal = join(dir, 'review.mpk');
    rmSync(journal, { force: true });
    const flows = recordedFlows(h);

    const rec = await recordReview(topo, journal, h, flows);
    t.equal(rec.exit, 0, `ct-record exits 0\n${rec.stderr}`);
    const wrong = flows
      .map((f, i) => ({ f, got: rec.outcomes[i] }))
      .filter(({ f, got }) => got !== f.expect)
      .map(({ f, got }) => `${f.label} ${f.src} → ${f.dst} ${f.port ?? ''}: ${got}`);
    t.same(wrong, [], `each of the ${flows.length} recorded flows got what the scenario expects`);
    t.same(
      rec.own,
      serverFlows().map(() => 'accepted'),
      "the server's own health check, DNS lookup and ping were answered",
    );
    for (const [i, scan] of rec.scans.entries()) {
      const open = [...scan.matchAll(/^(\d+)\/tcp\s+open\b/gm)].map((m) => Number(m[1]));
      t.same(
        open,
        [22, 80, 443, 5432, 8080],
        `nmap scan ${i + 1} found the five open ports\n${scan}`,
      );
    }
    // The downloads crossed the 1280-byte hop: the server learned it from the router's ICMP.
    for (const dst of [h.office[1], h.appServers[0], h.v6Clients[0]] as string[]) {
      t.equal(await learnedMtu(topo, dst), 1280, `the server learned path MTU 1280 toward ${dst}`);
    }
    const recordedAt = Date.now();

    const list = probes(h);
    // Before any rule: every probe is answered, so a refusal later is the ruleset's doing.
    await probeAll(
      t,
      topo,
      list.map((p) => ({ ...p, expect: 'accepted' as const })),
      'without rules',
    );
    await probeSyslog(t, topo, services, h, 'accepted', 'without rules');

    const rules = await loadRules(t, topo, journal, [], 'review.nft');
    if ('error' in rules) {
      t.fail(rules.error as string);
      return;
    }
    t.comment(`the generated ruleset (ct-analyze rules review.mpk):\n${head(rules.text, 200)}`);
    await probeAll(t, topo, list, 'with the generated rules');
    await probeSyslog(t, topo, services, h, 'refused', 'with the generated rules');
    const own = serverFlows();
    /** A service the server was never recorded using: its gateway answers tcp 80. */
    const unrecorded = {
      proto: 'tcp',
      src: SERVER.v4,
      dst: REVIEW_NET.routerToServer.v4,
      port: 80,
    } as const;
    const ownGot = await runFlows(topo, [...own, unrecorded], { ns: topo.server.ns });
    for (const [i, f] of own.entries()) {
      t.equal(
        ownGot[i],
        'accepted',
        `the server's own ${f.label} still works with the rules loaded`,
      );
    }
    t.equal(
      ownGot[own.length],
      'accepted',
      'the output chain in log mode refuses nothing: the unrecorded tcp 80 to the gateway works',
    );

    // Downloads toward clients the server has no path MTU for yet: only an ICMP error the
    // ruleset lets in (fragmentation-needed, packet-too-big) teaches it the hop's 1280 bytes;
    // without it the transfer stalls.
    for (const fresh of [h.office[2], h.v6Clients[2]] as string[]) {
      const dst = fresh.includes(':') ? SERVER.v6 : SERVER.v4;
      t.equal(await learnedMtu(topo, fresh), undefined, `no path MTU toward ${fresh} yet`);
      const [download] = await runFlows(topo, [{ ...tcp(fresh, 80, dst), big: true }], {
        waitMs: 10_000,
      });
      t.equal(
        download,
        'accepted',
        `the 100 KB download over tcp 80 to ${fresh} completes with the rules loaded`,
      );
      t.equal(
        await learnedMtu(topo, fresh),
        1280,
        `the server learned path MTU 1280 toward ${fresh} through the rules`,
      );
    }

    // The control: the same download with the router's ICMP errors dropped ahead of the
    // ruleset stalls, so the downloads above passed because the ruleset lets them in.
    const blackhole = `table inet review_blackhole {
  chain in { type filter hook input priority raw - 1; icmp type destination-unreachable drop; }
}
`;
    await topo.exec(topo.server.ns, ['nft', '-f', '-'], { input: blackhole });
    const cut = h.office[4] as string;
    const [stalled] = await runFlows(topo, [{ ...tcp(cut, 80), big: true }], { waitMs: 3000 });
    t.not(stalled, 'accepted', `with fragmentation-needed dropped the download to ${cut} stalls`);
    t.equal(await learnedMtu(topo, cut), undefined, `and no path MTU toward ${cut} is learned`);
    await topo.exec(topo.server.ns, ['nft', 'delete', 'table', 'inet', 'review_blackhole']);

    const oneWay = await loadRules(t, topo, journal, ['--allow-one-way'], 'review-one-way.nft');
    if ('error' in oneWay) {
      t.fail(oneWay.error as string);
    } else {
      await probeSyslog(t, topo, services, h, 'accepted', 'with rules --allow-one-way');
    }

    // --output-chain enforce: what the server was recorded sending still works, the rest is
    // refused (the gateway answers tcp 80, so a refusal is the output chain's).
    const enforce = await loadRules(
      t,
      topo,
      journal,
      ['--output-chain', 'enforce'],
      'review-enforce.nft',
    );
    if ('error' in enforce) {
      t.fail(enforce.error as string);
    } else {
      const got = await runFlows(topo, [...own, unrecorded], { ns: topo.server.ns, waitMs: 2000 });
      t.same(
        got.map((o) => (o === 'accepted' ? o : 'refused')),
        [...own.map(() => 'accepted'), 'refused'],
        "with --output-chain enforce the server's recorded health check, DNS lookup and ping work, its unrecorded tcp 80 to the gateway is refused",
      );
    }

    // The same plan as iptables, in our own chains beside nothing else: restored with --noflush,
    // hooked in as its header says, probed row by row like the nft ruleset.
    await topo.exec(topo.server.ns, ['nft', 'delete', 'table', 'inet', 'conntracker']);
    let hooked = 0;
    for (const family of ['4', '6'] as const) {
      const res = await analyze(['rules', '--format', 'iptables', '--family', family, journal]);
      t.equal(res.code, 0, `ct-analyze rules --format iptables --family ${family}: ${res.stderr}`);
      const restore = family === '4' ? 'iptables-restore' : 'ip6tables-restore';
      const load = await topo.exec(topo.server.ns, [restore, '--noflush'], {
        input: res.stdout,
        check: false,
      });
      t.equal(load.code, 0, `${restore} --noflush loads the IPv${family} part: ${load.stderr}`);
      for (const hook of res.stdout.matchAll(/^#\s+(ip6?tables -C .* -j CT-[A-Z]+)$/gm)) {
        await topo.exec(topo.server.ns, ['sh', '-c', hook[1] as string]);
        hooked++;
      }
    }
    t.equal(hooked, 6, 'the headers give the three hooks of each family');
    await probeAll(t, topo, list, 'with the iptables rules');
    await probeSyslog(t, topo, services, h, 'refused', 'with the iptables rules');

    const check = await analyze(['check', '--ruleset', rules.file, '--format', 'json', journal]);
    t.equal(check.code, 0, `ct-analyze check runs: ${check.stderr}`);
    const report = JSON.parse(check.stdout) as { dead: { chain: string; text: string | null }[] };
    // The baseline: loopback, the ct state verdicts, ICMP/ICMPv6 (errors, echo, ND, MLD), the
    // DHCP client of the output chain, the rate-limited logs and the final verdicts.
    const baseline =
      /\b(iif|oif|ct state|icmp|icmpv6|nd-[a-z-]+|mld2?-[a-z-]+|limit rate|log prefix)\b|dport (67|547)\b|^(counter )?(accept|drop|reject)\b/;
    const dead = report.dead
      .filter((d) => d.text !== null && baseline.test(d.text))
      .map((d) => `${d.chain}: ${d.text}`);
    t.same(dead, [], 'check reports no baseline rule as dead');
    t.comment(
      `runtime: recording ${((recordedAt - started) / 1000).toFixed(1)} s, all ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  },
);
