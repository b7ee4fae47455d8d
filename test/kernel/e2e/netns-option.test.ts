// Real kernel: ct-record --netns records another namespace from outside it, header and sysctls included.
import '../../helpers/kernel.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { addressBytes as parseAddress } from '../../../analyzer/core/address.js';
import type { JournalHeader } from '../../../journal/format.js';
import { openJournal } from '../../../journal/reader.js';
import { ANALYZER, RECORDER, whenCapturing } from '../../../samples/record.js';
import { expectedLines, runScenario, stripCounter } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { addressLine, addressLines, ipAddresses } from '../../helpers/addresses.js';
import { createTopology, exitedWithin, run, type Topology } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;
const EVENTS = 'net.netfilter.nf_conntrack_events';

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-netns-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The built CLIs run without tap's loaders, which tap puts back into any `env` given: a CLI that
 * runs as nobody could not write tap's process info at exit (see test/helpers/netns.ts).
 */
const BARE = ['env', '-u', 'NODE_OPTIONS'];

interface Recorder {
  child: ChildProcess;
  stderr(): string;
}

/**
 * Starts ct-record with `args`: in `ns` (through the topology), or with null in the test's own
 * namespace (the host's), killed on teardown; resolves once the subscription is live.
 */
async function startRecorder(
  t: Test,
  topo: Topology,
  ns: string | null,
  args: readonly string[],
): Promise<Recorder> {
  const argv = [process.execPath, RECORDER, ...args];
  // `env` and `ip netns exec` exec the next command: the child's pid is the recorder's.
  const child =
    ns === null
      ? spawn(BARE[0] as string, [...BARE.slice(1), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : topo.spawn(ns, argv);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return whenCapturing(child);
}

async function stopRecorder(t: Test, rec: Recorder): Promise<void> {
  rec.child.kill('SIGTERM');
  t.equal(
    await exitedWithin(rec.child, 20_000),
    0,
    `ct-record exits 0 on SIGTERM\n${rec.stderr()}`,
  );
}

/** What the kernel names the namespace: `net:[inode]`, as ct-record's header must. */
async function netnsId(ns: string): Promise<string> {
  return (await run(['ip', 'netns', 'exec', ns, 'readlink', '/proc/self/ns/net'])).stdout.trim();
}

async function sysctl(ns: string, key: string): Promise<number> {
  return Number((await run(['ip', 'netns', 'exec', ns, 'sysctl', '-n', key])).stdout.trim());
}

async function setSysctl(ns: string, key: string, value: number): Promise<void> {
  await run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`]);
}

function header(journal: string): JournalHeader {
  const reader = openJournal(journal);
  try {
    return reader.header;
  } finally {
    reader.close();
  }
}

async function analyze(journal: string): Promise<string[]> {
  const res = await run([...BARE, process.execPath, ANALYZER, journal], { timeoutMs: 30_000 });
  return res.stdout.split('\n').filter((l) => FLOW_LINE.test(l));
}

async function addressesWhenRunning(ns: string): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const now = await ipAddresses(ns);
    if (now.running) return now.lines;
    if (Date.now() > deadline) throw new Error(`the links of ${ns} are not running after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Thread name → network namespace of each thread of `pid`. */
function threadNamespaces(pid: number): Array<{ tid: number; comm: string; netns: string }> {
  return readdirSync(`/proc/${pid}/task`).map((tid) => ({
    tid: Number(tid),
    comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim(),
    netns: readlinkSync(`/proc/${pid}/task/${tid}/ns/net`),
  }));
}

t.test(
  '--netns NAME records traffic of a namespace from outside it: flows, netns, addresses and sysctls are the namespace’s',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.recordNs;
    const journal = join(dir, 'name.mpk');
    const target = await netnsId(ns);
    const ours = readlinkSync('/proc/self/ns/net');
    t.not(target, ours, 'the recorder starts outside the namespace it records');
    // A value the test's own namespace does not have, so the header tells whose it read.
    const outside = Number(readFileSync(`/proc/sys/${EVENTS.replaceAll('.', '/')}`, 'latin1'));
    const inside = outside === 1 ? 2 : 1;
    await setSysctl(ns, EVENTS, inside);
    const addresses = await addressesWhenRunning(ns);

    const rec = await startRecorder(t, topo, null, ['--netns', ns, '-o', journal]);
    const pid = rec.child.pid as number;
    const threads = threadNamespaces(pid);
    const named = (comm: string) => threads.find((th) => th.comm === comm)?.netns;
    t.equal(threads.find((th) => th.tid === pid)?.netns, target, 'the main thread joined it');
    t.equal(named('ct-reader'), target, 'the reader thread, created afterwards, is in it');
    t.equal(named('ct-netadmin'), target, 'the privilege keeper, created afterwards, is in it');
    t.match(rec.stderr(), `ct-record: recording network namespace ${ns} (${target})`);

    const { flows } = await runScenario(topo);
    await stopRecorder(t, rec);

    const h = header(journal);
    t.equal(h.netns, target, 'the header names the namespace joined, as the kernel names it');
    t.equal(h.options.netns, ns, 'the header options hold the name given');
    t.equal(h.sysctls.nf_conntrack_events, inside, 'the sysctls are the namespace’s');
    const got = addressLines(h.addresses ?? []);
    const after = (await ipAddresses(ns)).lines;
    t.ok(
      JSON.stringify(got) === JSON.stringify(addresses) ||
        JSON.stringify(got) === JSON.stringify(after),
      `the header holds the namespace’s addresses: ${JSON.stringify(got)} vs ip addr ${JSON.stringify(addresses)}`,
    );
    t.ok(
      got.includes(
        addressLine({
          ifname: 'to-client',
          family: 4,
          address: parseAddress(topo.server.v4),
          prefix: 24,
        }),
      ),
      'among them the server’s address on its veth',
    );

    const text = await analyze(journal);
    t.strictSame(
      text.map(stripCounter),
      expectedLines(flows),
      'the journal holds exactly the scenario’s flows, none of the host’s',
    );
  },
);

t.test(
  '--netns /proc/PID/ns/net from another namespace: --enable-events and --enable-tracking act on it and the keeper restores its sysctl',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.server.ns;
    const from = topo.client.ns;
    const journal = join(dir, 'path.mpk');
    const holder = topo.spawn(ns, ['sleep', '60']);
    const path = `/proc/${holder.pid}/ns/net`;
    const target = await netnsId(ns);
    // Three different values: a write into the wrong namespace shows.
    await setSysctl(ns, EVENTS, 2);
    await setSysctl(from, EVENTS, 0);

    const rec = await startRecorder(t, topo, from, [
      '--netns',
      path,
      '-o',
      journal,
      '--enable-events',
      '--enable-tracking',
    ]);
    const pid = rec.child.pid as number;
    t.match(rec.stderr(), /dropped root: now user conntracker/, 'privileges were dropped');
    const keeper = threadNamespaces(pid).find((th) => th.comm === 'ct-netadmin');
    t.equal(keeper?.netns, target, 'the keeper thread is in the recorded namespace');
    t.equal(await sysctl(ns, EVENTS), 1, '--enable-events set the recorded namespace’s to 1');
    t.equal(await sysctl(from, EVENTS), 0, '…and left the starting namespace’s alone');
    const table = `conntracker_track_${pid}`;
    const tables = async (n: string) =>
      (await run(['ip', 'netns', 'exec', n, 'nft', 'list', 'tables'])).stdout;
    t.match(await tables(ns), `table inet ${table}`, '--enable-tracking added its table there');
    t.notMatch(await tables(from), table, '…not in the starting namespace');

    await run(['ip', 'netns', 'exec', from, 'ping', '-c', '2', '-i', '0.2', topo.server.v4]);
    await stopRecorder(t, rec);

    t.equal(await sysctl(ns, EVENTS), 2, 'the keeper restored the recorded namespace’s value');
    t.equal(await sysctl(from, EVENTS), 0, 'the starting namespace’s was never written');
    t.notMatch(await tables(ns), table, 'the tracking table is gone at exit');
    const h = header(journal);
    t.equal(h.netns, target, 'the header names the namespace joined');
    t.equal(h.options.netns, path, 'the header options hold the path given');
    t.equal(h.sysctls.nf_conntrack_events, 1, 'the header has the value the run ran with');
    const text = await analyze(journal);
    t.ok(
      text.some((l) =>
        l.includes(
          `src = ${topo.client.v4} to dst = ${topo.server.v4} (type=8 | code=0) (confirmed)`,
        ),
      ),
      `the ping is recorded:\n${text.join('\n')}`,
    );
  },
);

t.test('--check --netns checks the namespace that would be recorded', async (t) => {
  const topo = await createTopology(t, 'lan');
  const res = await run(
    [...BARE, process.execPath, RECORDER, '--check', '--netns', topo.recordNs],
    {
      check: false,
      timeoutMs: 30_000,
    },
  );
  t.ok(
    res.code === 0 || res.code === 1,
    `a verdict, not an error: exit ${res.code}\n${res.stderr}`,
  );
  t.match(
    res.stdout,
    `ct-record --check: network namespace ${await netnsId(topo.recordNs)}`,
    'it names the namespace joined',
  );
});

t.test('--netns errors say what is wrong and leave no journal', async (t) => {
  const topo = await createTopology(t, 'lan');
  const cases: Array<{ name: string; argv: string[]; exit: number; message: RegExp }> = [
    {
      name: 'a namespace name ip netns does not know',
      argv: ['--netns', `ctnone-${process.pid}`],
      exit: 2,
      message: new RegExp(
        `^ct-record: no network namespace ctnone-${process.pid} \\(ip netns list shows the names\\)`,
      ),
    },
    {
      name: 'a path that does not exist',
      argv: ['--netns', `/proc/${2 ** 22 + 1}/ns/net`],
      exit: 2,
      message: /no network namespace at \/proc\/\d+\/ns\/net: it does not exist/,
    },
    {
      name: 'a file that is not a namespace',
      argv: ['--netns', '/etc/hostname'],
      exit: 2,
      message: /\/etc\/hostname is not a network namespace: give a name from ip netns list/,
    },
    {
      name: 'a namespace of another type',
      argv: ['--netns', '/proc/self/ns/uts'],
      exit: 2,
      message: /\/proc\/self\/ns\/uts is not a network namespace/,
    },
    {
      name: 'no CAP_SYS_ADMIN (run as nobody)',
      argv: ['--netns', topo.recordNs],
      exit: 1,
      message:
        /cannot join network namespace .*: EPERM — .*needs CAP_SYS_ADMIN: run ct-record as root/,
    },
  ];
  for (const [i, c] of cases.entries()) {
    const journal = join(dir, `error-${i}.mpk`);
    const argv = [...BARE, process.execPath, RECORDER, ...c.argv, '-o', journal];
    const asNobody = c.name.includes('nobody');
    const res = await run(
      asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv,
      { check: false, timeoutMs: 30_000 },
    );
    t.equal(res.code, c.exit, `${c.name}: exit ${c.exit}`);
    t.match(res.stderr, c.message, `${c.name}: says what to do`);
    t.notMatch(res.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    t.notOk(existsSync(journal), `${c.name}: no journal is created`);
  }
});
