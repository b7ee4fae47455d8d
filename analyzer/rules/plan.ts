// ct-analyze rules: which recorded flows become which firewall rules (the plan both emitters write).
import { CtError, Exit } from '../../common/errors.js';
import type { Flow } from '../core/flows.js';
import { addressNumber, bitsOf, type Cidr, formatCidr, type PortRange } from '../core/prefix.js';
import { flowText } from '../report/text.js';

/** The base chains a ruleset filters; output is never generated (what the host sends passes). */
export type Chain = 'input' | 'forward';
export const CHAINS: readonly Chain[] = ['input', 'forward'];

/** One accept rule: its match, and the flows it stands for. */
export interface PlannedRule {
  readonly chain: Chain;
  readonly family: 4 | 6;
  /** IP protocol number: 6, 17, 1 (ICMP) or 58 (ICMPv6). */
  readonly proto: number;
  /** forward only: the destination as the filter sees it (after any DNAT). */
  readonly daddr?: Uint8Array;
  /** TCP/UDP destination ports, sorted and disjoint; empty for ICMP. */
  readonly ports: readonly PortRange[];
  /** ICMP/ICMPv6 type; undefined for TCP/UDP. */
  readonly icmpType?: number;
  /** Allowed sources, sorted and disjoint, each no wider than the family's max prefix. */
  readonly sources: readonly Cidr[];
  readonly flows: number;
  /** Earliest first and latest last event of its flows (µs since the epoch), when known. */
  readonly firstSeen?: number;
  readonly lastSeen?: number;
}

export interface ChainPlan {
  readonly rules: readonly PlannedRule[];
  /** Flows never answered: listed for the admin to decide, never allowed. */
  readonly unconfirmed: readonly Flow[];
}

export interface RulesPlan {
  readonly input: ChainPlan;
  readonly forward: ChainPlan;
  /** Flows the host itself sent (output, local): no chain filters them. */
  readonly notFiltered: readonly Flow[];
  /** Flows without a known direction (journals without addresses): planned as input. */
  readonly undirected: number;
  /** Every flow planned, all chains together. */
  readonly flows: number;
}

export interface RulesOptions {
  /** Widest prefix sources are aggregated into: default 24 (IPv4) and 64 (IPv6). */
  maxPrefix4?: number;
  maxPrefix6?: number;
}

export const DEFAULT_MAX_PREFIX4 = 24;
export const DEFAULT_MAX_PREFIX6 = 64;

/** The chain's ICMP type that stays one service per family: echo-request. */
export const ECHO_REQUEST: Readonly<Record<4 | 6, number>> = { 4: 8, 6: 128 };

/**
 * Sources merged into prefixes: the addresses that share their first `max` bits become the
 * narrowest prefix covering them all (never wider than `max`); a lone address stays itself.
 * A prefix never covers an address of `avoid` (sources seen only unconfirmed for the same
 * service): the group is split at its first differing bit until none does.
 */
export function aggregate(
  addresses: Iterable<bigint>,
  family: 4 | 6,
  max: number,
  avoid: ReadonlySet<bigint> = new Set(),
): Cidr[] {
  const bits = bitsOf(family);
  const shift = BigInt(bits - max);
  const groups = new Map<bigint, bigint[]>();
  for (const a of addresses) {
    const key = a >> shift;
    const g = groups.get(key);
    if (g === undefined) groups.set(key, [a]);
    else g.push(a);
  }
  const out: Cidr[] = [];
  const cover = (sorted: bigint[]) => {
    const lo = sorted[0] as bigint;
    const hi = sorted[sorted.length - 1] as bigint;
    // The common leading bits of the lowest and highest address are common to all between.
    const differ = (lo ^ hi).toString(2).length - (lo === hi ? 1 : 0);
    const host = (1n << BigInt(differ)) - 1n;
    const network = lo & ~host;
    const covered = [...avoid].some((a) => a >= network && a <= (network | host));
    if (!covered || lo === hi) {
      out.push({ family, network, prefix: bits - differ });
      return;
    }
    const half = network | (1n << BigInt(differ - 1));
    cover(sorted.filter((a) => a < half));
    cover(sorted.filter((a) => a >= half));
  };
  for (const g of groups.values()) cover(g.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  return out.sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
}

/** Sorted ports as ranges of consecutive ones. */
export function portRanges(ports: Iterable<number>): PortRange[] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const out: PortRange[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.to + 1 === p) out[out.length - 1] = { from: last.from, to: p };
    else out.push({ from: p, to: p });
  }
  return out;
}

/** The chains a flow is filtered in; empty when only the host sent it (output, local). */
function chainsOf(flow: Flow): Chain[] {
  const dirs = flow.direction;
  if (dirs === undefined || dirs.length === 0) return ['input'];
  return CHAINS.filter((c) => dirs.includes(c));
}

