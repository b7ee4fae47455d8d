// ct-record drops root once its sockets and journal are open; one thread keeps CAP_NET_ADMIN.
import '../../helpers/kernel.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RECORDER, type RunningRecorder, startRecorder } from '../../../samples/record.js';
import { defaultAccount } from '../../helpers/account.js';
import { buildFlood, flood } from '../../helpers/flood.js';
import { readWhole } from '../../helpers/journals.js';
import {
  createTopology,
  exitedWithin,
  run,
  type TeardownHost,
  type Topology,
} from '../../helpers/netns.js';

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const NOBODY = 65534;
/** ct-record's default --user (made if this machine lacks it). */
const ACCOUNT = defaultAccount();
const CAP_NET_ADMIN = 1n << 12n;
const KEEPER = 'ct-netadmin';
const STACK = /^ {4}at /m;
const DROPPED = new RegExp(
  `^ct-record: dropped root: now user ${ACCOUNT.name} \\(uid ${ACCOUNT.uid}, gid ${ACCOUNT.gid}, no supplementary groups\\); kept CAP_NET_ADMIN on thread (\\d+) \\(ct-netadmin\\) for conntrack dumps and sysctl restores only, no capabilities on any other thread; no_new_privs on every thread$`,
  'm',
);
const EVENTS_KNOB = 'net.netfilter.nf_conntrack_events';

// Journals go where nobody can write: the recorder opens them before it drops root.
const dir = mkdtempSync(join(tmpdir(), `ct-privilege-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function testDir(t: TeardownHost, name: string): string {
  const d = mkdtempSync(join(dir, `${name}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Task {
  tid: number;
  comm: string;
  uid: number[];
  gid: number[];
  groups: string;
  capEff: bigint;
  capPrm: bigint;
  capAmb: bigint;
  noNewPrivs: string;
}

/** Every thread of `pid`, as /proc/PID/task/TID/status describes it. */
function tasks(pid: number): Task[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const base = `/proc/${pid}/task/${tid}`;
    const status = readFileSync(`${base}/status`, 'latin1');
    const field = (name: string) =>
      new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '';
    return {
      tid: Number(tid),
      comm: readFileSync(`${base}/comm`, 'latin1').trim(),
      uid: field('Uid').split(/\s+/).map(Number),
      gid: field('Gid').split(/\s+/).map(Number),
      groups: field('Groups').trim(),
      capEff: BigInt(`0x${field('CapEff')}`),
      capPrm: BigInt(`0x${field('CapPrm')}`),
      capAmb: BigInt(`0x${field('CapAmb')}`),
      noNewPrivs: field('NoNewPrivs'),
    };
  });
}

/**
 * tap injects its loaders into every child's NODE_OPTIONS, and their exit hook writes into the
 * root-owned .tap/: a recorder that drops root starts through `env -i` with a bare environment.
 */
