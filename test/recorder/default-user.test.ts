// The default --user is ct-record's own account, conntracker: missing, it is a usage error naming the fix.
import t from 'tap';
import type { PasswdEntry } from '../../native/index.js';
import { DEFAULT_USER, planPrivileges, USERADD_COMMAND } from '../../recorder/privileges.js';

const CONNTRACKER: PasswdEntry = { name: 'conntracker', uid: 998, gid: 998 };
const NOBODY: PasswdEntry = { name: 'nobody', uid: 65534, gid: 65534 };

/** A passwd database holding only `entries`, recording each lookup. */
function passwd(...entries: PasswdEntry[]) {
  const asked: string[] = [];
  const lookup = (user: string) => {
    asked.push(user);
    return entries.find((e) => e.name === user || String(e.uid) === user) ?? null;
  };
  return { asked, lookup };
}

t.test('default user: conntracker, an account of its own rather than the shared nobody', (t) => {
  t.equal(DEFAULT_USER, 'conntracker');
  t.equal(
    USERADD_COMMAND,
    'useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin conntracker',
  );
  const db = passwd(CONNTRACKER, NOBODY);
  t.strictSame(planPrivileges(undefined, 0, db.lookup), { drop: true, user: CONNTRACKER });
  t.strictSame(db.asked, ['conntracker'], 'the default is looked up by name');
  t.end();
});

t.test(
  'default user: a missing conntracker account is a usage error that gives the useradd command',
  (t) => {
    const db = passwd(NOBODY);
    t.throws(() => planPrivileges(undefined, 0, db.lookup), {
      code: 'EUSER',
      exit: 2,
      message:
        /^the default --user account conntracker does not exist: create it \(useradd --system --no-create-home --home-dir \/nonexistent --shell \/usr\/sbin\/nologin conntracker\), or pass --user USER/,
    });
    t.strictSame(
      planPrivileges('nobody', 0, db.lookup),
      { drop: true, user: NOBODY },
      'an explicit --user nobody still works',
    );
    t.throws(() => planPrivileges('ghost', 0, db.lookup), {
      code: 'EUSER',
      exit: 2,
      message: /unknown user 'ghost' for --user/,
    });
    t.strictSame(
      planPrivileges(undefined, 1000, db.lookup),
      { drop: false, why: 'running as uid 1000, not root: no privileges to drop' },
      'not root: no account is needed, none is looked up',
    );
    t.strictSame(db.asked, ['conntracker', 'nobody', 'ghost']);
    t.end();
  },
);
