// ct-analyze rules: the plan as data, the contract between the evidence, the planner and the two emitters.
import type { Flow } from '../core/flows.js';
import type { Cidr, PortRange } from '../core/prefix.js';

/** The base chains a generated ruleset fills. */
export type Chain = 'input' | 'forward' | 'output';
export const CHAINS: readonly Chain[] = ['input', 'forward', 'output'];

/**
 * How strongly a flow shows a service is used, from the conntrack status bits its events carried:
 * - `established`: TCP reached ASSURED (the handshake's last ACK was seen); UDP and ICMP got a
 *   reply. Only these flows become accept rules.
 * - `half-open`: TCP got a reply but never reached ASSURED: a SYN answered by SYN-ACK, then
 *   reset by the client (a half-open scan of an open port). A closed port's RST leaves none: the
 *   kernel deletes such an entry before marking it replied, so that flow is `unanswered`.
 * - `unanswered`: no reply seen.
 */
export type Evidence = 'established' | 'half-open' | 'unanswered';

/** --output-chain: what the generated output chain does with what the host sends. */
export type OutputMode = 'none' | 'log' | 'enforce';

/**
 * A named set of addresses in one family: the sources (input, forward) or destinations (output)
 * a group of rules shares. nft writes it as `set NAME { … }` and rules match `@NAME`; iptables
 * writes its members inline.
 */
export interface AddressGroup {
  /** nft set name: `clients4_1`, `admins6_2`, `peers4_1` … unique in the ruleset. */
  readonly name: string;
  readonly family: 4 | 6;
  /** Sorted, disjoint. */
  readonly members: readonly Cidr[];
  /**
   * `aggregated`: members are prefixes dense enough (or IPv6 /64s) holding the observed hosts;
   * `exact`: the observed addresses themselves (sensitive services pin them).
   */
  readonly kind: 'aggregated' | 'exact';
  /** How many distinct observed addresses the members stand for. */
  readonly observed: number;
}

/** One accept rule: its match, and the flows it stands for. */
export interface PlannedRule {
  readonly chain: Chain;
  readonly family: 4 | 6;
  /** IP protocol number: 6, 17, 1 (ICMP) or 58 (ICMPv6). */
  readonly proto: number;
  /**
   * input, forward: the sources' group; output: the destinations' group. Undefined: any address
   * (output rules of services that are not sensitive; --allow-one-way rules never are).
   */
  readonly group?: AddressGroup;
  /** forward only: the destination as the filter sees it (after any DNAT). */
  readonly daddr?: Uint8Array;
  /** TCP/UDP destination ports, sorted and disjoint; empty for ICMP. */
  readonly ports: readonly PortRange[];
  /** ICMP/ICMPv6 type; undefined for TCP/UDP. */
  readonly icmpType?: number;
  /**
   * One of its ports is on the sensitive list: its group is `exact` (services whose sources
   * stayed single addresses anyway may share it, and the rule).
   */
  readonly sensitive: boolean;
  /** Written from unanswered one-way UDP flows because of --allow-one-way. */
  readonly oneWay: boolean;
  readonly flows: number;
  /** Earliest first and latest last event of its flows (µs since the epoch), when known. */
  readonly firstSeen?: number;
  readonly lastSeen?: number;
}

/** A source that touched many ports or hosts in a short window: reported, never allowed. */
export interface ScanSuspect {
  readonly family: 4 | 6;
  readonly address: Uint8Array;
  /** The most distinct destination ports it touched on one destination within the window. */
  readonly ports: number;
  /** The most distinct destinations it touched on one port within the window. */
  readonly hosts: number;
  /** Its flows in all, and how many of them were `established`. */
  readonly flows: number;
  readonly established: number;
  readonly firstSeen?: number;
  readonly lastSeen?: number;
}

/** A service of one chain: protocol, destination port or ICMP type, for forward the destination. */
export interface ServiceId {
  readonly chain: Chain;
  readonly family: 4 | 6;
  readonly proto: number;
  /** forward only: the destination as the filter sees it (after any DNAT). */
  readonly daddr?: Uint8Array;
  /** TCP/UDP destination port. */
  readonly port?: number;
  readonly icmpType?: number;
}

/** Flows not allowed for want of evidence, summarised by service. */
export interface UnansweredService extends ServiceId {
  /** Their sources' exact addresses (scan suspects left out). */
  readonly sources: readonly Cidr[];
  readonly sourceCount: number;
  readonly flows: number;
  /** How many of its flows were `half-open` (answered, never established). */
  readonly halfOpen: number;
  /** A one-way UDP service by design (syslog, SNMP trap, NetFlow …): its name. */
  readonly oneWay?: string;
  /** Some source of the same service has `established` flows, so it is already allowed. */
  readonly alsoAllowed: boolean;
}

export interface ChainPlan {
  readonly rules: readonly PlannedRule[];
}

export interface RulesPlan {
  /** Every named group the rules use, in name order. */
  readonly groups: readonly AddressGroup[];
  readonly input: ChainPlan;
  readonly forward: ChainPlan;
  /** Rules from the flows this host sent; empty with --output-chain none. */
  readonly output: ChainPlan;
  /** Ranked: most flows first. */
  readonly unanswered: readonly UnansweredService[];
  readonly scanSuspects: readonly ScanSuspect[];
  /** Flows between two of the host's own addresses (direction `local`): listed, never filtered. */
  readonly notFiltered: readonly Flow[];
  /** Flows without a known direction (journals without addresses): planned as input. */
  readonly undirected: number;
  /** Every flow planned, all chains together. */
  readonly flows: number;
  /**
   * Some established flow crossed the forward chain (echo included, which needs no rule): the
   * chain gets its baseline even without rules. Absent: as false.
   */
  readonly forwarded?: boolean;
}
