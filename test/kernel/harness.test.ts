// The namespace harness and the traffic tool on the real kernel: reachability, NAT, the single
// capture namespace, cleanup.
import '../helpers/kernel.js';
import t from 'tap';
import { TRAFFIC_TOOL } from '../../samples/scenario.js';
import {
  createTopology,
  exited,
  makeNetns,
  preflight,
  run,
  runSync,
  type Topology,
  waitForLine,
} from '../helpers/netns.js';

const node = process.execPath;

async function namespaces(): Promise<string[]> {
  const out = (await run(['ip', 'netns', 'list'])).stdout;
  return out.split('\n').map((l) => l.split(' ')[0] ?? '');
}

async function serve(topo: Topology, args: string[]) {
  const child = topo.spawn(topo.server.ns, [node, TRAFFIC_TOOL, 'serve', ...args]);
  await waitForLine(child.stdout as NonNullable<typeof child.stdout>, /^ready$/, 10_000);
  return child;
}

async function client(topo: Topology, args: string[]) {
  const res = await topo.exec(topo.client.ns, [node, TRAFFIC_TOOL, ...args], { check: false });
  return { ...res, json: res.code === 0 ? JSON.parse(res.stdout) : undefined };
}

t.test('preflight names each missing tool', (t) => {
  const path = process.env.PATH;
  t.teardown(() => {
    process.env.PATH = path;
  });
  process.env.PATH = '/nonexistent';
  t.throws(() => preflight(), /missing .*ip on PATH \(install iproute2\).*nft on PATH/);
  t.end();
});

t.test(
  'lan: client reaches server over IPv4 and IPv6, conntrack active only where recorded',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    t.equal(topo.recordNs, topo.server.ns, 'lan records in the server namespace');
    t.match(topo, { client: { v4: '10.211.1.1', v6: 'fd00:211:1::1' } });
    t.match(topo, { server: { v4: '10.211.1.2', v6: 'fd00:211:1::2' } });
    await serve(topo, ['--tcp', '80', '--udp', '53', '--for', '20']);
    for (const dst of [topo.server.v4, topo.server.v6]) {
      const tcp = await client(topo, ['tcp', dst, '80']);
      t.equal(tcp.code, 0, `tcp to ${dst} succeeds`);
      t.equal(tcp.json.reply, `hello ${topo.client[dst.includes(':') ? 'v6' : 'v4']} from port 80`);
      t.ok(tcp.json.local.port > 1024, 'the kernel chose an ephemeral source port');
      const udp = await client(topo, ['udp', dst, '53', '--sport', '5353']);
      t.equal(udp.code, 0, `udp to ${dst} is echoed`);
      t.strictSame(udp.json, {
        local: { address: udp.json.local.address, port: 5353 },
        reply: 'ping',
      });
    }
    const listed = await topo.exec(topo.recordNs, ['conntrack', '-L'], { check: false });
    t.equal(listed.code, 0, `conntrack -L runs in the server namespace: ${listed.stderr}`);
    t.match(listed.stdout, /dport=80 .*\[ASSURED\]/, 'the server namespace tracked the TCP flow');
    t.match(listed.stdout, /sport=5353 dport=53 /, 'and the UDP flow');
    const clientSide = await topo.exec(topo.client.ns, ['conntrack', '-L'], { check: false });
    t.equal(clientSide.stdout, '', 'the client namespace tracks nothing (no rule needs conntrack)');
  },
);

