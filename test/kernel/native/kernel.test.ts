// The addon against the real kernel: TCP, UDP and ping on a namespace's loopback, v4 and v6.
import '../../helpers/kernel.js';
import t from 'tap';
import { Status } from '../../../journal/event.js';
import { makeNetns, runSync as run } from '../../helpers/netns.js';
import { CaptureChild, type JsonEvent } from './capture.js';

const V4 = '7f000001';
const V6 = `${'00'.repeat(15)}01`;
const TCP_SYN_SENT = 1;

t.test(
  'native: every event of TCP, UDP and ICMP flows reaches JavaScript as exact records',
  async (t) => {
    const ns = makeNetns(t, 'kernel');
    const child = new CaptureChild(t, ['ip', 'netns', 'exec', ns]);
    const ready = await child.waitFor((l) => l.ready || l.error, 'the capture to start');
    t.notOk(ready.error, 'the capture starts as root');
    t.ok(
      ready.ready.bufferSize >= 8 * 1024 * 1024,
      `receive buffer ${ready.ready.bufferSize} ≥ 8 MiB`,
    );
    const startedUs = Date.now() * 1000;

    const portFlow = async (proto: 'tcp' | 'udp', host: string) => {
      const family = host.includes(':') ? 6 : 4;
      const addr = family === 4 ? V4 : V6;
      const num = proto === 'tcp' ? 6 : 17;
      const tag = `${proto}${family}`;
      child.send(`${proto} ${host} ${tag}`);
      const { sport, dport } = (await child.waitFor((l) => l.done?.tag === tag, tag)).done;
      const ours = (e: JsonEvent) =>
        e.proto === num && e.family === family && e.orig.sport === sport && e.orig.dport === dport;

      const created = await child.waitForEvent((e) => ours(e) && e.type === 1, `${tag} NEW`);
      t.match(
        created,
        {
          orig: { src: addr, dst: addr, sport, dport, icmpType: 0, icmpCode: 0, icmpId: 0 },
          reply: { src: addr, dst: addr, sport: dport, dport: sport },
          timeKernel: false,
        },
        `${tag}: NEW carries both tuples`,
      );
      t.equal(created.status & Status.SEEN_REPLY, 0, `${tag}: NEW is not yet replied`);
      t.ok(
        created.time >= startedUs - 5e6 && created.time <= Date.now() * 1000,
        `${tag}: receive time is now`,
      );
      t.not(created.id, 0, `${tag}: conntrack id is set`);
      if (proto === 'tcp') t.equal(created.tcpState, TCP_SYN_SENT, 'tcp: NEW is in SYN_SENT');
      else t.equal(created.tcpState, undefined, 'udp: no TCP state');

      const replied = await child.waitForEvent(
        (e) => ours(e) && e.type === 2 && (e.status & Status.SEEN_REPLY) !== 0,
        `${tag} UPDATE with SEEN_REPLY`,
      );
      t.equal(replied.id, created.id, `${tag}: UPDATE has the NEW's id`);

      run('ip', ['netns', 'exec', ns, 'conntrack', '-D', '-p', proto, '--sport', String(sport)]);
      const gone = await child.waitForEvent((e) => ours(e) && e.type === 3, `${tag} DESTROY`);
      t.equal(gone.id, created.id, `${tag}: DESTROY has the NEW's id`);
      t.equal(gone.timeKernel, true, `${tag}: DESTROY time is the kernel's stop timestamp`);
      t.ok(gone.start !== undefined && gone.start <= gone.time, `${tag}: start ≤ stop`);
      t.ok(gone.start !== undefined && gone.start >= startedUs - 5e6, `${tag}: start is recent`);
      t.ok(
        gone.counters && gone.counters.origPackets >= 1 && gone.counters.replyPackets >= 1,
        `${tag}: counters both ways`,
      );
      t.ok(
        gone.counters && gone.counters.origBytes > gone.counters.origPackets * 20,
        `${tag}: byte counter`,
      );
    };

    const ping = async (host: string, id: number) => {
      const family = host.includes(':') ? 6 : 4;
      const [num, request, reply] = family === 4 ? [1, 8, 0] : [58, 128, 129];
      const args = family === 4 ? ['-c1', '-W2'] : ['-6', '-c1', '-W2'];
      run('ip', ['netns', 'exec', ns, 'ping', ...args, '-e', String(id), host]);
      const ours = (e: JsonEvent) => e.proto === num && e.orig.icmpId === id;
      const addr = family === 4 ? V4 : V6;
      const created = await child.waitForEvent(
        (e) => ours(e) && e.type === 1,
        `ICMPv${family} NEW`,
      );
      t.match(
        created,
        {
          family,
          orig: {
            src: addr,
            dst: addr,
            icmpType: request,
            icmpCode: 0,
            icmpId: id,
            sport: 0,
            dport: 0,
          },
          reply: { src: addr, dst: addr, icmpType: reply, icmpCode: 0, icmpId: id },
        },
        `ICMPv${family}: echo request ${request} with id ${id}`,
      );
      await child.waitForEvent(
        (e) => ours(e) && e.type === 2 && (e.status & Status.SEEN_REPLY) !== 0,
        `ICMPv${family} UPDATE with SEEN_REPLY`,
      );
    };

    await portFlow('tcp', '127.0.0.1');
    await portFlow('tcp', '::1');
    await portFlow('udp', '127.0.0.1');
    await portFlow('udp', '::1');
    await ping('127.0.0.1', 4242);
    await ping('::1', 4243);

    run('ip', ['netns', 'exec', ns, 'conntrack', '-F']);
    for (const [num, id] of [
      [1, 4242],
      [58, 4243],
    ]) {
      await child.waitForEvent(
        (e) => e.proto === num && e.orig.icmpId === id && e.type === 3,
        `ICMP ${id} DESTROY on flush`,
      );
    }

    child.send('stop');
    const stopped = await child.waitFor((l) => l.stopped, 'stop');
    t.equal(await child.exited, 0, 'the child exits cleanly after stop()');
    const batches = child.lines.filter((l) => l.batch).map((l) => l.batch);
    const total = batches.reduce((n, b) => n + b.count, 0);
    t.equal(total, child.events.length, 'every record in a batch decoded to one event');
    t.equal(stopped.stopped.delivered, total, 'the child saw every batch');
    t.same(
      batches.reduce((s, b) => s + b.enobufs + b.drops + b.dropped + b.malformed, 0),
      0,
      'no loss and no malformed message in a quiet namespace',
    );
    t.ok(
      child.events.every((e) =>
        e.family === 4 ? e.orig.src.length === 8 : e.orig.src.length === 32,
      ),
      'address length follows the family',
    );
  },
);
