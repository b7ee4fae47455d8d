// --enable-events: nf_conntrack_events set for the run and restored, or a clear error.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { enableConntrackEvents } from '../../recorder/conntrack-events.js';
import { tempDir } from '../helpers/journals.js';

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
