// The rules review scenario's traffic inside its namespaces: the server's services, and a batch of flows from many source addresses.
// Usage (inside a namespace, without tap's loaders):
//   serve [--silent-dns-from ADDR] [--for SECONDS]   prints "ready", then "syslog ADDR" per datagram on 514
//   flows [--wait MS]                                 reads a JSON array of flows on stdin, prints their outcomes
// One process makes hundreds of connections, each bound to its own source address: a process per
// connection would take minutes on a busy 2-core machine.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

const TCP_SERVICES = [22, 80, 443, 5432, 8080];
/** Answered like DNS and an SNMP agent: the datagram comes back. */
const UDP_ECHO = [53, 161];
/** Syslog: read, never answered. */
const UDP_SINK = 514;
/** What a client sends to get the large answer that needs path-MTU discovery. */
const BIG_REQUEST = 'big';
const BIG_BYTES = 100 * 1024;
const MAX_SERVE_SECONDS = 300;
const PARALLEL = 24;

/** @param {string} message */
function fail(message) {
  process.stderr.write(`review-traffic: ${message}\n`);
  process.exit(1);
}

/**
 * @param {net.Server | dgram.Socket} s
 * @param {() => void} listen
 */
function listening(s, listen) {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.once('listening', () => {
      s.off('error', reject);
      resolve(undefined);
    });
    listen();
  });
}

/** @param {string} address an IPv4-mapped IPv6 address as dgram reports it, or a plain one */
const plain = (address) => address.replace(/^::ffff:/, '');

/** @param {string[]} args */
async function serve(args) {
  const { values } = parseArgs({
    args,
    options: { 'silent-dns-from': { type: 'string' }, for: { type: 'string' } },
  });
  const seconds = values.for === undefined ? 120 : Number(values.for);
  if (!(seconds > 0 && seconds <= MAX_SERVE_SECONDS)) fail(`--for must be 1..${MAX_SERVE_SECONDS}`);
  const silentDns = values['silent-dns-from'];
  /** @type {Array<net.Server | dgram.Socket>} */
  const open = [];
  for (const port of TCP_SERVICES) {
    for (const host of ['0.0.0.0', '::']) {
      const server = net.createServer((sock) => {
        sock.setTimeout(5000, () => sock.destroy());
        sock.on('error', () => sock.destroy());
        let got = '';
        sock.on('data', (d) => {
          got += d.toString();
          if (!got.includes('\n')) return;
          if (got.startsWith(BIG_REQUEST)) sock.end(Buffer.alloc(BIG_BYTES, 0x61));
          else sock.end(`hello ${plain(sock.remoteAddress ?? '')} from port ${port}\n`);
        });
      });
      await listening(server, () => server.listen({ host, port, ipv6Only: host === '::' }));
      open.push(server);
    }
  }
  for (const port of [...UDP_ECHO, UDP_SINK]) {
    for (const type of /** @type {const} */ (['udp4', 'udp6'])) {
      const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
      sock.on('message', (msg, rinfo) => {
        const from = plain(rinfo.address);
        if (port === UDP_SINK) process.stdout.write(`syslog ${from}\n`);
        else if (!(port === 53 && from === silentDns)) sock.send(msg, rinfo.port, rinfo.address);
      });
      await listening(sock, () => sock.bind(port, type === 'udp4' ? '0.0.0.0' : '::'));
      open.push(sock);
    }
  }
  process.stdout.write('ready\n');
  const stop = () => {
    for (const s of open) s.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  setTimeout(stop, seconds * 1000).unref();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * @typedef {{ proto: 'tcp' | 'udp' | 'icmp', src: string, dst: string, port?: number,
 *   big?: boolean, oneWay?: boolean }} Flow
 * Outcomes: `accepted` (TCP: the whole answer read; UDP: the datagram came back; ICMP: echo
 * reply), `sent` (one-way UDP: no error within the wait), `silent` (nothing within the wait),
 * `short` (TCP: the answer stopped early), or the socket error's code (ECONNREFUSED,
 * EHOSTUNREACH, EACCES …).
 */

/**
 * @param {Flow} f
 * @param {number} wait
 * @returns {Promise<string>}
 */
function tcp(f, wait) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: f.dst, port: Number(f.port), localAddress: f.src });
    let bytes = 0;
    let text = '';
    const done = (/** @type {string} */ outcome) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done(bytes > 0 ? 'short' : 'silent'), wait);
    sock.on('error', (/** @type {NodeJS.ErrnoException} */ e) => done(e.code ?? e.message));
    sock.on('connect', () => sock.write(`${f.big ? BIG_REQUEST : 'hello'}\n`));
    sock.on('data', (d) => {
      bytes += d.length;
      if (!f.big) text += d.toString();
    });
    sock.on('end', () => {
      const whole = f.big ? bytes === BIG_BYTES : text.includes('\n');
      done(whole ? 'accepted' : 'short');
    });
  });
}

/**
 * @param {Flow} f
 * @param {number} wait
 * @returns {Promise<string>}
 */
function udp(f, wait) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(f.dst) ? 'udp6' : 'udp4');
    const done = (/** @type {string} */ outcome) => {
      clearTimeout(timer);
      sock.close();
      resolve(outcome);
    };
    // One-way: an ICMP error (the socket is connected, so the kernel reports it) or nothing.
    const timer = setTimeout(() => done(f.oneWay ? 'sent' : 'silent'), f.oneWay ? 300 : wait);
    sock.on('error', (/** @type {NodeJS.ErrnoException} */ e) => done(e.code ?? e.message));
    sock.on('message', () => done('accepted'));
    sock.bind(0, f.src, () => {
      sock.connect(Number(f.port), f.dst, () => sock.send('query\n'));
    });
  });
}

/**
 * @param {Flow} f
 * @param {number} wait
 * @returns {Promise<string>}
 */
function icmp(f, wait) {
  return new Promise((resolve) => {
    const seconds = String(Math.max(1, Math.ceil(wait / 1000)));
    const ping = spawn('ping', ['-n', '-c', '1', '-W', seconds, '-I', f.src, f.dst], {
      stdio: 'ignore',
    });
    ping.on('error', (e) => resolve(e.message));
    ping.on('close', (code) => resolve(code === 0 ? 'accepted' : 'silent'));
  });
}

/** @param {string[]} args */
async function flows(args) {
  const { values } = parseArgs({ args, options: { wait: { type: 'string' } } });
  const wait = values.wait === undefined ? 3000 : Number(values.wait);
  if (!(wait > 0 && wait <= 30_000)) fail('--wait must be 1..30000 ms');
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  /** @type {Flow[]} */
  const list = JSON.parse(input);
  /** @type {string[]} */
  const outcomes = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      const f = /** @type {Flow} */ (list[i]);
      const one = f.proto === 'tcp' ? tcp : f.proto === 'udp' ? udp : icmp;
      outcomes[i] = await one(f, wait);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') await serve(rest);
else if (command === 'flows') await flows(rest);
else fail(`unknown subcommand ${command}: use serve or flows`);