/** The destination address and port the filter hooks see: after DNAT, which happens before. */
function filteredDestination(flow: Flow): { address: Uint8Array; port: number } {
  const d = flow.nat?.dst;
  return d === undefined ? { address: flow.dst, port: flow.dport } : d;
}

interface Service {
  chain: Chain;
  family: 4 | 6;
  proto: number;
  daddr?: Uint8Array;
  port: number;
  icmpType?: number;
  sources: Set<bigint>;
  flows: number;
  firstSeen?: number;
  lastSeen?: number;
}

function seen(flow: Flow): { first?: number; last?: number } {
  // The times arrive with the flow table's firstSeen/lastSeen; older tables lack them.
  const f = flow as { firstSeen?: number; lastSeen?: number };
  return {
    ...(f.firstSeen === undefined ? {} : { first: f.firstSeen }),
    ...(f.lastSeen === undefined ? {} : { last: f.lastSeen }),
  };
}

function isIcmp(proto: number): boolean {
  return proto === 1 || proto === 58;
}

const hexOf = (b: Uint8Array | undefined) =>
  b === undefined ? '' : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  return hexOf(a) < hexOf(b) ? -1 : hexOf(a) > hexOf(b) ? 1 : 0;
}

/** TCP, UDP, ICMP: the flow table's order of protocols. */
const PROTO_ORDER = [6, 17, 1, 58];

/** Rules in a fixed order: family, protocol, destination, first port or ICMP type, sources. */
function compareRules(a: PlannedRule, b: PlannedRule): number {
  return (
    a.family - b.family ||
    PROTO_ORDER.indexOf(a.proto) - PROTO_ORDER.indexOf(b.proto) ||
    compareBytes(a.daddr, b.daddr) ||
    (a.ports[0]?.from ?? a.icmpType ?? 0) - (b.ports[0]?.from ?? b.icmpType ?? 0) ||
    compareSources(a.sources, b.sources)
  );
}

function compareSources(a: readonly Cidr[], b: readonly Cidr[]): number {
  const x = a.map(formatCidr).join(',');
  const y = b.map(formatCidr).join(',');
  return x < y ? -1 : x > y ? 1 : 0;
}

