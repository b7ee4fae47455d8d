// The rules plan as iptables-restore (IPv4) and ip6tables-restore (IPv6) input, one per family.
import { formatAddress } from '../core/address.js';
import { formatCidr, type PortRange } from '../core/prefix.js';
import { flowText } from '../report/text.js';
import {
  CHAINS,
  type Chain,
  type EmitOptions,
  headerLines,
  type PlannedRule,
  type RulesPlan,
  ruleComment,
} from './plan.js';

/** The line that separates the IPv4 part from the IPv6 part when both go to one stream. */
export const IP6_SEPARATOR = '# ip6tables-restore:';

/** multiport takes at most 15 ports, a range counting as two. */
const MULTIPORT_SLOTS = 15;

const CHAIN_NAME: Record<Chain, string> = { input: 'INPUT', forward: 'FORWARD' };

function portText(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}:${r.to}`;
}

/** Port ranges cut into groups multiport accepts. */
function portGroups(ports: readonly PortRange[]): PortRange[][] {
  const groups: PortRange[][] = [];
  let group: PortRange[] = [];
  let slots = 0;
  for (const p of ports) {
    const need = p.from === p.to ? 1 : 2;
    if (slots + need > MULTIPORT_SLOTS) {
      groups.push(group);
      group = [];
      slots = 0;
    }
    group.push(p);
    slots += need;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** The `-A` lines of one planned rule (several when its ports exceed one multiport match). */
export function iptablesRules(rule: PlannedRule): string[] {
  const head = [`-A ${CHAIN_NAME[rule.chain]}`, `-s ${rule.sources.map(formatCidr).join(',')}`];
  if (rule.daddr !== undefined) head.push(`-d ${formatAddress(rule.daddr)}`);
  const tail = `-m comment --comment "${ruleComment(rule)}" -j ACCEPT`;
  if (rule.icmpType !== undefined) {
    const icmp = rule.family === 4 ? '-p icmp --icmp-type' : '-p ipv6-icmp --icmpv6-type';
    return [[...head, `${icmp} ${rule.icmpType}`, tail].join(' ')];
  }
  const proto = rule.proto === 6 ? 'tcp' : 'udp';
  return portGroups(rule.ports).map((group) => {
    const only = group.length === 1 ? group[0] : undefined;
    const ports =
      only !== undefined
        ? `--dport ${portText(only)}`
        : `-m multiport --dports ${group.map(portText).join(',')}`;
    return [...head, `-p ${proto}`, ports, tail].join(' ');
  });
}

// Neighbour discovery is untracked by conntrack: no ctstate rule lets it in (see rules-nft.ts).
const NEIGHBOUR_DISCOVERY = [
  'router-solicitation',
  'router-advertisement',
  'neighbour-solicitation',
  'neighbour-advertisement',
];

/** One family's restore input: the filter table, INPUT and FORWARD dropping, OUTPUT open. */
export function* iptablesRuleset(
  plan: RulesPlan,
  family: 4 | 6,
  opts: EmitOptions,
  lost = 0,
): Generator<string> {
  yield `# ${family === 4 ? 'iptables' : 'ip6tables'}-restore input\n`;
  for (const line of headerLines(plan, lost)) yield `${line}\n`;
  yield '*filter\n';
  yield ':INPUT DROP [0:0]\n';
  yield ':FORWARD DROP [0:0]\n';
  yield ':OUTPUT ACCEPT [0:0]\n';
  for (const chain of CHAINS) {
    const name = CHAIN_NAME[chain];
    const c = plan[chain];
    if (chain === 'input') yield `-A ${name} -i lo -j ACCEPT\n`;
    yield `-A ${name} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n`;
    yield `-A ${name} -m conntrack --ctstate INVALID -j DROP\n`;
    if (chain === 'input' && family === 6) {
      for (const type of NEIGHBOUR_DISCOVERY) {
        yield `-A ${name} -p ipv6-icmp --icmpv6-type ${type} -j ACCEPT\n`;
      }
    }
    for (const rule of c.rules) {
      if (rule.family !== family) continue;
      for (const line of iptablesRules(rule)) yield `${line}\n`;
    }
    for (const f of c.unconfirmed) {
      if (f.family === family) yield `# unconfirmed: ${flowText(f)}\n`;
    }
    if (opts.log) {
      yield `-A ${name} -j LOG --log-prefix "conntracker ${opts.policy}: "\n`;
    }
    if (opts.policy === 'reject') {
      const with_ = family === 4 ? 'icmp-admin-prohibited' : 'icmp6-adm-prohibited';
      yield `-A ${name} -j REJECT --reject-with ${with_}\n`;
    }
  }
  yield 'COMMIT\n';
}

/** Both families in one stream: IPv4, then the separator line, then IPv6. */
export function* iptablesBoth(plan: RulesPlan, opts: EmitOptions, lost = 0): Generator<string> {
  yield* iptablesRuleset(plan, 4, opts, lost);
  yield `${IP6_SEPARATOR}\n`;
  yield* iptablesRuleset(plan, 6, opts, lost);
}