const BARE = ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`];

async function stopRecorder(rec: RunningRecorder): Promise<number | string> {
  rec.child.kill('SIGTERM');
  return exitedWithin(rec.child, 20_000);
}

async function sysctl(topo: Topology, key: string): Promise<number> {
  const res = await topo.exec(topo.recordNs, ['sysctl', '-n', key]);
  return Number(res.stdout.trim());
}

/** Resolves once `check()` holds; rejects with `what` after `ms`. */
async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test(
  'privilege: by default every thread runs as conntracker and only ct-netadmin keeps CAP_NET_ADMIN',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const journal = join(testDir(t, 'default'), 'j.mpk');
    const rec = await startRecorder(topo, journal);
    const said = DROPPED.exec(rec.stderr());
    t.ok(said, `stderr says what it dropped to and what it kept\n${rec.stderr()}`);
    await until(
      () => /table dump: 0 existing flows/.test(rec.stderr()),
      10_000,
      () => `the start-up dump, sent after the drop, succeeds\n${rec.stderr()}`,
    );

    const all = tasks(rec.child.pid as number);
    t.ok(all.length >= 4, `${all.length} threads (main, libuv, V8, reader, keeper)`);
    for (const task of all) {
      const who = `${task.comm} (${task.tid})`;
      t.strictSame(
        task.uid,
        [ACCOUNT.uid, ACCOUNT.uid, ACCOUNT.uid, ACCOUNT.uid],
        `${who}: real/effective/saved/fs uid`,
      );
      t.strictSame(
        task.gid,
        [ACCOUNT.gid, ACCOUNT.gid, ACCOUNT.gid, ACCOUNT.gid],
        `${who}: every gid`,
      );
      t.equal(task.groups, '', `${who}: no supplementary group`);
      t.equal(task.capAmb, 0n, `${who}: no ambient capability`);
      t.equal(task.noNewPrivs, '1', `${who}: no_new_privs`);
    }
    const keepers = all.filter((task) => task.capEff !== 0n || task.capPrm !== 0n);
    t.equal(keepers.length, 1, 'exactly one thread has any capability');
    t.equal(keepers[0]?.comm, KEEPER, 'it is the keeper thread');
    t.equal(keepers[0]?.tid, Number(said?.[1]), 'the thread stderr named');
    t.equal(keepers[0]?.capEff, CAP_NET_ADMIN, 'its effective set is CAP_NET_ADMIN alone');
    t.equal(keepers[0]?.capPrm, CAP_NET_ADMIN, 'its permitted set is CAP_NET_ADMIN alone');
    t.ok(
      all.some((task) => task.tid === rec.child.pid && task.capEff === 0n),
      'the main (JavaScript) thread has none',
    );
    // Not dumpable (set by the drop, whatever fs.suid_dumpable says): its /proc files stay
    // root's, so the account it runs as can neither ptrace it nor read its memory.
    const mem = statSync(`/proc/${rec.child.pid}/mem`);
    t.equal(mem.uid, 0, 'not dumpable: /proc/PID/mem stays root’s, not the account’s');

    await topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '5', topo.server.v4]);
    t.equal(await stopRecorder(rec), 0, `SIGTERM: exit 0\n${rec.stderr()}`);
    const { events, complete } = readWhole(journal);
    t.ok(complete, 'the journal has its trailer and no torn tail');
    t.ok(
      events.some((e) => e.type === 1 && e.proto === 1),
      'events keep arriving on the socket opened before the drop',
    );
  },
);

t.test('privilege: a forced overrun after the drop is resynchronised by a dump', async (t) => {
  const floodBin = buildFlood(testDir(t, 'flood-bin'));
  const topo = await createTopology(t, 'lan');
  // Every flood flow stays in the table, so every resync dump has work to do.
  await topo.exec(topo.recordNs, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=300']);
  const journal = join(testDir(t, 'overrun'), 'j.mpk');
  const rec = await startRecorder(topo, journal, [
    '-e',
    'NEW',
    '-b',
    '4K',
    '--resync-interval',
    '1',
  ]);
  t.match(rec.stderr(), DROPPED, 'root was dropped before the flood');

  const n = 5_000;
  t.equal(await flood(topo, floodBin, n), n, `the flood sent ${n} datagrams`);
  // Stop only once the journal has stopped growing: every resync dump has then finished.
  let size = -1;
  let quietSince = Date.now();
  await until(
    () => {
      const now = statSync(journal).size;
      if (now !== size) {
        size = now;
        quietSince = Date.now();
      }
      // Longer than the resync interval: no paced dump is still waiting for its turn.
      return Date.now() - quietSince >= 2_500;
    },
    20_000,
    () => `the journal stops growing\n${rec.stderr()}`,
  );
  t.equal(await stopRecorder(rec), 0, `SIGTERM after the overrun: exit 0\n${rec.stderr()}`);
  t.notMatch(rec.stderr(), /EPERM|table dump failed/, 'no dump was refused');

  const { events, gaps, complete } = readWhole(journal);
  t.ok(complete, 'the journal is complete');
  t.ok(gaps.length >= 1, `the overrun left ${gaps.length} gap(s)`);
  for (const g of gaps) {
    t.ok(g.resync >= 0, `the gap's resync dump succeeded (${g.resync} entries)`);
  }
  t.ok(
    gaps.some((g) => g.resync > 0),
    'a resync dump, sent by the keeper thread, returned the flood flows',
  );
  t.ok(
    events.some((e) => e.type === 4),
    'the resync entries are in the journal as snapshots',
  );
});

