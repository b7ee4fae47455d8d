// Whole conversations for the kernel-agreement test: servers that log what reached them, and a
// driver that runs many TCP/UDP/ICMP exchanges at once and says how far each one got.
// Usage (inside a namespace, e.g. `ip netns exec NS node conversations.mjs …`):
//   serve --tcp PORT[,PORT…] --udp PORT[,PORT…] --for SECONDS
//       prints "ready", then one JSON line {"proto","from","to","port"} per connection or datagram
//   drive --wait MS '[{"id","proto":"tcp"|"udp"|"icmp","dst","port"?}, …]'
//       prints one JSON array [{"id","complete","step"}]: step is how far the exchange got
//       (tcp: connected, answered, answered-twice, closed; udp: answered, answered-twice;
//       icmp: the number of echo replies). Silence longer than --wait ends an exchange.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

const MAX_SERVE_SECONDS = 600;

/** @param {string} message */
function fail(message) {
  process.stderr.write(`conversations: ${message}\n`);
  process.exit(1);
}

/** @param {string | undefined} list */
function ports(list) {
  return list === undefined || list === '' ? [] : list.split(',').map(Number);
}

/** @param {Record<string, unknown>} event */
function log(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
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

/** ::ffff:10.0.0.1 → 10.0.0.1, so a peer reads as the client wrote it. */
const plain = (/** @type {string | undefined} */ a) => (a ?? '').replace(/^::ffff:/, '');

/** @param {string[]} args */
async function serve(args) {
  const { values } = parseArgs({
    args,
    options: { tcp: { type: 'string' }, udp: { type: 'string' }, for: { type: 'string' } },
  });
  const seconds = Number(values.for ?? 60);
  if (!(seconds > 0 && seconds <= MAX_SERVE_SECONDS)) fail(`--for must be 1..${MAX_SERVE_SECONDS}`);
  /** @type {Array<net.Server | dgram.Socket>} */
  const open = [];
  for (const port of ports(values.tcp)) {
    for (const host of ['0.0.0.0', '::']) {
      // Answers every line; ends its side when the client ends (the close of the conversation).
      const server = net.createServer((sock) => {
        log({ proto: 'tcp', from: plain(sock.remoteAddress), to: plain(sock.localAddress), port });
        sock.setTimeout(5000, () => sock.destroy());
        sock.on('error', () => sock.destroy());
        let got = '';
        sock.on('data', (d) => {
          got += d.toString();
          const lines = got.split('\n');
          got = lines.pop() ?? '';
          for (const l of lines) sock.write(`ok ${l}\n`);
        });
      });
      await listening(server, () => server.listen({ host, port, ipv6Only: host === '::' }));
      open.push(server);
    }
  }
  for (const port of ports(values.udp)) {
    for (const type of /** @type {const} */ (['udp4', 'udp6'])) {
      const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
      sock.on('message', (msg, rinfo) => {
        log({ proto: 'udp', from: plain(rinfo.address), to: '', port });
        sock.send(msg, rinfo.port, rinfo.address);
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
}

/**
 * @typedef {{ id: string, proto: 'tcp' | 'udp' | 'icmp', dst: string, port?: number }} Exchange
 * @typedef {{ id: string, complete: boolean, step: string }} Outcome
 */

/**
 * connect, send, answer, send again, answer, close (both FINs).
 * @param {Exchange} x
 * @param {number} wait
 * @returns {Promise<Outcome>}
 */
function tcp(x, wait) {
  return new Promise((resolve) => {
    let step = 'none';
    let timer = setTimeout(() => done(false), wait);
    const sock = net.connect({ host: x.dst, port: /** @type {number} */ (x.port) });
    const done = (/** @type {boolean} */ complete) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ id: x.id, complete, step });
    };
    const next = (/** @type {string} */ s) => {
      step = s;
      clearTimeout(timer);
      timer = setTimeout(() => done(false), wait);
    };
    sock.on('error', (e) => {
      step = `${step} ${/** @type {NodeJS.ErrnoException} */ (e).code}`;
      done(false);
    });
    sock.on('connect', () => {
      next('connected');
      sock.write('one\n');
    });
    let got = '';
    sock.on('data', (d) => {
      got += d.toString();
      if (step === 'connected' && got.includes('ok one\n')) {
        next('answered');
        sock.write('two\n');
      } else if (step === 'answered' && got.includes('ok two\n')) {
        next('answered-twice');
        sock.end();
      }
    });
    sock.on('end', () => {
      if (step === 'answered-twice') {
        step = 'closed';
        done(true);
      }
    });
  });
}

/**
 * request, answer, second request, answer.
 * @param {Exchange} x
 * @param {number} wait
 * @returns {Promise<Outcome>}
 */
function udp(x, wait) {
  return new Promise((resolve) => {
    let step = 'none';
    const sock = dgram.createSocket(net.isIPv6(x.dst) ? 'udp6' : 'udp4');
    let timer = setTimeout(() => done(false), wait);
    const done = (/** @type {boolean} */ complete) => {
      clearTimeout(timer);
      sock.close();
      resolve({ id: x.id, complete, step });
    };
    sock.on('error', (e) => {
      step = `${step} ${/** @type {NodeJS.ErrnoException} */ (e).code}`;
      done(false);
    });
    sock.on('message', () => {
      clearTimeout(timer);
      if (step === 'none') {
        step = 'answered';
        timer = setTimeout(() => done(false), wait);
        sock.send('two\n', x.port, x.dst);
      } else {
        step = 'answered-twice';
        done(true);
      }
    });
    sock.send('one\n', x.port, x.dst);
  });
}

/**
 * Two echo requests of one ping (one conntrack entry: same id).
 * @param {Exchange} x
 * @param {number} wait
 * @returns {Promise<Outcome>}
 */
function icmp(x, wait) {
  const seconds = String(wait / 1000);
  return new Promise((resolve) => {
    execFile(
      'ping',
      ['-n', '-c', '2', '-i', '0.2', '-W', seconds, x.dst],
      { timeout: 5000 },
      (_err, stdout) => {
        const received = Number(/(\d+) (packets )?received/.exec(stdout)?.[1] ?? 0);
        resolve({ id: x.id, complete: received === 2, step: `${received} replies` });
      },
    );
  });
}

/** @param {string[]} args */
async function drive(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { wait: { type: 'string' } },
  });
  const wait = Number(values.wait ?? 300);
  /** @type {Exchange[]} */
  const exchanges = JSON.parse(positionals[0] ?? '[]');
  const run = { tcp, udp, icmp };
  const outcomes = await Promise.all(exchanges.map((x) => run[x.proto](x, wait)));
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') await serve(rest);
else if (command === 'drive') await drive(rest);
else fail(`unknown subcommand ${command}: use serve or drive`);
