// ct-record as a user runs it: the built dist/recorder/cli.js, its refusals, exit codes and signals.
import '../../helpers/kernel.js';
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MAGIC } from '../../../journal/format.js';
import { ANALYZER, RECORDER, recordScenario, startRecorder } from '../../../samples/record.js';
import { seedLine, stripCounter } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import {
  createTopology,
  exitedWithin,
  run,
  type TeardownHost,
  type Topology,
} from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const STACK = /^ {4}at /m;
const NOBODY = 65534;

const dir = mkdtempSync(join(tmpdir(), `ct-record-cli-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh directory per test, so no test sees another's files. */
function testDir(t: TeardownHost, name: string): string {
  const d = mkdtempSync(join(dir, `${name}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const record = (args: readonly string[]) =>
  run([process.execPath, RECORDER, ...args], { check: false, timeoutMs: 20_000 });

async function analyze(args: readonly string[]): Promise<string> {
  const res = await run([process.execPath, ANALYZER, ...args], { check: false, timeoutMs: 30_000 });
  if (res.code !== 0)
    throw new Error(`ct-analyze ${args.join(' ')}: exit ${res.code}: ${res.stderr}`);
  return res.stdout;
}

/** Resolves once `check()` holds; rejects with what it last saw after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One echo; its wait covers IPv6 neighbour discovery on a fresh link (about 1 s). */
const ping = (topo: Topology, to: string) =>
  topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '5', to]);

t.test('an existing file at -o is refused without --force and left as it was', async (t) => {
  const d = testDir(t, 'exists');
  const path = join(d, 'old.mpk');
  writeFileSync(path, 'an earlier journal\n');
  const res = await record(['-o', path]);
  t.equal(res.code, 1, 'exit 1');
  t.match(res.stderr, /exists.*--force/, 'the message says to use --force');
  t.notMatch(res.stderr, STACK, 'no stack trace');
  t.equal(readFileSync(path, 'utf8'), 'an earlier journal\n', 'the file content is untouched');
});

t.test('a symlink at -o is refused with and without --force, its target untouched', async (t) => {
  const d = testDir(t, 'symlink');
  const target = join(d, 'precious.txt');
  writeFileSync(target, 'do not overwrite\n');
  const link = join(d, 'link.mpk');
  symlinkSync(target, link);
  const dangling = join(d, 'dangling.mpk');
  const nowhere = join(d, 'never-created.mpk');
  symlinkSync(nowhere, dangling);
  for (const [path, extra] of [
    [link, []],
    [link, ['--force']],
    [dangling, []],
    [dangling, ['--force']],
  ] as const) {
    const res = await record(['-o', path, ...extra]);
    const what = `${path === link ? 'symlink' : 'dangling symlink'} ${extra.join(' ')}`;
    t.equal(res.code, 1, `${what}: exit 1`);
    t.notMatch(res.stderr, STACK, `${what}: no stack trace`);
    if (extra.length > 0) t.match(res.stderr, /symbolic link/, `${what}: says it is a symlink`);
    t.ok(lstatSync(path).isSymbolicLink(), `${what}: the link is still a link`);
  }
  t.equal(readFileSync(target, 'utf8'), 'do not overwrite\n', 'the target is untouched');
  t.notOk(existsSync(nowhere), 'the dangling link’s target was never created');
});

