// End to end on the real kernel: the start-up table dump, a forced overrun's gap, --enable-events.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';
import {
  ANALYZER,
  RECORDER,
  type RunningRecorder,
  startRecorder,
} from '../../../samples/record.js';
import { seedLine } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { buildFlood, flood } from '../../helpers/flood.js';
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
const EVENTS_KNOB = 'net.netfilter.nf_conntrack_events';

const dir = mkdtempSync(join(tmpdir(), `ct-capture-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Analyzed {
  code: number | null;
  stdout: string;
  stderr: string;
}

const analyze = (args: readonly string[]): Promise<Analyzed> =>
  run([process.execPath, ANALYZER, ...args], { check: false, timeoutMs: 30_000 });

interface JsonReport {
  journals: {
    coverage: {
      byType: { new: number; update: number; destroy: number; snapshot: number };
      lost: number;
      gaps: number;
      warnings: string[];
    };
  }[];
}

async function analyzeJson(journal: string): Promise<JsonReport> {
  const res = await analyze(['--format', 'json', journal]);
  if (res.code !== 0) throw new Error(`ct-analyze --format json: exit ${res.code}: ${res.stderr}`);
  return JSON.parse(res.stdout) as JsonReport;
}

/** Resolves once `check()` holds; rejects with `what` after `ms`. */
async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopRecorder(rec: RunningRecorder): Promise<number | string> {
  rec.child.kill('SIGTERM');
  return exitedWithin(rec.child, 20_000);
}

async function sysctl(topo: Topology, key: string): Promise<number> {
  const res = await topo.exec(topo.server.ns, ['sysctl', '-n', key]);
  return Number(res.stdout.trim());
}

/** An echo server in the server namespace and one client holding its connection open. */
async function longLivedTcp(topo: Topology, port: number): Promise<number> {
  const server = topo.spawn(topo.server.ns, [
    process.execPath,
    '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.on('data', (d) => s.write(d)); })
       .listen(${port}, '0.0.0.0', () => console.log('ready'));
     setTimeout(() => process.exit(0), 120000);`,
  ]);
  await waitForLine(server.stdout as NonNullable<typeof server.stdout>, /^ready$/, 10_000);
  const client = topo.spawn(topo.client.ns, [
    process.execPath,
    '-e',
    `const s = require('net').connect(${port}, '${topo.server.v4}', () => s.write('hello\\n'));
     s.on('error', (e) => { console.error(e.message); process.exit(1); });
     s.once('data', (d) => console.log('echo ' + s.localPort + ' ' + String(d).trim()));
     setTimeout(() => process.exit(0), 120000);`,
  ]);
  const line = await waitForLine(
    client.stdout as NonNullable<typeof client.stdout>,
    /^echo \d+ hello$/,
    10_000,
  );
  return Number(line.split(' ')[1]);
}

t.test('a TCP connection opened before ct-record starts shows up confirmed', async (t) => {
  const topo = await createTopology(t, 'lan');
  const port = 8080;
  const sport = await longLivedTcp(topo, port);
  const want = seedLine({
    table: 'TCPv4',
    src: topo.client.v4,
    dst: topo.server.v4,
    sport,
    dport: port,
    icmpType: 0,
    icmpCode: 0,
    confirmed: true,
    label: 'long-lived',
  });
  const tcpLines = (text: string) =>
    text
      .split('\n')
      .filter((l) => FLOW_LINE.test(l) && l.includes(`(port=${port})`))
      .map((l) => l.replace(/^(.{6}) \[ *\d+\]/, '$1'));

  const journal = join(dir, 'before.mpk');
  const rec = await startRecorder(topo, journal);
  await until(
    () => /table dump: \d+ existing flows/.test(rec.stderr()),
    10_000,
    () => `ct-record reports its table dump\n${rec.stderr()}`,
  );
  const dumped = Number(/table dump: (\d+) existing flows/.exec(rec.stderr())?.[1]);
  t.ok(dumped >= 1, `the start-up dump found the connection (${dumped} entries)`);
  t.equal(await stopRecorder(rec), 0, `ct-record exits 0\n${rec.stderr()}`);

  const text = await analyze([journal]);
  t.equal(text.code, 0, `ct-analyze exits 0\n${text.stderr}`);
  t.strictSame(tcpLines(text.stdout), [want], 'the older connection is listed, confirmed');
  t.notMatch(text.stdout, /nf_conntrack_events=2 and no table dump/, 'no missed-flows warning');
  const cov = (await analyzeJson(journal)).journals[0]?.coverage;
  t.ok(
    (cov?.byType.snapshot ?? 0) >= 1,
    `coverage counts snapshot entries (${cov?.byType.snapshot})`,
  );
  t.equal(cov?.byType.snapshot, dumped, 'as many snapshot entries as the dump line said');
  const snap = readWhole(journal).events.filter(
    (e) => e.type === 4 && e.proto === 6 && e.orig.dport === port && e.orig.sport === sport,
  );
  t.equal(snap.length, 1, 'the journal holds the connection as one snapshot entry');

  // The same connection, now without the dump: with nf_conntrack_events=2 it sends no event.
  const blind = join(dir, 'before-no-snapshot.mpk');
  const rec2 = await startRecorder(topo, blind, ['--no-snapshot']);
  await topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '5', topo.server.v4]);
  t.equal(await stopRecorder(rec2), 0, `ct-record --no-snapshot exits 0\n${rec2.stderr()}`);
  t.notMatch(rec2.stderr(), /table dump/, 'no dump was made');
  const text2 = await analyze([blind]);
  t.equal(text2.code, 0, `ct-analyze exits 0\n${text2.stderr}`);
  t.strictSame(tcpLines(text2.stdout), [], 'without the dump the older connection is missing');
  t.match(
    text2.stdout,
    new RegExp(`^ICMPv4 \\[ *0\\] src = ${topo.client.v4} to dst = ${topo.server.v4} `, 'm'),
    'while the ping made during the recording is there',
  );
  const cov2 = (await analyzeJson(blind)).journals[0]?.coverage;
  t.equal(cov2?.byType.snapshot, 0, 'no snapshot entries');
  if ((await sysctl(topo, EVENTS_KNOB)) === 2) {
    t.match(
      text2.stdout,
      /^# WARNING: nf_conntrack_events=2 and no table dump at start: /m,
      'the report warns that older flows were not seen',
    );
  }
});

