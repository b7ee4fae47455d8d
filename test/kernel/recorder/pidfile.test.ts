// --pidfile as root: it never writes into, nor follows, a directory another user owns (chown needs root).
import '../../helpers/kernel.js';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { preparePidfileDir } from '../../../recorder/pidfile.js';

const dir = mkdtempSync(join(tmpdir(), `ct-pidfile-root-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 };
const ROOT_USER = { name: 'root', uid: 0, gid: 0 };

t.test('pidfile: root never writes into a --pidfile directory another user owns', async (t) => {
  const d = mkdtempSync(join(dir, 'theirs-'));
  chownSync(d, 65534, 65534);
  t.throws(() => preparePidfileDir(join(d, 'x.pid'), undefined, { euid: 0 }), {
    code: 'EACCES',
    exit: 2,
    message:
      /--pidfile .*x\.pid: ct-record would write it as root into .*, which belongs to uid 65534/,
  });
  const mine = mkdtempSync(join(dir, 'mine-'));
  t.doesNotThrow(() => preparePidfileDir(join(mine, 'x.pid'), undefined, { euid: 0 }));
});

t.test(
  'pidfile: the default directory an earlier run gave to its --user is taken back before root writes in it',
  async (t) => {
    const d = mkdtempSync(join(dir, 'default-'));
    const own = join(d, 'ct-record');
    const pidfile = join(own, 'ct-record.pid');
    mkdirSync(own, { mode: 0o777 });
    chmodSync(own, 0o777);
    chownSync(own, 65534, 65534);
    preparePidfileDir(pidfile, undefined, { euid: 0, defaultPidfile: pidfile });
    const st = statSync(own);
    t.strictSame([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o755], 'root:root 0755 again');
    preparePidfileDir(pidfile, NOBODY, { euid: 0, defaultPidfile: pidfile });
    t.strictSame(
      [statSync(own).uid, statSync(own).mode & 0o7777],
      [65534, 0o755],
      'handed to --user',
    );
    rmSync(own, { recursive: true });
    symlinkSync(d, own);
    t.throws(() => preparePidfileDir(pidfile, ROOT_USER, { euid: 0, defaultPidfile: pidfile }), {
      code: 'EPIDFILE',
      message: /ct-record is a symbolic link/,
    });
    t.equal(statSync(d).uid, 0, 'the link was not followed by chown');
  },
);
