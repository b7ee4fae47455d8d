// The one native door: only native/index.ts loads the addon, and its wrappers turn native errors into CtError.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { getpwnam, getpwuid, joinNetns, sendDatagram } from '../../native/index.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

t.test(
  'native door: no source file but native/index.ts loads the addon or its raw object',
  async (t) => {
    const offenders: string[] = [];
    for (const room of ['common', 'native', 'journal', 'analyzer', 'recorder']) {
      for (const file of sources(join(PACKAGE_ROOT, room))) {
        const rel = relative(PACKAGE_ROOT, file);
        if (rel === 'native/index.ts') continue;
        const text = readFileSync(file, 'utf8');
        if (/\bloadNative\b|\brawAddonForTests\b|ct_native\.node|createRequire/.test(text)) {
          offenders.push(rel);
        }
      }
    }
    t.strictSame(offenders, [], 'every other file goes through the typed wrappers');
    const index = readFileSync(join(PACKAGE_ROOT, 'native', 'index.ts'), 'utf8');
    t.notMatch(index, /export function loadNative/, 'the loader itself is not exported');
  },
);

t.test('native door: passwd lookups return an entry, or null for no such user', async (t) => {
  t.match(getpwnam('root'), { name: 'root', uid: 0, gid: 0 });
  t.match(getpwuid(0), { name: 'root', uid: 0 });
  t.equal(getpwnam(`no-such-user-${process.pid}`), null, 'an unknown name is null, not an error');
  t.equal(getpwuid(2 ** 31 - 2), null, 'an unknown uid is null');
});

t.test('native door: a failed datagram is a CtError named by its errno', async (t) => {
  t.throws(() => sendDatagram(`/nonexistent-${process.pid}/log`, 'x'), {
    name: 'CtError',
    code: 'ENOENT',
    message: /^sendto: ENOENT/,
  });
  t.throws(() => sendDatagram('x'.repeat(200), 'x'), { name: 'CtError', code: 'ENAMETOOLONG' });
});

t.test('native door: a namespace that is not one is a usage CtError, exit 2', async (t) => {
  t.throws(() => joinNetns(''), { name: 'CtError', code: 'EUSAGE', exit: 2 });
  t.throws(() => joinNetns(`no-such-ns-${process.pid}`), {
    name: 'CtError',
    code: 'ENONETNS',
    exit: 2,
    message: /ip netns list/,
  });
  t.throws(() => joinNetns('/proc/self/status'), {
    name: 'CtError',
    code: 'ENOTNETNS',
    exit: 2,
  });
});
