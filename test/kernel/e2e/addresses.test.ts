// Real kernel: ct-record stores its namespace's addresses in the header, and an address added while it records.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { addressBytes as parseAddress } from '../../../analyzer/core/address.js';
import { verifyJournal } from '../../../analyzer/verify/verify.js';
import { openJournal } from '../../../journal/reader.js';
import { readHostAddresses } from '../../../recorder/host.js';
import { RECORDER, startRecorder } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { addressLine, addressLines, ipAddresses } from '../../helpers/addresses.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-addresses-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Waits until every link of `ns` is running: a fresh veth gets its IPv6 link-local address only
 * once it has carrier, after the kernel's link watch, and the test below wants a stable start.
 */
async function waitRunning(ns: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const links = JSON.parse((await run(['ip', '-n', ns, '-j', 'link', 'show'])).stdout) as Array<{
      operstate: string;
    }>;
    if (links.every((l) => l.operstate === 'UP' || l.operstate === 'UNKNOWN')) return;
    if (Date.now() > deadline)
      throw new Error(`links of ${ns} not running: ${JSON.stringify(links)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('host: readHostAddresses lists what `ip addr` lists in this namespace', async (t) => {
  t.same(addressLines(readHostAddresses()), (await ipAddresses()).local);
});

t.test(
  'record: the header holds the namespace’s addresses, a later set the one added while recording',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.recordNs;
    const journal = join(dir, 'added.mpk');
    await waitRunning(ns);
    const before = (await ipAddresses(ns)).lines;
    const rec = await startRecorder(topo, journal, ['--flush-interval', '0.2']);
    const atStart = (await ipAddresses(ns)).lines;

    const added = Date.now() * 1000;
    await run(['ip', '-n', ns, 'addr', 'add', '10.211.99.7/28', 'dev', 'to-client']);
    await run([
      'ip',
      '-n',
      ns,
      '-6',
      'addr',
      'add',
      'fd00:211:99::7/80',
      'dev',
      'to-client',
      'nodad',
    ]);
    const after = (await ipAddresses(ns)).lines;
    // Several flush ticks, so the change is polled at least once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rec.child.kill('SIGTERM');
    const exit = await exitedWithin(rec.child, 20_000);
    t.equal(exit, 0, `ct-record exits 0 on SIGTERM\n${rec.stderr()}`);

    const reader = openJournal(journal);
    t.teardown(() => reader.close());
    for (const _ of reader.items()) {
      // reading checks every frame and collects the sets
    }
    const sets = reader.addressSets;
    t.ok(sets.length >= 2, `a set at start and at least one change (${sets.length} sets)`);
    const first = sets[0];
    const last = sets.at(-1);
    if (first === undefined || last === undefined) return;

    t.equal(first.time, reader.header.start, 'the first set is the header’s');
    // An address the kernel adds around the start (IPv6 link-local): either listing is the truth.
    const got = JSON.stringify(addressLines(first.addresses));
    t.ok(
      got === JSON.stringify(before) || got === JSON.stringify(atStart),
      `the header holds the namespace’s addresses: ${got} vs ip addr ${JSON.stringify(atStart)}`,
    );
    const wanted = [
      `lo v4 7f000001/8`,
      `lo v6 ${'0'.repeat(31)}1/128`,
      addressLine({
        ifname: 'to-client',
        family: 4,
        address: parseAddress(topo.server.v4),
        prefix: 24,
      }),
      addressLine({
        ifname: 'to-client',
        family: 6,
        address: parseAddress(topo.server.v6),
        prefix: 64,
      }),
    ];
    for (const w of wanted) t.ok(addressLines(first.addresses).includes(w), `at start: ${w}`);

    const newV4 = addressLine({
      ifname: 'to-client',
      family: 4,
      address: parseAddress('10.211.99.7'),
      prefix: 28,
    });
    const newV6 = addressLine({
      ifname: 'to-client',
      family: 6,
      address: parseAddress('fd00:211:99::7'),
      prefix: 80,
    });
    t.notOk(
      addressLines(first.addresses).includes(newV4),
      'the added address is not in the first set',
    );
    t.same(
      addressLines(last.addresses),
      after,
      'the last set is the namespace’s addresses after the add',
    );
    t.ok(
      addressLines(last.addresses).includes(newV4) && addressLines(last.addresses).includes(newV6),
    );
    const seenAt = sets.find((s) => addressLines(s.addresses).includes(newV4))?.time ?? 0;
    t.ok(seenAt >= added, 'the change is noted no earlier than it was made');
    t.ok(seenAt - added < 5_000_000, `…and within seconds (${seenAt - added} µs later)`);
    for (let i = 1; i < sets.length; i++) {
      const [a, b] = [sets[i - 1], sets[i]];
      t.ok(a && b && b.time >= a.time, `set ${i} is not earlier than set ${i - 1}`);
      t.not(
        JSON.stringify(addressLines(a?.addresses ?? [])),
        JSON.stringify(addressLines(b?.addresses ?? [])),
        `set ${i} is a change`,
      );
    }

    const v = verifyJournal(journal);
    t.equal(v.verdict, 'OK', v.detail);
  },
);

/**
 * Whether `ping` from `ns` to `address` gets an answer: one try a second for `seconds` (the
 * first IPv6 packets of a fresh link may go while its addresses are still settling).
 */
async function answers(ns: string, address: string, seconds = 1): Promise<boolean> {
  const argv = ['ip', 'netns', 'exec', ns, 'ping', '-n', '-c', '1', '-W', '1', address];
  for (let i = 0; i < seconds; i++) {
    if ((await run(argv, { check: false })).code === 0) return true;
  }
  return false;
}

t.test(
  'record: addresses on a link without carrier are in the header, IPv4 ones on a down link too, IPv6 ones there not',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.recordNs;
    const ip = (args: string) => run(['ip', '-n', ns, ...args.split(' ')]);
    // nc0: up, its peer never up, so no carrier (os.networkInterfaces left it out).
    await ip('link add nc0 type veth peer name nc1');
    await ip('addr add 10.212.0.1/24 dev nc0');
    await ip('-6 addr add fd00:212::1/64 dev nc0 nodad');
    await ip('link set nc0 up');
    // off0: down after its addresses were added; keep_addr_on_down keeps its IPv6 address listed.
    await ip('link add off0 type veth peer name off1');
    await run([
      'ip',
      'netns',
      'exec',
      ns,
      'sysctl',
      '-qw',
      'net.ipv6.conf.off0.keep_addr_on_down=1',
    ]);
    await ip('addr add 10.213.0.1/24 dev off0');
    await ip('link set off0 up');
    await ip('-6 addr add fd00:213::1/64 dev off0 nodad');
    await ip('link set off0 down');
    const links = JSON.parse((await ip('-j link show')).stdout) as Array<{
      ifname: string;
      flags: string[];
    }>;
    const flags = (name: string) => links.find((l) => l.ifname === name)?.flags ?? [];
    t.ok(flags('nc0').includes('NO-CARRIER') && flags('nc0').includes('UP'), 'nc0: up, no carrier');
    t.notOk(flags('off0').includes('UP'), 'off0: down');

    // The kernel's rule the recorder follows, seen from the client: routed to the recording
    // namespace, the IPv4 addresses answer (local), off0's IPv6 one does not (no local route).
    const client = topo.client.ns;
    await run(['ip', '-n', client, 'route', 'add', '10.212.0.0/15', 'via', topo.server.v4]);
    await run(['ip', '-n', client, '-6', 'route', 'add', 'fd00:212::/31', 'via', topo.server.v6]);
    t.ok(await answers(client, '10.212.0.1', 5), 'the kernel answers to nc0’s IPv4 address');
    t.ok(await answers(client, 'fd00:212::1', 5), 'and to nc0’s IPv6 address');
    t.ok(await answers(client, '10.213.0.1', 5), 'and to down off0’s IPv4 address');
    // The same path answered for nc0's IPv6 address just now: one try says it all.
    t.notOk(await answers(client, 'fd00:213::1'), 'not to down off0’s IPv6 address');

    const journal = join(dir, 'no-carrier.mpk');
    const rec = await startRecorder(topo, journal);
    rec.child.kill('SIGTERM');
    const exit = await exitedWithin(rec.child, 20_000);
    t.equal(exit, 0, `ct-record exits 0 on SIGTERM\n${rec.stderr()}`);
    const reader = openJournal(journal);
    t.teardown(() => reader.close());
    const header = addressLines(reader.header.addresses ?? []);
    const line = (ifname: string, text: string, prefix: number) =>
      addressLine({
        ifname,
        family: text.includes(':') ? 6 : 4,
        address: parseAddress(text),
        prefix,
      });
    for (const want of [
      line('nc0', '10.212.0.1', 24),
      line('nc0', 'fd00:212::1', 64),
      line('off0', '10.213.0.1', 24),
    ]) {
      t.ok(header.includes(want), `the header holds ${want}`);
    }
    t.notOk(header.includes(line('off0', 'fd00:213::1', 64)), 'but not off0’s IPv6 address');
    t.ok(
      (await ipAddresses(ns)).lines.includes(line('off0', 'fd00:213::1', 64)),
      'which ip addr still lists',
    );
    t.same(header, (await ipAddresses(ns)).local, 'the header is the namespace’s local addresses');
  },
);
