// The one namespace harness of the kernel tests: throwaway network namespaces (lan: client↔server,
// nat: client↔router↔server, fw: client↔firewall↔server routed both ways, review: many clients ↔
// router with a 1280-byte hop ↔ recorded server, or a single one for the capture), each removed
// at teardown, at exit or by the next run's sweep; and the process
// helpers (run, waitForLine, exited) the tests share.
import { type ChildProcess, execFileSync, spawn as spawnChild } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';

export type TopologyKind = 'lan' | 'nat' | 'fw' | 'review';

/** One end of the topology as the scenario sees it: its namespace and the addresses it uses. */
export interface Host {
  ns: string;
  v4: string;
  v6: string;
}

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long; default 10 s. Every command is bounded. */
  timeoutMs?: number;
  /** Reject when the exit code is not 0; default true. */
  check?: boolean;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Topology {
  kind: TopologyKind;
  /** Initiates every flow of the scenario. */
  client: Host;
  /** Answers; its addresses are the destinations the client uses. */
  server: Host;
  /** nat: the forwarding, masquerading host; fw: the firewall (addresses on its client-side link). */
  router?: Host;
  /** The namespace whose conntrack sees the traffic: server (lan, review) or router (nat, fw). */
  recordNs: string;
  namespaces: readonly string[];
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** A long-running child inside `ns`, killed by destroy() if still alive. */
  spawn(ns: string, argv: readonly string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Kills the children, deletes every namespace; idempotent. */
  destroy(): Promise<void>;
}

/** The part of tap's Test the harness needs (null for scripts, which call destroy themselves). */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface TopologyOptions {
  /** Third octet of the first IPv4 subnet, also the third group of the IPv6 prefix (hex). */
  net?: number;
  /** fw only: the firewall's interface names facing the client and the server (a ruleset's zones). */
  devices?: { client: string; server: string };
}

/** nat: the /24 after `net` is the router↔server link. review: its own 10.66/16 (net unused). */
const DEFAULT_NET: Record<TopologyKind, number> = { lan: 1, nat: 2, fw: 4, review: 0 };

/**
 * review (issue 17's scenario, test/helpers/review-scenario.ts): the server 10.66.0.10 and
 * 2001:db8:66::10 behind a router that routes 10.66.0.0/16 and 2001:db8:66::/48 to the clients'
 * namespace, whose scenario adds its many addresses itself. The router's interface toward the
 * clients has MTU 1280, the clients' and the server's 1500: the server's large answers need
 * ICMP fragmentation-needed / packet-too-big from the router (path-MTU discovery).
 */
export const REVIEW_NET = {
  server: { v4: '10.66.0.10', v6: '2001:db8:66::10' },
  routerToServer: { v4: '10.66.0.1', v6: '2001:db8:66::1' },
  routerToClients: { v4: '10.66.254.1', v6: '2001:db8:66:fe::1' },
  clients: { v4: '10.66.254.2', v6: '2001:db8:66:fe::2' },
  hopMtu: 1280,
} as const;
const PREFIX = 'ctnet';
let sequence = 0;

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}

/**
 * Runs argv in the namespace without tap's loaders: tap patches child_process to put its
 * NODE_OPTIONS into every child, but the built CLIs need none, and a recorder that drops to
 * nobody could not write tap's process info at exit (a stack trace it never printed).
 */
function inNetns(ns: string, argv: readonly string[]): string[] {
  return ['netns', 'exec', ns, 'env', '-u', 'NODE_OPTIONS', ...argv];
}

/** Throws an Error naming exactly what this machine lacks to build namespaces. */
export function preflight(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (sudo npm run test:kernel)');
  for (const cmd of ['ip', 'nft']) {
    if (!onPath(cmd)) {
      missing.push(`${cmd} on PATH (install ${cmd === 'ip' ? 'iproute2' : 'nftables'})`);
    }
  }
  if (missing.length > 0) {
    throw new Error(`cannot create network namespaces: missing ${missing.join(', ')}`);
  }
}

/** Runs `argv` to completion; the only place a child of the harness is waited for. */
export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('run: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    if (child.stdin) {
      // A child that exits without reading its input (EPIPE) is judged by its exit code.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res = { code, signal, stdout, stderr };
      if ((opts.check ?? true) && code !== 0) {
        const why = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exit ${code}`;
        reject(new Error(`\`${argv.join(' ')}\` failed (${why}): ${stderr.trim()}`));
      } else {
        resolve(res);
      }
    });
  });
}

