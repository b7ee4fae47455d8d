// --table: opened as root, so it refuses hard links, foreign owners and symlinks anywhere in the path; mode 0600.
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TableFile } from '../../recorder/table-file.js';
import { tempDir } from '../helpers/journals.js';
import { run } from '../helpers/netns.js';

function writeOnce(path: string, text: string, opts?: { uid?: number }): void {
  const f = new TableFile(path, opts);
  try {
    f.write([text]);
  } finally {
    f.close();
  }
}

t.test('table: a new file is mode 0600 whatever the umask, like the journals', async (t) => {
  const dir = tempDir(t, 'table-mode');
  const path = join(dir, 'flows.txt');
  const old = process.umask(0o000);
  try {
    writeOnce(path, 'flows\n');
  } finally {
    process.umask(old);
  }
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(readFileSync(path, 'utf8'), 'flows\n');
  chmodSync(path, 0o644);
  writeOnce(path, 'again\n');
  t.equal(statSync(path).mode & 0o777, 0o600, 'an existing table of ours is brought to 0600');
  t.equal(readFileSync(path, 'utf8'), 'again\n', 'and rewritten');
});

t.test(
  'table: a hard link at the path is refused and the linked file is not truncated',
  async (t) => {
    const dir = tempDir(t, 'table-hardlink');
    const victim = join(dir, 'shadow');
    writeFileSync(victim, 'root:secret\n', { mode: 0o600 });
    const path = join(dir, 'flows.txt');
    linkSync(victim, path);
    t.throws(() => writeOnce(path, 'flows\n'), {
      code: 'ETABLE',
      message: /--table .*flows\.txt has 2 hard links: .*remove it/,
    });
    t.equal(readFileSync(victim, 'utf8'), 'root:secret\n', 'the linked file is intact');
    t.equal(statSync(victim).mode & 0o777, 0o600, 'and its mode too');
  },
);

t.test('table: a symbolic link to a directory earlier in the path is refused', async (t) => {
  const dir = tempDir(t, 'table-dirlink');
  mkdirSync(join(dir, 'real'));
  symlinkSync(join(dir, 'real'), join(dir, 'via'));
  t.throws(() => new TableFile(join(dir, 'via', 'flows.txt')), {
    code: 'ETABLE',
    message: /via is a symbolic link: ct-record follows none in --table/,
  });
  t.strictSame(readdirSync(join(dir, 'real')), [], 'nothing was created through it');
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    t.throws(() => new TableFile(join('via', 'flows.txt')), { code: 'ETABLE' }, 'relative too');
  } finally {
    process.chdir(cwd);
  }
});

t.test('table: a symbolic link or a FIFO at the path is refused, without blocking', async (t) => {
  const dir = tempDir(t, 'table-special');
  const target = join(dir, 'target');
  writeFileSync(target, 'keep\n');
  symlinkSync(target, join(dir, 'link.txt'));
  t.throws(() => new TableFile(join(dir, 'link.txt')), {
    code: 'ETABLE',
    message: /link\.txt is a symbolic link/,
  });
  t.equal(readFileSync(target, 'utf8'), 'keep\n');
  await run(['mkfifo', join(dir, 'fifo.txt')]);
  t.throws(() => new TableFile(join(dir, 'fifo.txt')), {
    code: 'ETABLE',
    message: /is not a regular file/,
  });
});
