// ct-analyze rules: which recorded flows become which rules: evidence first, then groups a reviewer can defend (docs/rules.md).
import { CtError, Exit } from '../../common/errors.js';
import { Proto } from '../../journal/event.js';
import type { Flow } from '../core/flows.js';
import { addressNumber, bitsOf, type Cidr, formatCidr, type PortRange } from '../core/prefix.js';
import { densePrefixes, unitOf } from './density.js';
import { DEFAULT_SCAN, evidenceOf, findScanSuspects, type ScanOptions } from './evidence.js';
import type {
  AddressGroup,
  Chain,
  OutputMode,
  PlannedRule,
  RulesPlan,
  ScanSuspect,
  ServiceId,
  UnansweredService,
} from './model.js';
import {
  DEFAULT_SENSITIVE,
  ECHO_REQUEST,
  ONE_WAY,
  type ServiceKey,
  serviceKey,
} from './services.js';

export interface PlanOptions {
  /** Widest prefix sources are grouped into: default 24 (IPv4) and 64 (IPv6). */
  maxPrefix4?: number;
  maxPrefix6?: number;
  /** Share of a prefix that must have been seen for it to stand for its hosts: default 0.5. */
  minDensity?: number;
  /** Services pinned to exact sources, in addition to DEFAULT_SENSITIVE. */
  sensitive?: Iterable<ServiceKey>;
  scan?: ScanOptions;
  /** Write unanswered flows to one-way UDP services (syslog …) as rules. */
  allowOneWay?: boolean;
  /** none: no output rules are planned. Default log. */
  outputChain?: OutputMode;
}

export const DEFAULT_MAX_PREFIX4 = 24;
export const DEFAULT_MAX_PREFIX6 = 64;
export const DEFAULT_MIN_DENSITY = 0.5;

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

/** Checks --min-density: a share greater than 0 and at most 1. */
export function checkMinDensity(value: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > 1) {
    throw new CtError(
      'EUSAGE',
      `--min-density must be a share greater than 0 and at most 1, got ${value}: give e.g. 0.5 (half of a prefix seen) or 1 (only fully seen prefixes)`,
      { exit: Exit.USAGE },
    );
  }
  return value;
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

const isIcmp = (proto: number) => proto === Proto.ICMP || proto === Proto.ICMPV6;

const hexOf = (b: Uint8Array | undefined) =>
  b === undefined ? '' : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** The destination address and port the filter hooks see: after DNAT, which happens before. */
function filteredDestination(flow: Flow): { address: Uint8Array; port: number } {
  const d = flow.nat?.dst;
  return d === undefined ? { address: flow.dst, port: flow.dport } : d;
}

/** The chains a flow is filtered in; `local` flows (host to itself) are in none. */
function chainsOf(flow: Flow): Chain[] {
  const dirs = flow.direction;
  if (dirs === undefined || dirs.length === 0) return ['input'];
  const out: Chain[] = [];
  for (const c of ['input', 'forward', 'output'] as const) if (dirs.includes(c)) out.push(c);
  return out;
}

/** Earliest first and latest last seen, over flows whose times are known. */
class Span {
  first: number | undefined;
  last: number | undefined;
  add(flow: Flow): void {
    this.first = this.first === undefined ? flow.firstSeen : Math.min(this.first, flow.firstSeen);
    this.last = this.last === undefined ? flow.lastSeen : Math.max(this.last, flow.lastSeen);
  }
  merge(o: { firstSeen?: number; lastSeen?: number }): void {
    if (o.firstSeen !== undefined)
      this.first = this.first === undefined ? o.firstSeen : Math.min(this.first, o.firstSeen);
    if (o.lastSeen !== undefined)
      this.last = this.last === undefined ? o.lastSeen : Math.max(this.last, o.lastSeen);
  }
  get times(): { firstSeen?: number; lastSeen?: number } {
    return {
      ...(this.first === undefined ? {} : { firstSeen: this.first }),
      ...(this.last === undefined ? {} : { lastSeen: this.last }),
    };
  }
}

/** One service of one chain, and what was seen of it. */
interface Service extends ServiceId {
  /** input/forward: sources; output: destinations (sensitive services only need them). */
  readonly peers: Set<bigint>;
  flows: number;
  halfOpen: number;
  readonly span: Span;
}

function newService(chain: Chain, flow: Flow): Service {
  const to = filteredDestination(flow);
  const icmp = isIcmp(flow.proto);
  return {
    chain,
    family: flow.family,
    proto: flow.proto,
    ...(chain === 'forward' ? { daddr: to.address } : {}),
    ...(icmp ? { icmpType: flow.icmpType } : { port: to.port }),
    peers: new Set(),
    flows: 0,
    halfOpen: 0,
    span: new Span(),
  };
}

