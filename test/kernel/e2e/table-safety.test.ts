// ct-record --table on the real kernel: root never writes through a hard link or a linked directory; mode 0600.
import '../../helpers/kernel.js';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RECORDER } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-table-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test(
  'table: ct-record refuses a hard link and a linked directory, writes 0600 otherwise',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const record = (name: string, table: string) =>
      topo.exec(
        topo.recordNs,
        [
          process.execPath,
          RECORDER,
          '-o',
          join(dir, `${name}.mpk`),
          '--table',
          table,
          '--duration',
          '1',
        ],
        { check: false, timeoutMs: 30_000 },
      );

    const victim = join(dir, 'shadow');
    writeFileSync(victim, 'root:secret\n', { mode: 0o600 });
    linkSync(victim, join(dir, 'hard.txt'));
    const hard = await record('hard', join(dir, 'hard.txt'));
    t.equal(hard.code, 1, `refused\n${hard.stderr}`);
    t.match(hard.stderr, /--table .*hard\.txt has 2 hard links: .*remove it/);
    t.equal(readFileSync(victim, 'utf8'), 'root:secret\n', 'the linked file is not truncated');
    t.notOk(existsSync(join(dir, 'hard.mpk')), 'no journal is left behind');

    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'via'));
    const linked = await record('linked', join(dir, 'via', 't.txt'));
    t.equal(linked.code, 1, `refused\n${linked.stderr}`);
    t.match(linked.stderr, /via is a symbolic link: ct-record follows none in --table/);
    t.strictSame(readdirSync(join(dir, 'real')), [], 'nothing was created through the link');

    const fine = await record('fine', join(dir, 'fine.txt'));
    t.equal(fine.code, 0, `recorded\n${fine.stderr}`);
    const st = statSync(join(dir, 'fine.txt'));
    t.equal(st.mode & 0o777, 0o600, 'the table is 0600, like the journal');
    t.equal(st.uid, 0, 'created by root before the drop');
  },
);
