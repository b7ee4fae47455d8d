// The kernel's side of the agreement test: the exchanges a firewall topology drives, the servers
// that log what reached them, a ruleset loaded in the firewall, and each exchange's outcome as
// the kernel decided it (accepted, blocked, breaks), read from the conversation and conntrack.
import { fileURLToPath } from 'node:url';
import { type Host, type Topology, TRACK_RULES, waitForLine } from './netns.js';
import { CORPUS_DIR, type CorpusEntry, type Loader } from './rulesets.js';

export const CONVERSATIONS = fileURLToPath(new URL('./conversations.mjs', import.meta.url));

export const TCP_PORTS = [22, 53, 80, 443, 8080, 40022] as const;
export const UDP_PORTS = [53, 123, 514, 40053] as const;
/**
 * How long silence is waited for at each step of a conversation: a drop shows as silence. Not
 * 300 ms: on a busy 2-core machine the first answers of a driver starting 44 conversations at
 * once took longer, and a slow answer must not read as a drop.
 */
export const WAIT_MS = 500;

export type Direction = 'input' | 'output' | 'forward';
export type Outcome = 'accepted' | 'blocked' | 'breaks';

export interface Exchange {
  /** `<direction> <proto>v<family> <port>`, unique in a run. */
  id: string;
  direction: Direction;
  proto: 'tcp' | 'udp' | 'icmp';
  family: 4 | 6;
  src: string;
  dst: string;
  /** The destination port (TCP, UDP). */
  port?: number;
  /** The namespace that starts the conversation. */
  ns: string;
  /** The namespace that answers it. */
  peer: string;
}

/** What identifies an exchange's connection in conntrack and in a report: one per exchange. */
export function connectionKey(proto: string, src: string, dst: string, port?: number): string {
  return `${proto} ${src} ${dst} ${port ?? ''}`;
}

export const keyOf = (x: Exchange) => connectionKey(x.proto, x.src, x.dst, x.port);

/** Every exchange, once, in every direction the firewall takes part in, over IPv4 and IPv6. */
export function exchangesFor(topo: Topology): Exchange[] {
  const fw = topo.router;
  if (fw === undefined) throw new Error('exchangesFor: needs a fw topology');
  const ends: [Direction, Host, Host][] = [
    ['input', topo.client, fw],
    ['output', fw, topo.client],
    ['forward', topo.client, topo.server],
  ];
  const out: Exchange[] = [];
  for (const [direction, from, to] of ends) {
    for (const family of [4, 6] as const) {
      const src = family === 4 ? from.v4 : from.v6;
      const dst = family === 4 ? to.v4 : to.v6;
      const add = (proto: Exchange['proto'], port?: number) =>
        out.push({
          id: `${direction} ${proto}v${family}${port === undefined ? '' : ` ${port}`}`,
          direction,
          proto,
          family,
          src,
          dst,
          port,
          ns: from.ns,
          peer: to.ns,
        });
      for (const p of TCP_PORTS) add('tcp', p);
      for (const p of UDP_PORTS) add('udp', p);
      add('icmp');
    }
  }
  return out;
}

/** One connection or datagram a server saw: in which namespace, who sent it, to which port. */
interface Arrival {
  ns: string;
  proto: 'tcp' | 'udp';
  from: string;
  port: number;
}

export interface Servers {
  /** What reached a server since the last reset. */
  arrivals(): Arrival[];
  reset(): void;
}

/** Starts a logging server in the client, firewall and server namespaces (every port). */
export async function startServers(topo: Topology, seconds: number): Promise<Servers> {
  let seen: Arrival[] = [];
  const namespaces = [topo.client.ns, topo.router?.ns as string, topo.server.ns];
  await Promise.all(
    namespaces.map(async (ns) => {
      const child = topo.spawn(ns, [
        process.execPath,
        CONVERSATIONS,
        'serve',
        '--tcp',
        TCP_PORTS.join(','),
        '--udp',
        UDP_PORTS.join(','),
        '--for',
        String(seconds),
      ]);
      const stdout = child.stdout as NonNullable<typeof child.stdout>;
      await waitForLine(stdout, /^ready$/, 10_000);
      let buf = '';
      stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          if (l.startsWith('{')) seen.push({ ...(JSON.parse(l) as Omit<Arrival, 'ns'>), ns });
        }
      });
    }),
  );
  return {
    arrivals: () => seen,
    reset: () => {
      seen = [];
    },
  };
}

interface Progress {
  id: string;
  complete: boolean;
  step: string;
}

/** Drives the exchanges, each namespace's at once; how far each conversation got, by id. */
export async function drive(
  topo: Topology,
  exchanges: readonly Exchange[],
  waitMs = WAIT_MS,
): Promise<Map<string, Progress>> {
  const byNs = new Map<string, Exchange[]>();
  for (const x of exchanges) byNs.set(x.ns, [...(byNs.get(x.ns) ?? []), x]);
  const runs = await Promise.all(
    [...byNs].map(async ([ns, xs]) => {
      const res = await topo.exec(
        ns,
        [
          process.execPath,
          CONVERSATIONS,
          'drive',
          '--wait',
          String(waitMs),
          JSON.stringify(xs.map(({ id, proto, dst, port }) => ({ id, proto, dst, port }))),
        ],
        { timeoutMs: 20_000 },
      );
      return JSON.parse(res.stdout) as Progress[];
    }),
  );
  return new Map(runs.flat().map((p) => [p.id, p]));
}

/**
 * Drives every exchange until each has completed once (up to `tries` rounds): a new topology
 * under load was seen to leave IPv4 TCP unanswered for its first seconds. Returns the ids that
 * never completed.
 */