/** Runs `cmd` to completion and returns its stdout; throws with its stderr on failure. */
export function runSync(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves with the first line of `stream` that matches; rejects on timeout or end of stream. */
export function waitForLine(stream: Readable, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const finish = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(line as string);
    };
    const onData = (chunk: Buffer | string) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) finish(null, hit);
    };
    const onEnd = () => finish(new Error(`stream ended before a line matching ${pattern}`));
    const timer = setTimeout(
      () => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}

/** Resolves with the exit code (or signal name) once `child` has exited. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal as NodeJS.Signals)));
  });
}

/** Like exited(), but resolves with a reason instead of waiting past `ms`. */
export async function exitedWithin(child: ChildProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`still running after ${ms} ms`), ms);
  });
  try {
    return await Promise.race([exited(child), late]);
  } finally {
    clearTimeout(timer);
  }
}

function listNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills what still runs in `ns` (a recorder outlives its namespace's name otherwise, in a
 * namespace nobody can reach), then deletes the name. For exit paths that cannot await.
 */
function removeNamespaceSync(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const pid of pids.split('\n').filter((p) => p !== '')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already gone, or swept by another process first
  }
}

/** Deletes namespaces this harness left behind in processes that were killed before teardown. */
function sweepStale(): void {
  const re = new RegExp(`^${PREFIX}-(\\d+)-\\d+-[a-z]+$`);
  for (const name of listNamespaces()) {
    const pid = Number(re.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) {
      removeNamespaceSync(name);
    }
  }
}

/** Live topologies, so a process exiting without teardown still removes its namespaces. */
const live = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const ns of live) removeNamespaceSync(ns);
  });
}

/**
 * Conntrack tracks a namespace only once a rule needs it (SEMANTICS.md "Kernel facts"); this is
 * the nft form of the seed's raw-table `--ctstate NEW,ESTABLISHED,RELATED -j ACCEPT` rules.
 */
export const TRACK_RULES = `table inet conntracker_probe {
  chain pre { type filter hook prerouting priority raw; ct state new,established,related accept; }
  chain out { type filter hook output priority raw; ct state new,established,related accept; }
}
`;

function masqueradeRules(oif: string): string {
  return `table ip conntracker_nat {
  chain post { type nat hook postrouting priority srcnat; oifname "${oif}" masquerade; }
}
`;
}

/**
 * Builds a topology. With `t`, teardown is registered on it (and runs when the test fails);
 * with null the caller must call destroy(). Throws when namespaces cannot be made.
 */
