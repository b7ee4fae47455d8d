// Test fixture, not a test: runs a capture (inside a namespace), makes traffic on command,
// prints every decoded event as a JSON line. Options (argv[2], JSON): the capture options, plus
// `defer: true` to start the capture only on `start`. Commands on stdin, one per line:
//   tcp <host> <tag> | udp <host> <tag>   one exchange with a reply, then {"done":…}
//   hold <host> <tag>              a TCP connection left open, then {"held":…}
//   start                          start the deferred capture, then {"ready":…}
//   burst <host> <n> <port0>       n UDP datagrams to ports port0…, then stop() at once
//   flood <host> <n> <port0>       n UDP datagrams to ports port0… as fast as possible
//   dump | dump2                   one dump / two concurrent dumps, then {"dumped":…}
//   dumpflood <host> <n> <port0>   a dump and a flood at the same time, then {"dumped":…}
//   drops                          {"drops": capture.drops() and the /proc/net/netlink row}
//   setuid <uid>                   drop root, then {"uid":…}
//   drop <user>                    the native privilege drop, then {"dropped":…} or {"dropError":…}
//   events <value>                 write nf_conntrack_events plainly, then with the kept
//                                  capability: {"events": {plain, privileged, now}}
//   probe                          try every addon export as a general sysctl writer, and
//                                  out-of-range values straight at setConntrackEvents:
//                                  {"probe": {exported, forward, events, outOfRange, typed}}
//   stop                           stop(), then {"stopped":…} and exit (also on stdin end)

import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { CtEvent } from '../../../journal/event.js';
import {
  type Capture,
  type CaptureOptions,
  type ConntrackEventsValue,
  rawAddonForTests,
  setConntrackEvents as setNativeConntrackEvents,
  startCapture,
} from '../../../native/index.js';
import {
  applyPrivileges,
  planPrivileges,
  setConntrackEvents,
} from '../../../recorder/privileges.js';
import { decodeRecords } from '../../../recorder/records.js';

function print(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');

function printEvent(e: CtEvent): void {
  print({
    event: {
      ...e,
      orig: { ...e.orig, src: hex(e.orig.src), dst: hex(e.orig.dst) },
      reply: { ...e.reply, src: hex(e.reply.src), dst: hex(e.reply.dst) },
    },
  });
}

let delivered = 0;
let stopCalledAt = -1;

async function tcp(host: string): Promise<object> {
  const server = createServer((s) => s.pipe(s));
  server.listen(0, host);
  await once(server, 'listening');
  const dport = (server.address() as AddressInfo).port;
  const client = connect(dport, host);
  await once(client, 'connect');
  const sport = client.localPort;
  client.end('ping');
  for await (const _ of client) {
    // read the echo until the server closes its side
  }
  server.close();
  return { proto: 'tcp', sport, dport };
}

async function udp(host: string): Promise<object> {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const server = createSocket(type);
  server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
  server.bind(0, host);
  await once(server, 'listening');
  const client = createSocket(type);
  client.bind(0, host);
  await once(client, 'listening');
  client.send('ping', server.address().port, host);
  await once(client, 'message');
  const result = { proto: 'udp', sport: client.address().port, dport: server.address().port };
  client.close();
  server.close();
  return result;
}

// Sockets kept open across commands, closed at stop so that the process can end.
const held: (() => void)[] = [];

function release(): void {
  for (const close of held.splice(0)) close();
}

async function hold(host: string): Promise<object> {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(0, host);
  await once(server, 'listening');
  const dport = (server.address() as AddressInfo).port;
  const client = connect(dport, host);
  await once(client, 'connect');
  held.push(() => {
    client.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  });
  return { proto: 'tcp', sport: client.localPort, dport };
}

/** Sends n datagrams without waiting between them; resolves with how many were sent. */
async function flood(host: string, n: number, port0: number): Promise<number> {
  const client = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  client.on('error', () => {});
  client.bind(0, host);
  await once(client, 'listening');
  held.push(() => client.close());
  const sends: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) {
    sends.push(new Promise((resolve) => client.send('x', port0 + i, host, (err) => resolve(!err))));
  }
  return (await Promise.all(sends)).filter(Boolean).length;
}