/** Conntrack entries in the server namespace (every one is kept: the UDP timeout is raised). */
async function entries(topo: Topology): Promise<number> {
  const res = await topo.exec(topo.server.ns, ['conntrack', '-C']);
  return Number(res.stdout.trim());
}

/** Resolves once `path` has not grown for `quietMs`: the recorder has caught up. */
async function settled(path: string, quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let size = statSync(path).size;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > end) throw new Error(`${path} still grows after ${maxMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
    const now = statSync(path).size;
    if (now !== size) {
      size = now;
      since = Date.now();
    }
  }
}

t.test(
  'a forced overrun writes a gap with the kernel’s count and the run still ends cleanly',
  async (t) => {
    const floodBin = buildFlood(dir);
    const topo = await createTopology(t, 'lan');
    await topo.exec(topo.server.ns, [
      'sysctl',
      '-qw',
      'net.netfilter.nf_conntrack_udp_timeout=300',
    ]);

    const tooSmall = await run(
      [process.execPath, RECORDER, '-o', join(dir, 'tiny.mpk'), '-b', '2K'],
      { check: false, timeoutMs: 20_000 },
    );
    t.equal(tooSmall.code, 2, `-b 2K is below the minimum: exit 2\n${tooSmall.stderr}`);
    t.match(tooSmall.stderr, /from 4096 to /, 'the message gives the accepted range');

    const journal = join(dir, 'overrun.mpk');
    const before = await entries(topo);
    // A 1 s resync interval, waited out below: every loss gets its (paced) dump before the stop.
    const rec = await startRecorder(topo, journal, [
      '-e',
      'NEW',
      '-b',
      '4K',
      '--resync-interval',
      '1',
    ]);
    const granted = Number(/netlink receive buffer: (\d+) bytes/.exec(rec.stderr())?.[1]);
    t.ok(granted > 0 && granted < 64 * 1024, `-b 4K is accepted: a tiny buffer (${granted} bytes)`);
    await until(
      () => /table dump: \d+ existing flows/.test(rec.stderr()),
      10_000,
      () => `ct-record reports its table dump\n${rec.stderr()}`,
    );
    const startDump = Number(/table dump: (\d+) existing flows/.exec(rec.stderr())?.[1]);

    const n = 5_000;
    const sent = await flood(topo, floodBin, n);
    t.equal(sent, n, `the flood sent ${n} datagrams`);
    // Every flow must still be in the table when it is counted, and the recorder idle when stopped.
    // Quiet for longer than the resync interval: no dump is still waiting for its turn.
    await settled(journal, 2_500, 30_000);
    const created = (await entries(topo)) - before;
    t.equal(await stopRecorder(rec), 0, `SIGTERM after the overrun: exit 0\n${rec.stderr()}`);

    const lostLine = /WARNING: (\d+) events were lost in (\d+) gaps/.exec(rec.stderr());
    t.ok(lostLine, `the summary warns about lost events\n${rec.stderr()}`);
    const { events, gaps } = readWhole(journal);
    t.ok(gaps.length >= 1, `the journal holds ${gaps.length} gap(s)`);
    const lost = gaps.reduce((s, g) => s + g.lost, 0);
    t.ok(lost > 0, `the gaps count ${lost} lost events`);
    t.equal(Number(lostLine?.[1]), lost, 'the summary’s lost count is the journal’s');
    t.equal(Number(lostLine?.[2]), gaps.length, 'the summary’s gap count is the journal’s');
    for (const g of gaps) {
      t.equal(g.cause, 'ENOBUFS', 'the cause is the kernel buffer overrun');
      t.equal(g.lostKnown, true, 'the count is exact');
      t.ok(g.to >= g.from, 'a time window');
      // Stopped only once the journal had stopped growing: every resync dump had finished.
      t.ok(g.resync >= 0, `resynchronised by a table dump (${g.resync} entries)`);
    }
    const news = events.filter((e) => e.type === 1);
    const snapshots = events.filter((e) => e.type === 4).length;
    const resyncLine = /(\d+) resync table dumps; (\d+) dump entries the journal already held/.exec(
      rec.stderr(),
    );
    t.ok(
      resyncLine,
      `the summary counts the resync dumps and the entries left out\n${rec.stderr()}`,
    );
    t.equal(Number(resyncLine?.[1]), gaps.length, 'one dump per gap (one cause: ENOBUFS)');
    t.equal(
      snapshots,
      startDump + gaps.reduce((s, g) => s + g.resync, 0) - Number(resyncLine?.[2]),
      'snapshot entries are the start-up dump plus every resync dump, less the known ones left out',
    );
    t.ok(
      news.every((e) => e.proto === 17 && e.orig.dport >= 1024 && e.orig.dport < 1024 + n),
      'every NEW event is a flood flow',
    );
    // Each datagram that reached the server namespace made an entry; one dropped on the way (a
    // full veth backlog) made none, so the kernel's table, not the sent count, is the reference.
    t.ok(created > 0 && created <= sent, `${created} conntrack entries for ${sent} datagrams`);
    t.equal(
      news.length + lost,
      created,
      `NEW events (${news.length}) + lost (${lost}) = entries made`,
    );
    const seen = new Set(
      events
        .filter((e) => e.proto === 17 && (e.type === 1 || e.type === 4))
        .map((e) => e.orig.dport),
    );
    t.equal(
      seen.size,
      created,
      'after the resyncs every flow is in the journal, event or snapshot',
    );

    const text = await analyze([journal]);
    t.equal(text.code, 0, `ct-analyze exits 0 on a journal with gaps\n${text.stderr}`);
    t.match(
      text.stdout,
      new RegExp(
        `^# WARNING: ${lost} events lost in ${gaps.length} gaps? \\(kernel buffer overrun\\)`,
        'm',
      ),
      'the report warns about the lost events',
    );
    const cov = (await analyzeJson(journal)).journals[0]?.coverage;
    t.equal(cov?.lost, lost, 'JSON coverage: lost');
    t.equal(cov?.gaps, gaps.length, 'JSON coverage: gaps');
  },
);

