// ct-record -d on the real kernel: detach, pidfile, syslog lines, SIGUSR1/SIGHUP/SIGTERM, verifiable journals.
import '../../helpers/kernel.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { isRunningRecorder, readPidfile } from '../../../recorder/pidfile.js';
import { ANALYZER, RECORDER } from '../../../samples/record.js';
import { defaultAccount } from '../../helpers/account.js';
import { createTopology, run, type TeardownHost, waitForLine } from '../../helpers/netns.js';

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

/** ct-record's default --user (made if this machine lacks it). */
const ACCOUNT = defaultAccount();
const dir = mkdtempSync(join(tmpdir(), `ct-daemon-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// As a deployment would: the daemon drops to conntracker, then writes its pidfile and journal 2
// here.
chownSync(dir, ACCOUNT.uid, ACCOUNT.gid);

/** A private /dev/log: prints each datagram on a line; world-writable like the real one. */
const LISTENER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
print('listening', flush=True)
while True:
    print(s.recv(65536).decode('utf-8', 'replace').replace('\\n', '\\\\n'), flush=True)
`;

async function startListener(
  t: TeardownHost,
  socket: string,
): Promise<{ lines: () => string[]; child: ChildProcess }> {
  const child = spawn('python3', ['-u', '-c', LISTENER, socket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  const stdout = child.stdout as NonNullable<ChildProcess['stdout']>;
  stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await waitForLine(stdout, /^listening$/, 10_000);
  return { child, lines: () => out.split('\n').filter((l) => l !== '' && l !== 'listening') };
}

/** Gone, or a zombie nobody reaps (its parent, the launcher, has exited). */
function ended(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

function killQuietly(pid: number | undefined): void {
  if (pid === undefined || ended(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

const SYSLOG = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ct-record\[(\d+)\]: (.*)$/;

t.test(
  'daemon: -d detaches once recording, logs to syslog, obeys USR1/HUP/TERM, leaves verifiable journals and no pidfile',
  async (t) => {
    const topo = await createTopology(t, 'lan', { net: 81 });
    const socket = join(dir, 'log.sock');
    const syslog = await startListener(t, socket);
    const pidfile = join(dir, 'ct-record.pid');
    const journal = join(dir, 'd.mpk');
    const table = join(dir, 'd.txt');
    const node = process.execPath;
    const started = Date.now();
    const launch = await topo.exec(
      topo.recordNs,
      [
        node,
        RECORDER,
        '-d',
        '--pidfile',
        pidfile,
        '--syslog-socket',
        socket,
        '-o',
        journal,
        '--rotate',
        '--duration',
        '3600',
        '--table',
        table,
      ],
      { check: false, timeoutMs: 40_000 },
    );
    const launchMs = Date.now() - started;
    const pid = Number(/daemon mode: check syslog \(pid (\d+)\)/.exec(launch.stderr)?.[1]);
    t.teardown(() => killQuietly(pid));
    t.equal(launch.code, 0, `the launcher exits 0\n${launch.stderr}`);
    t.ok(launchMs < 10_000, `the launcher returns promptly (${launchMs} ms)`);
    t.notMatch(launch.stderr, /WARNING/, 'the daemon reached the syslog socket');
    t.equal(readPidfile(pidfile), pid, 'the pidfile holds the daemon pid the launcher printed');
    t.ok(isRunningRecorder(pid), 'that pid is a running ct-record');
    t.equal(readFileSync(pidfile, 'utf8'), `${pid}\n`, 'the pidfile is the pid and a newline');

    await topo.exec(topo.client.ns, ['ping', '-c', '2', '-i', '0.2', topo.server.v4]);
    process.kill(pid, 'SIGUSR1');
    await until('SIGUSR1 writes the ICMPv4 flow into --table', 10_000, () => {
      try {
        return /ICMPv4 .*\(type=8 \| code=0\)/.test(readFileSync(table, 'utf8'));
      } catch {
        return false;
      }
    });
    t.pass('SIGUSR1 wrote the live table with the flow');

    process.kill(pid, 'SIGHUP');
    const second = join(dir, 'd-000002.mpk');
    await until('SIGHUP starts journal 2', 10_000, () => existsSync(second));
    t.pass('SIGHUP ended journal 1 and started journal 2');
    await topo.exec(topo.client.ns, ['ping', '-6', '-c', '2', '-i', '0.2', topo.server.v6]);
    // The reader hands batches over every 20 ms: let the ICMPv6 events reach journal 2.
    await sleep(300);

    process.kill(pid, 'SIGTERM');
    await until('the daemon ends on SIGTERM', 20_000, () => ended(pid));
    t.notOk(existsSync(pidfile), 'the pidfile is gone after a clean stop');

    const verify = await run([node, ANALYZER, 'verify', join(dir, 'd-000001.mpk'), second], {
      check: false,
      timeoutMs: 30_000,
    });
    t.equal(
      verify.code,
      0,
      `ct-analyze verify: every journal OK\n${verify.stdout}${verify.stderr}`,
    );
    t.match(verify.stdout, /d-000001\.mpk: OK — complete/, 'journal 1 is complete');
    t.match(verify.stdout, /d-000002\.mpk: OK — complete/, 'journal 2 is complete');
    t.match(verify.stdout, /2 journals, complete/, 'the chain is whole');
    const report = await run([node, ANALYZER, join(dir, 'd-000001.mpk'), second], {
      timeoutMs: 30_000,
    });
    t.match(report.stdout, /ICMPv4 .*\(type=8 \| code=0\)/, 'the ping before SIGHUP is recorded');
    t.match(report.stdout, /ICMPv6 .*\(type=128 \| code=0\)/, 'the ping after SIGHUP is recorded');

    const lines = syslog.lines();
    const parsed = lines.map((l) => SYSLOG.exec(l));
    t.same(
      lines.filter((_, i) => parsed[i] === null),
      [],
      'every datagram is an RFC 3164 line <PRI>Mmm dd hh:mm:ss ct-record[PID]: msg',
    );
    const msgs = parsed.flatMap((m) => (m === null ? [] : [m]));
    t.ok(
      msgs.every((m) => Number(m[3]) === pid),
      'every line names the daemon pid',
    );
    const info = msgs.filter((m) => m[1] === '30').map((m) => m[4] ?? '');
    for (const want of [
      'Starting to capture conntrack events',
      `Dumping the flow table into: ${table}`,
      'Finished capturing conntrack events',
    ]) {
      t.ok(info.includes(want), `syslog (daemon.info) has "${want}"`);
    }
    t.ok(
      info.some((m) => m.startsWith('SIGHUP: ending ')),
      'syslog says why the journal ended',
    );
    const last = /d-000002\.mpk: OK .*sha256 ([0-9a-f]{64})/.exec(verify.stdout)?.[1];
    t.ok(
      last !== undefined && info.some((m) => m.includes(`journal sha256 ${last}`)),
      'syslog has the last journal sha256 that verify prints',
    );
    t.ok(
      info.indexOf('Starting to capture conntrack events') <
        info.indexOf('Finished capturing conntrack events'),
      'start comes before finish',
    );
  },
);

t.test(
  'daemon: a start that fails (unwritable -o) exits non-zero with the error, leaves no pidfile',
  async (t) => {
    const topo = await createTopology(t, 'lan', { net: 82 });
    const socket = join(dir, 'fail.sock');
    const syslog = await startListener(t, socket);
    const pidfile = join(dir, 'fail.pid');
    const bad = join(dir, `missing-${process.pid}`, 'j.mpk');
    const res = await topo.exec(
      topo.recordNs,
      [
        process.execPath,
        RECORDER,
        '-d',
        '--pidfile',
        pidfile,
        '--syslog-socket',
        socket,
        '-o',
        bad,
      ],
      { check: false, timeoutMs: 40_000 },
    );
    t.equal(res.code, 1, 'the launcher exits 1');
    t.match(res.stderr, new RegExp(`ct-record: .*cannot create ${bad}.*no such directory`));
    t.notMatch(res.stderr, /daemon mode: check syslog/, 'no success is claimed');
    t.notOk(existsSync(pidfile), 'no pidfile');
    t.notOk(existsSync(bad), 'no journal');
    await until('the error reaches syslog', 5_000, () =>
      syslog.lines().some((l) => l.startsWith('<27>')),
    );
    t.match(
      syslog.lines().find((l) => l.startsWith('<27>')) ?? '',
      new RegExp(`ct-record\\[\\d+\\]: cannot create ${bad}`),
      'the error is logged at daemon.err',
    );
  },
);