async function dump(capture: Capture): Promise<object> {
  try {
    return { dumped: { entries: await capture.dump(), delivered } };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { dumpError: { name: e.name, code: e.code, message: e.message, delivered } };
  }
}

/** The Drops column of this namespace's /proc/net/netlink row for `inode`. */
function procDrops(inode: number): number | null {
  const [head = '', ...rows] = readFileSync('/proc/net/netlink', 'latin1').trim().split('\n');
  const cols = head.trim().split(/\s+/);
  const [dropsAt, inodeAt] = [cols.indexOf('Drops'), cols.indexOf('Inode')];
  const row = rows.map((r) => r.trim().split(/\s+/)).find((r) => Number(r[inodeAt]) === inode);
  return row ? Number(row[dropsAt]) : null;
}

async function burst(capture: Capture, host: string, n: number, port0: number): Promise<void> {
  const client = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  client.on('error', () => {}); // ICMP port unreachable comes back as ECONNREFUSED at times
  client.bind(0, host);
  await once(client, 'listening');
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) =>
      client.send('x', port0 + i, host, (err) => (err ? reject(err) : resolve())),
    );
  }
  // Every datagram has passed conntrack: its NEW event sits in the socket, not yet delivered.
  print({ burst: { sport: client.address().port, deliveredBeforeStop: delivered } });
  client.close();
  await stop(capture);
}

// No process.exit: it can cut off stdout still queued for the parent. Once the capture is
// stopped and stdin is closed nothing holds the event loop, so the process must end by itself.
async function stop(capture: Capture): Promise<void> {
  if (stopCalledAt < 0) stopCalledAt = delivered;
  await capture.stop();
  release();
  print({ stopped: { deliveredBeforeStop: stopCalledAt, delivered } });
  process.stdin.destroy();
}

function drop(user: string): object {
  try {
    const { summary, keeperTid } = applyPrivileges(planPrivileges(user));
    return { dropped: { summary, keeperTid } };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { dropError: { name: e.name, code: e.code, message: e.message } };
  }
}

const EVENTS_KNOB = '/proc/sys/net/netfilter/nf_conntrack_events';

/** Outcome of one call: 'ok', or the error's code (its name when it has none). */
function attempt(call: () => void): string {
  try {
    call();
    return 'ok';
  } catch (err) {
    const e = err as { code?: string; name?: string };
    return String(e.code ?? e.name);
  }
}

const sysctl = (path: string): string => readFileSync(path, 'latin1').trim();

function events(value: string): object {
  const plain = attempt(() => writeFileSync(EVENTS_KNOB, `${value}\n`));
  const privileged = attempt(() => setConntrackEvents(Number(value) as ConntrackEventsValue));
  return { events: { plain, privileged, now: Number(sysctl(EVENTS_KNOB)) } };
}

const FORWARD = '/proc/sys/net/ipv4/ip_forward';

/**
 * What a general CAP_NET_ADMIN writer would be called with: every export of the raw addon gets
 * each argument shape, aimed at ip_forward with the value it does not have. Then values other
 * than 0, 1 and 2 go to the addon's setConntrackEvents directly, past every TypeScript check
 * (2^32 + 1 is 1 to a careless Uint32Value), and to the typed wrapper.
 */
