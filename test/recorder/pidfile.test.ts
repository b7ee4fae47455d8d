// --pidfile: atomic 0644 write, refusal while it names a live ct-record, stale files replaced, owner-only removal.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  isRecorderCommand,
  isRunningRecorder,
  preparePidfileDir,
  readPidfile,
  refuseRunning,
  removePidfile,
  writePidfile,
} from '../../recorder/pidfile.js';
import { exited, type TeardownHost } from '../helpers/netns.js';

const dir = mkdtempSync(join(tmpdir(), `ct-pidfile-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 };

/** A process whose command line looks like ct-record's (dist/recorder/cli.js), killed at teardown. */
function fakeRecorder(t: TeardownHost) {
  const child = spawn(
    process.execPath,
    ['-e', 'setInterval(() => {}, 1000)', '/opt/ct/dist/recorder/cli.js'],
    {
      stdio: 'ignore',
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return child;
}

t.test('pidfile: written atomically with mode 0644 whatever the umask, read back', async (t) => {
  const path = join(dir, 'a.pid');
  const old = process.umask(0o077);
  try {
    writePidfile(path, 4242);
  } finally {
    process.umask(old);
  }
  t.equal(readPidfile(path), 4242);
  t.equal(statSync(path).mode & 0o777, 0o644);
  t.strictSame(
    readdirSync(dir).filter((n) => n.includes('.tmp')),
    [],
    'no temporary file is left',
  );
  writeFileSync(path, 'garbage\n');
  t.equal(readPidfile(path), undefined, 'a file without a pid holds none');
  t.equal(readPidfile(join(dir, 'none.pid')), undefined);
});

t.test(
  'pidfile: refused while it names a running ct-record; stale and foreign pids are replaced',
  async (t) => {
    const path = join(dir, 'b.pid');
    const rec = fakeRecorder(t);
    await new Promise((r) => rec.once('spawn', r));
    const pid = rec.pid as number;
    t.ok(isRunningRecorder(pid), 'the fake recorder reads as ct-record from /proc/PID/cmdline');
    writePidfile(path, pid);
    t.throws(() => refuseRunning(path), {
      code: 'EEXIST',
      exit: 2,
      message: new RegExp(
        `names ct-record pid ${pid}, which is still running: stop it first \\(kill ${pid}\\)`,
      ),
    });
    t.doesNotThrow(() => refuseRunning(path, pid), 'its own pid is no other recorder');
    rec.kill('SIGKILL');
    await exited(rec);
    t.notOk(isRunningRecorder(pid), 'a dead (or zombie) process is not running');
    t.doesNotThrow(() => refuseRunning(path), 'a stale pidfile is not refused');
    writePidfile(path, process.ppid);
    t.notOk(isRunningRecorder(process.ppid), 'the test runner is no ct-record');
    t.doesNotThrow(() => refuseRunning(path), 'a pid reused by another program is not refused');
    t.ok(isRecorderCommand(['node', '/usr/local/bin/ct-record', '-o', 'x']));
    t.notOk(isRecorderCommand(['node', '/usr/local/bin/ct-analyze', 'ct-record.mpk']));
  },
);

t.test('pidfile: removed only while it still holds our pid', async (t) => {
  const path = join(dir, 'c.pid');
  writePidfile(path, 111);
  t.equal(removePidfile(path, 222), undefined, 'another recorder took it over: left alone');
  t.ok(existsSync(path));
  t.equal(removePidfile(path, 111), undefined);
  t.notOk(existsSync(path), 'ours: removed');
  t.equal(removePidfile(path, 111), undefined, 'already gone is fine');
});

t.test(
  'pidfile: its directory must let the dropped user remove it, or the start is refused',
  async (t) => {
    const closed = join(dir, 'closed');
    mkdirSync(closed, { mode: 0o755 });
    chmodSync(closed, 0o755);
    t.throws(() => preparePidfileDir(join(closed, 'x.pid'), NOBODY), {
      code: 'EACCES',
      exit: 2,
      message:
        /writes and removes it as user nobody \(--user\), who cannot write to .*closed: leave out --pidfile/,
    });
    t.doesNotThrow(
      () => preparePidfileDir(join(closed, 'x.pid'), undefined),
      'no drop: any directory',
    );
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o1777);
    t.doesNotThrow(() => preparePidfileDir(join(open, 'x.pid'), NOBODY));
    t.throws(() => preparePidfileDir(join(dir, 'missing', 'x.pid'), NOBODY), {
      code: 'EPIDFILE',
      exit: 2,
    });
  },
);