t.test('privilege: --enable-events restores the sysctl at exit after the drop', async (t) => {
  const topo = await createTopology(t, 'lan');
  t.equal(await sysctl(topo, EVENTS_KNOB), 2, 'a fresh namespace has the kernel default 2');
  const journal = join(testDir(t, 'events'), 'j.mpk');
  const rec = await startRecorder(topo, journal, ['--enable-events']);
  t.match(rec.stderr(), DROPPED, 'root was dropped');
  t.equal(await sysctl(topo, EVENTS_KNOB), 1, 'set to 1 while recording');
  t.equal(await stopRecorder(rec), 0, `SIGTERM: exit 0\n${rec.stderr()}`);
  t.equal(await sysctl(topo, EVENTS_KNOB), 2, 'back to 2 after exit, written after the drop');
  t.notMatch(rec.stderr(), /could not restore/, 'no restore warning');
});

t.test('privilege: --user root keeps root and says so', async (t) => {
  const topo = await createTopology(t, 'lan');
  const journal = join(testDir(t, 'root'), 'j.mpk');
  const rec = await startRecorder(topo, journal, ['--user', 'root']);
  t.match(
    rec.stderr(),
    /^ct-record: --user root: staying root with every capability \(no privilege drop\)$/m,
    'stderr says it stays root',
  );
  const main = tasks(rec.child.pid as number).find((task) => task.tid === rec.child.pid);
  t.equal(main?.uid[0], 0, 'still uid 0');
  t.ok((main?.capEff ?? 0n) & CAP_NET_ADMIN, 'still CAP_NET_ADMIN on the main thread');
  t.notOk(
    tasks(rec.child.pid as number).some((task) => task.comm === KEEPER),
    'no keeper thread',
  );
  t.equal(await stopRecorder(rec), 0, `SIGTERM: exit 0\n${rec.stderr()}`);
});

t.test('privilege: refusals exit 2 with what to do and leave no journal', async (t) => {
  const d = testDir(t, 'refusals');
  const out = join(d, 'j.mpk');
  const record = (args: readonly string[]) =>
    run([...BARE, process.execPath, RECORDER, '-o', out, ...args], {
      check: false,
      timeoutMs: 20_000,
    });

  const unknown = await record(['--user', 'nosuchuser']);
  t.equal(unknown.code, 2, `--user nosuchuser: exit 2\n${unknown.stderr}`);
  t.match(unknown.stderr, /unknown user 'nosuchuser' for --user: give an existing user/);
  t.notMatch(unknown.stderr, STACK, 'no stack trace');
  t.strictSame(readdirSync(d), [], 'no journal file is left behind');

  const notRoot = await run(
    [
      ...BARE,
      'setpriv',
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      process.execPath,
      RECORDER,
      '-o',
      out,
      '--user',
      'nobody',
    ],
    { check: false, timeoutMs: 20_000 },
  );
  t.equal(notRoot.code, 2, `--user when not root: exit 2\n${notRoot.stderr}`);
  t.match(notRoot.stderr, /--user nobody needs root: .* leave out --user/);
  t.strictSame(readdirSync(d), [], 'still no journal file');
});

t.test(
  'privilege: --table in a directory only root can write still works after the drop',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const d = testDir(t, 'table');
    const closed = join(d, 'root-only');
    execFileSync('mkdir', ['-m', '0700', closed]);
    const table = join(closed, 't.txt');
    const res = await topo.exec(
      topo.recordNs,
      [
        ...BARE,
        process.execPath,
        RECORDER,
        '-o',
        join(d, 'j.mpk'),
        '--table',
        table,
        '--duration',
        '1',
      ],
      { check: false, timeoutMs: 20_000 },
    );
    t.equal(res.code, 0, `exit 0\n${res.stderr}`);
    t.match(res.stderr, /dropped root: now user conntracker/, 'it did drop to conntracker');
    t.ok(existsSync(table), 'the table file, opened before the drop, was written at exit');
    t.notMatch(res.stderr, STACK, 'no stack trace');
  },
);