function minOf(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function maxOf(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** Checks a --max-prefix value: an integer from 0 to the family's address length. */
export function checkMaxPrefix(value: number, family: 4 | 6): number {
  if (!Number.isInteger(value) || value < 0 || value > bitsOf(family)) {
    throw new CtError(
      'EUSAGE',
      `--max-prefix${family} must be a whole number from 0 to ${bitsOf(family)}, got ${value}: give a prefix length such as ${family === 4 ? 24 : 64}`,
      { exit: Exit.USAGE },
    );
  }
  return value;
}

/**
 * The ruleset as data: every confirmed input/forward flow is allowed by exactly the rules of
 * its service (protocol, destination port or ICMP type, and for forward the destination),
 * sources aggregated, ports of services with the same sources merged.
 */
export function planRules(flows: Iterable<Flow>, opts: RulesOptions = {}): RulesPlan {
  const max = {
    4: checkMaxPrefix(opts.maxPrefix4 ?? DEFAULT_MAX_PREFIX4, 4),
    6: checkMaxPrefix(opts.maxPrefix6 ?? DEFAULT_MAX_PREFIX6, 6),
  };
  const services = new Map<string, Service>();
  /** Per service key, the sources of its unconfirmed flows: no prefix may cover them. */
  const unconfirmedSources = new Map<string, Set<bigint>>();
  const unconfirmed: Record<Chain, Flow[]> = { input: [], forward: [] };
  const notFiltered: Flow[] = [];
  let undirected = 0;
  let count = 0;
  for (const flow of flows) {
    count++;
    if (flow.direction === undefined || flow.direction.length === 0) undirected++;
    const chains = chainsOf(flow);
    if (chains.length === 0) notFiltered.push(flow);
    for (const chain of chains) {
      const to = filteredDestination(flow);
      const icmp = isIcmp(flow.proto);
      const daddr = chain === 'forward' ? to.address : undefined;
      const port = icmp ? 0 : to.port;
      const key = `${chain}/${flow.family}/${flow.proto}/${hexOf(daddr)}/${icmp ? `t${flow.icmpType}` : port}`;
      if (!flow.confirmed) {
        unconfirmed[chain].push(flow);
        const seenOnly = unconfirmedSources.get(key) ?? new Set<bigint>();
        seenOnly.add(addressNumber(flow.src));
        unconfirmedSources.set(key, seenOnly);
        continue;
      }
      let s = services.get(key);
      if (s === undefined) {
        s = {
          chain,
          family: flow.family,
          proto: flow.proto,
          ...(daddr === undefined ? {} : { daddr }),
          port,
          ...(icmp ? { icmpType: flow.icmpType } : {}),
          sources: new Set(),
          flows: 0,
        };
        services.set(key, s);
      }
      s.sources.add(addressNumber(flow.src));
      s.flows++;
      const t = seen(flow);
      const first = minOf(s.firstSeen, t.first);
      const last = maxOf(s.lastSeen, t.last);
      if (first !== undefined) s.firstSeen = first;
      if (last !== undefined) s.lastSeen = last;
    }
  }
  // Services of one chain, protocol and destination with the same source set share a rule.
  const merged = new Map<string, { rule: PlannedRule; ports: number[] }>();
  for (const [serviceKey, s] of services) {
    // A source confirmed for the service is allowed anyway; only the others are avoided.
    const avoid = new Set(
      [...(unconfirmedSources.get(serviceKey) ?? [])].filter((a) => !s.sources.has(a)),
    );
    const sources = aggregate(s.sources, s.family, max[s.family], avoid);
    const icmp = s.icmpType !== undefined;
    const key = `${s.chain}/${s.family}/${s.proto}/${hexOf(s.daddr)}/${icmp ? `t${s.icmpType}` : ''}/${sources.map(formatCidr).join(',')}`;
    const m = merged.get(key);
    if (m === undefined) {
      const rule: PlannedRule = {
        chain: s.chain,
        family: s.family,
        proto: s.proto,
        ...(s.daddr === undefined ? {} : { daddr: s.daddr }),
        ports: [],
        ...(icmp ? { icmpType: s.icmpType } : {}),
        sources,
        flows: s.flows,
        ...(s.firstSeen === undefined ? {} : { firstSeen: s.firstSeen }),
        ...(s.lastSeen === undefined ? {} : { lastSeen: s.lastSeen }),
      };
      merged.set(key, { rule, ports: icmp ? [] : [s.port] });
    } else {
      const r = m.rule;
      const first = minOf(r.firstSeen, s.firstSeen);
      const last = maxOf(r.lastSeen, s.lastSeen);
      m.rule = {
        ...r,
        flows: r.flows + s.flows,
        ...(first === undefined ? {} : { firstSeen: first }),
        ...(last === undefined ? {} : { lastSeen: last }),
      };
      if (!icmp) m.ports.push(s.port);
    }
  }
  const rules: Record<Chain, PlannedRule[]> = { input: [], forward: [] };
  for (const { rule, ports } of merged.values()) {
    rules[rule.chain].push({ ...rule, ports: portRanges(ports) });
  }
  return {
    input: { rules: rules.input.sort(compareRules), unconfirmed: unconfirmed.input },
    forward: { rules: rules.forward.sort(compareRules), unconfirmed: unconfirmed.forward },
    notFiltered,
    undirected,
    flows: count,
  };
}

/** `N flows, first 2026-11-27T07:39:43Z, last …Z`: numbers and times only, never journal text. */
export function ruleComment(rule: PlannedRule): string {
  const n = `${rule.flows} flow${rule.flows === 1 ? '' : 's'}`;
  if (rule.firstSeen === undefined || rule.lastSeen === undefined) return n;
  return `${n}, first ${isoSecond(rule.firstSeen)}, last ${isoSecond(rule.lastSeen)}`;
}

function isoSecond(us: number): string {
  return `${new Date(Math.floor(us / 1000)).toISOString().slice(0, 19)}Z`;
}

/** What goes where: the plan's policy choices, shared by both emitters. */
export interface EmitOptions {
  /** reject (default): refuse with ICMP admin-prohibited; drop: say nothing. */
  policy: 'drop' | 'reject';
  /** Log what the policy refuses, before it does. */
  log: boolean;
}

/** The comment lines every ruleset opens with (after the format's own first line). */
export function headerLines(plan: RulesPlan, lost: number): string[] {
  const rules = plan.input.rules.length + plan.forward.rules.length;
  const unconfirmed = plan.input.unconfirmed.length + plan.forward.unconfirmed.length;
  const lines = [
    `# generated by ct-analyze rules from ${plan.flows} recorded flows: ${rules} accept rules, ${unconfirmed} unconfirmed flows left for you to decide`,
    '# no output chain: what this host sends itself is not filtered',
  ];
  if (plan.undirected > 0) {
    lines.push(
      `# WARNING: the direction of ${plan.undirected} flows is unknown (a journal without the host's addresses): they are planned as input; record with ct-record 0.2.0 or later to tell forward from input`,
    );
  }
  if (lost > 0) {
    lines.push(
      `# WARNING: ${lost} events were lost while recording: flows may be missing from these rules`,
    );
  }
  for (const f of plan.notFiltered)
    lines.push(`# not filtered (sent by this host): ${flowText(f)}`);
  return lines;
}
