// On the real kernel: ct-record -e minimal beside -e all over TCP-heavy traffic: the same flows, fewer events and bytes, fewer events read.
import '../../helpers/kernel.js';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { addressBytes, formatAddress } from '../../../analyzer/core/address.js';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import type { CtEvent } from '../../../journal/event.js';
import { compileBpf } from '../../../recorder/bpf.js';
import { EventDiet } from '../../../recorder/diet.js';
import {
  ANALYZER,
  RECORDER,
  type RunningRecorder,
  startRecorder,
} from '../../../samples/record.js';
import { TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { eventMessage, runBpf } from '../../helpers/cbpf.js';
import { readWhole } from '../../helpers/journals.js';
import { createTopology, exitedWithin, run, waitForLine } from '../../helpers/netns.js';

ensureDefaultUser();
for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const dir = mkdtempSync(join(tmpdir(), `ct-diet-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * TCP connections per address family: each one sends, is answered and closes. For figures,
 * CT_DIET_CONNECTIONS asks for more, and CT_DIET_KEEP=DIR keeps both journals there (for
 * bench/event-diet.mjs).
 */
const CONNECTIONS = Number(process.env.CT_DIET_CONNECTIONS ?? 60);
const KEEP = process.env.CT_DIET_KEEP;

/** A client in one process: `n` TCP connections to host:port, ten at a time. */
const CLIENT = `
const net = require('node:net');
const [host, port, n] = process.argv.slice(1);
let left = Number(n), open = 0;
function one() {
  if (left === 0) { if (open === 0) process.exit(0); return; }
  left--; open++;
  const s = net.connect({ host, port: Number(port) }, () => s.write('hello\\n'));
  s.setTimeout(5000, () => { console.error('timeout'); process.exit(1); });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
  s.on('data', () => {});
  s.on('end', () => { s.end(); });
  s.on('close', () => { open--; one(); });
}
for (let i = 0; i < 10; i++) one();
`;

/** An event as a comparable line without its time (two recorders receive at other times). */
const line = (e: CtEvent) =>
  [
    e.type,
    e.id,
    e.status,
    e.proto,
    formatAddress(e.orig.src),
    formatAddress(e.orig.dst),
    e.orig.sport,
    e.orig.dport,
    e.mark ?? 0,
  ].join(' ');

const READ = /filter: (\d+) event messages read from the kernel/;

/** CPU seconds (user + system) the process has used so far: /proc/PID/stat utime + stime. */
function cpuSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line, 12 and 13 after the name; in clock ticks (USER_HZ 100).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function stop(t: Test, rec: RunningRecorder, name: string): Promise<string> {
  rec.child.kill('SIGTERM');
  t.equal(await exitedWithin(rec.child, 20_000), 0, `${name}: ct-record exits 0\n${rec.stderr()}`);
  return rec.stderr();
}

async function analyze(
  journal: string,
): Promise<{ flows: Record<string, unknown>[]; filters: string[] }> {
  const res = await run([process.execPath, ANALYZER, '--format', 'json', journal], {
    check: false,
    timeoutMs: 30_000,
  });
  if (res.code !== 0) throw new Error(`ct-analyze ${journal}: exit ${res.code}: ${res.stderr}`);
  const report = JSON.parse(res.stdout);
  return { flows: report.flows, filters: report.journals[0].coverage.filters };
}

/** The flow table of `events` recorded on `local` (its addresses give each flow's direction). */
const flowsOf = (events: readonly CtEvent[], local: { v4: string; v6: string }): Flow[] => {
  const table = new FlowTable();
  const host = table.hostId('server');
  table.addHostAddresses(host, [
    { address: addressBytes(local.v4) },
    { address: addressBytes(local.v6) },
  ]);
  table.addAll(events, host);
  const flows = [...table.flows()];
  if (!flows.every((f) => f.direction !== undefined)) throw new Error('a flow without direction');
  return flows;
};

t.test(
  'event diet: -e minimal and -e all over the same TCP connections give the same flows; minimal holds fewer events and bytes',
  async (t) => {
    const topo = await createTopology(t, 'lan', { net: 71 });
    const server = topo.spawn(topo.server.ns, [
      process.execPath,
      TRAFFIC_TOOL,
      'serve',
      '--tcp',
      '80',
      '--for',
      '120',
    ]);
    await waitForLine(server.stdout as NonNullable<typeof server.stdout>, /^ready$/, 10_000);
    const journals = {
      all: join(dir, 'all.mpk'),
      minimal: join(dir, 'minimal.mpk'),
      user: join(dir, 'minimal-user.mpk'),
    };
    const all = await startRecorder(topo, journals.all, ['-e', 'all']);
    const minimal = await startRecorder(topo, journals.minimal, ['-e', 'minimal']);
    // The diet in user space alone: reads every event, keeps the same.
    const user = await startRecorder(topo, journals.user, ['-e', 'minimal', '--no-kernel-filter']);
    const cpuBefore = {
      all: cpuSeconds(all.child.pid),
      minimal: cpuSeconds(minimal.child.pid),
      user: cpuSeconds(user.child.pid),
    };
    const started = performance.now();
    for (const to of [topo.server.v4, topo.server.v6]) {
      await topo.exec(
        topo.client.ns,
        [process.execPath, '-e', CLIENT, to, '80', `${CONNECTIONS}`],
        {
          timeoutMs: 60_000,
        },
      );
    }
    // DESTROY events now, for every entry, rather than from garbage collection while stopping.
    await topo.exec(topo.server.ns, ['conntrack', '-F']);
    await new Promise((r) => setTimeout(r, 500));
    const cpu = {
      all: cpuSeconds(all.child.pid) - cpuBefore.all,
      minimal: cpuSeconds(minimal.child.pid) - cpuBefore.minimal,
      user: cpuSeconds(user.child.pid) - cpuBefore.user,
    };
    const seconds = (performance.now() - started) / 1000;
    const load = loadavg()[0]?.toFixed(2);
    const errs = {
      all: await stop(t, all, 'all'),
      minimal: await stop(t, minimal, 'minimal'),
      user: await stop(t, user, 'minimal in user space'),
    };
    t.notMatch(`${errs.all}${errs.minimal}${errs.user}`, /events were lost/, 'no loss');

    const whole = readWhole(journals.all).events.filter((e) => e.type !== 4);
    const kept = readWhole(journals.minimal).events.filter((e) => e.type !== 4);
    const tcp = whole.filter((e) => e.proto === 6);
    t.ok(tcp.length >= 2 * CONNECTIONS * 3, `TCP events were recorded (${tcp.length})`);
    t.ok(kept.length < whole.length, 'the minimal journal holds fewer events');

    // The kernel's part of the diet: its verdict on each event sent, rebuilt as the message
    // the kernel sent; the reader read exactly the others (the -e all recorder read them all).
    t.match(errs.minimal, /filter: in the kernel \(a \d+-instruction socket filter\)/);
    t.notMatch(errs.minimal, /WARNING/, 'the kernel took the program');
    const prog = compileBpf({}, { diet: true });
    if (prog === undefined) throw new Error('-e minimal compiled to no program');
    const passed = whole.filter((e) => runBpf(prog, eventMessage(e)) !== 0);
    const rejected = whole.length - passed.length;
    const read = Number(READ.exec(errs.minimal)?.[1]);
    t.equal(read, passed.length, 'the minimal recorder read only the events the program passes');
    t.ok(
      rejected >= 2 * 2 * CONNECTIONS,
      `the kernel left out at least 2 UPDATEs per connection (${rejected} for ${2 * CONNECTIONS})`,
    );

    // The recorder's diet is the rule: the journal holds what it keeps of the events read, and
    // that is what it keeps of every event sent (each entry began with its NEW here).
    const batch = [...passed];
    new EventDiet(1 << 20).siftInPlace(batch);
    t.strictSame(
      kept.map(line),
      batch.map(line),
      'exactly the events the diet keeps of those read',
    );
    const alone = [...whole];
    new EventDiet(1 << 20).siftInPlace(alone);
    t.strictSame(batch.map(line), alone.map(line), 'the same as the diet alone keeps of all');
    t.strictSame(
      readWhole(journals.user)
        .events.filter((e) => e.type !== 4)
        .map(line),
      kept.map(line),
      '--no-kernel-filter: the same journal, from every event read',
    );
    t.equal(Number(READ.exec(errs.user)?.[1]), whole.length, 'which read every event');
    // The kernel usually leaves out all of them here; the summary says nothing of 0.
    const left = Number(
      /(\d+) UPDATE events left out by --events minimal/.exec(errs.minimal)?.[1] ?? 0,
    );
    t.equal(left, passed.length - kept.length, 'the summary counts the events it left out');

    // ct-analyze: the same flows in every field but three that come from each recorder rather
    // than from the events: first and last seen are its receive times, and direction follows the
    // host addresses it read (at start and at each checkpoint: the namespace's addresses may
    // reach one recorder's journal and not the other's). They are compared below on the same
    // events with the same addresses.
    const a = await analyze(journals.all);
    const m = await analyze(journals.minimal);
    const untimed = (flows: Record<string, unknown>[]) =>
      flows.map(({ firstSeen: _f, lastSeen: _l, direction: _d, ...rest }) => rest);
    t.ok(a.flows.length >= 2, `flows (${a.flows.length})`);
    t.strictSame(untimed(m.flows), untimed(a.flows), 'ct-analyze: the same flows');
    t.strictSame(m.filters, ['-e minimal'], 'ct-analyze shows the choice among the filters');
    t.strictSame(a.filters, [], '-e all is no filter');
    // Every entry ended with a DESTROY: lastSeen too is the same.
    t.strictSame(
      flowsOf(batch, topo.server),
      flowsOf(whole, topo.server),
      'on the same events and addresses: every field, lastSeen and direction too',
    );

    const bytes = { all: statSync(journals.all).size, minimal: statSync(journals.minimal).size };
    const updates = (evs: CtEvent[]) => evs.filter((e) => e.type === 2).length;
    t.comment(
      `TCP, ${2 * CONNECTIONS} connections: all ${whole.length} events (${updates(whole)} UPDATE), ${bytes.all} bytes; ` +
        `minimal ${kept.length} events (${updates(kept)} UPDATE), ${bytes.minimal} bytes ` +
        `(${((100 * kept.length) / whole.length).toFixed(1)} % of the events, ${((100 * bytes.minimal) / bytes.all).toFixed(1)} % of the bytes)`,
    );
    t.comment(
      `read: all ${whole.length} events, minimal ${read} (${((100 * read) / whole.length).toFixed(1)} %; ` +
        `${(rejected / (2 * CONNECTIONS)).toFixed(2)} per connection left out in the kernel); ` +
        `CPU over ${seconds.toFixed(1)} s of traffic: all ${cpu.all.toFixed(2)} s, minimal ${cpu.minimal.toFixed(2)} s ` +
        `(${((100 * cpu.minimal) / cpu.all).toFixed(0)} %), minimal in user space only ${cpu.user.toFixed(2)} s ` +
        `(kernel/user ${((100 * cpu.minimal) / cpu.user).toFixed(0)} %); load ${load}`,
    );
    if (KEEP !== undefined) {
      for (const [name, path] of Object.entries(journals))
        copyFileSync(path, join(KEEP, `${name}.mpk`));
    }
    server.kill('SIGTERM');
  },
);
