// ct-analyze check: the evaluated ruleset (compiled from nft's JSON) and the packet a hook shows it; the contract between compiling, walking and reporting.
import type { AddressType, HostView } from '../core/host-network.js';
import type { PortRange } from '../core/prefix.js';

export type { AddressType, HostView };

/** Every netfilter hook an IP packet can cross, in the order a routed packet meets them. */
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export const HOOKS: readonly Hook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting'];

/** nft's table families; arp, bridge and netdev chains never see a routed IP packet's hooks. */
export type TableFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export type CtState = 'new' | 'established' | 'related' | 'invalid' | 'untracked';

/**
 * What the recording allows a match to know: `unknown` when the answer depends on what it
 * does not hold (a packet mark, the packet's length, a collapsed source port…).
 */
export type Tri = boolean | 'unknown';

/** One packet of a connection as one hook sees it (addresses as NAT has left them there). */
export interface Packet {
  readonly hook: Hook;
  readonly family: 4 | 6;
  readonly proto: number;
  /** Network byte order, 4 or 16 bytes. */
  readonly saddr: Uint8Array;
  readonly daddr: Uint8Array;
  /** A range where the flow table collapsed the port (the reply's dport), else one port. */
  readonly sport: PortRange;
  readonly dport: PortRange;
  /** ICMP / ICMPv6 type and code (a reply's type is the answer's: echo-reply to echo-request). */
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10…); undefined: not TCP or not known. */
  readonly tcpFlags?: number;
  readonly ct: {
    readonly state: CtState;
    readonly direction: 'original' | 'reply';
    /** Status bits known to be set (IPS_*: SEEN_REPLY 0x2, ASSURED 0x4, SRC_NAT 0x10, DST_NAT 0x20…). */
    readonly status: number;
    /** Status bits whose value is known (set or clear); the others are unknown. */
    readonly statusKnown: number;
  };
  /** Interface names; null where the hook has none (no iif on output), undefined where not known. */
  readonly iifname: string | null | undefined;
  readonly oifname: string | null | undefined;
  /**
   * Set where the name is not known but the device is known not to be `lo` (a packet from or to
   * an address the host does not hold, on a host whose addresses are recorded).
   */
  readonly iifNotLo?: boolean;
  readonly oifNotLo?: boolean;
  /** What the host's addresses make of each address: fib daddr type, addrtype, pkttype. */
  readonly saddrType: AddressType;
  readonly daddrType: AddressType;
}

/**
 * What a walk carries from rule to rule and from packet to packet of one connection: marks
 * set by `meta mark set` / `ct mark set` (undefined: not known).
 */
export interface Marks {
  meta: number | undefined;
  ct: number | undefined;
}

/** The packet fields a chain can be indexed on: rules that test them for equality. */
export type IndexField = 'saddr' | 'daddr' | 'dport' | 'proto';

/**
 * The packet's value of `field` as index keys hold it (an address as lowercase hex of its
 * bytes, a port or protocol in decimal); undefined when the packet has no single value (a
 * collapsed port range), so the chain is searched rule by rule.
 */
export function packetKey(p: Packet, field: IndexField): string | undefined {
  switch (field) {
    case 'saddr':
    case 'daddr':
      return Buffer.from(p[field]).toString('hex');
    case 'dport':
      return p.dport.from === p.dport.to ? String(p.dport.from) : undefined;
    case 'proto':
      return String(p.proto);
  }
}

/** A verdict a rule (or a verdict map) gives; `continue` goes on with the next rule. */
export type Verdict =
  | { readonly kind: 'accept' | 'drop' | 'reject' | 'return' | 'continue' | 'queue' }
  | { readonly kind: 'jump' | 'goto'; readonly target: string };

/** Why a rule's answer is not known for a packet: the match as nft prints it. */
export interface Undecided {
  readonly unknown: string;
}

/**
 * One compiled statement of a rule, in order. A match answers whether the packet goes on in
 * this rule; an effect changes marks (and never stops the rule); a verdict ends the rule (a
 * verdict map may give `Undecided` when its key is not known, or `undefined` when no element
 * matches: the rule goes on).
 */
export type Step =
  | {
      readonly kind: 'match';
      readonly text: string;
      test(p: Packet, marks: Marks): Tri;
      /** Set when the match is exactly "the packet's `field` is one of `keys`" (see packetKey). */
      readonly index?: { readonly field: IndexField; readonly keys: readonly string[] };
    }
  | { readonly kind: 'effect'; readonly text: string; apply(p: Packet, marks: Marks): void }
  | {
      readonly kind: 'verdict';
      readonly text: string;
      verdict(p: Packet, marks: Marks): Verdict | Undecided | undefined;
    };

export interface Rule {
  /** Position in its chain, from 1. */
  readonly index: number;
  /** nft's handle, when the JSON has one. */
  readonly handle?: number;
  /** The rule as nft would print it (rendered from the JSON), one line. */
  readonly text: string;
  readonly steps: readonly Step[];
  /** The rule has a limit or quota statement, assumed not exceeded. */
  readonly limited: boolean;
  /**
   * Why the rule only matches packets no recording holds (`ct state invalid`, ICMP errors,
   * neighbour discovery): no flow hitting it does not make it dead. Absent for other rules.
   */
  readonly unrecorded?: string | undefined;
  /** The rule matches every packet reaching it (only counter, limit, log and a verdict). */
  readonly unconditional?: boolean;
}

export interface BaseChain {
  readonly type: 'filter' | 'nat' | 'route';
  readonly hook: Hook | 'ingress' | 'egress';
  readonly priority: number;
  readonly policy: 'accept' | 'drop';
  /** netdev ingress/egress: the devices it is attached to. */
  readonly devices?: readonly string[];
}

export interface Chain {
  readonly family: TableFamily;
  readonly table: string;
  readonly name: string;
  readonly base?: BaseChain;
  readonly rules: readonly Rule[];
}

export interface Ruleset {
  /** Every chain, in the JSON's order. */
  readonly chains: readonly Chain[];
  /** Finds a chain of the same table (jump / goto targets, anonymous chains included). */
  chain(family: TableFamily, table: string, name: string): Chain | undefined;
}

/** `inet filter input` */
export function chainName(c: Pick<Chain, 'family' | 'table' | 'name'>): string {
  return `${c.family} ${c.table} ${c.name}`;
}

/** The packets of a connection that are judged, in the order they happen. */
export type PacketRole = 'first' | 'reply' | 'later';

/** Where a packet was refused: a rule, or (rule undefined) the chain's policy. */
export interface Block {
  readonly verdict: 'drop' | 'reject';
  readonly chain: Chain;
  readonly rule?: Rule;
}

/**
 * What the ruleset does with a recorded flow's connection:
 * - accepted: every judged packet passes every hook it crosses;
 * - blocked: the first packet (ct state new) is refused;
 * - breaks: the first packet passes, a reply or later packet is refused ("breaks after the
 *   first packet");
 * - undetermined: some packet's fate depends on a match the recording cannot decide; `by` is a
 *   refusal some answers meet, if any.
 */
export type Fate =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'blocked'; readonly hook: Hook; readonly by: Block }
  | {
      readonly kind: 'breaks';
      readonly packet: 'reply' | 'later';
      readonly hook: Hook;
      readonly by: Block;
    }
  | {
      readonly kind: 'undetermined';
      readonly packet: PacketRole;
      readonly hook: Hook;
      readonly chain: Chain;
      readonly rule: Rule;
      /** The undecidable match (or verdict map key), as nft prints it. */
      readonly match: string;
      readonly by?: Block;
    };
