// Bounded traffic for namespace tests: TCP/UDP servers and one-shot TCP/UDP clients.
// Usage (inside a namespace, e.g. `ip netns exec NS node traffic.mjs …`):
//   serve --tcp PORT[,PORT…] --udp PORT[,PORT…] [--for SECONDS]   prints "ready" when listening
//   tcp HOST PORT [--sport N]                                       connect, send, read reply
//   udp HOST PORT [--sport N] [--no-reply-expected]                 one datagram, reply ≤ 1 s
// Clients print one JSON line {"local":{"address","port"},"reply"} so callers learn the real
// source port the kernel chose. Every subcommand ends by itself.
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

const CONNECT_TIMEOUT_MS = 3000;
const UDP_REPLY_TIMEOUT_MS = 1000;
const MAX_SERVE_SECONDS = 300;

/** @param {string} message */
function fail(message) {
  process.stderr.write(`traffic: ${message}\n`);
  process.exit(1);
}

/**
 * @param {string | undefined} text
 * @param {string} what
 * @returns {number}
 */
function port(text, what) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${what} must be a port 1..65535: ${text}`);
  return n;
}

/**
 * @param {string | undefined} list
 * @returns {number[]}
 */
function ports(list) {
  return list === undefined || list === '' ? [] : list.split(',').map((p) => port(p, 'port'));
}

/**
 * @param {net.Server | dgram.Socket} s
 * @param {() => void} listen
 * @returns {Promise<void>}
 */
function listening(s, listen) {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.once('listening', () => {
      s.off('error', reject);
      resolve();
    });
    listen();
  });
}

/** @param {string[]} args */
async function serve(args) {
  const { values } = parseArgs({
    args,
    options: { tcp: { type: 'string' }, udp: { type: 'string' }, for: { type: 'string' } },
  });
  const seconds = values.for === undefined ? 60 : Number(values.for);
  if (!(seconds > 0 && seconds <= MAX_SERVE_SECONDS)) fail(`--for must be 1..${MAX_SERVE_SECONDS}`);
  /** @type {Array<net.Server | dgram.Socket>} */
  const open = [];
  for (const p of ports(values.tcp)) {
    for (const host of ['0.0.0.0', '::']) {
      // One line per connection: read the client's line, answer with the peer address the
      // server saw (NAT tests check it), close from this side.
      const server = net.createServer((sock) => {
        sock.setTimeout(CONNECT_TIMEOUT_MS, () => sock.destroy());
        sock.on('error', () => sock.destroy());
        let got = '';
        sock.on('data', (d) => {
          got += d.toString();
          if (got.includes('\n')) sock.end(`hello ${sock.remoteAddress} from port ${p}\n`);
        });
      });
      await listening(server, () => server.listen({ host, port: p, ipv6Only: host === '::' }));
      open.push(server);
    }
  }
  for (const p of ports(values.udp)) {
    for (const type of /** @type {const} */ (['udp4', 'udp6'])) {
      const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
      sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
      await listening(sock, () => sock.bind(p, type === 'udp4' ? '0.0.0.0' : '::'));
      open.push(sock);
    }
  }
  process.stdout.write('ready\n');
  const stop = () => {
    for (const s of open) s.close();
    // Open TCP connections must not keep the process past its bound.
    setTimeout(() => process.exit(0), 200).unref();
  };
  setTimeout(stop, seconds * 1000).unref();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * @param {string[]} args
 * @param {boolean} oneWayAllowed whether --no-reply-expected makes sense (UDP only)
 */
function clientArgs(args, oneWayAllowed) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { sport: { type: 'string' }, 'no-reply-expected': { type: 'boolean' } },
  });
  const [host, dport] = positionals;
  if (host === undefined || net.isIP(host) === 0) fail(`HOST must be an IP address: ${host}`);
  if (values['no-reply-expected'] && !oneWayAllowed) fail('--no-reply-expected is for udp only');
  return {
    host: /** @type {string} */ (host),
    dport: port(dport, 'PORT'),
    sport: values.sport === undefined ? undefined : port(values.sport, '--sport'),
    oneWay: values['no-reply-expected'] === true,
  };
}

/**
 * @param {{address?: string, port?: number}} local
 * @param {string} reply
 */
function report(local, reply) {
  process.stdout.write(
    `${JSON.stringify({ local: { address: local.address, port: local.port }, reply })}\n`,
  );
}

/** @param {string[]} args */
function tcp(args) {
  const { host, dport, sport } = clientArgs(args, false);
  const sock = net.connect({ host, port: dport, localPort: sport });
  sock.setTimeout(CONNECT_TIMEOUT_MS, () => fail(`tcp ${host} ${dport}: timed out`));
  sock.on('error', (err) => fail(`tcp ${host} ${dport}: ${err.message}`));
  let reply = '';
  let local = {};
  sock.on('connect', () => {
    local = { address: sock.localAddress, port: sock.localPort };
    sock.write('hello\n');
  });
  sock.on('data', (d) => {
    reply += d.toString();
  });
  sock.on('end', () => {
    sock.end();
    if (!reply.includes('\n')) fail(`tcp ${host} ${dport}: connection closed without a reply`);
    report(local, reply.trim());
  });
}

/** @param {string[]} args */
function udp(args) {
  const { host, dport, sport, oneWay } = clientArgs(args, true);
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  sock.on('error', (err) => fail(`udp ${host} ${dport}: ${err.message}`));
  sock.bind(sport ?? 0, () => {
    sock.send('ping\n', dport, host, (err) => {
      if (err) fail(`udp ${host} ${dport}: ${err.message}`);
      const local = sock.address();
      if (oneWay) {
        report(local, '');
        sock.close();
        return;
      }
      const timer = setTimeout(
        () => fail(`udp ${host} ${dport}: no reply within ${UDP_REPLY_TIMEOUT_MS} ms`),
        UDP_REPLY_TIMEOUT_MS,
      );
      sock.once('message', (msg) => {
        clearTimeout(timer);
        report(local, msg.toString().trim());
        sock.close();
      });
    });
  });
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') await serve(rest);
else if (command === 'tcp') tcp(rest);
else if (command === 'udp') udp(rest);
else fail(`unknown subcommand ${command}: use serve, tcp or udp`);
