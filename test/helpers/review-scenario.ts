// Issue 17's realistic server, recorded by the real ct-record: who its clients are, the traffic they make, the two scans, and the probes' machinery.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRecorder } from '../../samples/record.js';
import { exitedWithin, REVIEW_NET, run, type Topology, waitForLine } from './netns.js';

export const REVIEW_TRAFFIC = fileURLToPath(new URL('./review-traffic.mjs', import.meta.url));
export const SERVER = REVIEW_NET.server;

export type Proto = 'tcp' | 'udp' | 'icmp';

/** One flow the clients' namespace makes (review-traffic.mjs `flows`). */
export interface ReviewFlow {
  proto: Proto;
  src: string;
  dst: string;
  port?: number;
  /** Ask for the 100 KB answer that needs path-MTU discovery on the 1280-byte hop. */
  big?: boolean;
  /** One-way UDP (syslog): nothing comes back. */
  oneWay?: boolean;
  /** What it stands for, in messages and the probe table. */
  label: string;
  /** What the recording expects of it: answered, sent one way, or silent (the lame DNS client). */
  expect: 'accepted' | 'sent' | 'silent';
}

/** Every address the scenario uses, chosen once from a seed so a failure can be replayed. */
export interface ReviewHosts {
  /** ~150 office clients spread over 10.66.10.0/24. */
  office: string[];
  /** ~80 DHCP clients in 10.66.11.0/25. */
  dhcp: string[];
  /** The DHCP client whose DNS query the server never answers (it does get its web pages). */
  silentDns: string;
  /** Twelve app servers over 10.66.2.0/24, on both sides of .128: tcp 5432 and 8080. */
  appServers: string[];
  /** A desktop among the app servers that never touched them. */
  appNeighbour: string;
  /** The other address of the first app server's /31: no prefix may stand for one host. */
  appPairMate: string;
  admin: string;
  /** SYN scan (nmap -sS) and connect scan (nmap -sT, inside the DHCP /24's other half). */
  synScanner: string;
  connectScanner: string;
  /** Six privacy addresses in 2001:db8:66:10::/64 on 80 and 443. */
  v6Clients: string[];
  /** Four hosts that send syslog (udp 514, never answered). */
  syslogSenders: string[];
  /** Office clients and one IPv6 client that ping the server. */
  pingers: string[];
  /** Addresses of the observed subnets the recording never saw: new clients. */
  unseen: { office: string; dhcp: string; v6: string };
}

/** mulberry32: a small deterministic generator; the scenario's "random" addresses come from it. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A privacy address: 64 random bits of interface identifier in the clients' /64. */
function privacyAddress(random: () => number): string {
  const groups = Array.from({ length: 4 }, () => Math.floor(random() * 0x10000).toString(16));
  // Never the all-zero identifier (the subnet-router anycast address).
  if (groups.join('') === '0000') groups[3] = '1';
  return `2001:db8:66:10:${groups.join(':')}`;
}

export function reviewHosts(seed = 17): ReviewHosts {
  const random = generator(seed);
  const officePool = shuffled(range(1, 254), random).map((h) => `10.66.10.${h}`);
  const dhcpPool = shuffled(range(1, 126), random).map((h) => `10.66.11.${h}`);
  const office = officePool.slice(0, 150).sort(byAddress);
  const dhcp = dhcpPool.slice(0, 80).sort(byAddress);
  const v6 = Array.from({ length: 7 }, () => privacyAddress(random));
  return {
    office,
    dhcp,
    silentDns: dhcp[7] as string,
    appServers: [3, 17, 29, 44, 58, 71, 140, 155, 169, 188, 203, 241].map((h) => `10.66.2.${h}`),
    appNeighbour: '10.66.2.100',
    appPairMate: '10.66.2.2',
    admin: '10.66.1.5',
    synScanner: '10.66.1.67',
    connectScanner: '10.66.11.200',
    v6Clients: v6.slice(0, 6),
    syslogSenders: ['10.66.1.20', '10.66.1.21', '10.66.1.22', '10.66.1.23'],
    pingers: [office[0], office[50], office[100], v6[3]] as string[],
    unseen: {
      office: officePool[150] as string,
      dhcp: dhcpPool[80] as string,
      v6: v6[6] as string,
    },
  };
}

