// The rules plan as an nftables ruleset: one `table inet conntracker` that `nft -f` (re)loads.
import { formatAddress } from '../core/address.js';
import { formatCidr, type PortRange } from '../core/prefix.js';
import { flowText } from '../report/text.js';
import {
  type Chain,
  type ChainPlan,
  ECHO_REQUEST,
  type EmitOptions,
  headerLines,
  type PlannedRule,
  type RulesPlan,
  ruleComment,
} from './plan.js';

export const NFT_TABLE = 'conntracker';

/** `{ a, b }` for several items, the item alone for one. */
function setOf(items: readonly string[]): string {
  return items.length === 1 ? (items[0] as string) : `{ ${items.join(', ')} }`;
}

function portText(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

/** The match and verdict of one accept rule, e.g. `ip saddr 10.0.0.0/28 tcp dport { 22, 80 } accept …`. */
export function nftRule(rule: PlannedRule): string {
  const ip = rule.family === 4 ? 'ip' : 'ip6';
  const parts = [`${ip} saddr ${setOf(rule.sources.map(formatCidr))}`];
  if (rule.daddr !== undefined) parts.push(`${ip} daddr ${formatAddress(rule.daddr)}`);
  if (rule.icmpType !== undefined) {
    const icmp = rule.family === 4 ? 'icmp' : 'icmpv6';
    const type = rule.icmpType === ECHO_REQUEST[rule.family] ? 'echo-request' : rule.icmpType;
    parts.push(`${icmp} type ${type}`);
  } else {
    const l4 = rule.proto === 6 ? 'tcp' : 'udp';
    parts.push(`${l4} dport ${setOf(rule.ports.map(portText))}`);
  }
  parts.push(`accept comment "${ruleComment(rule)}"`);
  return parts.join(' ');
}

// Neighbour discovery is not tracked (conntrack marks it untracked), so no ct state rule lets
// it in; without it IPv6 stops working on the link as soon as the neighbour entries expire.
const NEIGHBOUR_DISCOVERY =
  'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept comment "IPv6 neighbour discovery"';

function* chainLines(name: Chain, plan: ChainPlan, opts: EmitOptions): Generator<string> {
  yield `  chain ${name} {`;
  yield `    type filter hook ${name} priority filter; policy drop;`;
  if (name === 'input') yield '    iif lo accept';
  yield '    ct state established,related accept';
  yield '    ct state invalid drop';
  if (name === 'input') yield `    ${NEIGHBOUR_DISCOVERY}`;
  for (const rule of plan.rules) yield `    ${nftRule(rule)}`;
  for (const f of plan.unconfirmed) yield `    # unconfirmed: ${flowText(f)}`;
  if (opts.policy === 'reject') {
    const log = opts.log ? 'log prefix "conntracker reject: " ' : '';
    yield `    ${log}reject with icmpx type admin-prohibited`;
  } else if (opts.log) {
    yield '    log prefix "conntracker drop: "';
  }
  yield '  }';
}

/** The whole ruleset, one line per item (with newlines). */
export function* nftRuleset(plan: RulesPlan, opts: EmitOptions, lost = 0): Generator<string> {
  yield '#!/usr/sbin/nft -f\n';
  for (const line of headerLines(plan, lost)) yield `${line}\n`;
  // Declaring the table before deleting it makes the first load work as well as a reload.
  yield `table inet ${NFT_TABLE}\n`;
  yield `delete table inet ${NFT_TABLE}\n`;
  yield `table inet ${NFT_TABLE} {\n`;
  for (const line of chainLines('input', plan.input, opts)) yield `${line}\n`;
  yield '\n';
  for (const line of chainLines('forward', plan.forward, opts)) yield `${line}\n`;
  yield '}\n';
}
