// End to end on the real kernel: ct-record's filters (-e, -p, --mark, --no-loopback) keep exactly what they say.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { formatAddress } from '../../../analyzer/core/address.js';
import type { CtEvent } from '../../../journal/event.js';
import type { JournalHeader } from '../../../journal/format.js';
import { ANALYZER, RECORDER, startRecorder } from '../../../samples/record.js';
import { TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { readWhole } from '../../helpers/journals.js';
import {
  createTopology,
  exitedWithin,
  run,
  type Topology,
  waitForLine,
} from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;
const TYPE = { 1: 'new', 2: 'update', 3: 'destroy', 4: 'snapshot' } as const;

const dir = mkdtempSync(join(tmpdir(), `ct-filters-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Recorded {
  header: JournalHeader;
  events: CtEvent[];
  byType: { new: number; update: number; destroy: number; snapshot: number };
  /** ct-analyze's flow lines. */
  lines: string[];
  stderr: string;
}

/** Records `traffic` with ct-record `args` in the server namespace; reads the journal back. */
async function record(
  t: Test,
  topo: Topology,
  name: string,
  args: readonly string[],
  traffic: () => Promise<void>,
): Promise<Recorded> {
  const journal = join(dir, `${name}.mpk`);
  const rec = await startRecorder(topo, journal, args);
  await traffic();
  rec.child.kill('SIGTERM');
  t.equal(await exitedWithin(rec.child, 20_000), 0, `ct-record exits 0\n${rec.stderr()}`);
  const { header, events } = readWhole(journal);
  const byType = { new: 0, update: 0, destroy: 0, snapshot: 0 };
  for (const e of events) byType[TYPE[e.type]]++;
  const res = await run([process.execPath, ANALYZER, journal], { check: false, timeoutMs: 30_000 });
  t.equal(res.code, 0, `ct-analyze exits 0\n${res.stderr}`);
  const lines = res.stdout.split('\n').filter((l) => FLOW_LINE.test(l));
  return { header, events, byType, lines, stderr: rec.stderr() };
}

/** A TCP (80, 443) and UDP (53) server in the server namespace, killed at teardown. */
async function serve(topo: Topology): Promise<void> {
  const child = topo.spawn(topo.server.ns, [
    process.execPath,
    TRAFFIC_TOOL,
    'serve',
    '--tcp',
    '80,443',
    '--udp',
    '53',
    '--for',
    '120',
  ]);
  await waitForLine(child.stdout as NonNullable<typeof child.stdout>, /^ready$/, 10_000);
}

/** One client exchange; resolves with the source port the kernel chose. */
async function client(topo: Topology, proto: 'tcp' | 'udp', port: number): Promise<number> {
  const res = await topo.exec(topo.client.ns, [
    process.execPath,
    TRAFFIC_TOOL,
    proto,
    topo.server.v4,
    String(port),
  ]);
  return (JSON.parse(res.stdout) as { local: { port: number } }).local.port;
}

const ping = (topo: Topology, ns: string, to: string) =>
  topo.exec(ns, ['ping', '-c', '1', '-W', '5', to]);

/** TCP to 80 and 443, UDP to 53 and a ping, client → server. */
async function mixed(topo: Topology): Promise<void> {
  await client(topo, 'tcp', 80);
  await client(topo, 'tcp', 443);
  await client(topo, 'udp', 53);
  await ping(topo, topo.client.ns, topo.server.v4);
}

const addr = (a: Uint8Array) => formatAddress(a);

t.test('-e NEW keeps only NEW events (and the start-up snapshot)', async (t) => {
  const topo = await createTopology(t, 'lan');
  await serve(topo);
  const r = await record(t, topo, 'events-new', ['-e', 'NEW'], () => mixed(topo));
  t.strictSame(
    [...new Set(r.events.map((e) => e.type))].filter((ty) => ty !== 1 && ty !== 4),
    [],
    'no event type other than NEW and SNAPSHOT',
  );
  t.equal(r.byType.update, 0, 'no UPDATE events');
  t.equal(r.byType.destroy, 0, 'no DESTROY events');
  const protos = new Set(r.events.filter((e) => e.type === 1).map((e) => e.proto));
  t.strictSame(
    [...protos].sort((a, b) => a - b),
    [1, 6, 17],
    'NEW events of ICMP, TCP and UDP',
  );
  t.equal(r.byType.new, 4, 'one NEW event per flow: TCP 80, TCP 443, UDP 53, ping');
  t.strictSame(
    r.header.options.events,
    { new: true, update: false, destroy: false },
    'the header records -e NEW',
  );
  t.strictSame(
    r.header.options.filter,
    { protos: null, mark: null, noLoopback: false },
    'and no other filter',
  );

  // The control: without -e the same traffic yields UPDATE events (TCP state changes).
  const all = await record(t, topo, 'events-all', [], () => mixed(topo));
  t.ok(all.byType.update > 0, `without -e the same traffic makes UPDATEs (${all.byType.update})`);
});

t.test('-p udp keeps only UDP events while TCP, UDP and ping ran', async (t) => {
  const topo = await createTopology(t, 'lan');
  await serve(topo);
  const r = await record(t, topo, 'proto-udp', ['-p', 'udp'], () => mixed(topo));
  t.ok(r.events.length > 0, `the journal holds ${r.events.length} events`);
  t.strictSame([...new Set(r.events.map((e) => e.proto))], [17], 'every event is UDP (proto 17)');
  t.ok(
    r.events.some((e) => e.type === 1 && e.orig.dport === 53),
    'the NEW event of the UDP 53 flow is there',
  );
  t.ok(r.lines.length > 0, 'ct-analyze lists flows');
  t.ok(
    r.lines.every((l) => l.startsWith(' UDPv')),
    `only UDP lines in ct-analyze:\n${r.lines.join('\n')}`,
  );
  t.ok(
    r.lines.some((l) => l.includes(`dst = ${topo.server.v4} (port=53) (confirmed)`)),
    'the UDP 53 flow is listed, confirmed',
  );
  // Left out by the kernel's socket filter (test/kernel/e2e/bpf-filter.test.ts): never read.
  t.match(r.stderr, /filter: in the kernel/, 'the filter runs in the kernel');
  t.equal(
    Number(/filter: (\d+) event messages read/.exec(r.stderr)?.[1]),
    r.events.length - r.byType.snapshot,
    'the reader read only the UDP events',
  );
  t.strictSame(
    r.header.options.filter,
    { protos: [17], mark: null, noLoopback: false },
    'the header records -p udp',
  );
});

const MARK_RULES = `table inet ct_marker {
  chain pre {
    type filter hook prerouting priority mangle;
    meta l4proto tcp th dport 80 ct mark set 0x10
  }
}
`;

t.test('--mark 0x10/0xff keeps only the flow an nft rule marked', async (t) => {
  const topo = await createTopology(t, 'lan');
  await topo.exec(topo.server.ns, ['nft', '-f', '-'], { input: MARK_RULES });
  await serve(topo);
  let sport80 = 0;
  const r = await record(t, topo, 'mark', ['--mark', '0x10/0xff'], async () => {
    sport80 = await client(topo, 'tcp', 80);
    await client(topo, 'tcp', 443);
    await client(topo, 'udp', 53);
    await ping(topo, topo.client.ns, topo.server.v4);
  });
  t.ok(r.events.length > 0, `the journal holds ${r.events.length} events`);
  t.ok(
    r.events.every(
      (e) =>
        e.proto === 6 &&
        e.orig.dport === 80 &&
        e.orig.sport === sport80 &&
        addr(e.orig.src) === topo.client.v4,
    ),
    'every event belongs to the port-80 flow',
  );
  const news = r.events.filter((e) => e.type === 1);
  t.equal(news.length, 1, 'its NEW event is kept');
  // The rule runs in prerouting after conntrack made the entry but before the entry is
  // confirmed, and the NEW event is sent at confirmation: it already carries the mark.
  t.equal(news[0]?.mark, 0x10, 'the NEW event carries the mark the rule set');
  t.ok(r.byType.update > 0, `its UPDATE events are kept (${r.byType.update})`);
  t.ok(
    r.events.every((e) => e.mark === 0x10),
    'every kept event carries mark 0x10',
  );
  t.strictSame(
    r.lines.map((l) => l.replace(/^(.{6}) \[ *\d+\]/, '$1')),
    [` TCPv4 src = ${topo.client.v4} (port=1024) to dst = ${topo.server.v4} (port=80) (confirmed)`],
    'ct-analyze lists only the port-80 flow',
  );
  t.strictSame(
    r.header.options.filter,
    { protos: null, mark: { value: 0x10, mask: 0xff }, noLoopback: false },
    'the header records --mark 0x10/0xff',
  );
});

t.test('--no-loopback leaves out the namespace’s loopback traffic, keeps the veth’s', async (t) => {
  const topo = await createTopology(t, 'lan');
  const r = await record(t, topo, 'no-loopback', ['--no-loopback'], async () => {
    await ping(topo, topo.server.ns, '127.0.0.1');
    await ping(topo, topo.server.ns, '::1');
    await ping(topo, topo.client.ns, topo.server.v4);
  });
  const loopback = (a: Uint8Array) => addr(a).startsWith('127.') || addr(a) === '::1';
  t.notOk(
    r.events.some((e) => loopback(e.orig.src) || loopback(e.orig.dst)),
    'no event of a loopback flow',
  );
  t.ok(
    r.events.some((e) => e.type === 1 && addr(e.orig.src) === topo.client.v4 && e.proto === 1),
    'the ping over the veth is there',
  );
  t.equal(
    Number(/filter: (\d+) event messages read/.exec(r.stderr)?.[1]),
    r.events.length - r.byType.snapshot,
    'the loopback pings were left out in the kernel: the reader read only what it recorded',
  );
  t.strictSame(
    r.lines.map((l) => l.replace(/^(.{6}) \[ *\d+\]/, '$1')),
    [`ICMPv4 src = ${topo.client.v4} to dst = ${topo.server.v4} (type=8 | code=0) (confirmed)`],
    'ct-analyze lists only the veth ping',
  );
  t.strictSame(
    r.header.options.filter,
    { protos: null, mark: null, noLoopback: true },
    'the header records --no-loopback',
  );

  // The control: without the option the loopback pings are recorded.
  const all = await record(t, topo, 'with-loopback', [], async () => {
    await ping(topo, topo.server.ns, '127.0.0.1');
  });
  t.ok(
    all.events.some((e) => addr(e.orig.src) === '127.0.0.1'),
    'without --no-loopback the loopback ping is recorded',
  );
});
