// The recorder's reads and writes of kernel knobs: /proc/net/netlink drops, nf_conntrack_events.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { enableConntrackEvents } from '../../recorder/conntrack-events.js';
import { parseNetlinkDrops, readNetlinkDrops } from '../../recorder/netlink-drops.js';
import { tempDir } from '../helpers/journals.js';

const NETLINK = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
00000000ddd7f868 0   0          00000000 0        0        0     2        0        4
00000000902ad167 12  4242       0000000e 0        0        0     2        1731     987654
000000003cb83c3d 6   0          00000000 0        0        0     2        0        98765
`;

t.test('Drops is read from the row of the socket inode, not a neighbour', (t) => {
  t.equal(parseNetlinkDrops(NETLINK, 987654), 1731);
  t.equal(parseNetlinkDrops(NETLINK, 98765), 0);
  t.equal(parseNetlinkDrops(NETLINK, 4), 0);
  t.equal(parseNetlinkDrops(NETLINK, 1), undefined, 'no such socket');
  t.equal(parseNetlinkDrops('sk Eth Pid\n1 2 3\n', 1), undefined, 'no Drops column');
  t.end();
});

t.test('the live /proc/net/netlink has a Drops column for every socket', (t) => {
  const text = readFileSync('/proc/net/netlink', 'latin1');
  const inode = Number(text.split('\n')[1]?.trim().split(/\s+/).at(-1));
  t.type(readNetlinkDrops(inode), 'number');
  t.equal(readNetlinkDrops(inode, '/nonexistent'), undefined);
  t.end();
});

function fakeProc(t: { teardown(fn: () => void): void }, value: string) {
  const proc = tempDir(t, 'proc');
  mkdirSync(join(proc, 'sys/net/netfilter'), { recursive: true });
  const knob = join(proc, 'sys/net/netfilter/nf_conntrack_events');
  writeFileSync(knob, value);
  return { proc, knob };
}

t.test('--enable-events sets 1 for the run and restores the old value once', (t) => {
  const { proc, knob } = fakeProc(t, '2\n');
  const en = enableConntrackEvents(proc);
  t.equal(en.before, 2);
  t.equal(readFileSync(knob, 'latin1'), '1\n');
  en.restore();
  t.equal(readFileSync(knob, 'latin1'), '2\n');
  writeFileSync(knob, '0\n');
  en.restore();
  t.equal(readFileSync(knob, 'latin1'), '0\n', 'a second restore writes nothing');
  t.end();
});

t.test('--enable-events leaves a value of 1 alone', (t) => {
  const { proc, knob } = fakeProc(t, '1\n');
  const en = enableConntrackEvents(proc);
  t.equal(en.before, 1);
  chmodSync(knob, 0o444);
  en.restore();
  t.equal(readFileSync(knob, 'latin1'), '1\n');
  t.end();
});

t.test('--enable-events without the module says to load it', (t) => {
  const proc = tempDir(t, 'noproc');
  t.throws(() => enableConntrackEvents(proc), {
    code: 'ESYSCTL',
    message: /nf_conntrack module is not loaded/,
  });
  t.end();
});
