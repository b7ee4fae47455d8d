// --pidfile: atomic 0644 write, refusal while it names a live ct-record, stale files replaced, owner-only removal.
import { spawn, spawnSync } from 'node:child_process';
import fs, {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { exited, run, type TeardownHost } from '../helpers/netns.js';

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

t.test(
  'pidfile: a symlink swapped in for the temporary file after its creation does not get its target chmod-ed',
  async (t) => {
    const d = mkdtempSync(join(dir, 'swap-'));
    const victim = join(d, 'root-only');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    chmodSync(victim, 0o600);
    const path = join(d, 'x.pid');
    // The race the audit won, made certain: right after the temporary file is created, the owner
    // of the directory replaces it with a symlink to a root-only file.
    const original = { openSync: fs.openSync, writeFileSync: fs.writeFileSync };
    let swapped = 0;
    const swap = (p: unknown) => {
      if (typeof p !== 'string' || !p.endsWith('.tmp') || swapped > 0) return;
      swapped++;
      const planted = join(d, basename(p));
      rmSync(planted, { force: true });
      symlinkSync(victim, planted);
    };
    fs.openSync = ((...a: Parameters<typeof fs.openSync>) => {
      const fd = original.openSync(...a);
      swap(a[0]);
      return fd;
    }) as typeof fs.openSync;
    fs.writeFileSync = ((...a: Parameters<typeof fs.writeFileSync>) => {
      original.writeFileSync(...a);
      swap(a[0]);
    }) as typeof fs.writeFileSync;
    syncBuiltinESMExports();
    try {
      writePidfile(path, 4242);
    } catch {
      // refusing is fine too; what matters is the victim
    } finally {
      Object.assign(fs, original);
      syncBuiltinESMExports();
    }
    t.equal(swapped, 1, 'the temporary file was swapped for a symlink');
    t.equal(statSync(victim).mode & 0o777, 0o600, 'the root-only file is still 0600');
    t.equal(readFileSync(victim, 'utf8'), 'secret\n', 'and unchanged');
  },
);

/** Runs `code` (ESM, with the recorder's pidfile module as `p`) in a child, killed after 20 s. */
function inChild(code: string) {
  const loader = import.meta.resolve('@tapjs/typescript/import');
  const mod = fileURLToPath(new URL('../../recorder/pidfile.ts', import.meta.url));
  const started = Date.now();
  const res = spawnSync(
    process.execPath,
    [
      `--import=${loader}`,
      '--input-type=module',
      '-e',
      `const p = await import(${JSON.stringify(mod)}); ${code}`,
    ],
    { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL', env: { PATH: process.env.PATH } },
  );
  return { ...res, ms: Date.now() - started };
}

t.test(
  'pidfile: a FIFO planted at the path is refused in bounded time, never waited on',
  async (t) => {
    const d = mkdtempSync(join(dir, 'fifo-'));
    const path = join(d, 'x.pid');
    await run(['mkfifo', path]);
    const res = inChild(
      `for (const f of [() => p.refuseRunning(${JSON.stringify(path)}), () => { const w = p.removePidfile(${JSON.stringify(path)}, 1); if (w) throw new Error(w); }]) {
       try { f(); console.log('accepted'); } catch (e) { console.log(e.code, e.exit, e.message); }
     }`,
    );
    t.equal(res.signal, null, `the child ended by itself (after ${res.ms} ms), it did not hang`);
    const [refused, removal] = res.stdout.trim().split('\n');
    t.match(refused, /^EPIDFILE 2 .*x\.pid is not a regular file \(a FIFO\).*remove it/);
    t.match(removal, /not a regular file/, 'removal at exit warns instead of waiting');
    t.ok(lstatSync(path).isFIFO(), 'the FIFO is left for the admin to look at');
  },
);

t.test('pidfile: a symbolic link at the path is refused, never followed', async (t) => {
  const d = mkdtempSync(join(dir, 'link-'));
  const target = join(d, 'elsewhere');
  writeFileSync(target, 'not a pid\n');
  const path = join(d, 'x.pid');
  symlinkSync(target, path);
  t.throws(() => refuseRunning(path), {
    code: 'EPIDFILE',
    exit: 2,
    message: /x\.pid is a symbolic link: ct-record never follows one.*remove it/,
  });
  t.throws(() => readPidfile(path), { code: 'EPIDFILE' });
});

t.test('pidfile: a symbolic link among the directories of the path is refused', async (t) => {
  const d = mkdtempSync(join(dir, 'dirlink-'));
  mkdirSync(join(d, 'real'));
  chmodSync(join(d, 'real'), 0o1777);
  symlinkSync(join(d, 'real'), join(d, 'via'));
  t.throws(() => preparePidfileDir(join(d, 'via', 'x.pid'), NOBODY), {
    code: 'EPIDFILE',
    exit: 2,
    message: /via is a symbolic link/,
  });
  t.throws(() => writePidfile(join(d, 'via', 'x.pid'), 77), { code: 'EPIDFILE' });
  t.strictSame(readdirSync(join(d, 'real')), [], 'nothing was written through it');
});
