// The native privilege drop: after it only the keeper thread has CAP_NET_ADMIN, and dump() and
// setConntrackEvents() go through it, while a plain setuid leaves dumps refused (dump.test.ts);
// the keeper writes nf_conntrack_events and nothing else.
import '../../helpers/kernel.js';
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { makeNetns } from '../../helpers/netns.js';
import { CaptureChild } from './capture.js';

const CAP_NET_ADMIN = (1n << 12n).toString(16).padStart(16, '0');

/** comm → CapEff of every thread of `pid`. */
function capEff(pid: number): [string, string][] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
    const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
    return [comm, /^CapEff:\s*(\w+)$/m.exec(status)?.[1] ?? '?'];
  });
}

t.test('native: after dropPrivileges a dump and a sysctl write still succeed', async (t) => {
  const ns = makeNetns(t, 'privilege');
  const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns], {});
  await child.waitFor((l) => l.ready || l.error, 'the capture to start');
  child.send('hold 127.0.0.1 held');
  await child.waitFor((l) => l.held, 'a connection to dump');

  child.send('drop nobody');
  const line = await child.waitFor((l) => l.dropped || l.dropError, 'the drop');
  t.notOk(line.dropError, 'the drop succeeds as root');
  t.match(line.dropped.summary, /^dropped root: now user nobody \(uid 65534/, 'it says so');
  const pid = child.pid;
  const withCaps = capEff(pid).filter(([, eff]) => eff !== '0000000000000000');
  t.strictSame(withCaps, [['ct-netadmin', CAP_NET_ADMIN]], 'only the keeper has a capability');

  child.send('dump');
  const dumped = await child.waitFor((l) => l.dumped || l.dumpError, 'the dump');
  t.notOk(dumped.dumpError, 'dump() after the drop is not refused');
  t.ok(dumped.dumped?.entries >= 1, `it returns the held connection (${dumped.dumped?.entries})`);

  child.send('events 1');
  const { events } = await child.waitFor((l) => l.events, 'the sysctl writes');
  t.equal(events.plain, 'EACCES', 'a plain write from the main thread is refused');
  t.equal(events.privileged, 'ok', 'setConntrackEvents (the keeper thread) may write it');
  t.equal(events.now, 1, 'the value was written');

  child.send('drop nobody');
  const again = await child.waitFor((l) => l.dropError, 'the second drop');
  t.match(again.dropError, { code: 'EUSAGE' }, 'a second drop is refused: no longer root');
  child.send('stop');
  t.equal(await child.exited, 0, 'the capture ends cleanly');
});

t.test(
  'native: after the drop no addon export writes another sysctl, and values outside 0..2 are refused in C++',
  async (t) => {
    const ns = makeNetns(t, 'escape');
    const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns], {});
    await child.waitFor((l) => l.ready || l.error, 'the capture to start');
    child.send('drop nobody');
    const line = await child.waitFor((l) => l.dropped || l.dropError, 'the drop');
    t.notOk(line.dropError, 'the drop succeeds as root');
    child.send('events 0');
    const { events } = await child.waitFor((l) => l.events, 'the legitimate write');
    t.equal(events.privileged, 'ok', 'the keeper still sets nf_conntrack_events');

    child.send('probe');
    const { probe } = await child.waitFor((l) => l.probe, 'the escape attempts');
    t.notOk(probe.exported.includes('writePrivileged'), 'no general writer is exported');
    t.ok(probe.exported.includes('setConntrackEvents'), 'only the one-sysctl setter');
    t.equal(
      probe.forward.after,
      probe.forward.before,
      `ip_forward is still ${probe.forward.before} after every export was tried (${JSON.stringify(probe.calls)})`,
    );
    t.strictSame(
      probe.calls.setConntrackEvents,
      ['TypeError', 'TypeError', 'TypeError', 'TypeError', 'TypeError'],
      'setConntrackEvents takes no path and no second argument',
    );
    t.strictSame(
      probe.outOfRange,
      {
        3: 'ERANGE',
        '-1': 'ERANGE',
        1.5: 'ERANGE',
        4294967297: 'ERANGE',
        4294967296: 'ERANGE',
        NaN: 'ERANGE',
        Infinity: 'ERANGE',
        1: 'TypeError',
        '1\n': 'TypeError',
        null: 'TypeError',
      },
      'the addon itself refuses every value but 0, 1 and 2 (2^32 + 1 does not wrap to 1)',
    );
    t.equal(probe.events.after, probe.events.before, 'nf_conntrack_events was not changed by them');
    t.equal(probe.typed, 'EUSAGE', 'the typed wrapper refuses them too, as a CtError');
    child.send('stop');
    t.equal(await child.exited, 0, 'the capture ends cleanly');
  },
);
