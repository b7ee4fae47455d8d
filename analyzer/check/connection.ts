// ct-analyze check: a recorded flow's connection (first packet, reply, later packet) through every hook it crosses.

import { Status } from '../../journal/event.js';
import type { Collapse } from '../core/collapse.js';
import { type Direction, isLoopback } from '../core/direction.js';
import type { AddressType, HostView } from '../core/host-network.js';
import type { PortRange } from '../core/prefix.js';
import type { Flow } from '../core/tables.js';
import type {
  Block,
  Chain,
  Fate,
  Hook,
  Marks,
  Packet,
  PacketRole,
  Rule,
  Ruleset,
} from './model.js';
import {
  dedupeMarks,
  hookChains,
  hookSlot,
  type PacketSource,
  type Undecidable,
  Walker,
} from './walk.js';

export interface EvaluateOptions {
  collapse: Collapse;
  /** The recording host's network, when recorded. */
  host?: HostView;
  /** Visit every rule of every chain, without the per-chain index (for tests comparing both). */
  plain?: boolean;
}

/** The range of real source ports a collapsed one stands for (docs/rules.md, collapsing). */
export function realSourcePorts(collapse: Collapse, sport: number): PortRange {
  switch (collapse.kind) {
    case 'none':
      return { from: sport, to: sport };
    case '1024':
      return sport >= 1024 ? { from: 1024, to: 0xffff } : { from: sport, to: sport };
    case 'range':
      return sport === collapse.lo
        ? { from: collapse.lo, to: collapse.hi }
        : { from: sport, to: sport };
    case 'ephemeral':
      // Each journal collapses to its own recorded range's first port: any port from here up.
      return { from: sport, to: 0xffff };
  }
}

/**
 * The hooks each packet of a connection crosses, by the flow's direction on the host: the
 * original (and later) packet's, then the reply's. Local traffic leaves and comes back by lo.
 */
const INPUT = { original: ['prerouting', 'input'], reply: ['output', 'postrouting'] } as const;
const OUTPUT = { original: ['output', 'postrouting'], reply: ['prerouting', 'input'] } as const;
const FORWARD = {
  original: ['prerouting', 'forward', 'postrouting'],
  reply: ['prerouting', 'forward', 'postrouting'],
} as const;
const LOCAL = {
  original: ['output', 'postrouting', 'prerouting', 'input'],
  reply: ['output', 'postrouting', 'prerouting', 'input'],
} as const;

/** By a switch, not a keyed load by name (see hookSlot). */
function hooksOf(dir: Direction, reply: boolean): readonly Hook[] {
  const of =
    dir === 'input' ? INPUT : dir === 'output' ? OUTPUT : dir === 'forward' ? FORWARD : LOCAL;
  return reply ? of.reply : of.original;
}

const { SEEN_REPLY, ASSURED, CONFIRMED, SRC_NAT, DST_NAT } = Status;

const TCP = 6;
const SYN = 0x02;
const ACK = 0x10;

/** An ICMP query's answer type (conntrack tracks only these pairs). */
const ICMP_REPLY: Record<number, number> = { 8: 0, 13: 14, 15: 16, 17: 18 };
const ICMPV6_REPLY: Record<number, number> = { 128: 129, 139: 140 };

