// End to end on the real kernel: ct-record in a namespace, real traffic, ct-analyze on the journal.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ANALYZER, RECORDER, recordScenario, startRecorder } from '../../../samples/record.js';
import {
  expectedLines,
  type ScenarioFlow,
  seedLine,
  stripCounter,
} from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function flowLines(text: string): string[] {
  return text.split('\n').filter((l) => FLOW_LINE.test(l));
}

async function analyze(args: string[]): Promise<string> {
  const res = await run([process.execPath, ANALYZER, ...args], { check: false, timeoutMs: 30_000 });
  if (res.code !== 0) {
    throw new Error(`ct-analyze ${args.join(' ')}: exit ${res.code}: ${res.stderr}`);
  }
  return res.stdout;
}

interface JsonFlow {
  table: ScenarioFlow['table'];
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  confirmed: boolean;
  direction?: string[];
  nat?: { src?: { address: string }; dst?: { address: string } };
}

/** Renders a JSON flow as the text line it must agree with (the schema in docs/rules.md). */
function jsonLine(f: JsonFlow): string {
  return seedLine(
    {
      table: f.table,
      src: f.src,
      dst: f.dst,
      sport: f.sport ?? 0,
      dport: f.dport ?? 0,
      icmpType: f.type ?? 0,
      icmpCode: f.code ?? 0,
      confirmed: f.confirmed,
      label: 'json',
    },
    'none',
  );
}

for (const kind of ['lan', 'nat'] as const) {
  t.test(`${kind}: recorded scenario replays into exactly the expected flows`, async (t) => {
    const topo = await createTopology(t, kind);
    const journal = join(dir, `${kind}.mpk`);
    const liveTable = join(dir, `${kind}.live.txt`);
    const { flows, exit, stderr } = await recordScenario(topo, journal, ['--table', liveTable]);
    t.equal(exit, 0, `ct-record exits 0 on SIGTERM\n${stderr}`);
    t.match(stderr, /ct-record: stopped: /, 'ct-record prints its summary');
    t.notMatch(stderr, /events were lost/, 'no event was lost');

    const text = flowLines(await analyze([journal]));
    const want = expectedLines(flows);
    t.strictSame(
      text.map(stripCounter),
      want,
      'the text table is exactly the expected flows, in order',
    );

    const syslog = text.find((l) => l.includes('(port=514)'));
    t.ok(syslog, 'one-way UDP 514 is listed');
    t.notMatch(syslog ?? '', /\(confirmed\)/, 'one-way UDP 514 is not confirmed');
    t.ok(
      text.some((l) => /^ TCPv4 .*\(port=999\) to dst = .* \(port=80\) \(confirmed\)$/.test(l)),
      'privileged source port 999 is kept as is',
    );
    t.ok(
      text.some((l) => /^ICMPv6 .*\(type=128 \| code=0\) \(confirmed\)$/.test(l)) &&
        text.some((l) => l.startsWith(' TCPv6 ')) &&
        text.some((l) => l.startsWith(' UDPv6 ')),
      'IPv6 TCP, UDP and ICMPv6 flows are present',
    );
    for (const table of ['TCPv4', 'UDPv4', 'ICMPv4', 'TCPv6', 'UDPv6', 'ICMPv6']) {
      const counters = text
        .filter((l) => l.startsWith(table.padStart(6)))
        .map((l) => Number(/\[ *(\d+)\]/.exec(l)?.[1]));
      t.strictSame(counters, [...counters.keys()], `${table} counters count from 0`);
    }
    const { client, server } = topo;
    t.ok(
      text.every(
        (l) =>
          (l.includes(`src = ${client.v4} `) && l.includes(`dst = ${server.v4} `)) ||
          (l.includes(`src = ${client.v6} `) && l.includes(`dst = ${server.v6} `)),
      ),
      'every flow is the original tuple client → server (in nat: not the masqueraded one)',
    );

    const json = JSON.parse(await analyze([journal, '--format', 'json'])) as { flows: JsonFlow[] };
    t.strictSame(json.flows.map(jsonLine), want, 'JSON flows agree with the text table');
    // Recorded on the server (lan), every flow comes in; on the router (nat), every flow passes
    // through and is masqueraded. The direction comes from the addresses ct-record stored.
    const direction = kind === 'lan' ? 'input' : 'forward';
    t.strictSame(
      [...new Set(json.flows.map((f) => f.direction?.join(',')))],
      [direction],
      `every flow is ${direction}`,
    );
    t.ok(
      json.flows.every((f) => (kind === 'nat' && f.table.endsWith('v4')) === (f.nat !== undefined)),
      kind === 'nat' ? 'every IPv4 flow shows its masquerade, no IPv6 one' : 'no flow shows NAT',
    );
    if (kind === 'nat') {
      t.ok(
        json.flows.every((f) => f.nat?.dst === undefined),
        'a masquerade is no DNAT',
      );
    }
    const shown = flowLines(await analyze([journal, '--show', 'direction,nat']));
    t.ok(
      shown.every((l) => l.includes(` (${direction})`)),
      '--show direction prints it on every line',
    );

    const none = flowLines(await analyze([journal, '--collapse', 'none']));
    t.strictSame(
      none.map(stripCounter),
      expectedLines(flows, 'none'),
      '--collapse none shows the real ephemeral source ports',
    );
    t.ok(
      flows.some((f) => f.sport > 1024 && none.some((l) => l.includes(`(port=${f.sport})`))),
      'an ephemeral port above 1024 appears uncollapsed',
    );

    t.strictSame(
      flowLines(readFileSync(liveTable, 'utf8')),
      text,
      'the live --table written at exit equals the replayed table',
    );
  });
}

t.test('--duration 2 ends the recording by itself with exit 0', async (t) => {
  const topo = await createTopology(t, 'lan');
  const journal = join(dir, 'duration.mpk');
  const started = Date.now();
  const rec = await startRecorder(topo, journal, ['--duration', '2']);
  await topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '1', topo.server.v4]);
  const code = await exitedWithin(rec.child, 10_000);
  t.equal(code, 0, `ct-record --duration 2 exits 0 by itself\n${rec.stderr()}`);
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 2000, `it ran at least 2 s (${elapsed} ms)`);
  const text = flowLines(await analyze([journal])).map(stripCounter);
  t.strictSame(
    text,
    [`ICMPv4 src = ${topo.client.v4} to dst = ${topo.server.v4} (type=8 | code=0) (confirmed)`],
    'the ping made during the recording is in the journal',
  );
});
