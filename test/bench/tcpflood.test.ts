// bench/tcpflood.c builds warning-free, rejects bad arguments with its usage, and completes real handshakes on loopback.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';

const SOURCE = join(PACKAGE_ROOT, 'bench', 'tcpflood.c');
const dir = mkdtempSync(join(tmpdir(), 'tcpflood-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const BINARY = join(dir, 'tcpflood');

t.test('bench/tcpflood.c compiles with -Wall -Wextra -Werror', async (t) => {
  // gcc is installed wherever the addon builds; capture.sh --tcp builds it the same way.
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', BINARY, SOURCE], {
    stdio: 'pipe',
  });
  t.pass('built');
});

t.test('bench/tcpflood: bad arguments print the usage and exit 2', async (t) => {
  for (const args of [
    [],
    ['127.0.0.1'],
    ['not-an-address', '10'],
    ['127.0.0.1', '0'],
    ['serve', 'x'],
  ]) {
    const run = spawnSync(BINARY, args, { encoding: 'utf8' });
    t.equal(run.status, 2, `tcpflood ${args.join(' ')}: exit 2`);
    t.match(run.stderr, /tcpflood/, `tcpflood ${args.join(' ')}: says what is wrong`);
  }
});

t.test(
  'bench/tcpflood: 500 connections on loopback complete their handshakes and print the summary line',
  async (t) => {
    // One port: 7000 (the client uses source ports 1024..1523, bound on 127.0.0.1).
    const server = spawn(BINARY, ['serve', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => server.kill('SIGKILL'));
    let out = '';
    server.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    let err = '';
    server.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    for (let i = 0; i < 100 && !out.includes('listening'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    t.match(out, /^listening ports=7000\.\.7000$/m, `the server listens (stderr: ${err})`);

    const run = spawnSync(BINARY, ['127.0.0.1', '500', '20', '1', '32'], { encoding: 'utf8' });
    t.equal(run.status, 0, `exit 0\n${run.stderr}`);
    const m = /^sent=(\d+) connected=(\d+) failed=(\d+) seconds=[\d.]+ rate=\d+$/m.exec(run.stdout);
    t.ok(m, `the summary line: ${run.stdout}`);
    const [sent = 0, connected = 0, failed = 0] = (m ?? []).slice(1).map(Number);
    t.equal(sent, 500, 'every attempt made');
    t.equal(connected + failed, sent, 'each attempt counted once');
    // A source port another program listens on fails its attempt; no more than a few here.
    t.ok(connected >= 490, `${connected} of 500 connected`);

    const exited = new Promise((r) => server.on('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    server.kill('SIGTERM');
    await exited;
    const accepted = Number(/accepted=(\d+)/.exec(out)?.[1]);
    t.ok(accepted > 0 && accepted <= connected, `the server accepted ${accepted}, closed each`);
  },
);
