// The rules plan as iptables-restore (IPv4) and ip6tables-restore (IPv6) input: our own chains, loaded with --noflush.
import { formatAddress } from '../core/address.js';
import { formatCidr, type PortRange } from '../core/prefix.js';
import { type EmitOptions, headerLines, protoName, ruleComment, summaryLines } from './emit.js';
import type { Chain, PlannedRule, RulesPlan, UnansweredService } from './model.js';
import { ECHO_REQUEST } from './services.js';

/** The line that separates the IPv4 part from the IPv6 part when both go to one stream. */
export const IP6_SEPARATOR = '# ip6tables-restore:';

/** multiport takes at most 15 ports, a range counting as two. */
const MULTIPORT_SLOTS = 15;

/** Our chains, and the built-in chain each is hooked into. */
export const CT_CHAIN: Readonly<Record<Chain, string>> = {
  input: 'CT-INPUT',
  forward: 'CT-FORWARD',
  output: 'CT-OUTPUT',
};
const BUILT_IN: Readonly<Record<Chain, string>> = {
  input: 'INPUT',
  forward: 'FORWARD',
  output: 'OUTPUT',
};

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

const icmpProto = (family: 4 | 6) => (family === 4 ? 'icmp' : 'ipv6-icmp');
const icmpTypeOpt = (family: 4 | 6) => (family === 4 ? '--icmp-type' : '--icmpv6-type');
const commentOf = (text: string) => `-m comment --comment "${text}"`;

/**
 * The `-A` lines of one planned rule (several when its ports exceed one multiport match). A
 * group's members go inline (`-s a,b/28`): iptables-restore makes one rule per member.
 */
export function iptablesRules(rule: PlannedRule): string[] {
  const head = [`-A ${CT_CHAIN[rule.chain]}`];
  if (rule.group !== undefined) {
    const side = rule.chain === 'output' ? '-d' : '-s';
    head.push(`${side} ${rule.group.members.map(formatCidr).join(',')}`);
  }
  if (rule.daddr !== undefined) head.push(`-d ${formatAddress(rule.daddr)}`);
  const tail = `${commentOf(ruleComment(rule))} -j ACCEPT`;
  if (rule.icmpType !== undefined) {
    const type = rule.icmpType === ECHO_REQUEST[rule.family] ? 'echo-request' : rule.icmpType;
    const icmp = `-p ${icmpProto(rule.family)} ${icmpTypeOpt(rule.family)} ${type}`;
    return [[...head, icmp, tail].join(' ')];
  }
  if (rule.proto !== 6 && rule.proto !== 17) {
    return [[...head, `-p ${rule.proto}`, tail].join(' ')];
  }
  const proto = protoName(rule.proto);
  return portGroups(rule.ports).map((group) => {
    const only = group.length === 1 ? group[0] : undefined;
    const ports =
      only !== undefined
        ? `--dport ${portText(only)}`
        : `-m multiport --dports ${group.map(portText).join(',')}`;
    return [...head, `-p ${proto}`, ports, tail].join(' ');
  });
}

const ECHO_LIMIT = '-m limit --limit 10/second --limit-burst 20';
const LOG_LIMIT = '-m limit --limit 10/minute --limit-burst 5';

/** MLD (RFC 4890): listener query, report, done, MLDv2 report; ip6tables has no names for them. */
const MLD_TYPES = [130, 131, 132, 143];
const ND_TYPES = [
  'router-solicitation',
  'router-advertisement',
  'neighbour-solicitation',
  'neighbour-advertisement',
];

