// Test fixture, not a test: runs a capture (inside a namespace), makes traffic on command,
// prints every decoded event as a JSON line. Commands on stdin, one per line:
//   tcp <host> <tag> | udp <host> <tag>   one exchange with a reply, then {"done":…}
//   burst <host> <n> <port0>       n UDP datagrams to ports port0…, then stop() at once
//   stop                           stop(), then {"stopped":…} and exit (also on stdin end)

import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import type { CtEvent } from '../../journal/event.js';
import { type Capture, startCapture } from '../../native/index.js';
import { decodeRecords } from '../../recorder/records.js';

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
  print({ stopped: { deliveredBeforeStop: stopCalledAt, delivered } });
  process.stdin.destroy();
}

function main(): void {
  const opts = process.argv[2] ? JSON.parse(process.argv[2]) : {};
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
    return;
  }
  print({ ready: { bufferSize: capture.bufferSize } });

  const rl = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    const [cmd, host = '127.0.0.1', a = '0', b = '0'] = line.trim().split(/\s+/);
    queue = queue.then(async () => {
      if (cmd === 'tcp') print({ done: { tag: a, ...(await tcp(host)) } });
      else if (cmd === 'udp') print({ done: { tag: a, ...(await udp(host)) } });
      else if (cmd === 'burst') await burst(capture, host, Number(a), Number(b));
      else if (cmd === 'stop') await stop(capture);
    });
  });
  rl.on('close', () => {
    if (stopCalledAt < 0) queue = queue.then(() => stop(capture));
  });
}

main();