/** A directory nobody (65534) owns, reachable by nobody: not under the 0700 `dir`. */
function nobodyDir(t: TeardownHost, name: string): string {
  const d = mkdtempSync(join(tmpdir(), `ct-record-cli-${process.pid}-${name}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  chownSync(d, NOBODY, NOBODY);
  return d;
}

/**
 * ct-record as nobody. tap injects its loaders into every child's NODE_OPTIONS, and they would
 * write to the root-owned .tap/ at exit: `env -i` starts nobody's node with a bare environment.
 */
const recordAsNobody = (args: readonly string[]) =>
  run(
    [
      'env',
      '-i',
      `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      'setpriv',
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      process.execPath,
      RECORDER,
      ...args,
    ],
    { check: false, timeoutMs: 20_000 },
  );

t.test('without CAP_NET_ADMIN: exit 1, EPERM and the fix, no journal left behind', async (t) => {
  const d = nobodyDir(t, 'eperm');
  const res = await recordAsNobody(['-o', join(d, 'j.mpk')]);
  t.equal(res.code, 1, `exit 1\n${res.stderr}`);
  t.match(res.stderr, /EPERM/);
  t.match(res.stderr, /CAP_NET_ADMIN/);
  t.notMatch(res.stderr, STACK, 'no stack trace');
  t.notMatch(res.stderr, /internal error/, 'reported as a user error, not a bug');
  t.strictSame(readdirSync(d), [], 'no journal file is left behind');
});

t.test('without CAP_NET_ADMIN, --force leaves the existing journal in place', async (t) => {
  const d = nobodyDir(t, 'eperm-force');
  const journal = join(d, 'j.mpk');
  writeFileSync(journal, 'an earlier journal\n');
  chownSync(journal, NOBODY, NOBODY);
  const res = await recordAsNobody(['-o', journal, '--force']);
  t.equal(res.code, 1, `exit 1\n${res.stderr}`);
  t.match(res.stderr, /EPERM/);
  t.equal(
    existsSync(journal) ? readFileSync(journal, 'utf8') : 'deleted',
    'an earlier journal\n',
    'a recording that never started does not destroy the journal it was to replace',
  );
});

t.test('--force replaces an existing regular file with a fresh journal', async (t) => {
  const topo = await createTopology(t, 'lan');
  const d = testDir(t, 'force');
  const journal = join(d, 'j.mpk');
  const hardLink = join(d, 'old-copy.mpk');
  writeFileSync(journal, 'an earlier journal\n');
  linkSync(journal, hardLink);
  const child = topo.spawn(topo.recordNs, [
    process.execPath,
    RECORDER,
    '-o',
    journal,
    '--force',
    '--duration',
    '1',
  ]);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  t.equal(await exitedWithin(child, 15_000), 0, `exit 0\n${stderr}`);
  t.strictSame(readFileSync(journal).subarray(0, MAGIC.length), Buffer.from(MAGIC), 'a journal');
  t.equal(
    readFileSync(hardLink, 'utf8'),
    'an earlier journal\n',
    'the old file was replaced, not truncated: a hard link to it keeps its content',
  );
  const res = await run([process.execPath, ANALYZER, journal], { check: false, timeoutMs: 30_000 });
  t.equal(res.code, 0, `ct-analyze reads the new journal\n${res.stderr}`);
});

t.test('SIGUSR1 with --table writes the live table; SIGTERM rewrites it at exit', async (t) => {
  const topo = await createTopology(t, 'lan');
  const d = testDir(t, 'usr1');
  const journal = join(d, 'j.mpk');
  const table = join(d, 'table.txt');
  const rec = await startRecorder(topo, journal, ['--table', table]);
  const written = () => rec.stderr().split(`flow table written to ${table}\n`).length - 1;
  const line = (to: 'v4' | 'v6') =>
    seedLine({
      table: to === 'v4' ? 'ICMPv4' : 'ICMPv6',
      src: topo.client[to],
      dst: topo.server[to],
      sport: 0,
      dport: 0,
      icmpType: to === 'v4' ? 8 : 128,
      icmpCode: 0,
      confirmed: true,
      label: 'ping',
    });
  const tableLines = () =>
    existsSync(table) ? readFileSync(table, 'utf8').trimEnd().split('\n').map(stripCounter) : [];

  await ping(topo, topo.server.v4);
  // The reader hands events over in batches: signal again until the ping has reached the table.
  const deadline = Date.now() + 10_000;
  while (!tableLines().includes(line('v4'))) {
    if (Date.now() > deadline) throw new Error(`no SIGUSR1 table shows the ping\n${rec.stderr()}`);
    const before = written();
    rec.child.kill('SIGUSR1');
    await until(() => written() > before, 5_000, `ct-record acknowledges SIGUSR1\n${rec.stderr()}`);
  }
  t.strictSame(tableLines(), [line('v4')], 'the SIGUSR1 table is exactly the ping so far');
  t.equal(rec.child.exitCode, null, 'SIGUSR1 does not stop the recording');

  await ping(topo, topo.server.v6);
  rec.child.kill('SIGTERM');
  t.equal(await exitedWithin(rec.child, 20_000), 0, `SIGTERM: exit 0\n${rec.stderr()}`);
  t.strictSame(
    tableLines(),
    [line('v4'), line('v6')],
    'the table is rewritten at exit with the traffic made after SIGUSR1',
  );
  const flowLines = (await analyze([journal])).replace(/^#.*\n/gm, '');
  t.equal(readFileSync(table, 'utf8'), flowLines, 'the table equals ct-analyze’s flow lines');
});

t.test('the SIGTERM summary reports the events and the journal size on disk', async (t) => {
  const topo = await createTopology(t, 'lan');
  const d = testDir(t, 'summary');
  const journal = join(d, 'j.mpk');
  const rec = await startRecorder(topo, journal, ['--table', join(d, 'table.txt')]);
  await ping(topo, topo.server.v4);
  await ping(topo, topo.server.v6);
  rec.child.kill('SIGTERM');
  t.equal(await exitedWithin(rec.child, 20_000), 0, `exit 0\n${rec.stderr()}`);
  const m =
    /^ct-record: stopped: (\d+) events \(new (\d+), update (\d+), destroy (\d+), snapshot (\d+)\), (\d+) flows, (\d+) bytes written to (.*)$/m.exec(
      rec.stderr(),
    );
  if (m === null) throw new Error(`no summary line:\n${rec.stderr()}`);
  const [events, news, updates, destroys, snapshots, flows, bytes] = m
    .slice(1, 8)
    .map(Number) as number[];
  t.equal(m[8], journal, 'it names the journal');
  t.equal(bytes, statSync(journal).size, 'the byte count is the journal size on disk');
  const doc = JSON.parse(await analyze(['--format', 'json', journal])) as {
    journals: { events: number; complete: boolean }[];
    flows: unknown[];
  };
  t.equal(doc.journals[0]?.complete, true, 'the journal is complete');
  t.equal(events, doc.journals[0]?.events, 'the event count is what the journal holds');
  t.ok((news ?? 0) >= 2, `each ping made a NEW event (${news} of ${events})`);
  t.equal(snapshots, 0, 'the fresh namespace had no flows to dump at start');
  t.equal(
    (news ?? 0) + (updates ?? 0) + (destroys ?? 0) + (snapshots ?? 0),
    events,
    'the types add up',
  );
  t.equal(flows, doc.flows.length, 'the flow count is the replayed table’s');
});

t.test(
  '-f (deprecated) still records in the foreground, warns once first; --collapse LO-HI live equals ct-analyze',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const d = testDir(t, 'dash-f');
    const journal = join(d, 'j.mpk');
    const table = join(d, 'table.txt');
    const range = '20000-65000';
    const rec = await recordScenario(topo, journal, ['-f', '--table', table, '--collapse', range]);
    t.equal(rec.exit, 0, `SIGTERM: exit 0 as before\n${rec.stderr}`);
    const lines = rec.stderr.split('\n');
    t.match(lines[0], /^ct-record: WARNING: -f is deprecated: foreground is the default/);
    t.equal(rec.stderr.split('-f is deprecated').length - 1, 1, 'said once');
    t.match(rec.stderr, /^ct-record: stopped: \d+ events .* bytes written to /m, 'the summary');
    const doc = JSON.parse(await analyze(['--format', 'json', journal])) as {
      journals: { complete: boolean }[];
    };
    t.equal(doc.journals[0]?.complete, true, 'the journal is complete');
    const flowLines = (await analyze(['--collapse', range, journal])).replace(/^#.*\n/gm, '');
    t.ok(flowLines.length > 0, 'the scenario made flows');
    t.equal(
      readFileSync(table, 'utf8'),
      flowLines,
      'the live table is ct-analyze --collapse LO-HI',
    );
  },
);