function keyOf(chain: Chain, flow: Flow): string {
  const to = filteredDestination(flow);
  const daddr = chain === 'forward' ? hexOf(to.address) : '';
  const what = isIcmp(flow.proto) ? `t${flow.icmpType}` : String(to.port);
  return `${chain}/${flow.family}/${flow.proto}/${daddr}/${what}`;
}

const addressKey = (family: 4 | 6, a: bigint) => `${family}/${a.toString(16)}`;

const compareBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** TCP, UDP, ICMP: the flow table's order of protocols. */
const PROTO_ORDER = [Proto.TCP, Proto.UDP, Proto.ICMP, Proto.ICMPV6] as number[];

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  const [x, y] = [hexOf(a), hexOf(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Rules in a fixed order: family, protocol, destination, group, first port or ICMP type. */
function compareRules(a: PlannedRule, b: PlannedRule): number {
  const [ga, gb] = [a.group?.name ?? '', b.group?.name ?? ''];
  return (
    a.family - b.family ||
    PROTO_ORDER.indexOf(a.proto) - PROTO_ORDER.indexOf(b.proto) ||
    compareBytes(a.daddr, b.daddr) ||
    (ga < gb ? -1 : ga > gb ? 1 : 0) ||
    (a.ports[0]?.from ?? a.icmpType ?? 0) - (b.ports[0]?.from ?? b.icmpType ?? 0)
  );
}

/**
 * The named groups: one per distinct member list, named by what they hold (`clients4_1`:
 * aggregated sources, `hosts4_1`: exact sources, `peers4_1`: exact output destinations),
 * numbered in order of their first member.
 */
class Groups {
  readonly #byKey = new Map<
    string,
    {
      kind: AddressGroup['kind'];
      role: string;
      members: Cidr[];
      observed: Set<bigint>;
      family: 4 | 6;
    }
  >();

  /** The key of a member list, registering it; `observed`: addresses of a service using it. */
  use(
    role: 'clients' | 'hosts' | 'peers',
    family: 4 | 6,
    members: Cidr[],
    observed: Iterable<bigint>,
  ): string {
    // Sources that stayed single addresses are one set whether a sensitive service pinned them
    // or they were too sparse for a prefix: the same hosts, the same set.
    const exactOnly = members.every((m) => m.prefix === bitsOf(family));
    const named = role === 'peers' ? role : exactOnly ? 'hosts' : 'clients';
    const key = `${named}/${family}/${members.map(formatCidr).join(',')}`;
    let g = this.#byKey.get(key);
    if (g === undefined) {
      g = {
        kind: named === 'clients' ? 'aggregated' : 'exact',
        role: named,
        members,
        observed: new Set(),
        family,
      };
      this.#byKey.set(key, g);
    }
    for (const a of observed) g.observed.add(a);
    return key;
  }

  /** Named groups, by key. */
  named(): Map<string, AddressGroup> {
    const sorted = [...this.#byKey.entries()].sort(([, a], [, b]) => {
      if (a.role !== b.role) return a.role < b.role ? -1 : 1;
      if (a.family !== b.family) return a.family - b.family;
      const [x, y] = [a.members[0]?.network ?? 0n, b.members[0]?.network ?? 0n];
      return compareBig(x, y) || a.members.length - b.members.length;
    });
    const out = new Map<string, AddressGroup>();
    const counters = new Map<string, number>();
    for (const [key, g] of sorted) {
      const base = `${g.role}${g.family}`;
      const n = (counters.get(base) ?? 0) + 1;
      counters.set(base, n);
      out.set(key, {
        name: `${base}_${n}`,
        family: g.family,
        members: g.members,
        kind: g.kind,
        observed: g.observed.size,
      });
    }
    return out;
  }
}

/** Exact addresses as /32 (/128) prefixes, sorted. */
function exact(addresses: Iterable<bigint>, family: 4 | 6): Cidr[] {
  const bits = bitsOf(family);
  return [...new Set(addresses)]
    .sort(compareBig)
    .map((network) => ({ family, network, prefix: bits }));
}

/** The block (a dense prefix) holding an address. */
function blockOf(blocks: readonly Cidr[], family: 4 | 6, address: bigint): Cidr | undefined {
  const bits = bitsOf(family);
  for (const b of blocks) {
    const shift = BigInt(bits - b.prefix);
    if (address >> shift === b.network >> shift) return b;
  }
  return undefined;
}

/**
 * The ruleset as data (docs/rules.md, "Rules from flows"). Only `established` flows become
 * rules; scan suspects' flows never do; sources are grouped into dense prefixes shared by the
 * services a group uses, sensitive services keep their exact sources, and what lacked evidence
 * is summarised for the admin to decide.
 */
export function planRules(input: Iterable<Flow>, opts: PlanOptions = {}): RulesPlan {
  const max = {
    4: checkMaxPrefix(opts.maxPrefix4 ?? DEFAULT_MAX_PREFIX4, 4),
    6: checkMaxPrefix(opts.maxPrefix6 ?? DEFAULT_MAX_PREFIX6, 6),
  };
  const minDensity = checkMinDensity(opts.minDensity ?? DEFAULT_MIN_DENSITY);
  const sensitive = new Set([...DEFAULT_SENSITIVE, ...(opts.sensitive ?? [])]);
  const outputMode = opts.outputChain ?? 'log';
  const unitOfFamily = { 4: 32, 6: Math.max(64, max[6]) } as const;

  const flows = [...input];
  // Scanners are among the sources the host receives or forwards from: what the host sends
  // itself (a monitoring box with dead targets) is its own traffic, never a scan suspect.
  const inbound = flows.filter((f) => chainsOf(f).some((c) => c !== 'output'));
  const scanSuspects: ScanSuspect[] = findScanSuspects(inbound, opts.scan ?? DEFAULT_SCAN);
  const suspects = new Set(scanSuspects.map((s) => addressKey(s.family, addressNumber(s.address))));

  const established = new Map<string, Service>();
  const unanswered = new Map<string, Service>();
  /** Per family, the units of sources that had an established flow in input/forward; and all units seen there. */
  const answeredUnits = { 4: new Set<bigint>(), 6: new Set<bigint>() };
  const triedUnits = { 4: new Set<bigint>(), 6: new Set<bigint>() };
  const notFiltered: Flow[] = [];
  let undirected = 0;
  let forwarded = false;
  for (const flow of flows) {
    if (flow.direction === undefined || flow.direction.length === 0) undirected++;
    const chains = chainsOf(flow);
    if (chains.length === 0) {
      notFiltered.push(flow);
      continue;
    }
    const src = addressNumber(flow.src);
    const suspect = suspects.has(addressKey(flow.family, src));
    const evidence = evidenceOf(flow);
    if (evidence === 'established' && !suspect && chains.includes('forward')) forwarded = true;
    for (const chain of chains) {
      const output = chain === 'output';
      if (output && outputMode === 'none') continue;
      if (suspect && !output) continue;
      // The baseline allows echo-request from anyone (rate-limited) and every ICMP type out.
      if (isIcmp(flow.proto) && (output || flow.icmpType === ECHO_REQUEST[flow.family])) continue;
      if (!output) {
        const unit = unitOf(src, flow.family, unitOfFamily[flow.family]);
        triedUnits[flow.family].add(unit);
        if (evidence === 'established') answeredUnits[flow.family].add(unit);
      }
      const into = evidence === 'established' ? established : unanswered;
      const key = keyOf(chain, flow);
      let s = into.get(key);
      if (s === undefined) {
        s = newService(chain, flow);
        into.set(key, s);
      }
      s.peers.add(output ? addressNumber(filteredDestination(flow).address) : src);
      s.flows++;
      if (evidence === 'half-open') s.halfOpen++;
      s.span.add(flow);
    }
  }

  // --allow-one-way: unanswered one-way services join the established ones, exact sources.
  const oneWayKeys = new Set<string>();
  if (opts.allowOneWay === true) {
    for (const [key, s] of unanswered) {
      if (s.chain === 'output' || s.port === undefined || !ONE_WAY.has(serviceKey(s.proto, s.port)))
        continue;
      const into = established.get(key);
      if (into === undefined) {
        established.set(key, s);
        oneWayKeys.add(key);
      } else {
        for (const p of s.peers) into.peers.add(p);
        into.flows += s.flows;
        into.span.merge(s.span.times);
      }
      unanswered.delete(key);
    }
  }

  // Client blocks: the dense prefixes over every answered source of input and forward, never
  // over a source none of whose flows was answered (a failed one) nor a scan suspect.
  const blocks = { 4: [] as Cidr[], 6: [] as Cidr[] };
  for (const family of [4, 6] as const) {
    const failed = [...triedUnits[family]].filter((u) => !answeredUnits[family].has(u));
    const avoid = [
      ...failed,
      ...scanSuspects.filter((s) => s.family === family).map((s) => addressNumber(s.address)),
    ];
    blocks[family] = densePrefixes(
      answeredUnits[family],
      family,
      { widest: max[family], unit: unitOfFamily[family], minDensity },
      avoid,
    );
  }

  const groups = new Groups();
  const isSensitive = (s: Service) =>
    s.port !== undefined && sensitive.has(serviceKey(s.proto, s.port));
  interface Draft {
    service: Service;
    groupKey?: string;
    sensitive: boolean;
    oneWay: boolean;
  }
  const drafts: Draft[] = [];
  for (const [key, s] of established) {
    const pinned = isSensitive(s);
    const oneWay = oneWayKeys.has(key);
    let groupKey: string | undefined;
    if (s.chain === 'output') {
      if (pinned) groupKey = groups.use('peers', s.family, exact(s.peers, s.family), s.peers);
    } else if (pinned || oneWay) {
      groupKey = groups.use('hosts', s.family, exact(s.peers, s.family), s.peers);
    } else {
      const mine = new Map<string, Cidr>();
      for (const p of s.peers) {
        const b = blockOf(blocks[s.family], s.family, p);
        if (b !== undefined) mine.set(formatCidr(b), b);
      }
      const members = [...mine.values()].sort((a, b) => compareBig(a.network, b.network));
      groupKey = groups.use('clients', s.family, members, s.peers);
    }
    drafts.push({
      service: s,
      ...(groupKey === undefined ? {} : { groupKey }),
      sensitive: pinned,
      oneWay,
    });
  }

  // Services of one chain, protocol, destination and group share a rule, their ports merged.
  const named = groups.named();
  const merged = new Map<
    string,
    { draft: Draft; ports: number[]; flows: number; span: Span; sensitive: boolean }
  >();
  for (const d of drafts) {
    const s = d.service;
    const key = `${s.chain}/${s.family}/${s.proto}/${hexOf(s.daddr)}/${d.groupKey ?? '*'}/${s.icmpType ?? ''}/${d.oneWay}`;
    const m = merged.get(key) ?? {
      draft: d,
      ports: [],
      flows: 0,
      span: new Span(),
      sensitive: false,
    };
    if (s.port !== undefined) m.ports.push(s.port);
    if (d.sensitive) m.sensitive = true;
    m.flows += s.flows;
    m.span.merge(s.span.times);
    merged.set(key, m);
  }
  const rules: Record<Chain, PlannedRule[]> = { input: [], forward: [], output: [] };
  for (const { draft, ports, flows: n, span, sensitive: pinned } of merged.values()) {
    const s = draft.service;
    const group = draft.groupKey === undefined ? undefined : named.get(draft.groupKey);
    rules[s.chain].push({
      chain: s.chain,
      family: s.family,
      proto: s.proto,
      ...(group === undefined ? {} : { group }),
      ...(s.daddr === undefined ? {} : { daddr: s.daddr }),
      ports: portRanges(ports),
      ...(s.icmpType === undefined ? {} : { icmpType: s.icmpType }),
      sensitive: pinned,
      oneWay: draft.oneWay,
      flows: n,
      ...span.times,
    });
  }

  const summary: UnansweredService[] = [];
  for (const [key, s] of unanswered) {
    const oneWay = s.port === undefined ? undefined : ONE_WAY.get(serviceKey(s.proto, s.port));
    summary.push({
      chain: s.chain,
      family: s.family,
      proto: s.proto,
      ...(s.daddr === undefined ? {} : { daddr: s.daddr }),
      ...(s.port === undefined ? {} : { port: s.port }),
      ...(s.icmpType === undefined ? {} : { icmpType: s.icmpType }),
      sources: exact(s.peers, s.family),
      sourceCount: s.peers.size,
      flows: s.flows,
      halfOpen: s.halfOpen,
      ...(oneWay === undefined ? {} : { oneWay }),
      alsoAllowed: established.has(key),
    });
  }
  // One-way services first (they need a decision), then by flows, then a fixed order.
  summary.sort(
    (a, b) =>
      Number(b.oneWay !== undefined) - Number(a.oneWay !== undefined) ||
      b.flows - a.flows ||
      a.family - b.family ||
      a.proto - b.proto ||
      (a.port ?? a.icmpType ?? 0) - (b.port ?? b.icmpType ?? 0) ||
      compareBytes(a.daddr, b.daddr),
  );

  return {
    groups: [...named.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    input: { rules: rules.input.sort(compareRules) },
    forward: { rules: rules.forward.sort(compareRules) },
    output: { rules: rules.output.sort(compareRules) },
    unanswered: summary,
    scanSuspects,
    notFiltered,
    undirected,
    flows: flows.length,
    forwarded,
  };
}
