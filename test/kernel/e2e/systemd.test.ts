// The shipped systemd unit: systemd-analyze verify finds nothing, and its credentials and ExecStart record.
import '../../helpers/kernel.js';
import { type ChildProcess, execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { ANALYZER, RECORDER, ROOT } from '../../../samples/record.js';
import { createTopology, exitedWithin, run, waitForLine } from '../../helpers/netns.js';

const UNIT = join(ROOT, 'packaging', 'systemd', 'ct-record.service');
const dir = mkdtempSync(join(tmpdir(), `ct-systemd-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** systemd-analyze verify: its exit code and whatever it said about the unit file. */
async function verify(unit: string): Promise<{ code: number | null; about: string[] }> {
  const res = await run(['systemd-analyze', 'verify', unit], { check: false, timeoutMs: 60_000 });
  const name = unit.slice(unit.lastIndexOf('/') + 1);
  const about = `${res.stdout}${res.stderr}`.split('\n').filter((l) => l.includes(name));
  return { code: res.code, about };
}

t.test('systemd: systemd-analyze verify accepts the shipped unit without a warning', async (t) => {
  if (!existsSync('/usr/bin/systemd-analyze') && !existsSync('/bin/systemd-analyze')) {
    t.fail('systemd-analyze is missing: apt-get install systemd (the CI installs it)');
    return;
  }
  const res = await verify(UNIT);
  t.equal(res.code, 0, 'exit 0');
  t.strictSame(res.about, [], 'nothing is said about ct-record.service');
  // The check can fail: a misspelt key and a missing binary are reported.
  const bad = join(dir, 'ct-record.service');
  writeFileSync(
    bad,
    readFileSync(UNIT, 'utf8')
      .replace('ProtectHome=yes', 'ProtectHomme=yes')
      .replace('ExecStart=/bin/sh', 'ExecStart=/nonexistent/sh'),
  );
  const broken = await verify(bad);
  t.not(broken.code, 0, 'a unit whose ExecStart does not exist fails');
  t.ok(
    broken.about.some((l) => /Unknown key 'ProtectHomme'/.test(l)),
    'a misspelt key is reported',
  );
});

/** The unit's ExecStart shell command, with systemd's %-specifiers and $$ resolved as it would. */
function execStart(unit: string, stateDir: string): string {
  const line = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(unit)?.[1];
  if (line === undefined) throw new Error("no ExecStart=/bin/sh -c '…' in the unit");
  return line
    .replace(/%([H%])/g, (_, c: string) => (c === 'H' ? hostname() : '%'))
    .replace(/\$\$/g, '$')
    .replace('/usr/local/bin/ct-record', `${process.execPath} ${RECORDER}`)
    .replace('/var/lib/conntracker/', `${stateDir}/`);
}

t.test(
  "systemd: the unit's credentials (non-root uid, only CAP_NET_ADMIN, no_new_privs) and ExecStart record, reload and stop cleanly",
  async (t) => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const key of [
      'DynamicUser=yes',
      'AmbientCapabilities=CAP_NET_ADMIN',
      'CapabilityBoundingSet=CAP_NET_ADMIN',
      'NoNewPrivileges=yes',
      'StateDirectory=conntracker',
      'ExecReload=/bin/kill -HUP $MAINPID',
    ]) {
      t.match(unit, new RegExp(`^${key.replace(/\$/g, '\\$')}$`, 'm'), `the unit has ${key}`);
    }
    const topo = await createTopology(t, 'lan', { net: 83 });
    // nobody stands in for the dynamic user; StateDirectory= makes the directory its own.
    const state = join(dir, 'state');
    execFileSync('install', ['-d', '-o', 'nobody', '-m', '0750', state]);
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
    chmodSync(dir, 0o755); // the dynamic user reaches its state directory
    const child: ChildProcess = topo.spawn(topo.recordNs, [
      'setpriv',
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--clear-groups',
      '--inh-caps=-all,+net_admin',
      '--ambient-caps=-all,+net_admin',
      '--bounding-set=-all,+net_admin',
      '--no-new-privs',
      '/bin/sh',
      '-c',
      execStart(unit, state),
    ]);
    let stderr = '';
    const stream = child.stderr as NonNullable<ChildProcess['stderr']>;
    stream.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    await waitForLine(stream, /capturing conntrack events into /, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr}`);
    });
    t.match(
      stderr,
      /running as uid \d+, not root: no privileges to drop/,
      'no drop of its own is needed',
    );
    await topo.exec(topo.client.ns, ['ping', '-c', '2', '-i', '0.2', topo.server.v4]);
    process.kill(child.pid as number, 'SIGHUP'); // ExecReload: the main pid is ct-record (exec)
    const journals = () =>
      readdirSync(state)
        .filter((n) => n.endsWith('.mpk'))
        .sort();
    for (let i = 0; i < 200 && journals().length < 2; i++) await sleep(50);
    t.equal(journals().length, 2, 'reload started the next journal');
    child.kill('SIGTERM');
    t.equal(await exitedWithin(child, 20_000), 0, `SIGTERM ends it with exit 0\n${stderr}`);
    const names = journals();
    t.ok(
      names.every((n) => new RegExp(`^${hostname()}-\\d{8}T\\d{6}-00000[12]\\.mpk$`).test(n)),
      `journals are named HOST-TIME-N.mpk: ${names.join(' ')}`,
    );
    const res = await run(
      [process.execPath, ANALYZER, 'verify', ...names.map((n) => join(state, n))],
      { check: false, timeoutMs: 30_000 },
    );
    t.equal(res.code, 0, `ct-analyze verify: OK\n${res.stdout}${res.stderr}`);
    t.match(res.stdout, /2 journals, complete/);
    const report = await run([process.execPath, ANALYZER, ...names.map((n) => join(state, n))]);
    t.match(report.stdout, /ICMPv4 .*\(type=8 \| code=0\)/, 'the ping is recorded');
  },
);