export async function warmUp(
  topo: Topology,
  exchanges: readonly Exchange[],
  tries = 8,
): Promise<string[]> {
  let left = [...exchanges];
  for (let i = 0; i < tries && left.length > 0; i++) {
    const progress = await drive(topo, left, 2 * WAIT_MS);
    left = left.filter((x) => !progress.get(x.id)?.complete);
  }
  return left.map((x) => x.id);
}

/** A confirmed conntrack entry, by its original tuple; dnat when its reply comes from elsewhere. */
interface Entry {
  key: string;
  dnat: boolean;
}

const PROTO_NAMES: Record<string, string> = {
  tcp: 'tcp',
  udp: 'udp',
  icmp: 'icmp',
  icmpv6: 'icmp',
};

/** `conntrack -L` in the firewall: the hash table holds confirmed entries only. */
export async function conntrackEntries(topo: Topology): Promise<Map<string, Entry>> {
  const fw = topo.router?.ns as string;
  const out = new Map<string, Entry>();
  for (const family of ['ipv4', 'ipv6']) {
    const res = await topo.exec(fw, ['conntrack', '-L', '-f', family]);
    for (const line of res.stdout.split('\n')) {
      const proto = PROTO_NAMES[line.split(/\s+/)[0] ?? ''];
      if (proto === undefined) continue;
      // Original tuple first, then the reply's: `src= dst= sport= dport= … src= dst= sport= dport=`.
      const field = (name: string) =>
        [...line.matchAll(new RegExp(`\\b${name}=(\\S+)`, 'g'))].map((m) => m[1]);
      const [src, replySrc] = field('src');
      const [dst] = field('dst');
      const [dport, replySport] = [field('dport')[0], field('sport')[1]];
      if (src === undefined || dst === undefined) continue;
      const port = proto === 'icmp' ? undefined : Number(dport);
      const key = connectionKey(proto, src, dst, port);
      const dnat = replySrc !== dst || (proto !== 'icmp' && replySport !== dport);
      out.set(key, { key, dnat });
    }
  }
  return out;
}

export interface KernelVerdict {
  outcome: Outcome;
  /** The ruleset changed the destination (DNAT, redirect): the recording saw another connection. */
  dnat: boolean;
  /** How far the conversation got, for messages. */
  step: string;
}

/**
 * Drives the exchanges with conntrack empty and judges each: accepted (the whole conversation
 * went through), blocked (no confirmed entry: the first packet never made it), breaks (an entry
 * exists, the conversation did not complete). A blocked exchange that reached its peer anyway
 * is thrown: the harness, not the ruleset, would be wrong.
 */
export async function kernelVerdicts(
  topo: Topology,
  servers: Servers,
  exchanges: readonly Exchange[],
): Promise<Map<string, KernelVerdict>> {
  const fw = topo.router?.ns as string;
  await topo.exec(fw, ['conntrack', '-F'], { check: false });
  servers.reset();
  const progress = await drive(topo, exchanges);
  const entries = await conntrackEntries(topo);
  // A conversation whose first packet passed but that did not complete is driven once more,
  // waiting longer: a slow answer on a busy machine reads as a break, a real break breaks again.
  const again = exchanges.filter((x) => !progress.get(x.id)?.complete && entries.has(keyOf(x)));
  if (again.length > 0) {
    for (const [id, p] of await drive(topo, again, 4 * WAIT_MS))
      if (p.complete) progress.set(id, p);
  }
  const arrivals = servers.arrivals();
  const out = new Map<string, KernelVerdict>();
  for (const x of exchanges) {
    const p = progress.get(x.id);
    if (p === undefined) throw new Error(`${x.id}: the driver gave no outcome`);
    const entry = entries.get(keyOf(x));
    const outcome: Outcome = p.complete ? 'accepted' : entry === undefined ? 'blocked' : 'breaks';
    if (outcome === 'blocked' && x.proto !== 'icmp') {
      const reached = arrivals.some(
        (a) => a.ns === x.peer && a.proto === x.proto && a.from === x.src && a.port === x.port,
      );
      if (reached) throw new Error(`${x.id}: no conntrack entry, yet the peer got it (${p.step})`);
    }
    out.set(x.id, { outcome, dnat: entry?.dnat ?? false, step: p.step });
  }
  return out;
}

const LOAD: Record<Loader, (file: string) => string[]> = {
  nft: (file) => ['nft', '-f', file],
  json: (file) => ['nft', '-j', '-f', file],
  iptables: (file) => ['iptables-nft-restore', file],
  ip6tables: (file) => ['ip6tables-nft-restore', file],
};

/**
 * Replaces the firewall's ruleset by the corpus file (as corpus.test.ts loads it). The harness's
 * own conntrack table comes back when the file flushed it: it only accepts, in its own base
 * chains, so it changes no verdict, but without it a ruleset with no ct rule tracks nothing.
 */
export async function loadInFirewall(topo: Topology, entry: CorpusEntry): Promise<void> {
  const fw = topo.router?.ns as string;
  await topo.exec(fw, ['nft', 'flush', 'ruleset']);
  const [cmd, ...args] = LOAD[entry.load](entry.file);
  await topo.exec(fw, [cmd as string, ...args], { cwd: CORPUS_DIR, timeoutMs: 30_000 });
  const tables = await topo.exec(fw, ['nft', 'list', 'tables']);
  if (!tables.stdout.includes('table inet conntracker_probe')) {
    await topo.exec(fw, ['nft', '-f', '-'], { input: TRACK_RULES });
  }
}
