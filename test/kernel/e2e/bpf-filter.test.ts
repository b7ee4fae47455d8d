// On the real kernel: ct-record's filter attached as BPF keeps exactly the events the user-space
// predicate keeps, and the reader never reads the others (its count of event messages read).
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { formatAddress } from '../../../analyzer/core/address.js';
import { type Cidr, parseCidr } from '../../../analyzer/core/prefix.js';
import type { CtEvent } from '../../../journal/event.js';
import { startCapture } from '../../../native/index.js';
import { compileBpf, packBpf } from '../../../recorder/bpf.js';
import { compileFilter, MAX_PREFIXES } from '../../../recorder/filter.js';
import { recorderProgram, settleOptions } from '../../../recorder/options.js';
import { RECORDER, type RunningRecorder, startRecorder } from '../../../samples/record.js';
import { TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { readWhole } from '../../helpers/journals.js';
import { createTopology, exitedWithin, type Topology, waitForLine } from '../../helpers/netns.js';

ensureDefaultUser();
if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-bpf-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The event filter ct-record builds from `args`. */
function filterOf(args: readonly string[]) {
  const program = recorderProgram();
  program.parse(['-o', 'x.mpk', ...args], { from: 'user' });
  const run = settleOptions(program, () => {});
  if (run.kind !== 'record') throw new Error('not a recording');
  return run.record.filter;
}

/** An event as a comparable line: what the kernel said about which flow. */
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
    e.orig.icmpType,
    e.mark ?? 0,
  ].join(' ');
const sorted = (events: CtEvent[]) => events.map(line).sort();
const notSnapshot = (events: CtEvent[]) => events.filter((e) => e.type !== 4);

async function serve(topo: Topology): Promise<void> {
  const child = topo.spawn(topo.server.ns, [
    process.execPath,
    TRAFFIC_TOOL,
    'serve',
    '--tcp',
    '80',
    '--udp',
    '53',
    '--for',
    '120',
  ]);
  await waitForLine(child.stdout as NonNullable<typeof child.stdout>, /^ready$/, 10_000);
}

/** TCP, UDP and pings both ways over the veth in both families, and over loopback. */
async function traffic(topo: Topology): Promise<void> {
  const node = (ns: string, ...args: string[]) =>
    topo.exec(ns, [process.execPath, TRAFFIC_TOOL, ...args]);
  const ping = (ns: string, to: string) => topo.exec(ns, ['ping', '-c', '1', '-W', '5', to]);
  const { client, server } = topo;
  for (const to of [server.v4, server.v6]) {
    await node(client.ns, 'tcp', to, '80');
    await node(client.ns, 'udp', to, '53');
    await ping(client.ns, to);
  }
  await ping(server.ns, client.v4);
  await ping(server.ns, client.v6);
  await node(server.ns, 'tcp', '127.0.0.1', '80');
  await node(server.ns, 'udp', '::1', '53');
  await ping(server.ns, '127.0.0.1');
  await ping(server.ns, '::1');
}

const cidrOf = (text: string): Cidr => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(text);
  return c;
};

const READ = /filter: (\d+) event messages read from the kernel/;

async function stop(t: Test, rec: RunningRecorder, name: string): Promise<string> {
  rec.child.kill('SIGTERM');
  t.equal(await exitedWithin(rec.child, 20_000), 0, `${name}: ct-record exits 0\n${rec.stderr()}`);
  return rec.stderr();
}

const MARK_RULES = `table inet ct_bpf_marker {
  chain pre {
    type filter hook prerouting priority mangle;
    meta l4proto tcp th dport 80 ct mark set 0x10
  }
}
`;

/**
 * Records the traffic three times at once (the filter `args` in the kernel, the same in user
 * space, no filter: what the kernel sent) and compares the journals.
 */
