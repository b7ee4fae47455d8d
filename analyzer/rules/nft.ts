// The rules plan as an nftables ruleset: one `table inet conntracker` that `nft -f` (re)loads.
import { formatAddress } from '../core/address.js';
import { formatCidr, type PortRange } from '../core/prefix.js';
import { type EmitOptions, headerLines, protoName, ruleComment, summaryLines } from './emit.js';
import type { AddressGroup, Chain, PlannedRule, RulesPlan, UnansweredService } from './model.js';
import { ECHO_REQUEST } from './services.js';

export const NFT_TABLE = 'conntracker';

/** `{ a, b }` for several items, the item alone for one. */
function setOf(items: readonly string[]): string {
  return items.length === 1 ? (items[0] as string) : `{ ${items.join(', ')} }`;
}

function portText(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

const ipOf = (family: 4 | 6) => (family === 4 ? 'ip' : 'ip6');

/** What a rule matches after its addresses: ports, an ICMP type, or the protocol alone. */
function serviceMatch(rule: PlannedRule): string {
  if (rule.icmpType !== undefined) {
    const icmp = rule.family === 4 ? 'icmp' : 'icmpv6';
    const type = rule.icmpType === ECHO_REQUEST[rule.family] ? 'echo-request' : rule.icmpType;
    return `${icmp} type ${type}`;
  }
  if (rule.proto === 6 || rule.proto === 17) {
    return `${protoName(rule.proto)} dport ${setOf(rule.ports.map(portText))}`;
  }
  return `meta l4proto ${rule.proto}`;
}

/**
 * The match and verdict of one accept rule: `ip saddr @clients4_1 tcp dport { 80, 443 } counter
 * accept comment "…"`. Output rules match the destinations' group, or no address; `family`
 * false leaves out the family of such a rule (it stands for both, see outputRules).
 */
export function nftRule(rule: PlannedRule, family = true): string {
  const ip = ipOf(rule.family);
  const parts: string[] = [];
  const side = rule.chain === 'output' ? 'daddr' : 'saddr';
  if (rule.group !== undefined) parts.push(`${ip} ${side} @${rule.group.name}`);
  if (rule.daddr !== undefined) parts.push(`${ip} daddr ${formatAddress(rule.daddr)}`);
  // Without an address the family is otherwise unsaid for TCP, UDP and other protocols (an inet
  // table sees both); ICMP and ICMPv6 say it themselves.
  if (parts.length === 0 && rule.icmpType === undefined && family) {
    parts.push(`meta nfproto ${rule.family === 4 ? 'ipv4' : 'ipv6'}`);
  }
  parts.push(serviceMatch(rule));
  parts.push(`counter accept comment "${ruleComment(rule)}"`);
  return parts.join(' ');
}

function minOf(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function maxOf(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/**
 * A chain's rule lines. An address-free rule (an output service to anyone) recorded in both
 * families with the same ports is written once for both, its flows summed.
 */
function ruleLines(rules: readonly PlannedRule[]): string[] {
  const free = (r: PlannedRule) =>
    r.group === undefined && r.daddr === undefined && r.icmpType === undefined;
  const key = (r: PlannedRule) => `${r.proto}/${r.oneWay}/${r.ports.map(portText).join(',')}`;
  const byKey = new Map<string, PlannedRule[]>();
  for (const r of rules) {
    if (!free(r)) continue;
    const same = byKey.get(key(r)) ?? [];
    same.push(r);
    byKey.set(key(r), same);
  }
  const lines: string[] = [];
  for (const r of rules) {
    const same = free(r) ? (byKey.get(key(r)) ?? []) : [];
    const both = same.length === 2 && same[0]?.family !== same[1]?.family;
    if (!both) {
      lines.push(nftRule(r));
    } else if (same[0] === r) {
      const other = same[1] as PlannedRule;
      const first = minOf(r.firstSeen, other.firstSeen);
      const last = maxOf(r.lastSeen, other.lastSeen);
      const merged: PlannedRule = {
        ...r,
        flows: r.flows + other.flows,
        ...(first === undefined ? {} : { firstSeen: first }),
        ...(last === undefined ? {} : { lastSeen: last }),
      };
      lines.push(nftRule(merged, false));
    }
  }
  return lines;
}

/** What a set's comment says it holds: prefixes and addresses, and how many hosts were seen in them. */
function groupText(group: AddressGroup): string {
  const n = (count: number, one: string, many: string) => (count === 1 ? one : `${count} ${many}`);
  const hosts = `${group.observed} observed ${group.observed === 1 ? 'host' : 'hosts'}`;
  const full = group.family === 4 ? 32 : 128;
  const addresses = group.members.filter((m) => m.prefix === full).length;
  const prefixes = group.members.length - addresses;
  if (group.kind === 'exact')
    return `the exact ${addresses === 1 ? 'address' : 'addresses'} of ${hosts}`;
  if (prefixes === 0) return `${n(addresses, 'the address', 'addresses')} of ${hosts}`;
  const parts = [n(prefixes, 'one prefix', 'prefixes')];
  if (addresses > 0) parts.push(n(addresses, 'one address', 'addresses'));
  return `${parts.join(' and ')} holding ${hosts}`;
}

/** A set's elements: on the set's line when few, else four to a line. */
function* setLines(group: AddressGroup): Generator<string> {
  const type = group.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  const members = group.members.map(formatCidr);
  const what = groupText(group);
  yield `  # ${group.name}: ${what}`;
  yield `  set ${group.name} {`;
  yield `    type ${type}; flags interval;`;
  if (members.length <= 4) {
    yield `    elements = { ${members.join(', ')} }`;
  } else {
    yield '    elements = {';
    for (let i = 0; i < members.length; i += 4) {
      const last = i + 4 >= members.length;
      yield `      ${members.slice(i, i + 4).join(', ')}${last ? '' : ','}`;
    }
    yield '    }';
  }
  yield '  }';
}

const VMAP = 'ct state vmap { established : accept, related : accept, invalid : drop }';
const DHCP_CLIENT = [
  'udp sport 68 udp dport 67 counter accept comment "DHCP client"',
  'udp sport 546 udp dport 547 counter accept comment "DHCPv6 client"',
];
const ECHO_LIMIT = 'limit rate 10/second burst 20 packets';
const LOG_LIMIT = 'limit rate 10/minute burst 5 packets';

/**
 * The rules every input and forward chain starts with, in this order (RFC 4890 for ICMPv6).
 * Errors about tracked connections are `related` already; these let in the ones conntrack cannot
 * relate (an error about a flow it no longer holds, path MTU after a table flush).
 */
function baseline(chain: Chain, opts: EmitOptions): string[] {
  if (chain === 'output') {
    return [
      'oif lo counter accept comment "loopback"',
      VMAP,
      // What the host itself sends: errors, echo, and ND/MLD, which IPv6 needs to work at all.
      'meta l4proto { icmp, ipv6-icmp } counter accept comment "ICMP and ICMPv6 this host sends"',
      // Only where the rest is refused: a lease renewal may come later than any recording;
      // in log mode it is logged, like every service the recording did not see.
      ...(opts.outputChain === 'enforce' ? DHCP_CLIENT : []),
    ];
  }
  const lines = chain === 'input' ? ['iif lo counter accept comment "loopback"'] : [];
  lines.push(
    VMAP,
    'icmp type { destination-unreachable, time-exceeded, parameter-problem } counter accept comment "ICMP errors"',
    'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (RFC 4890)"',
    `icmp type echo-request ${ECHO_LIMIT} counter accept comment "ping, rate-limited"`,
    `icmpv6 type echo-request ${ECHO_LIMIT} counter accept comment "ping, rate-limited"`,
  );
  if (chain === 'input') {
    // Neighbour discovery and MLD are untracked (no ct state lets them in); a hop limit of 255
    // proves an ND packet was not routed here (RFC 4861), MLD comes from link-local sources.
    lines.push(
      'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter accept comment "IPv6 neighbour discovery (RFC 4890)"',
      'ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } counter accept comment "MLD (RFC 4890)"',
    );
  }
  return lines;
}

const REFUSE: Record<EmitOptions['policy'], string> = {
  reject: 'counter reject with icmpx type admin-prohibited',
  drop: 'counter drop',
};

/** The log and final verdict of a chain: what no rule accepted. */
function tail(chain: Chain, opts: EmitOptions): string[] {
  if (chain === 'output' && opts.outputChain === 'log') {
    return [`${LOG_LIMIT} log prefix "conntracker output: "`, 'counter accept'];
  }
  const prefix = `conntracker ${chain === 'output' ? 'output ' : ''}${opts.policy}: `;
  return [...(opts.log ? [`${LOG_LIMIT} log prefix "${prefix}"`] : []), REFUSE[opts.policy]];
}

function* chainLines(chain: Chain, plan: RulesPlan, opts: EmitOptions): Generator<string> {
  const policy = chain === 'output' && opts.outputChain === 'log' ? 'accept' : 'drop';
  yield `  chain ${chain} {`;
  yield `    type filter hook ${chain} priority filter; policy ${policy};`;
  if (chain === 'forward' && plan.forward.rules.length === 0 && plan.forwarded !== true) {
    // A host that forwarded nothing while recorded gets no baseline to forward with.
    yield '    # this host forwarded no established flow while recorded: the policy drops all';
    yield '  }';
    return;
  }
  for (const line of baseline(chain, opts)) yield `    ${line}`;
  for (const line of ruleLines(plan[chain].rules)) yield `    ${line}`;
  for (const line of tail(chain, opts)) yield `    ${line}`;
  yield '  }';
}

/** The rule a one-way service's loud line suggests: its sources, its port. */
function allowOneWay(u: UnansweredService): string {
  const ip = ipOf(u.family);
  const daddr = u.daddr === undefined ? '' : ` ${ip} daddr ${formatAddress(u.daddr)}`;
  return `${ip} saddr ${setOf(u.sources.map(formatCidr))}${daddr} ${protoName(u.proto)} dport ${u.port} accept`;
}

/** The whole ruleset, one line per item (with newlines). */
export function* nftRuleset(plan: RulesPlan, opts: EmitOptions): Generator<string> {
  yield '#!/usr/sbin/nft -f\n';
  for (const line of headerLines(plan, opts)) yield `${line}\n`;
  for (const line of summaryLines(plan, allowOneWay)) yield `${line}\n`;
  // Declaring the table before deleting it makes the first load work as well as a reload.
  yield `table inet ${NFT_TABLE}\n`;
  yield `delete table inet ${NFT_TABLE}\n`;
  yield `table inet ${NFT_TABLE} {\n`;
  for (const group of plan.groups) {
    for (const line of setLines(group)) yield `${line}\n`;
    yield '\n';
  }
  const chains: Chain[] =
    opts.outputChain === 'none' ? ['input', 'forward'] : ['input', 'forward', 'output'];
  for (const [i, chain] of chains.entries()) {
    if (i > 0) yield '\n';
    for (const line of chainLines(chain, plan, opts)) yield `${line}\n`;
  }
  yield '}\n';
}
