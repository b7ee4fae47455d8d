// stop() drains the socket and resolves only after the last batch reached the callback.
import '../../helpers/kernel.js';
import t from 'tap';
import { makeNetns } from '../../helpers/netns.js';
import { CaptureChild } from './capture.js';

t.test(
  'native: events queued just before stop() are delivered before stop() resolves',
  async (t) => {
    const ns = makeNetns(t, 'stop');
    const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns]);
    await child.waitFor((l) => l.ready, 'the capture to start');

    // 300 new UDP flows, then stop() in the same tick as the last send completes: the tail of the
    // burst is still in the socket or in a partial batch, well inside the 20 ms batch timer.
    const n = 300;
    const port0 = 20000;
    child.send(`burst 127.0.0.1 ${n} ${port0}`);
    const { burst } = await child.waitFor((l) => l.burst, 'the burst');
    const { stopped } = await child.waitFor((l) => l.stopped, 'stop() to resolve');
    t.equal(await child.exited, 0, 'the child exits cleanly');

    const ports = new Set(
      child.events
        .filter((e) => e.type === 1 && e.proto === 17 && e.orig.sport === burst.sport)
        .map((e) => e.orig.dport),
    );
    const missing = Array.from({ length: n }, (_, i) => port0 + i).filter((p) => !ports.has(p));
    t.same(missing, [], `all ${n} NEW events arrived before stop() resolved`);
    t.ok(
      stopped.delivered > burst.deliveredBeforeStop,
      `stop() delivered what was pending (${burst.deliveredBeforeStop} records before stop(), ${stopped.delivered} after)`,
    );
  },
);
