// ct-record --check and --enable-tracking on the real kernel, in namespaces with and without a ct rule.
import '../../helpers/kernel.js';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openJournal } from '../../../journal/reader.js';
import { ANALYZER, RECORDER, whenCapturing } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
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

const STACK = /^ {4}at /m;
const NOT_ACTIVE =
  /^FAIL conntrack is not active in this network namespace: a probe flow on loopback was not tracked/m;
const ACTIVE =
  /^ok {3}conntrack is active in this network namespace: probe flows on loopback \(IPv4 and IPv6\) were seen as NEW events after \d+ ms$/m;

const dir = mkdtempSync(join(tmpdir(), `ct-preflight-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The client end of a lan topology: a namespace with no nft rule at all. */
async function bareNamespace(t: Parameters<typeof createTopology>[0]) {
  const topo = await createTopology(t, 'lan');
  const ns = topo.client.ns;
  const ruleset = await topo.exec(ns, ['nft', 'list', 'ruleset']);
  if (ruleset.stdout.trim() !== '')
    throw new Error(`the client namespace has rules:\n${ruleset.stdout}`);
  return { topo, ns };
}

function check(topo: Topology, ns: string, args: readonly string[] = []) {
  return topo.exec(ns, [process.execPath, RECORDER, '--check', ...args], {
    check: false,
    timeoutMs: 30_000,
  });
}

const nft = (topo: Topology, ns: string, input: string) =>
  topo.exec(ns, ['nft', '-f', '-'], { input });

async function tables(topo: Topology, ns: string): Promise<string> {
  return (await topo.exec(ns, ['nft', 'list', 'tables'])).stdout;
}

t.test(
  '--check without a conntrack rule: FAIL not active, exit 1; with a ct rule: ok, exit 0',
  async (t) => {
    const { topo, ns } = await bareNamespace(t);
    const journal = join(dir, 'check-never-written.mpk');
    const bare = await check(topo, ns, ['-o', journal]);
    t.equal(bare.code, 1, `exit 1 without a rule\n${bare.stdout}${bare.stderr}`);
    t.match(bare.stdout, NOT_ACTIVE, 'the tracking finding fails');
    t.match(
      bare.stdout,
      /^ {5}fix: ct-record --enable-tracking .*\n {10}nft add table inet conntracker\n/m,
      'its fix offers --enable-tracking, then the nft commands',
    );
    t.match(bare.stdout, /^ok {3}nf_conntrack is loaded$/m);
    t.match(bare.stdout, /^ok {3}running as root/m);
    t.match(bare.stdout, /^recording would be incomplete \(1 failed, \d+ warnings, \d+ ok\)/m);
    t.notMatch(bare.stdout + bare.stderr, STACK, 'no stack trace');
    t.notOk(existsSync(journal), '--check writes no journal, even with -o');

    // The fix as printed, command by command: what the user would paste.
    const commands = bare.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('nft add '));
    t.equal(commands.length, 5, `the fix lists the five nft commands\n${commands.join('\n')}`);
    for (const command of commands) await topo.exec(ns, ['sh', '-c', command]);
    const ruled = await check(topo, ns);
    t.equal(ruled.code, 0, `exit 0 with the rule\n${ruled.stdout}${ruled.stderr}`);
    t.match(ruled.stdout, ACTIVE, 'the kernel tracks the probe flows of both families');
    t.match(
      ruled.stdout,
      /^WARN nf_conntrack_events=2: .*\n {5}fix: ct-record --enable-events/m,
      'the kernel default events=2 is a warning with its fix, not a failure',
    );
    t.notMatch(ruled.stdout, /^FAIL/m, 'nothing fails');
    t.match(ruled.stdout, /^recording would be complete \(0 failed, /m);
  },
);

t.test(
  '--check follows the kernel: an ip-family rule tracks IPv4 only; a removed rule none',
  async (t) => {
    const { topo, ns } = await bareNamespace(t);
    await nft(
      topo,
      ns,
      'table ip v4ct {\n chain out { type filter hook output priority raw; ct state new counter; }\n}\n',
    );
    const v4 = await check(topo, ns);
    t.equal(v4.code, 1, `exit 1\n${v4.stdout}`);
    t.match(
      v4.stdout,
      /^FAIL conntrack tracks IPv4 but not IPv6 in this network namespace: IPv6 flows would not be recorded/m,
    );
    await topo.exec(ns, ['nft', 'delete', 'table', 'ip', 'v4ct']);
    const removed = await check(topo, ns);
    t.equal(removed.code, 1, 'exit 1 once the rule is gone');
    t.match(removed.stdout, NOT_ACTIVE, 'its earlier probe flows still in the table do not count');
  },
);

t.test(
  '--check with nf_conntrack_events=0: events fail, tracking is still seen in a dump',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const ns = topo.recordNs;
    await topo.exec(ns, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_events=0']);
    const res = await check(topo, ns);
    t.equal(res.code, 1, `exit 1\n${res.stdout}`);
    t.match(
      res.stdout,
      /^FAIL nf_conntrack_events=0: the kernel sends no conntrack events at all/m,
    );
    t.match(
      res.stdout,
      /^ok {3}conntrack is active .*found in a table dump \(no NEW event: nf_conntrack_events=0\)$/m,
    );
    const fixed = await check(topo, ns, ['--enable-events']);
    t.equal(fixed.code, 0, `--enable-events makes it complete\n${fixed.stdout}`);
    t.match(fixed.stdout, /^ok {3}nf_conntrack_events=0 now; --enable-events sets it to 1/m);
  },
);

t.test(
  '--check --enable-tracking without a rule: ok with its table, exit 0, table gone',
  async (t) => {
    const { topo, ns } = await bareNamespace(t);
    const res = await check(topo, ns, ['--enable-tracking']);
    t.equal(res.code, 0, `exit 0\n${res.stdout}${res.stderr}`);
    t.match(
      res.stdout,
      /^ok {3}no rule needs conntrack for IPv4 and IPv6 here yet; --enable-tracking adds table inet conntracker_track_PID for the run, and with it in place probe flows on loopback \(IPv4 and IPv6\) were seen as NEW events/m,
    );
    t.equal(await tables(topo, ns), '', 'the table it added for the probe is gone');
  },
);

interface Recorder {
  child: ChildProcess;
  stderr: () => string;
}

async function startInNamespace(topo: Topology, ns: string, args: string[]): Promise<Recorder> {
  const child = topo.spawn(ns, [process.execPath, RECORDER, ...args]);
  return whenCapturing(child);
}

/** Resolves once `ns` has no table left; rejects with what is left after `ms`. */
async function noTablesWithin(topo: Topology, ns: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const left = await tables(topo, ns);
    if (left === '') return;
    if (Date.now() > end) throw new Error(`tables left after ${ms} ms: ${left}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  t.test(
    `--enable-tracking records a namespace that had no rule; its table is gone after ${signal}`,
    async (t) => {
      const { topo, ns } = await bareNamespace(t);
      const journal = join(dir, `tracking-${signal}.mpk`);
      const rec = await startInNamespace(topo, ns, ['-o', journal, '--enable-tracking']);
      const table = `conntracker_track_${rec.child.pid}`;
      t.match(await tables(topo, ns), `table inet ${table}\n`, 'its own table is in place');
      t.match(rec.stderr(), `--enable-tracking: table inet ${table} makes conntrack track`);
      await topo.exec(ns, ['ping', '-c', '1', '-W', '5', topo.server.v4]);
      await topo.exec(ns, ['ping', '-c', '1', '-W', '5', topo.server.v6]);
      rec.child.kill(signal);
      const code = await exitedWithin(rec.child, 20_000);
      if (signal === 'SIGKILL') {
        t.equal(code, 'SIGKILL', 'killed');
        // The kernel deletes an owner table when its holder's socket closes: nothing to clean up.
        await noTablesWithin(topo, ns, 5000);
        t.pass('the kernel removed the table after kill -9');
        return;
      }
      t.equal(code, 0, `exit 0 on ${signal}\n${rec.stderr()}`);
      t.equal(await tables(topo, ns), '', 'the table is gone by the time ct-record has exited');
      const r = openJournal(journal);
      t.equal(r.header.options.enableTracking, true, 'the header records --enable-tracking');
      r.close();
      const report = await run([process.execPath, ANALYZER, journal], { timeoutMs: 30_000 });
      t.match(
        report.stdout,
        new RegExp(
          `\\nICMPv4 \\[ +0\\] src = ${topo.client.v4} to dst = ${topo.server.v4} \\(type=8 \\| code=0\\) \\(confirmed\\)\\n`,
        ),
        'the IPv4 ping is recorded',
      );
      t.match(
        report.stdout,
        `src = ${topo.client.v6} to dst = ${topo.server.v6} (type=128 | code=0)`,
      );
    },
  );
}

t.test(
  '--enable-tracking: when its nft dies mid-run, the table goes and ct-record warns',
  async (t) => {
    const { topo, ns } = await bareNamespace(t);
    const rec = await startInNamespace(topo, ns, [
      '-o',
      join(dir, 'nft-killed.mpk'),
      '--enable-tracking',
    ]);
    const pids = (await run(['ip', 'netns', 'pids', ns])).stdout
      .split('\n')
      .filter((p) => p !== '');
    const nftPid = pids.find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'latin1').trim() === 'nft';
      } catch {
        return false;
      }
    });
    if (nftPid === undefined) throw new Error(`no nft process among ${pids.join(' ')}`);
    process.kill(Number(nftPid), 'SIGKILL');
    await waitForLine(
      rec.child.stderr as NonNullable<ChildProcess['stderr']>,
      /WARNING: the nft process holding table inet conntracker_track_\d+ ended/,
      5000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${rec.stderr()}`);
    });
    t.equal(await tables(topo, ns), '', 'the kernel removed the table with its holder');
    rec.child.kill('SIGTERM');
    t.equal(
      await exitedWithin(rec.child, 20_000),
      0,
      `the recording goes on and ends with exit 0\n${rec.stderr()}`,
    );
  },
);

t.test('without -o and without --check: a usage error, exit 2', async (t) => {
  const res = await run([process.execPath, RECORDER], { check: false });
  t.equal(res.code, 2);
  t.match(
    res.stderr,
    /required option '-o, --output <file>' not specified\n\(see ct-record --help\)/,
  );
});