export async function createTopology(
  t: TeardownHost | null,
  kind: TopologyKind,
  opts: TopologyOptions = {},
): Promise<Topology> {
  preflight();
  sweepStale();
  installExitHook();
  const net = opts.net ?? DEFAULT_NET[kind];
  if (!Number.isInteger(net) || net < 0 || net > 254) {
    throw new Error(`createTopology: net must be an integer 0..254, got ${net}`);
  }
  const id = `${PREFIX}-${process.pid}-${++sequence}`;
  const names = kind === 'lan' ? ['c', 's'] : ['c', 'r', 's'];
  const namespaces = names.map((n) => `${id}-${n}`);
  const [clientNs, second, third] = namespaces as [string, string, string | undefined];
  const serverNs = kind === 'lan' ? second : (third as string);
  const routerNs = kind !== 'lan' ? second : undefined;

  const children = new Set<ChildProcess>();
  let destroyed: Promise<void> | undefined;
  const made: string[] = [];

  const exec = (ns: string, argv: readonly string[], o?: ExecOptions) =>
    run(['ip', ...inNetns(ns, argv)], o);
  const ip = (ns: string, args: string) => run(['ip', '-n', ns, ...args.split(' ')]);

  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited(child);
        }
      }
      const errors: string[] = [];
      for (const ns of made) {
        const res = await run(['ip', 'netns', 'del', ns], { check: false });
        if (res.code === 0) live.delete(ns);
        else errors.push(`${ns}: ${res.stderr.trim()}`);
      }
      if (errors.length > 0) throw new Error(`could not delete namespaces: ${errors.join('; ')}`);
    })();
    return destroyed;
  };

  const spawn = (ns: string, argv: readonly string[], o: { env?: NodeJS.ProcessEnv } = {}) => {
    // `ip netns exec` execs the command, so signals sent to the child reach it directly.
    const child = spawnChild('ip', inNetns(ns, argv), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: o.env ?? process.env,
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };

  t?.teardown(destroy);
  const v4 = (n: number, host: number) => `10.211.${n}.${host}`;
  const v6 = (n: number, host: number) => `fd00:211:${n.toString(16)}::${host.toString(16)}`;
  /** Puts both ends of a veth pair straight into their namespaces: names clash nowhere. */
  const link = async (a: string, aDev: string, b: string, bDev: string) => {
    await ip(a, `link add ${aDev} type veth peer name ${bDev} netns ${b}`);
  };
  const address = async (ns: string, dev: string, n: number, host: number) => {
    await ip(ns, `addr add ${v4(n, host)}/24 dev ${dev}`);
    await ip(ns, `-6 addr add ${v6(n, host)}/64 dev ${dev} nodad`);
    await ip(ns, `link set ${dev} up`);
  };

  try {
    for (const ns of namespaces) {
      await run(['ip', 'netns', 'add', ns]);
      made.push(ns);
      live.add(ns);
      await ip(ns, 'link set lo up');
    }
    let topo: Omit<Topology, 'exec' | 'spawn' | 'destroy' | 'namespaces' | 'kind'>;
    if (kind === 'lan') {
      await link(clientNs, 'to-server', serverNs, 'to-client');
      await address(clientNs, 'to-server', net, 1);
      await address(serverNs, 'to-client', net, 2);
      topo = {
        client: { ns: clientNs, v4: v4(net, 1), v6: v6(net, 1) },
        server: { ns: serverNs, v4: v4(net, 2), v6: v6(net, 2) },
        recordNs: serverNs,
      };
    } else if (kind === 'review') {
      const r = routerNs as string;
      const n = REVIEW_NET;
      await link(clientNs, 'to-router', r, 'to-clients');
      await link(r, 'to-server', serverNs, 'to-router');
      const addr = async (ns: string, dev: string, h: { v4: string; v6: string }, six: number) => {
        await ip(ns, `addr add ${h.v4}/24 dev ${dev}`);
        await ip(ns, `-6 addr add ${h.v6}/${six} dev ${dev} nodad`);
        await ip(ns, `link set ${dev} up`);
      };
      await ip(r, `link set to-clients mtu ${n.hopMtu}`);
      await addr(clientNs, 'to-router', n.clients, 64);
      await addr(r, 'to-clients', n.routerToClients, 64);
      await addr(r, 'to-server', n.routerToServer, 64);
      await addr(serverNs, 'to-router', n.server, 64);
      await exec(r, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      await ip(clientNs, `route add default via ${n.routerToClients.v4}`);
      await ip(clientNs, `-6 route add default via ${n.routerToClients.v6}`);
      await ip(serverNs, `route add default via ${n.routerToServer.v4}`);
      await ip(serverNs, `-6 route add default via ${n.routerToServer.v6}`);
      await ip(r, `route add 10.66.0.0/16 via ${n.clients.v4}`);
      await ip(r, `-6 route add 2001:db8:66::/48 via ${n.clients.v6}`);
      topo = {
        client: { ns: clientNs, ...n.clients },
        server: { ns: serverNs, ...n.server },
        router: { ns: r, ...n.routerToClients },
        recordNs: serverNs,
      };
    } else if (kind === 'fw') {
      const f = routerNs as string;
      const far = net + 1;
      const dev = opts.devices ?? { client: 'to-client', server: 'to-server' };
      await link(clientNs, 'to-fw', f, dev.client);
      await link(f, dev.server, serverNs, 'to-fw');
      await address(clientNs, 'to-fw', net, 1);
      await address(f, dev.client, net, 254);
      await address(f, dev.server, far, 254);
      await address(serverNs, 'to-fw', far, 2);
      await exec(f, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      for (const [ns, via] of [
        [clientNs, net],
        [serverNs, far],
      ] as const) {
        await ip(ns, `route add default via ${v4(via, 254)}`);
        await ip(ns, `-6 route add default via ${v6(via, 254)}`);
      }
      // A ruleset's DNAT to an address of its own world still leaves the firewall (and is
      // confirmed in its conntrack) instead of failing the route lookup.
      await ip(f, `route add default via ${v4(far, 2)}`);
      await ip(f, `-6 route add default via ${v6(far, 2)}`);
      // Fixed neighbours: a ruleset that drops ICMPv6 neighbour discovery (which is no
      // connection) would otherwise cut IPv6 off for reasons no recorded flow shows.
      const mac = async (ns: string, d: string) =>
        (
          JSON.parse((await run(['ip', '-j', '-n', ns, 'link', 'show', d])).stdout) as {
            address: string;
          }[]
        )[0]?.address as string;
      const pairs = [
        [clientNs, 'to-fw', net, 1, f, dev.client, 254],
        [f, dev.server, far, 254, serverNs, 'to-fw', 2],
      ] as const;
      for (const [a, aDev, n, aHost, b, bDev, bHost] of pairs) {
        const [aMac, bMac] = [await mac(a, aDev), await mac(b, bDev)];
        for (const [ns, d, addr4, addr6, lladdr] of [
          [a, aDev, v4(n, bHost), v6(n, bHost), bMac],
          [b, bDev, v4(n, aHost), v6(n, aHost), aMac],
        ] as const) {
          await ip(ns, `neigh replace ${addr4} lladdr ${lladdr} dev ${d} nud permanent`);
          await ip(ns, `-6 neigh replace ${addr6} lladdr ${lladdr} dev ${d} nud permanent`);
        }
      }
      topo = {
        client: { ns: clientNs, v4: v4(net, 1), v6: v6(net, 1) },
        server: { ns: serverNs, v4: v4(far, 2), v6: v6(far, 2) },
        router: { ns: f, v4: v4(net, 254), v6: v6(net, 254) },
        recordNs: f,
      };
    } else {
      const r = routerNs as string;
      const far = net + 1;
      await link(clientNs, 'to-router', r, 'to-client');
      await link(r, 'to-server', serverNs, 'to-router');
      await address(clientNs, 'to-router', net, 1);
      await address(r, 'to-client', net, 254);
      await address(r, 'to-server', far, 254);
      await address(serverNs, 'to-router', far, 2);
      await exec(r, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      await ip(clientNs, `route add default via ${v4(net, 254)}`);
      await ip(clientNs, `-6 route add default via ${v6(net, 254)}`);
      // No IPv4 route back to the client's subnet: IPv4 reaches the server only through the
      // masquerade, so a broken NAT fails the scenario instead of passing unnoticed.
      await ip(serverNs, `-6 route add default via ${v6(far, 254)}`);
      await exec(r, ['nft', '-f', '-'], { input: masqueradeRules('to-server') });
      topo = {
        client: { ns: clientNs, v4: v4(net, 1), v6: v6(net, 1) },
        server: { ns: serverNs, v4: v4(far, 2), v6: v6(far, 2) },
        router: { ns: r, v4: v4(net, 254), v6: v6(net, 254) },
        recordNs: r,
      };
    }
    await exec(topo.recordNs, ['nft', '-f', '-'], { input: TRACK_RULES });
    return { kind, namespaces, exec, spawn, destroy, ...topo };
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }
}

/**
 * One namespace `ctnet-<pid>-<n>-<tag>` with lo up, conntrack on (the same rules as a topology's
 * recording namespace), flow timestamps and byte counters on: where the native capture tests run
 * their child. Synchronous, so a test can make it before anything else; removed at teardown.
 */
export function makeNetns(t: TeardownHost, tag: string): string {
  if (!/^[a-z]+$/.test(tag))
    throw new Error(`makeNetns: tag must be lowercase letters, got ${tag}`);
  preflight();
  sweepStale();
  installExitHook();
  const ns = `${PREFIX}-${process.pid}-${++sequence}-${tag}`;
  runSync('ip', ['netns', 'add', ns]);
  live.add(ns);
  t.teardown(() => {
    removeNamespaceSync(ns);
    live.delete(ns);
  });
  try {
    runSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    runSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], TRACK_RULES);
    for (const knob of ['nf_conntrack_timestamp', 'nf_conntrack_acct']) {
      runSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.netfilter.${knob}=1`]);
    }
  } catch (err) {
    removeNamespaceSync(ns);
    live.delete(ns);
    throw err;
  }
  return ns;
}