t.test('nat: IPv4 is masqueraded by the router, IPv6 is routed as is', async (t) => {
  const topo = await createTopology(t, 'nat');
  t.equal(topo.recordNs, topo.router?.ns, 'nat records in the router namespace');
  await serve(topo, ['--tcp', '443', '--for', '20']);
  const v4 = await client(topo, ['tcp', topo.server.v4, '443']);
  t.equal(v4.code, 0, `tcp over IPv4 crosses the router: ${v4.stderr}`);
  t.match(v4.json.reply, /^hello 10\.211\.3\.254 from port 443$/, 'server sees the router');
  const v6 = await client(topo, ['tcp', topo.server.v6, '443']);
  t.equal(v6.code, 0, `tcp over IPv6 crosses the router: ${v6.stderr}`);
  t.equal(v6.json.reply, `hello ${topo.client.v6} from port 443`, 'server sees the client');
  const listed = await topo.exec(topo.recordNs, ['conntrack', '-L'], { check: false });
  t.match(
    listed.stdout,
    new RegExp(
      `src=${topo.client.v4.replaceAll('.', '\\.')} dst=${topo.server.v4.replaceAll('.', '\\.')} `,
    ),
    'the router tracks the original tuple from the client',
  );
});

t.test('traffic tool fails loudly and stays bounded', async (t) => {
  const topo = await createTopology(t, 'lan');
  const refused = await client(topo, ['tcp', topo.server.v4, '81']);
  t.equal(refused.code, 1, 'tcp to a closed port exits 1');
  t.match(refused.stderr, /ECONNREFUSED/);
  const silent = await client(topo, ['udp', topo.server.v4, '9']);
  t.equal(silent.code, 1, 'udp without a reply exits 1 when one is expected');
  t.match(silent.stderr, /no reply within 1000 ms/);
  const oneWay = await client(topo, ['udp', topo.server.v4, '9', '--no-reply-expected']);
  t.equal(oneWay.code, 0, 'udp one-way exits 0 without waiting for a reply');
  const bad = await client(topo, ['tcp', 'localhost', '80']);
  t.equal(bad.code, 1, 'a host name instead of an address is refused');
  const started = Date.now();
  const server = await serve(topo, ['--udp', '7', '--for', '1']);
  t.equal(await exited(server), 0, 'serve --for 1 exits 0 by itself');
  t.ok(Date.now() - started < 5000, 'within its bound');
});

t.test('destroy kills children and deletes every namespace, once', async (t) => {
  const topo = await createTopology(null, 'nat');
  t.teardown(() => topo.destroy());
  t.equal(topo.namespaces.length, 3);
  const before = await namespaces();
  for (const ns of topo.namespaces) t.ok(before.includes(ns), `${ns} exists`);
  const sleeper = topo.spawn(topo.router?.ns as string, ['sleep', '60']);
  await topo.destroy();
  t.equal(await exited(sleeper), 'SIGKILL', 'the long-running child was killed');
  const after = await namespaces();
  for (const ns of topo.namespaces) t.notOk(after.includes(ns), `${ns} is gone`);
  await topo.destroy();
  t.pass('a second destroy is harmless');
});

t.test(
  'single: makeNetns has lo up, conntrack on with timestamps and counters, gone at teardown',
  async (t) => {
    let ns = '';
    await t.test('the namespace while its test runs', async (t) => {
      ns = makeNetns(t, 'single');
      t.match(ns, new RegExp(`^ctnet-${process.pid}-\\d+-single$`), 'named for sweeping');
      t.match(runSync('ip', ['-n', ns, 'link', 'show', 'lo']), /<LOOPBACK,UP,/, 'lo is up');
      const sysctl = (knob: string) =>
        runSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', `net.netfilter.${knob}`]).trim();
      t.equal(sysctl('nf_conntrack_timestamp'), '1', 'timestamps on');
      t.equal(sysctl('nf_conntrack_acct'), '1', 'counters on');
      t.match(
        runSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset']),
        /ct state established,related,new accept|ct state new,established,related accept/,
        'a rule that needs conntrack, so the namespace tracks',
      );
      t.throws(
        () => makeNetns(t, 'Bad-Tag'),
        /lowercase letters/,
        'a tag the sweep could not parse',
      );
    });
    t.notOk((await namespaces()).includes(ns), `${ns} is deleted at teardown`);
  },
);
