// Capture.dump() on the real kernel: flows opened before the capture become SNAPSHOT records.
import '../../helpers/kernel.js';
import t from 'tap';
import { Status } from '../../../journal/event.js';
import { makeNetns } from '../../helpers/netns.js';
import { CaptureChild, type JsonEvent, type Line } from './capture.js';

const V4 = '7f000001';
const V6 = `${'00'.repeat(15)}01`;
const SNAPSHOT = 4;
const TCP_ESTABLISHED = 3;

/** The SNAPSHOT records printed before `until` (a line of the child). */
function snapshotsBefore(child: CaptureChild, until: Line): JsonEvent[] {
  const end = child.lines.indexOf(until);
  return child.lines
    .slice(0, end)
    .filter((l) => l.event?.type === SNAPSHOT)
    .map((l) => l.event as JsonEvent);
}

t.test(
  'native: a dump after subscribing reports flows opened before the capture, both families',
  async (t) => {
    const ns = makeNetns(t, 'dump');
    const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns], {
      defer: true,
      reliable: true,
    });
    child.send('hold 127.0.0.1 tcp4');
    child.send('udp 127.0.0.1 udp4');
    child.send('udp ::1 udp6');
    const tcp = (await child.waitFor((l) => l.held, 'the held TCP connection')).held;
    const udp4 = (await child.waitFor((l) => l.done?.tag === 'udp4', 'udp4')).done;
    const udp6 = (await child.waitFor((l) => l.done?.tag === 'udp6', 'udp6')).done;

    child.send('start');
    const { ready } = await child.waitFor((l) => l.ready || l.error, 'the capture to start');
    t.equal(ready.reliable, true, 'NETLINK_BROADCAST_ERROR reads back as set');
    t.ok(Number.isInteger(ready.socketInode) && ready.socketInode > 0, 'the socket inode');

    child.send('dump');
    const line = await child.waitFor((l) => l.dumped || l.dumpError, 'the dump');
    t.notOk(line.dumpError, 'the dump succeeds as root');
    const snaps = snapshotsBefore(child, line);
    t.equal(line.dumped.entries, snaps.length, 'it resolves after every SNAPSHOT reached onBatch');
    t.equal(
      child.events.filter((e) => e.type === SNAPSHOT).length,
      snaps.length,
      'no SNAPSHOT record arrives after the promise resolved',
    );

    const find = (proto: number, family: number, f: { sport: number; dport: number }) =>
      snaps.find(
        (e) =>
          e.proto === proto &&
          e.family === family &&
          e.orig.sport === f.sport &&
          e.orig.dport === f.dport,
      );
    const cases: [string, number, number, string, { sport: number; dport: number }][] = [
      ['tcp4 (still open)', 6, 4, V4, tcp],
      ['udp4', 17, 4, V4, udp4],
      ['udp6', 17, 6, V6, udp6],
    ];
    for (const [what, proto, family, addr, flow] of cases) {
      const e = find(proto, family, flow);
      t.match(
        e,
        {
          type: SNAPSHOT,
          orig: { src: addr, dst: addr, sport: flow.sport, dport: flow.dport },
          reply: { src: addr, dst: addr, sport: flow.dport, dport: flow.sport },
          timeKernel: false,
        },
        `${what}: a SNAPSHOT record with both tuples`,
      );
      t.ok(e && (e.status & Status.SEEN_REPLY) !== 0, `${what}: SEEN_REPLY`);
      t.ok(e && e.id !== 0, `${what}: conntrack id`);
    }
    t.equal(find(6, 4, tcp)?.tcpState, TCP_ESTABLISHED, 'tcp4: ESTABLISHED');
    t.notOk(
      child.events.some((e) => e.type !== SNAPSHOT && e.proto === 6 && e.orig.sport === tcp.sport),
      'the held connection sends no event of its own (nf_conntrack_events=2): only the dump shows it',
    );

    child.send('dump2');
    const { dump2 } = await child.waitFor((l) => l.dump2, 'two concurrent dumps');
    t.ok(
      dump2[0].dumped && dump2[1].dumped,
      'two concurrent dump() calls both succeed: the second is queued',
    );
    t.equal(dump2[0].dumped.entries, snaps.length, 'the first queued dump sees the same table');
    t.equal(dump2[1].dumped.entries, snaps.length, 'the second queued dump sees the same table');
    t.ok(
      dump2[1].dumped.delivered >= dump2[0].dumped.delivered + snaps.length,
      'the second dump ran after the first had delivered its records',
    );

    // Dropping root: the subscribed socket keeps receiving, a new dump is refused.
    child.send('setuid 65534');
    t.equal((await child.waitFor((l) => 'uid' in l, 'setuid')).uid, 65534, 'now nobody');
    child.send('udp 127.0.0.1 after');
    const after = (await child.waitFor((l) => l.done?.tag === 'after', 'udp after setuid')).done;
    await child.waitForEvent(
      (e) => e.type === 1 && e.orig.sport === after.sport && e.orig.dport === after.dport,
      'the NEW event of a flow made after setuid',
    );
    child.send('dump');
    const refused = await child.waitFor((l) => l.dumpError, 'the refused dump');
    t.match(
      refused.dumpError,
      {
        name: 'CtError',
        code: 'EPERM',
        message: /^cannot dump the conntrack table: EPERM — .*CAP_NET_ADMIN/,
      },
      'a dump without CAP_NET_ADMIN rejects with CtError EPERM',
    );

    child.send('stop');
    await child.waitFor((l) => l.stopped, 'stop');
    t.equal(await child.exited, 0, 'the child exits cleanly');
  },
);