async function compare(
  t: Test,
  name: string,
  net: number,
  argsOf: (topo: Topology) => string[],
  nft?: string,
): Promise<void> {
  const topo = await createTopology(t, 'lan', { net });
  const args = argsOf(topo);
  if (nft !== undefined) await topo.exec(topo.server.ns, ['nft', '-f', '-'], { input: nft });
  await serve(topo);
  const journals = {
    kernel: join(dir, `${name}-kernel.mpk`),
    user: join(dir, `${name}-user.mpk`),
    all: join(dir, `${name}-all.mpk`),
  };
  const kernel = await startRecorder(topo, journals.kernel, args);
  const user = await startRecorder(topo, journals.user, [...args, '--no-kernel-filter']);
  const all = await startRecorder(topo, journals.all, []);
  await traffic(topo);
  // DESTROY events now, for every flow, rather than from garbage collection while stopping.
  await topo.exec(topo.server.ns, ['conntrack', '-F']);
  await new Promise((r) => setTimeout(r, 500));
  const errs = {
    kernel: await stop(t, kernel, 'kernel'),
    user: await stop(t, user, 'user'),
    all: await stop(t, all, 'all'),
  };
  t.match(errs.kernel, /filter: in the kernel \(a \d+-instruction socket filter\)/);
  t.notMatch(errs.kernel, /WARNING/, 'no warning: the kernel took the filter');
  t.match(errs.user, /filter: in user space/);

  const sent = notSnapshot(readWhole(journals.all).events);
  const keep = compileFilter(filterOf(args));
  if (keep === undefined) throw new Error('the filter keeps everything');
  const expected = sent.filter(keep);
  const types = new Set(sent.map((e) => e.type));
  t.ok(types.has(1) && types.has(2) && types.has(3), 'NEW, UPDATE and DESTROY events were sent');
  t.ok(
    expected.length > 0 && expected.length < sent.length,
    `the filter keeps some (${expected.length} of ${sent.length}) and leaves out the others`,
  );
  const recorded = notSnapshot(readWhole(journals.kernel).events);
  t.strictSame(sorted(recorded), sorted(expected), 'kernel filter: exactly the predicate’s events');
  t.strictSame(
    sorted(notSnapshot(readWhole(journals.user).events)),
    sorted(expected),
    'user-space fallback: the same events',
  );
  const readByKernel = Number(READ.exec(errs.kernel)?.[1]);
  const readByUser = Number(READ.exec(errs.user)?.[1]);
  t.equal(readByKernel, recorded.length, 'the filtered reader read only the events it recorded');
  t.equal(readByUser, sent.length, 'the user-space reader read every event sent');
  t.notMatch(`${errs.kernel}${errs.user}${errs.all}`, /events were lost/, 'no loss');
}

t.test(
  'BPF filter: protocols, source and destination prefixes of both families, no loopback',
  (t) =>
    compare(t, 'addresses', 61, ({ client, server }) => [
      '-p',
      'tcp,icmp,icmpv6',
      '--src',
      client.v4,
      '--src',
      client.v6,
      '--dst',
      `${server.v4}/24,${server.v6}/64`,
      '--no-loopback',
    ]),
);

t.test('BPF filter: the most prefixes the options allow (a program with far jumps)', (t) =>
  compare(t, 'many', 63, ({ client, server }) => {
    // 62 prefixes nobody uses, then the client's (server's) of each family: the matches last.
    const others = (f: (i: number) => string) =>
      Array.from({ length: MAX_PREFIXES - 2 }, (_, i) => f(i));
    return [
      '--src',
      [
        ...others((i) => `2001:db8:ff${i.toString(16).padStart(2, '0')}::/48`),
        client.v4,
        client.v6,
      ].join(','),
      '--dst',
      [
        ...others((i) => `172.${16 + (i >> 4)}.${i & 15}.0/24`),
        `${server.v4}/24`,
        `${server.v6}/64`,
      ].join(','),
      '--no-loopback',
    ];
  }),
);

t.test('BPF filter: the conntrack mark an nft rule set, no loopback', (t) =>
  compare(t, 'mark', 62, () => ['--mark', '0x10/0xff', '--no-loopback'], MARK_RULES),
);

t.test(
  'the kernel refuses a broken program: the capture runs without it and says why',
  async (t) => {
    // Not ending in RET: the kernel's checker (bpf_check_classic) refuses it with EINVAL.
    const broken = packBpf([{ code: 0x00, jt: 0, jf: 0, k: 0 }]);
    const refused = startCapture(
      { filter: broken },
      () => {},
      () => {},
    );
    t.match(refused.filterError, /^setsockopt\(SO_ATTACH_FILTER\): EINVAL/);
    await refused.stop();
    const prog = compileBpf({ protos: [6] });
    if (prog === undefined) throw new Error('no program');
    const taken = startCapture(
      { filter: packBpf(prog) },
      () => {},
      () => {},
    );
    t.equal(taken.filterError, undefined, 'a program from compileBpf is attached');
    await taken.stop();
    // The most prefixes the options allow: over 256 instructions, far jumps through JA.
    const many = compileBpf({
      src: Array.from({ length: MAX_PREFIXES }, (_, i) =>
        cidrOf(`2001:db8:${i.toString(16)}::/48`),
      ),
      dst: Array.from({ length: MAX_PREFIXES }, (_, i) => cidrOf(`10.${i}.0.0/16`)),
      protos: [6, 17],
      noLoopback: true,
    });
    if (many === undefined) throw new Error('no program');
    const long = startCapture(
      { filter: packBpf(many) },
      () => {},
      () => {},
    );
    t.equal(long.filterError, undefined, `the kernel takes a ${many.length}-instruction program`);
    t.ok(many.length > 256, 'with far jumps');
    await long.stop();
  },
);

t.test(
  'startCapture refuses a filter that is not whole sock_filter structs, before any socket',
  (t) => {
    for (const filter of [new Uint8Array(0), new Uint8Array(7), new Uint8Array(8 * 4097)]) {
      t.throws(
        () =>
          startCapture(
            { filter },
            () => {},
            () => {},
          ),
        { code: 'EUSAGE', message: /struct sock_filter/ },
        `${filter.length} bytes`,
      );
    }
    t.end();
  },
);
