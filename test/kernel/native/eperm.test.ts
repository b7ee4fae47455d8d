// Without CAP_NET_ADMIN the capture refuses to start with the EPERM CtError a user can act on.
import '../../helpers/kernel.js';
import t from 'tap';
import { CaptureChild } from './capture.js';

t.test('native: start() as nobody fails with CtError EPERM and the fix', async (t) => {
  const child = new CaptureChild(t, [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
  ]);
  const line = await child.waitFor((l) => l.error || l.ready, 'start() to fail');
  t.same(line.error, {
    name: 'CtError',
    code: 'EPERM',
    message: 'cannot open conntrack netlink socket: EPERM — run as root or grant CAP_NET_ADMIN',
  });
  t.equal(await child.exited, 1, 'the child reports the failure and exits');
});