function byAddress(a: string, b: string): number {
  return Number(a.split('.').pop()) - Number(b.split('.').pop());
}

/** The clients' legitimate traffic of the recording (the scans are nmap's). */
export function recordedFlows(h: ReviewHosts): ReviewFlow[] {
  const v4 = SERVER.v4;
  const flows: ReviewFlow[] = [];
  const web = (src: string, dst: string, who: string) => {
    for (const port of [80, 443]) {
      flows.push({ proto: 'tcp', src, dst, port, label: `${who} web ${port}`, expect: 'accepted' });
    }
  };
  for (const src of [...h.office, ...h.dhcp]) {
    const who = src.startsWith('10.66.10.') ? 'office' : 'dhcp';
    web(src, v4, who);
    const silent = src === h.silentDns;
    flows.push({
      proto: 'udp',
      src,
      dst: v4,
      port: 53,
      label: `${who} dns${silent ? ' (never answered)' : ''}`,
      expect: silent ? 'silent' : 'accepted',
    });
  }
  for (const src of h.appServers) {
    for (const port of [5432, 8080]) {
      flows.push({ proto: 'tcp', src, dst: v4, port, label: `app ${port}`, expect: 'accepted' });
    }
  }
  flows.push({
    proto: 'tcp',
    src: h.admin,
    dst: v4,
    port: 22,
    label: 'admin ssh',
    expect: 'accepted',
  });
  flows.push({
    proto: 'udp',
    src: h.admin,
    dst: v4,
    port: 161,
    label: 'admin snmp',
    expect: 'accepted',
  });
  for (const src of h.v6Clients) web(src, SERVER.v6, 'v6 privacy');
  for (const src of h.syslogSenders) {
    flows.push({
      proto: 'udp',
      src,
      dst: v4,
      port: 514,
      oneWay: true,
      label: 'syslog',
      expect: 'sent',
    });
  }
  for (const src of h.pingers) {
    const dst = src.includes(':') ? SERVER.v6 : v4;
    flows.push({ proto: 'icmp', src, dst, label: 'ping', expect: 'accepted' });
  }
  // The large answers: each crosses the 1280-byte hop (path-MTU discovery).
  for (const [src, dst, port] of [
    [h.office[1], v4, 80],
    [h.appServers[0], v4, 8080],
    [h.v6Clients[0], SERVER.v6, 80],
  ] as const) {
    flows.push({
      proto: 'tcp',
      src: src as string,
      dst,
      port,
      big: true,
      label: `download ${port}`,
      expect: 'accepted',
    });
  }
  return flows;
}

/**
 * What the server sends itself (the output chain's evidence): a health check of its own 8080 over
 * loopback, a DNS lookup at its gateway and a ping of it, as monitoring does.
 */
export function serverFlows(): ReviewFlow[] {
  const gateway = REVIEW_NET.routerToServer.v4;
  return [
    {
      proto: 'tcp',
      src: '127.0.0.1',
      dst: '127.0.0.1',
      port: 8080,
      label: 'health check',
      expect: 'accepted',
    },
    {
      proto: 'udp',
      src: SERVER.v4,
      dst: gateway,
      port: 53,
      label: 'dns lookup',
      expect: 'accepted',
    },
    {
      proto: 'icmp',
      src: SERVER.v4,
      dst: gateway,
      label: 'ping of the gateway',
      expect: 'accepted',
    },
  ];
}