t.test('--enable-events sets nf_conntrack_events=1 for the run and restores it', async (t) => {
  const topo = await createTopology(t, 'lan');
  t.equal(await sysctl(topo, EVENTS_KNOB), 2, 'a fresh namespace has the kernel default 2');
  const journal = join(dir, 'enable-events.mpk');
  const rec = await startRecorder(topo, journal, ['--enable-events']);
  t.equal(await sysctl(topo, EVENTS_KNOB), 1, 'it is 1 while ct-record runs');
  t.equal(await stopRecorder(rec), 0, `ct-record exits 0\n${rec.stderr()}`);
  t.equal(await sysctl(topo, EVENTS_KNOB), 2, 'it is 2 again after the run');
  const { header } = readWhole(journal);
  t.equal(header.sysctls.nf_conntrack_events, 1, 'the header records the value of the run');
  t.equal(header.options.enableEvents, true, 'the header records the option');

  const plain = join(dir, 'no-enable-events.mpk');
  const rec2 = await startRecorder(topo, plain);
  t.equal(await sysctl(topo, EVENTS_KNOB), 2, 'without the option it stays 2');
  t.equal(await stopRecorder(rec2), 0, `ct-record exits 0\n${rec2.stderr()}`);
  const h2 = readWhole(plain).header;
  t.equal(h2.sysctls.nf_conntrack_events, 2, 'and the header says 2');
  t.equal(h2.options.enableEvents, false, 'with enableEvents false');
});