t.test('native: events arriving during a dump are all delivered', async (t) => {
  const ns = makeNetns(t, 'dumpev');
  const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns], {
    defer: true,
    events: { new: true, update: false, destroy: false },
  });
  const before = 20_000;
  const during = 3_000;
  child.send(`flood 127.0.0.1 ${before} 10000`);
  const pre = await child.waitFor((l) => l.flooded, 'the flows made before the capture');
  t.equal(pre.flooded.sent, before, `${before} flows exist before the capture`);
  child.send('start');
  await child.waitFor((l) => l.ready, 'the capture to start');

  child.send(`dumpflood 127.0.0.1 ${during} 40000`);
  const line = await child.waitFor((l) => l.dumped || l.dumpError, 'the dump', 60_000);
  t.notOk(line.dumpError, 'the dump succeeds');
  t.ok(line.dumped.entries >= before, `the dump has the ${before} older flows`);
  const { flooded } = await child.waitFor((l) => l.flooded && l !== pre, 'the flood');
  t.equal(flooded.sent, during, 'every datagram of the flood was sent');

  child.send('stop');
  await child.waitFor((l) => l.stopped, 'stop');
  t.equal(await child.exited, 0, 'the child exits cleanly');
  const isFlood = (e: JsonEvent) =>
    e.type === 1 && e.proto === 17 && e.orig.dport >= 40000 && e.orig.dport < 40000 + during;
  const ports = new Set(child.events.filter(isFlood).map((e) => e.orig.dport));
  t.equal(ports.size, during, `all ${during} NEW events made during the dump arrived`);
  const batches = child.lines.filter((l) => l.batch).map((l) => l.batch);
  t.same(
    batches.reduce((s, b) => s + b.enobufs + b.drops + b.dropped + b.malformed, 0),
    0,
    'no loss, no malformed message',
  );
  // The test means something only if the two overlapped.
  const lastSnapshot = child.lines.findLastIndex((l) => l.event?.type === SNAPSHOT);
  const interleaved = child.lines.slice(0, lastSnapshot).filter((l) => l.event && isFlood(l.event));
  t.ok(
    interleaved.length > 0,
    `the flood ran while the dump did: ${interleaved.length} of ${during} of its events came before the last SNAPSHOT`,
  );
});
