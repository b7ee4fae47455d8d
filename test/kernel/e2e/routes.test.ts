// Real kernel: ct-record stores its namespace's routes in the header, and routes added while it records in a checkpoint.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { addressBytes, formatAddress } from '../../../analyzer/core/address.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { verifyJournal } from '../../../analyzer/verify/verify.js';
import { type HostRoute, TABLE_LOCAL, TABLE_MAIN } from '../../../journal/format.js';
import { openJournal } from '../../../journal/reader.js';
import { parseRoutes4, parseRoutes6 } from '../../../recorder/host.js';
import { RECORDER, startRecorder } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-routes-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** One route as a line both sides can be compared on. */
function line(r: HostRoute): string {
  const gw = r.gateway === undefined ? '-' : formatAddress(r.gateway);
  return `${r.type} ${formatAddress(r.dst)}/${r.prefix} via ${gw} dev ${r.dev ?? '-'} metric ${r.metric} table ${r.table}`;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: string;
  metric?: number;
  table?: string;
}

/**
 * What `ip -j route` says, as the journal records it (docs/journal-format.md, "Host routes"):
 * IPv4 the main table, IPv6 every table (local ones as 255), reject types as /proc shows them.
 */
async function ipRoutes(ns: string): Promise<string[]> {
  const list = async (args: string[]) =>
    JSON.parse((await run(['ip', '-n', ns, '-j', ...args])).stdout) as IpRoute[];
  const out: string[] = [];
  for (const [family, routes] of [
    [4, await list(['route', 'show', 'table', 'main'])],
    [6, await list(['-6', 'route', 'show', 'table', 'all'])],
  ] as const) {
    for (const r of routes) {
      const bits = family === 4 ? 32 : 128;
      const [a, p] =
        r.dst === 'default' ? [family === 4 ? '0.0.0.0' : '::', '0'] : r.dst.split('/');
      let type = r.type ?? 'unicast';
      const reject = ['blackhole', 'unreachable', 'prohibit', 'throw'].includes(type);
      if (family === 6 && reject) type = 'unreachable';
      if (family === 4 && type === 'prohibit') type = 'unreachable';
      if (family === 4 && type === 'throw') type = 'blackhole';
      const local = r.table === 'local';
      out.push(
        line({
          family,
          dst: addressBytes(a as string),
          prefix: p === undefined ? bits : Number(p),
          type,
          table: local ? TABLE_LOCAL : TABLE_MAIN,
          metric: r.metric ?? 0,
          ...(reject || r.dev === undefined ? {} : { dev: r.dev }),
          ...(r.gateway === undefined ? {} : { gateway: addressBytes(r.gateway) }),
        }),
      );
    }
  }
  return out.sort();
}

/** The namespace's routes as ct-record reads them, from the namespace's own /proc. */
async function procRoutes(ns: string): Promise<string[]> {
  const cat = async (file: string) =>
    (await run(['ip', 'netns', 'exec', ns, 'cat', `/proc/net/${file}`])).stdout;
  return [...parseRoutes4(await cat('route')), ...parseRoutes6(await cat('ipv6_route'))]
    .map(line)
    .sort();
}

/**
 * Waits until the kernel has given `ns`'s links their IPv6 link-local addresses (after DAD):
 * each adds a local route, and one added while ct-record starts would be in either listing.
 */
async function waitLinkLocal(ns: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const routes = await procRoutes(ns);
    if (routes.some((r) => r.startsWith('local fe80:'))) return;
    if (Date.now() > deadline)
      throw new Error(`no link-local route in ${ns}: ${routes.join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

t.test(
  'record: the header holds the namespace’s routes, a checkpoint the routes added while recording',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.recordNs;
    const via4 = topo.client.v4;
    const via6 = topo.client.v6;
    const journal = join(dir, 'routes.mpk');
    await waitLinkLocal(ns);
    const before = await procRoutes(ns);
    const rec = await startRecorder(topo, journal, ['--flush-interval', '0.2']);
    const atStart = await procRoutes(ns);
    t.same(atStart, await ipRoutes(ns), '/proc as parsed says what `ip -j route` says');

    const added = Date.now() * 1000;
    await run(['ip', '-n', ns, 'route', 'add', '10.212.0.0/16', 'via', via4, 'metric', '7']);
    await run(['ip', '-n', ns, 'route', 'add', 'blackhole', '198.51.100.0/24']);
    await run(['ip', '-n', ns, '-6', 'route', 'add', 'fd00:212::/48', 'via', via6]);
    const after = await procRoutes(ns);
    t.same(after, await ipRoutes(ns), 'after the change too');
    // Several flush ticks, so the change is polled at least once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rec.child.kill('SIGTERM');
    t.equal(await exitedWithin(rec.child, 20_000), 0, `ct-record exits 0\n${rec.stderr()}`);

    const reader = openJournal(journal);
    t.teardown(() => reader.close());
    for (const _ of reader.items()) {
      // reading checks every frame and collects the sets
    }
    const sets = reader.routeSets;
    t.ok(sets.length >= 2, `a set at start and at least one change (${sets.length} sets)`);
    const first = sets[0];
    const last = sets.at(-1);
    if (first === undefined || last === undefined) return;
    t.equal(first.time, reader.header.start, 'the first set is the header’s');
    // A route the kernel adds around the start (a link-local address): either listing is the truth.
    const got = JSON.stringify(first.routes.map(line).sort());
    t.ok(
      got === JSON.stringify(before) || got === JSON.stringify(atStart),
      `the header holds the namespace’s routes: ${got} vs ${JSON.stringify(atStart)}`,
    );
    t.same(last.routes.map(line).sort(), after, 'the last set holds them after the change');
    const wanted = [
      `unicast 10.212.0.0/16 via ${via4} dev to-client metric 7 table ${TABLE_MAIN}`,
      `blackhole 198.51.100.0/24 via - dev - metric 0 table ${TABLE_MAIN}`,
    ];
    for (const w of wanted) {
      t.notOk(first.routes.map(line).includes(w), `not at start: ${w}`);
      t.ok(last.routes.map(line).includes(w), `after the change: ${w}`);
    }
    const seenAt = sets.find((s) => s.routes.map(line).includes(wanted[0] as string))?.time ?? 0;
    t.ok(seenAt >= added, 'the change is noted no earlier than it was made');
    t.ok(seenAt - added < 5_000_000, `…and within seconds (${seenAt - added} µs later)`);
    t.same(
      reader.addressSets.length,
      1,
      'the addresses did not change: the checkpoints carry routes alone',
    );
    t.equal(verifyJournal(journal).verdict, 'OK', 'the journal verifies');

    // What the analysis makes of it: the host's network over both sets.
    const network = analyzeJournals([journal]).networks.get(reader.header.host);
    t.equal(network?.routeDevice(addressBytes('10.212.3.4')), 'to-client', 'the added route');
    t.equal(network?.routeDevice(addressBytes(topo.server.v4)), 'lo', 'its own address');
    t.equal(network?.addressType(addressBytes('198.51.100.9')), 'blackhole', 'the blackhole');
    t.equal(network?.routeDevice(addressBytes('fd00:212::1')), 'to-client', 'the IPv6 route');
    t.equal(network?.addressType(addressBytes('192.0.2.1')), 'unknown', 'no route, no default');
  },
);