/** A chain's first rules, the same as the nft writer's (see nft.ts), in the same order. */
function baseline(chain: Chain, family: 4 | 6, opts: EmitOptions): string[] {
  const c = `-A ${CT_CHAIN[chain]}`;
  const icmp = `-p ${icmpProto(family)}`;
  const type = icmpTypeOpt(family);
  const ctstate = [
    `${c} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
    `${c} -m conntrack --ctstate INVALID -j DROP`,
  ];
  if (chain === 'output') {
    const dhcp = family === 4 ? ['68', '67', 'DHCP client'] : ['546', '547', 'DHCPv6 client'];
    return [
      `${c} -o lo ${commentOf('loopback')} -j ACCEPT`,
      ...ctstate,
      `${c} ${icmp} ${commentOf(`${family === 4 ? 'ICMP' : 'ICMPv6'} this host sends`)} -j ACCEPT`,
      // Only where the rest is refused (see nft.ts).
      ...(opts.outputChain === 'enforce'
        ? [
            `${c} -p udp --sport ${dhcp[0]} --dport ${dhcp[1]} ${commentOf(dhcp[2] as string)} -j ACCEPT`,
          ]
        : []),
    ];
  }
  const lines = chain === 'input' ? [`${c} -i lo ${commentOf('loopback')} -j ACCEPT`] : [];
  lines.push(...ctstate);
  const errors =
    family === 4
      ? ['destination-unreachable', 'time-exceeded', 'parameter-problem']
      : ['destination-unreachable', 'packet-too-big', 'time-exceeded', 'parameter-problem'];
  const errorsComment = commentOf(family === 4 ? 'ICMP errors' : 'ICMPv6 errors (RFC 4890)');
  for (const t of errors) lines.push(`${c} ${icmp} ${type} ${t} ${errorsComment} -j ACCEPT`);
  lines.push(
    `${c} ${icmp} ${type} echo-request ${ECHO_LIMIT} ${commentOf('ping, rate-limited')} -j ACCEPT`,
  );
  if (chain === 'input' && family === 6) {
    const nd = commentOf('IPv6 neighbour discovery (RFC 4890)');
    for (const t of ND_TYPES)
      lines.push(`${c} ${icmp} ${type} ${t} -m hl --hl-eq 255 ${nd} -j ACCEPT`);
    for (const t of MLD_TYPES) {
      // MLD's rules carry no comment: numeric types without one translate to nft's own icmpv6
      // match, which ct-analyze check reads natively (with one they load as an opaque xt match).
      lines.push(`${c} -s fe80::/10 ${icmp} ${type} ${t} -j ACCEPT`);
    }
  }
  return lines;
}

/** The log and final verdict of a chain: what no rule accepted. */
function tail(chain: Chain, family: 4 | 6, opts: EmitOptions): string[] {
  const c = `-A ${CT_CHAIN[chain]}`;
  if (chain === 'output' && opts.outputChain === 'log') {
    // RETURN, not ACCEPT: the OUTPUT chain's own policy decides, as it did before.
    return [
      `${c} ${LOG_LIMIT} -j LOG --log-prefix "conntracker output: "`,
      `${c} ${commentOf('not recorded: OUTPUT decides')} -j RETURN`,
    ];
  }
  const prefix = `conntracker ${chain === 'output' ? 'output ' : ''}${opts.policy}: `;
  const refuse =
    opts.policy === 'drop'
      ? `${c} -j DROP`
      : `${c} -j REJECT --reject-with ${family === 4 ? 'icmp-admin-prohibited' : 'icmp6-adm-prohibited'}`;
  return [...(opts.log ? [`${c} ${LOG_LIMIT} -j LOG --log-prefix "${prefix}"`] : []), refuse];
}

function chainsOf(opts: EmitOptions): Chain[] {
  return opts.outputChain === 'none' ? ['input', 'forward'] : ['input', 'forward', 'output'];
}

/** The command a one-way service's loud line suggests: inserted first, before the chain's verdict. */
function allowOneWay(u: UnansweredService): string {
  const tool = u.family === 4 ? 'iptables' : 'ip6tables';
  const parts = [`${tool} -I ${CT_CHAIN[u.chain]}`, `-s ${u.sources.map(formatCidr).join(',')}`];
  if (u.daddr !== undefined) parts.push(`-d ${formatAddress(u.daddr)}`);
  parts.push(`-p ${protoName(u.proto)} --dport ${u.port} -j ACCEPT`);
  return parts.join(' ');
}

/** One family's part of the plan: only its rules, groups and summary lines. */
function planOf(plan: RulesPlan, family: 4 | 6): RulesPlan {
  const rules = (chain: Chain) => ({ rules: plan[chain].rules.filter((r) => r.family === family) });
  return {
    ...plan,
    groups: plan.groups.filter((g) => g.family === family),
    input: rules('input'),
    forward: rules('forward'),
    output: rules('output'),
    unanswered: plan.unanswered.filter((u) => u.family === family),
    scanSuspects: plan.scanSuspects.filter((s) => s.family === family),
    notFiltered: plan.notFiltered.filter((f) => f.family === family),
  };
}

/**
 * One family's restore input: chains CT-INPUT, CT-FORWARD and CT-OUTPUT of table filter, each
 * ending in its own verdict. `--noflush` replaces those chains' rules and leaves every other
 * chain, and the built-in policies, alone; the header says how to hook them in.
 */
export function* iptablesRuleset(
  whole: RulesPlan,
  family: 4 | 6,
  opts: EmitOptions,
): Generator<string> {
  const plan = planOf(whole, family);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const chains = chainsOf(opts);
  yield `# ${tool}-restore input: chains ${chains.map((c) => CT_CHAIN[c]).join(', ')} of table filter; other chains and the built-in policies are left alone\n`;
  yield `# load:  ${tool}-restore --noflush < FILE   (replaces the rules of these chains only)\n`;
  yield '# then hook them in, once (each line does nothing when the jump is there already):\n';
  for (const c of chains) {
    const [from, to] = [BUILT_IN[c], CT_CHAIN[c]];
    yield `#   ${tool} -C ${from} -j ${to} 2>/dev/null || ${tool} -A ${from} -j ${to}\n`;
  }
  for (const line of headerLines(plan, opts)) yield `${line}\n`;
  for (const line of summaryLines(plan, allowOneWay)) yield `${line}\n`;
  yield '*filter\n';
  // Declaring a chain creates it, or (with --noflush) empties it: a reload replaces its rules.
  for (const c of chains) yield `:${CT_CHAIN[c]} - [0:0]\n`;
  for (const c of chains) {
    if (c === 'forward' && plan.forward.rules.length === 0 && plan.forwarded !== true) {
      // A host that forwarded nothing while recorded (in this family) forwards nothing.
      yield `-A ${CT_CHAIN[c]} ${commentOf('nothing forwarded while recorded')} -j DROP\n`;
      continue;
    }
    for (const line of baseline(c, family, opts)) yield `${line}\n`;
    for (const rule of plan[c].rules) {
      for (const line of iptablesRules(rule)) yield `${line}\n`;
    }
    for (const line of tail(c, family, opts)) yield `${line}\n`;
  }
  yield 'COMMIT\n';
}

/** Both families in one stream: IPv4, then the separator line, then IPv6. */
export function* iptablesBoth(plan: RulesPlan, opts: EmitOptions): Generator<string> {
  yield* iptablesRuleset(plan, 4, opts);
  yield `${IP6_SEPARATOR}\n`;
  yield* iptablesRuleset(plan, 6, opts);
}
