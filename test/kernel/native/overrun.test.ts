// A forced overrun: a tiny receive buffer and a burst of new flows make the kernel drop events.
import '../../helpers/kernel.js';
import t from 'tap';
import { makeNetns } from '../../helpers/netns.js';
import { CaptureChild } from './capture.js';

t.test(
  'native: an overrun is reported as ENOBUFS and counted exactly as the kernel drop counter',
  async (t) => {
    const ns = makeNetns(t, 'overrun');
    const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns], {
      bufferSize: 4096,
      events: { new: true, update: false, destroy: false },
    });
    const { ready } = await child.waitFor((l) => l.ready || l.error, 'the capture to start');
    t.ok(ready.bufferSize < 64 * 1024, `a tiny receive buffer (${ready.bufferSize} bytes)`);
    t.equal(ready.reliable, false, 'NETLINK_BROADCAST_ERROR is off by default');

    const n = 5_000;
    const port0 = 10_000;
    child.send(`flood 127.0.0.1 ${n} ${port0}`);
    const { sent } = (await child.waitFor((l) => l.flooded, 'the flood')).flooded;
    t.equal(sent, n, `${n} datagrams sent`);
    // The kernel counts a drop when it fails to queue an event, i.e. while the flood runs.
    child.send('drops');
    const { drops } = await child.waitFor((l) => l.drops, 'the drop counters');
    child.send('stop');
    await child.waitFor((l) => l.stopped, 'stop');
    t.equal(await child.exited, 0, 'the capture ends cleanly after the overrun');

    const batches = child.lines.filter((l) => l.batch).map((l) => l.batch);
    const sum = (k: string) => batches.reduce((s, b) => s + b[k], 0);
    t.ok(sum('enobufs') > 0, `ENOBUFS reported (${sum('enobufs')} times)`);
    t.ok(drops.proc > 0, `/proc/net/netlink Drops of the socket is ${drops.proc}`);
    t.equal(drops.socket, drops.proc, 'Capture.drops() is the /proc/net/netlink Drops column');
    t.equal(sum('drops'), drops.proc, 'the batches report exactly the kernel drop count');
    t.equal(sum('dropped'), 0, 'JavaScript kept up: nothing dropped at the hand-over');
    const caught = new Set(
      child.events
        .filter((e) => e.type === 1 && e.proto === 17 && e.orig.dport >= port0)
        .map((e) => e.orig.dport),
    );
    t.equal(caught.size + drops.proc, n, 'every flow was either caught or counted as dropped');
  },
);