/** What an address alone says: loopback is local, multicast and limited broadcast are ranges. */
function fixedType(a: Uint8Array): AddressType | undefined {
  if (isLoopback(a)) return 'local';
  if (a.length === 4) {
    if (((a[0] as number) & 0xf0) === 0xe0) return 'multicast';
    if (((a[0] as number) & (a[1] as number) & (a[2] as number) & (a[3] as number)) === 0xff)
      return 'broadcast';
    return undefined;
  }
  return a[0] === 0xff ? 'multicast' : undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const isDnatHook = (h: Hook) => h === 'prerouting' || h === 'output';
const isSnatHook = (h: Hook) => h === 'postrouting' || h === 'input';

/**
 * What conntrack shows a packet of `role` with `status` bits set: one object per pair, shared
 * by every packet (the status bits the walk knows are few; a connection's packets are many).
 */
function ctOf(role: PacketRole, status: number): Packet['ct'] {
  const key = roleSlot(role) * 0x10000 + status;
  let ct = status >>> 16 === 0 ? CT_SEEN.get(key) : undefined;
  if (ct === undefined) {
    const first = role === 'first';
    ct = {
      state: first ? 'new' : 'established',
      direction: role === 'reply' ? 'reply' : 'original',
      status,
      // ASSURED is clear before any reply, then unknown (it waits for more of the conversation).
      statusKnown: SEEN_REPLY | CONFIRMED | SRC_NAT | DST_NAT | (first ? ASSURED : 0),
    };
    if (status >>> 16 === 0) CT_SEEN.set(key, ct);
  }
  return ct;
}
const CT_SEEN = new Map<number, Packet['ct']>();

/** A packet role's slot (see hookSlot); a Connection caches its packets by role × hook × NAT points. */
function roleSlot(role: PacketRole): number {
  return role === 'first' ? 0 : role === 'reply' ? 1 : 2;
}

/** The fixed facts of one direction of a flow, from which each hook's packet is made. */
class Connection implements PacketSource {
  readonly #flow: Flow;
  readonly #host: HostView | undefined;
  readonly #local: boolean;
  readonly #sport: PortRange;
  readonly #icmp: boolean;
  /** The recording holds the host's addresses: the flow's direction was decided from them. */
  readonly #addressesKnown: boolean;
  /** Addresses the direction says are the host's own (input: the destination after DNAT…). */
  readonly #knownLocal: Uint8Array[] = [];
  /** The few addresses a connection's packets hold (recorded and translated), with their type. */
  readonly #typed: Uint8Array[] = [];
  readonly #types: AddressType[] = [];
  /**
   * The packets made so far and their keys (role × hook × NAT points), searched in turn: a
   * connection makes five to eight, and a table indexed by key cost a large array per flow.
   */
  readonly #packetKeys: number[] = [];
  readonly #packets: Packet[] = [];
  /**
   * What every packet is made of, once per connection (a packet per hook and role is many):
   * the server (after DNAT) and client (after SNAT) and their ports, the recorded ports.
   */
  readonly #server: Uint8Array;
  readonly #serverPort: PortRange;
  readonly #client: Uint8Array;
  readonly #clientPort: PortRange;
  readonly #dport: PortRange;
  /** The devices from and to the client and the server: undefined until looked up. */
  #devices: [string | undefined, string | undefined] | undefined;
  /**
   * The packet and hook being walked, and whether the hook's NAT points passed before it:
   * set by the evaluation before each hook, read by packetAt (no closure per hook).
   */
  role: PacketRole = 'first';
  hook: Hook = 'prerouting';
  dnatBefore = false;
  snatBefore = false;

  constructor(flow: Flow, dir: Direction, opts: EvaluateOptions) {
    this.#flow = flow;
    this.#host = opts.host;
    this.#local = dir === 'local';
    this.#addressesKnown = flow.direction !== undefined && flow.direction.length > 0;
    this.#icmp = flow.proto === 1 || flow.proto === 58;
    this.#sport = this.#icmp ? { from: 0, to: 0 } : realSourcePorts(opts.collapse, flow.sport);
    if (dir === 'output' || dir === 'local') this.#knownLocal.push(flow.src);
    if (dir === 'input' || dir === 'local') {
      this.#knownLocal.push(flow.nat?.dst?.address ?? flow.dst);
    }
    const nd = flow.nat?.dst;
    const ns = flow.nat?.src;
    const port = (p: number): PortRange => (this.#icmp ? { from: 0, to: 0 } : { from: p, to: p });
    this.#server = nd?.address ?? flow.dst;
    this.#serverPort = port(nd?.port ?? flow.dport);
    // Masquerade may pick another source port per connection: the first one seen stands for all.
    this.#client = ns?.address ?? flow.src;
    this.#clientPort = ns === undefined ? this.#sport : port(ns.port);
    this.#dport = port(flow.dport);
  }

  #type(a: Uint8Array): AddressType {
    const typed = this.#typed;
    for (let i = 0; i < typed.length; i++) if (typed[i] === a) return this.#types[i] as AddressType;
    let t = fixedType(a) ?? this.#host?.addressType(a) ?? 'unknown';
    if (t === 'unknown' && this.#knownLocal.some((l) => sameBytes(l, a))) t = 'local';
    typed.push(a);
    this.#types.push(t);
    return t;
  }

  /**
   * Whether a packet from (iif) or to (oif) `a` is known not to use lo even where its device is
   * not known: lo carries only the host's own traffic, and `a` is not the host's.
   */
  #notLo(a: Uint8Array): boolean {
    return (
      this.#addressesKnown &&
      !this.#local &&
      !isLoopback(a) &&
      !this.#knownLocal.some((l) => sameBytes(l, a)) &&
      this.#type(a) !== 'local'
    );
  }

  /**
   * The device a packet from (iif) or to (oif) `a` uses: lo for loopback addresses and local
   * traffic, else the route to `a` (routing is assumed symmetric: a packet from `a` comes in
   * by the interface the host would send to `a` by); undefined when no host view decides.
   */
  #device(a: Uint8Array): string | undefined {
    if (this.#local || isLoopback(a)) return 'lo';
    return this.#host?.routeDevice(a);
  }

  /** The packet being walked as chain `c` of the current hook sees it. */
  packetAt(c: Chain): Packet {
    const h = this.hook;
    const prio = c.base?.priority ?? 0;
    const nat = c.base?.type === 'nat';
    // A nat chain sees the packet as its own manipulation finds it; others after -100 / 100.
    const dnat = this.dnatBefore || (isDnatHook(h) && !nat && prio >= -100);
    const snat = this.snatBefore || (isSnatHook(h) && !nat && prio > 100);
    return this.packet(this.role, h, dnat, snat);
  }

  /**
   * The packet of `role` as a chain on `hook` sees it. `dnat`: the destination manipulation
   * (prerouting / output at priority -100) is behind it; `snat`: the source one (postrouting /
   * input at priority 100). An original packet goes from the recorded tuple to the translated
   * one; a reply starts from the translated tuple's inverse (source the real server,
   * destination the SNAT address) and gets the recorded one back at the same points.
   */
  packet(role: PacketRole, hook: Hook, dnatIn: boolean, snatIn: boolean): Packet {
    const f = this.#flow;
    const nd = f.nat?.dst;
    const ns = f.nat?.src;
    const reply = role === 'reply';
    // A NAT point changes the packet only where the flow had that NAT (a reply's destination
    // is the SNAT's, its source the DNAT's): flags that change nothing share one packet.
    const dnat = dnatIn && (reply ? ns : nd) !== undefined;
    const snat = snatIn && (reply ? nd : ns) !== undefined;
    const key = roleSlot(role) * 20 + hookSlot(hook) * 4 + (dnat ? 2 : 0) + (snat ? 1 : 0);
    const keys = this.#packetKeys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return this.#packets[i] as Packet;
    const server = this.#server;
    const saddr = reply ? (snat ? f.dst : server) : snat ? this.#client : f.src;
    const sport = reply
      ? snat
        ? this.#dport
        : this.#serverPort
      : snat
        ? this.#clientPort
        : this.#sport;
    const daddr = reply ? (dnat ? f.src : this.#client) : dnat ? server : f.dst;
    const dport = reply
      ? dnat
        ? this.#sport
        : this.#clientPort
      : dnat
        ? this.#serverPort
        : this.#dport;
    // Devices are the routed ones: from where the packet came on the wire, to where it goes.
    // A route lookup per address, not per packet: a connection's packets share them.
    if (this.#devices === undefined) {
      this.#devices = [this.#device(f.src), this.#device(server)];
    }
    const fromClient = this.#devices[0];
    const toServer = this.#devices[1];
    const iif = reply ? toServer : fromClient;
    const oif = reply ? fromClient : toServer;
    const first = role === 'first';
    let status = reply || role === 'later' ? SEEN_REPLY | CONFIRMED : 0;
    if (first ? nd !== undefined && dnat : nd !== undefined) status |= DST_NAT;
    if (first ? ns !== undefined && snat : ns !== undefined) status |= SRC_NAT;
    const hasIif = hook === 'prerouting' || hook === 'input' || hook === 'forward';
    const hasOif = hook === 'output' || hook === 'postrouting' || hook === 'forward';
    const answer = f.family === 4 ? ICMP_REPLY : ICMPV6_REPLY;
    // One object literal with every field, always in this order (optional ones undefined, not
    // left out): every match reads packets of this one shape, so its field loads stay monomorphic.
    const p: Packet = {
      hook,
      family: f.family,
      proto: f.proto,
      saddr,
      daddr,
      sport,
      dport,
      icmpType: this.#icmp ? (reply ? (answer[f.icmpType] ?? f.icmpType) : f.icmpType) : undefined,
      icmpCode: this.#icmp ? (reply ? 0 : f.icmpCode) : undefined,
      tcpFlags: f.proto === TCP ? (first ? SYN : reply ? SYN | ACK : ACK) : undefined,
      ct: ctOf(role, status),
      iifname: hasIif ? iif : null,
      oifname: hasOif ? oif : null,
      iifNotLo:
        hasIif && iif === undefined && this.#notLo(reply ? server : f.src) ? true : undefined,
      oifNotLo:
        hasOif && oif === undefined && this.#notLo(reply ? f.src : server) ? true : undefined,
      saddrType: this.#type(saddr),
      daddrType: this.#type(daddr),
    };
    keys.push(key);
    this.#packets.push(p);
    return p;
  }
}

/** The first undecidable match of a walk, with the packet and hook it was met on. */
interface FirstUndecidable extends Undecidable {
  readonly packet: PacketRole;
  readonly hook: Hook;
  readonly seq: number;
}

/** A refusal met on one packet and hook. */
interface Refusal {
  readonly packet: PacketRole;
  readonly hook: Hook;
  readonly by: Block;
}

/** What the ruleset does with the flow's connection crossing its host in direction `dir`. */
function evaluateDirection(
  ruleset: Ruleset,
  flow: Flow,
  dir: Direction,
  opts: EvaluateOptions,
  hit: Set<Rule>,
): Fate {
  const conn = new Connection(flow, dir, opts);
  let undecidable: FirstUndecidable | undefined;
  const walker = new Walker({
    ruleset,
    hit,
    plain: opts.plain === true,
    undecided: (chain, rule, match, seq) => {
      if (undecidable === undefined || seq < undecidable.seq) {
        undecidable = { chain, rule, match, packet: conn.role, hook: conn.hook, seq };
      }
    },
  });
  // How the branches ended: refusals by where, the rest counted (most flows meet neither).
  const blocks: Refusal[] = [];
  let unknowns = 0;
  // A new connection's ct mark is 0; conntrack keeps it from packet to packet.
  let branches: readonly Marks[] = [{ meta: 0, ct: 0 }];
  // Without a reply the later packets are new too, with the same fields as the first: one judges all.
  const roles = flow.confirmed ? ALL_ROLES : FIRST_ONLY;
  for (let ri = 0; ri < roles.length; ri++) {
    const r = roles[ri] as PacketRole;
    conn.role = r;
    const hooks = hooksOf(dir, r === 'reply');
    // The packet mark starts at 0 on every packet; the ct mark carries over.
    branches =
      branches.length === 1
        ? [{ meta: 0, ct: (branches[0] as Marks).ct }]
        : dedupeMarks(branches.map((m) => ({ meta: 0, ct: m.ct })));
    let dnatDone = false;
    let snatDone = false;
    for (let hi = 0; hi < hooks.length; hi++) {
      const h = hooks[hi] as Hook;
      // Conntrack consults nat chains for a connection's first packet only.
      const chains = hookChains(ruleset, h, flow.family, r === 'first');
      conn.hook = h;
      conn.dnatBefore = dnatDone;
      conn.snatBefore = snatDone;
      if (isDnatHook(h)) dnatDone = true;
      if (isSnatHook(h)) snatDone = true;
      if (chains.length === 0) continue;
      const result = walker.walkHook(chains, conn, branches);
      const refused = result.blocked;
      for (let b = 0; b < refused.length; b++) {
        blocks.push({ packet: r, hook: h, by: refused[b] as Block });
      }
      unknowns += result.unknown.length;
      branches = result.passed;
      if (branches.length === 0) break;
    }
    if (branches.length === 0) break;
  }
  return fateOf(blocks, unknowns, branches.length > 0, undecidable);
}

const ALL_ROLES: readonly PacketRole[] = ['first', 'reply', 'later'];
const FIRST_ONLY: readonly PacketRole[] = ['first'];

/**
 * Every branch's outcome as one fate: blocked when all are refused on the first packet, breaks
 * when all pass it and are refused later, accepted when all pass; else undetermined at the
 * first undecidable match met.
 */
function fateOf(
  blocks: readonly Refusal[],
  unknowns: number,
  passed: boolean,
  first: FirstUndecidable | undefined,
): Fate {
  const firstBlock = blocks[0];
  if (blocks.length === 0 && unknowns === 0) return { kind: 'accepted' };
  if (firstBlock !== undefined && unknowns === 0 && !passed) {
    if (blocks.every((b) => b.packet === 'first')) {
      return { kind: 'blocked', hook: firstBlock.hook, by: firstBlock.by };
    }
    const later = blocks.filter((b) => b.packet !== 'first');
    const b = later[0];
    if (b !== undefined && later.length === blocks.length && b.packet !== 'first') {
      return { kind: 'breaks', packet: b.packet, hook: b.hook, by: b.by };
    }
  }
  if (first === undefined) {
    // Branches only come from undecidable matches, so one was met.
    throw new Error('check: branches disagree without an undecidable match');
  }
  return {
    kind: 'undetermined',
    packet: first.packet,
    hook: first.hook,
    chain: first.chain,
    rule: first.rule,
    match: first.match,
    ...(firstBlock === undefined ? {} : { by: firstBlock.by }),
  };
}

const SEVERITY: Record<Fate['kind'], number> = {
  blocked: 0,
  breaks: 1,
  undetermined: 2,
  accepted: 3,
};

/**
 * What the ruleset does with the flow's connection in every direction it was recorded
 * crossing a host (none recorded: input, as a server sees it). Each direction must work, so
 * the worst decided answer wins: blocked, then breaks, then undetermined.
 */
export function evaluateFlow(
  ruleset: Ruleset,
  flow: Flow,
  opts: EvaluateOptions,
  hit: Set<Rule>,
): Fate {
  const dirs: readonly Direction[] =
    flow.direction === undefined || flow.direction.length === 0 ? ['input'] : flow.direction;
  let worst: Fate | undefined;
  for (let d = 0; d < dirs.length; d++) {
    const dir = dirs[d] as Direction;
    const fate = evaluateDirection(ruleset, flow, dir, opts, hit);
    if (worst === undefined || SEVERITY[fate.kind] < SEVERITY[worst.kind]) worst = fate;
  }
  return worst ?? { kind: 'accepted' };
}