/** Every address of `h` on the clients' interface, in one `ip -batch` (hundreds of them). */
export async function addClientAddresses(topo: Topology, h: ReviewHosts): Promise<void> {
  const v4 = [
    ...h.office,
    ...h.dhcp,
    ...h.appServers,
    h.appNeighbour,
    h.appPairMate,
    h.admin,
    h.synScanner,
    h.connectScanner,
    ...h.syslogSenders,
    h.unseen.office,
    h.unseen.dhcp,
  ];
  const v6 = [...h.v6Clients, h.unseen.v6];
  const lines = [
    ...[...new Set(v4)].map((a) => `addr add ${a}/32 dev to-router`),
    ...v6.map((a) => `addr add ${a}/128 dev to-router nodad`),
  ];
  await run(['ip', '-n', topo.client.ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

export interface Services {
  child: ChildProcess;
  /** Sources of every syslog datagram the server has read so far. */
  syslogFrom: string[];
}

/**
 * The services (review-traffic.mjs serve) of the server, or of `ns`: the router answers the
 * server's own DNS lookups. Resolves once they listen.
 */
export async function startServices(
  topo: Topology,
  h: ReviewHosts,
  ns: string = topo.server.ns,
): Promise<Services> {
  const child = topo.spawn(ns, [
    process.execPath,
    REVIEW_TRAFFIC,
    'serve',
    '--silent-dns-from',
    h.silentDns,
    '--for',
    '280',
  ]);
  const stdout = child.stdout as NonNullable<ChildProcess['stdout']>;
  await waitForLine(stdout, /^ready$/, 10_000);
  const syslogFrom: string[] = [];
  let buf = '';
  stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('syslog ')) syslogFrom.push(l.slice(7));
  });
  return { child, syslogFrom };
}

/** Runs `flows` from `ns` (default: the clients'); their outcomes in order. */
export async function runFlows(
  topo: Topology,
  flows: readonly Omit<ReviewFlow, 'label' | 'expect'>[],
  opts: { ns?: string; waitMs?: number } = {},
): Promise<string[]> {
  const waitMs = opts.waitMs ?? 3000;
  const plain = flows.map(({ proto, src, dst, port, big, oneWay }) => ({
    proto,
    src,
    dst,
    port,
    big,
    oneWay,
  }));
  const res = await topo.exec(
    opts.ns ?? topo.client.ns,
    [process.execPath, REVIEW_TRAFFIC, 'flows', '--wait', String(waitMs)],
    { input: JSON.stringify(plain), timeoutMs: 60_000 + flows.length * 50 },
  );
  return JSON.parse(res.stdout) as string[];
}

/** The ports both scans try: nmap's -p of the issue. */
export const SCAN_PORTS = '1-1024,5432,8080';

/** nmap's SYN scan and connect scan of the server, each from its own address. */
export async function scanServer(topo: Topology, h: ReviewHosts): Promise<string[]> {
  const outputs: string[] = [];
  for (const [kind, src] of [
    ['-sS', h.synScanner],
    ['-sT', h.connectScanner],
  ] as const) {
    // -Pn -n: no host discovery, no DNS; -S binds the scan to the scanner's address.
    const res = await topo.exec(
      topo.client.ns,
      ['nmap', kind, '-Pn', '-n', '-T4', '-S', src, '-e', 'to-router', '-p', SCAN_PORTS, SERVER.v4],
      { timeoutMs: 120_000 },
    );
    outputs.push(res.stdout);
  }
  return outputs;
}

export interface Recording {
  /** Each recorded flow's outcome, in recordedFlows() order. */
  outcomes: string[];
  /** The outcomes of serverFlows(). */
  own: string[];
  /** nmap's reports of the two scans. */
  scans: string[];
  exit: number | string;
  stderr: string;
}

/**
 * Records the scenario into `journal` with ct-record in the server's namespace: the clients'
 * traffic, the server's own (serverFlows()), then the two scans; SIGTERM; exit.
 */
export async function recordReview(
  topo: Topology,
  journal: string,
  h: ReviewHosts,
  flows: readonly ReviewFlow[],
): Promise<Recording> {
  const rec = await startRecorder(topo, journal);
  try {
    const outcomes = await runFlows(topo, flows);
    const own = await runFlows(topo, serverFlows(), { ns: topo.server.ns });
    const scans = await scanServer(topo, h);
    rec.child.kill('SIGTERM');
    const exit = await exitedWithin(rec.child, 30_000);
    return { outcomes, own, scans, exit, stderr: rec.stderr() };
  } finally {
    rec.child.kill('SIGKILL');
  }
}

/** The path MTU the server has learned toward `dst` (a route exception), or undefined. */
export async function learnedMtu(topo: Topology, dst: string): Promise<number | undefined> {
  const res = await topo.exec(topo.server.ns, ['ip', 'route', 'get', dst]);
  const m = /\bmtu (\d+)/.exec(res.stdout);
  return m ? Number(m[1]) : undefined;
}