function probe(): object {
  const addon = rawAddonForTests() as unknown as Record<string, unknown>;
  const exported = Object.keys(addon).sort();
  const forwardBefore = sysctl(FORWARD);
  const flip = forwardBefore === '0' ? '1' : '0';
  const shapes: unknown[][] = [
    [FORWARD, `${flip}\n`],
    [FORWARD, Number(flip)],
    ['net.ipv4.ip_forward', flip],
    [Number(flip), FORWARD],
    [{ path: FORWARD, data: `${flip}\n`, value: Number(flip) }],
  ];
  const calls: Record<string, string[]> = {};
  for (const name of exported) {
    const f = addon[name];
    if (typeof f !== 'function') continue;
    calls[name] = shapes.map((args) => attempt(() => f.apply(addon, args)));
  }
  const raw = addon.setConntrackEvents as (v: unknown) => void;
  const eventsBefore = sysctl(EVENTS_KNOB);
  const outOfRange: Record<string, string> = {};
  for (const v of [3, -1, 1.5, 2 ** 32 + 1, 2 ** 32, Number.NaN, Infinity, '1', '1\n', null]) {
    outOfRange[String(v)] = attempt(() => raw(v));
  }
  return {
    probe: {
      exported,
      calls,
      forward: { before: forwardBefore, after: sysctl(FORWARD) },
      events: { before: eventsBefore, after: sysctl(EVENTS_KNOB) },
      outOfRange,
      typed: attempt(() => setNativeConntrackEvents(7 as ConntrackEventsValue)),
    },
  };
}

function begin(opts: CaptureOptions): Capture | undefined {
  let capture: Capture;
  try {
    capture = startCapture(
      opts,
      (records, count, info) => {
        const events: CtEvent[] = [];
        decodeRecords(records, count, events);
        delivered += count;
        print({ batch: { count, ...info } });
        for (const e of events) printEvent(e);
      },
      (err) => print({ readerError: { code: err.code, message: err.message } }),
    );
  } catch (err) {
    const e = err as Error & { code?: string };
    print({ error: { name: e.name, code: e.code, message: e.message } });
    process.exitCode = 1;
    process.stdin.destroy();
    return undefined;
  }
  const { bufferSize, reliable, socketInode } = capture;
  print({ ready: { bufferSize, reliable, socketInode } });
  return capture;
}

function main(): void {
  const { defer, ...opts } = process.argv[2] ? JSON.parse(process.argv[2]) : {};
  let capture = defer ? undefined : begin(opts);
  if (!defer && !capture) return;
  const started = (): Capture => {
    if (!capture) throw new Error('the capture is not started');
    return capture;
  };

  const rl = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    const [cmd, host = '127.0.0.1', a = '0', b = '0'] = line.trim().split(/\s+/);
    queue = queue.then(async () => {
      if (cmd === 'tcp') print({ done: { tag: a, ...(await tcp(host)) } });
      else if (cmd === 'udp') print({ done: { tag: a, ...(await udp(host)) } });
      else if (cmd === 'hold') print({ held: { tag: a, ...(await hold(host)) } });
      else if (cmd === 'start') capture = begin(opts);
      else if (cmd === 'burst') await burst(started(), host, Number(a), Number(b));
      else if (cmd === 'flood')
        print({ flooded: { sent: await flood(host, Number(a), Number(b)) } });
      else if (cmd === 'dump') print(await dump(started()));
      else if (cmd === 'dump2') {
        const [first, second] = await Promise.all([dump(started()), dump(started())]);
        print({ dump2: [first, second] });
      } else if (cmd === 'dumpflood') {
        const dumping = dump(started());
        const sent = await flood(host, Number(a), Number(b));
        print({ flooded: { sent } });
        print(await dumping);
      } else if (cmd === 'drops') {
        const c = started();
        print({ drops: { socket: c.drops(), proc: procDrops(c.socketInode) } });
      } else if (cmd === 'setuid') {
        process.setuid?.(Number(host));
        print({ uid: process.getuid?.() });
      } else if (cmd === 'drop') print(drop(host));
      else if (cmd === 'events') print(events(host));
      else if (cmd === 'probe') print(probe());
      else if (cmd === 'stop') await stop(started());
    });
  });
  rl.on('close', () => {
    release();
    if (stopCalledAt < 0 && capture) {
      const c = capture;
      queue = queue.then(() => stop(c));
    }
  });
}

main();
