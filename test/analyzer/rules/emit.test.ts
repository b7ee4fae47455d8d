// ct-analyze rules' writers on hand-built plans: the baseline in its order, groups as sets, the summary, and what nft accepts.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { addressBytes } from '../../../analyzer/core/address.js';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import { type Cidr, formatCidr, type PortRange, parseCidr } from '../../../analyzer/core/prefix.js';
import type { EmitOptions } from '../../../analyzer/rules/emit.js';
import { iptablesBoth, iptablesRuleset } from '../../../analyzer/rules/iptables-next.js';
import type { AddressGroup, Chain, PlannedRule, RulesPlan } from '../../../analyzer/rules/model.js';
import { nftRuleset } from '../../../analyzer/rules/nft-next.js';
import { NEEDS_NFT } from '../../helpers/nft.js';
import { ev, tempDir } from '../fixtures.js';

/** 2026-01-01T00:00:00Z in µs. */
const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;

const CONFIRMED = 0x0e;

/** Flows as a host with no known addresses records them (for the local-flow lines). */
function flowsOf(evs: ReturnType<typeof ev>[]): Flow[] {
  const table = new FlowTable();
  const host = table.hostId('fw');
  for (const e of evs) table.add(e, host);
  return [...table.flows()];
}

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(`not a prefix: ${text}`);
  return c;
};

function group(
  name: string,
  members: string[],
  kind: AddressGroup['kind'],
  observed: number,
): AddressGroup {
  const family = members[0]?.includes(':') ? 6 : 4;
  return { name, family, members: members.map(cidr), kind, observed };
}

const ports = (...ps: (number | [number, number])[]): PortRange[] =>
  ps.map((p) => (typeof p === 'number' ? { from: p, to: p } : { from: p[0], to: p[1] }));

function rule(
  chain: Chain,
  family: 4 | 6,
  proto: number,
  more: Partial<PlannedRule> = {},
): PlannedRule {
  return {
    chain,
    family,
    proto,
    ports: [],
    sensitive: false,
    oneWay: false,
    flows: 1,
    firstSeen: T0,
    lastSeen: T0 + 60 * S,
    ...more,
  };
}

const CLIENTS4 = group('clients4_1', ['10.66.10.0/24', '10.66.11.0/25'], 'aggregated', 230);
const ADMINS4 = group('admins4_1', ['10.66.1.5'], 'exact', 1);
const CLIENTS6 = group('clients6_1', ['2001:db8:66:10::/64'], 'aggregated', 6);
const DBS4 = group('peers4_1', ['10.66.3.10', '10.66.3.11'], 'exact', 2);

/** The reviewer's server in small: client groups, an admin, a forwarded service, output. */
function reviewPlan(): RulesPlan {
  return {
    groups: [ADMINS4, CLIENTS4, CLIENTS6, DBS4],
    input: {
      rules: [
        rule('input', 4, 6, { group: CLIENTS4, ports: ports(80, 443), flows: 400 }),
        rule('input', 4, 6, { group: ADMINS4, ports: ports(22), sensitive: true, flows: 3 }),
        rule('input', 4, 17, { group: CLIENTS4, ports: ports(53), flows: 120 }),
        rule('input', 4, 17, { group: ADMINS4, ports: ports(161), sensitive: true, flows: 2 }),
        rule('input', 6, 6, { group: CLIENTS6, ports: ports(80, 443), flows: 12 }),
      ],
    },
    forward: {
      rules: [
        rule('forward', 4, 6, {
          group: CLIENTS4,
          daddr: addressBytes('192.168.1.10'),
          ports: ports([8000, 8010]),
          flows: 7,
        }),
      ],
    },
    output: {
      rules: [
        rule('output', 4, 6, { ports: ports(443), flows: 5 }),
        rule('output', 4, 6, { group: DBS4, ports: ports(5432), sensitive: true, flows: 9 }),
        rule('output', 4, 17, { ports: ports(123), flows: 2 }),
        rule('output', 6, 6, { ports: ports(443), flows: 1, lastSeen: T0 + 120 * S }),
      ],
    },
    unanswered: [
      {
        chain: 'input',
        family: 4,
        proto: 6,
        port: 8443,
        sources: [cidr('10.66.10.0/28'), cidr('10.66.12.7')],
        sourceCount: 3,
        flows: 12,
        halfOpen: 2,
        alsoAllowed: false,
      },
      {
        chain: 'input',
        family: 4,
        proto: 17,
        port: 514,
        sources: ['10.66.2.1', '10.66.2.2', '10.66.2.3', '10.66.2.4'].map(cidr),
        sourceCount: 4,
        flows: 8,
        halfOpen: 0,
        oneWay: 'syslog',
        alsoAllowed: false,
      },
      {
        chain: 'input',
        family: 4,
        proto: 17,
        port: 53,
        sources: [cidr('10.66.11.9')],
        sourceCount: 1,
        flows: 1,
        halfOpen: 0,
        alsoAllowed: true,
      },
    ],
    scanSuspects: [
      {
        family: 4,
        address: addressBytes('10.66.1.67'),
        ports: 1000,
        hosts: 1,
        flows: 1004,
        established: 4,
        firstSeen: T0 + 10 * S,
        lastSeen: T0 + 22 * S,
      },
    ],
    notFiltered: [],
    undirected: 0,
    flows: 1600,
  };
}

const DEFAULTS: EmitOptions = { policy: 'reject', log: true, outputChain: 'log', lost: 0 };
const nft = (plan: RulesPlan, opts: Partial<EmitOptions> = {}) =>
  [...nftRuleset(plan, { ...DEFAULTS, ...opts })].join('');
const ipt = (plan: RulesPlan, family: 4 | 6, opts: Partial<EmitOptions> = {}) =>
  [...iptablesRuleset(plan, family, { ...DEFAULTS, ...opts })].join('');

/** The lines of one chain's body in an nft ruleset, indentation removed. */
function nftChain(text: string, chain: Chain): string[] {
  const start = text.indexOf(`  chain ${chain} {\n`);
  if (start < 0) return [];
  const end = text.indexOf('\n  }\n', start);
  return text
    .slice(start, end)
    .split('\n')
    .slice(1)
    .map((l) => l.trim());
}

const WHEN = 'first 2026-01-01T00:00:00Z, last 2026-01-01T00:01:00Z';

t.test('nft: the reviewer plan written exactly: header, summary, sets, chains', async (t) => {
  t.equal(
    nft(reviewPlan()),
    `#!/usr/sbin/nft -f
# generated by ct-analyze rules from 1600 recorded flows: 10 accept rules, 4 address groups, 21 unanswered flows in 3 services left for you to decide, 1 scan suspect never allowed
# input and forward: what no rule below accepts is rejected, logged at most 10 a minute; echo requests from anyone, at most 10 a second
# output chain in log mode: what this host sends is not refused; services it was not recorded sending are logged (prefix "conntracker output: ", at most 10 a minute) — read the log, then consider --output-chain enforce
# Scan suspects: sources that touched many ports or hosts in a short window, most of them unanswered; none of their flows is allowed below
# SCAN SUSPECT 10.66.1.67: 1000 ports on one host within the scan window, 1004 flows of which 4 established, first 2026-01-01T00:00:10Z, last 2026-01-01T00:00:22Z — never allowed
# ONE-WAY UDP syslog (514) from 4 hosts is unanswered by design: allow it with --allow-one-way, or: ip saddr { 10.66.2.1, 10.66.2.2, 10.66.2.3, 10.66.2.4 } udp dport 514 accept
# Unanswered: services whose flows got no reply (or, TCP, no completed handshake), not allowed; most flows first:
#   input IPv4 tcp 8443: 12 flows, 2 half-open from 3 sources (10.66.10.0/28, 10.66.12.7)
#   input IPv4 udp 53: 1 flow from 1 source (10.66.11.9); the service is allowed for other sources
table inet conntracker
delete table inet conntracker
table inet conntracker {
  # admins4_1: the exact address of 1 observed host
  set admins4_1 {
    type ipv4_addr; flags interval;
    elements = { 10.66.1.5 }
  }

  # clients4_1: 2 prefixes holding 230 observed hosts
  set clients4_1 {
    type ipv4_addr; flags interval;
    elements = { 10.66.10.0/24, 10.66.11.0/25 }
  }

  # clients6_1: one prefix holding 6 observed hosts
  set clients6_1 {
    type ipv6_addr; flags interval;
    elements = { 2001:db8:66:10::/64 }
  }

  # peers4_1: the exact addresses of 2 observed hosts
  set peers4_1 {
    type ipv4_addr; flags interval;
    elements = { 10.66.3.10, 10.66.3.11 }
  }

  chain input {
    type filter hook input priority filter; policy drop;
    iif lo counter accept comment "loopback"
    ct state vmap { established : accept, related : accept, invalid : drop }
    icmp type { destination-unreachable, time-exceeded, parameter-problem } counter accept comment "ICMP errors"
    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (RFC 4890)"
    icmp type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"
    icmpv6 type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"
    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter accept comment "IPv6 neighbour discovery (RFC 4890)"
    ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } counter accept comment "MLD (RFC 4890)"
    ip saddr @clients4_1 tcp dport { 80, 443 } counter accept comment "400 flows, ${WHEN}"
    ip saddr @admins4_1 tcp dport 22 counter accept comment "3 flows, ${WHEN}"
    ip saddr @clients4_1 udp dport 53 counter accept comment "120 flows, ${WHEN}"
    ip saddr @admins4_1 udp dport 161 counter accept comment "2 flows, ${WHEN}"
    ip6 saddr @clients6_1 tcp dport { 80, 443 } counter accept comment "12 flows, ${WHEN}"
    limit rate 10/minute burst 5 packets log prefix "conntracker reject: "
    counter reject with icmpx type admin-prohibited
  }

  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state vmap { established : accept, related : accept, invalid : drop }
    icmp type { destination-unreachable, time-exceeded, parameter-problem } counter accept comment "ICMP errors"
    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (RFC 4890)"
    icmp type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"
    icmpv6 type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"
    ip saddr @clients4_1 ip daddr 192.168.1.10 tcp dport 8000-8010 counter accept comment "7 flows, ${WHEN}"
    limit rate 10/minute burst 5 packets log prefix "conntracker reject: "
    counter reject with icmpx type admin-prohibited
  }

  chain output {
    type filter hook output priority filter; policy accept;
    oif lo counter accept comment "loopback"
    ct state vmap { established : accept, related : accept, invalid : drop }
    meta l4proto { icmp, ipv6-icmp } counter accept comment "ICMP and ICMPv6 this host sends"
    udp sport 68 udp dport 67 counter accept comment "DHCP client"
    udp sport 546 udp dport 547 counter accept comment "DHCPv6 client"
    tcp dport 443 counter accept comment "6 flows, first 2026-01-01T00:00:00Z, last 2026-01-01T00:02:00Z"
    ip daddr @peers4_1 tcp dport 5432 counter accept comment "9 flows, ${WHEN}"
    meta nfproto ipv4 udp dport 123 counter accept comment "2 flows, ${WHEN}"
    limit rate 10/minute burst 5 packets log prefix "conntracker output: "
    counter accept
  }
}
`,
  );
});

/** `nft -c -f` on the text in a throwaway network namespace (a user namespace unless root). */
function nftCheck(dir: string, text: string, name: string): { code: number | null; err: string } {
  const file = join(dir, name);
  writeFileSync(file, text);
  const root = process.geteuid?.() === 0;
  const args = [...(root ? [] : ['--user', '--map-root-user']), '--net', 'nft', '-c', '-f', file];
  const r = spawnSync('unshare', args, {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
  });
  return { code: r.status, err: r.stderr };
}

t.test(
  'nft -c accepts the ruleset with every option combination',
  { skip: NEEDS_NFT },
  async (t) => {
    const dir = tempDir(t, 'emit-nft');
    for (const policy of ['reject', 'drop'] as const) {
      for (const log of [true, false]) {
        for (const outputChain of ['log', 'enforce', 'none'] as const) {
          for (const [which, plan] of [
            ['review', reviewPlan()],
            ['edge', edgePlan()],
          ] as const) {
            const name = `${which}-${policy}-${log ? 'log' : 'nolog'}-${outputChain}.nft`;
            const res = nftCheck(dir, nft(plan, { policy, log, outputChain }), name);
            t.equal(res.code, 0, `${name}: ${res.err}`);
          }
        }
      }
    }
  },
);

const BIG4 = group(
  'clients4_2',
  ['10.1.0.0/24', '10.1.2.0/24', '10.1.4.0/24', '10.1.6.0/24', '10.1.8.0/25', '10.1.9.0/24'],
  'aggregated',
  700,
);
const V6 = group('peers6_1', ['2001:db8:1::/64', '2001:db8:2::/64'], 'aggregated', 9);

/** What the reviewer plan lacks: ICMP, many ports, long sets, one-way rules, IPv6 forwarding. */
function edgePlan(): RulesPlan {
  const many = ports(...[...Array(16).keys()].map((i) => 1000 + 2 * i), [2000, 2010]);
  const flow = [...flowsOf([ev(6, '10.0.0.254', '10.0.0.253', 40000, 25, CONFIRMED)])];
  return {
    groups: [BIG4, V6],
    input: {
      rules: [
        rule('input', 4, 6, { group: BIG4, ports: many, flows: 40 }),
        rule('input', 4, 17, { group: BIG4, ports: ports(514), oneWay: true, flows: 6 }),
        rule('input', 4, 1, { group: BIG4, icmpType: 13, flows: 1 }),
        rule('input', 6, 58, { group: V6, icmpType: 128, flows: 2 }),
      ],
    },
    forward: {
      rules: [
        rule('forward', 6, 17, {
          group: V6,
          daddr: addressBytes('2001:db8:9::10'),
          ports: ports(53),
          flows: 3,
        }),
      ],
    },
    output: {
      rules: [
        rule('output', 6, 6, { ports: ports(443), flows: 4 }),
        rule('output', 4, 6, { ports: ports(80), flows: 4 }),
        rule('output', 4, 17, { ports: ports(53), flows: 4, firstSeen: undefined }),
      ],
    },
    unanswered: [],
    scanSuspects: [],
    notFiltered: flow,
    undirected: 2,
    flows: 60,
  };
}

const NFT_BASELINE: Record<Chain, string[]> = {
  input: [
    'type filter hook input priority filter; policy drop;',
    'iif lo counter accept comment "loopback"',
    'ct state vmap { established : accept, related : accept, invalid : drop }',
    'icmp type { destination-unreachable, time-exceeded, parameter-problem } counter accept comment "ICMP errors"',
    'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (RFC 4890)"',
    'icmp type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"',
    'icmpv6 type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"',
    'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter accept comment "IPv6 neighbour discovery (RFC 4890)"',
    'ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } counter accept comment "MLD (RFC 4890)"',
  ],
  forward: [
    'type filter hook forward priority filter; policy drop;',
    'ct state vmap { established : accept, related : accept, invalid : drop }',
    'icmp type { destination-unreachable, time-exceeded, parameter-problem } counter accept comment "ICMP errors"',
    'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (RFC 4890)"',
    'icmp type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"',
    'icmpv6 type echo-request limit rate 10/second burst 20 packets counter accept comment "ping, rate-limited"',
  ],
  output: [
    'oif lo counter accept comment "loopback"',
    'ct state vmap { established : accept, related : accept, invalid : drop }',
    'meta l4proto { icmp, ipv6-icmp } counter accept comment "ICMP and ICMPv6 this host sends"',
    'udp sport 68 udp dport 67 counter accept comment "DHCP client"',
    'udp sport 546 udp dport 547 counter accept comment "DHCPv6 client"',
  ],
};

const OPTION_SETS: EmitOptions[] = (['reject', 'drop'] as const).flatMap((policy) =>
  [true, false].flatMap((log) =>
    (['log', 'enforce', 'none'] as const).map((outputChain) => ({
      policy,
      log,
      outputChain,
      lost: 0,
    })),
  ),
);

const optText = (o: EmitOptions) =>
  `--policy ${o.policy} --output-chain ${o.outputChain}${o.log ? '' : ' --no-log'}`;

t.test('nft: each chain opens with its baseline in order, for every option and plan', async (t) => {
  for (const plan of [reviewPlan(), edgePlan()]) {
    for (const o of OPTION_SETS) {
      const text = nft(plan, o);
      for (const chain of ['input', 'forward'] as const) {
        const body = nftChain(text, chain);
        t.strictSame(
          body.slice(0, NFT_BASELINE[chain].length),
          NFT_BASELINE[chain],
          `${chain} ${optText(o)}`,
        );
      }
      const out = nftChain(text, 'output');
      if (o.outputChain === 'none') {
        t.strictSame(out, [], `no output chain with ${optText(o)}`);
      } else {
        const policy = o.outputChain === 'log' ? 'accept' : 'drop';
        t.strictSame(
          out.slice(0, 6),
          [`type filter hook output priority filter; policy ${policy};`, ...NFT_BASELINE.output],
          `output ${optText(o)}`,
        );
      }
    }
  }
});

t.test('nft: the chains end with the log and verdict the options ask for', async (t) => {
  const plan = reviewPlan();
  const ends = (o: Partial<EmitOptions>, chain: Chain) => {
    const body = nftChain(nft(plan, o), chain);
    const firstTail = body.findIndex((l) =>
      /^(limit rate 10\/minute|counter (reject|drop|accept)$)/.test(l),
    );
    return body.slice(firstTail);
  };
  const LOG = 'limit rate 10/minute burst 5 packets log prefix';
  const REJECT = 'counter reject with icmpx type admin-prohibited';
  t.strictSame(ends({}, 'input'), [`${LOG} "conntracker reject: "`, REJECT]);
  t.strictSame(ends({ log: false }, 'forward'), [REJECT], '--no-log: no log rule');
  t.strictSame(ends({ policy: 'drop' }, 'input'), [`${LOG} "conntracker drop: "`, 'counter drop']);
  t.strictSame(ends({ policy: 'drop', log: false }, 'forward'), ['counter drop']);
  t.strictSame(
    ends({}, 'output'),
    [`${LOG} "conntracker output: "`, 'counter accept'],
    'log mode logs and accepts',
  );
  t.strictSame(
    ends({ log: false }, 'output'),
    [`${LOG} "conntracker output: "`, 'counter accept'],
    "log mode is the output chain's purpose: --no-log leaves it",
  );
  t.strictSame(ends({ outputChain: 'enforce' }, 'output'), [
    `${LOG} "conntracker output reject: "`,
    REJECT,
  ]);
  t.strictSame(ends({ outputChain: 'enforce', policy: 'drop', log: false }, 'output'), [
    'counter drop',
  ]);
  for (const o of OPTION_SETS) {
    const text = nft(plan, o);
    t.equal(
      (text.match(/ policy drop;/g) ?? []).length,
      o.outputChain === 'enforce' ? 3 : 2,
      `chain policies with ${optText(o)}`,
    );
  }
});

t.test('nft: every group is one set, used by its rules; no set is left unused', async (t) => {
  for (const plan of [reviewPlan(), edgePlan()]) {
    const text = nft(plan);
    const declared = [...text.matchAll(/\n {2}set (\S+) \{\n/g)].map((m) => m[1]);
    t.strictSame(
      declared,
      plan.groups.map((g) => g.name),
      'one set per group, in order',
    );
    const used = new Set([...text.matchAll(/ @(\w+) /g)].map((m) => m[1]));
    t.strictSame([...used].sort(), plan.groups.map((g) => g.name).sort(), 'each set referenced');
  }
  const text = nft(edgePlan());
  t.match(
    text,
    `  # clients4_2: 6 prefixes holding 700 observed hosts
  set clients4_2 {
    type ipv4_addr; flags interval;
    elements = {
      10.1.0.0/24, 10.1.2.0/24, 10.1.4.0/24, 10.1.6.0/24,
      10.1.8.0/25, 10.1.9.0/24
    }
  }
`,
    'a long set: four elements to a line',
  );
});

t.test(
  'nft: ports, ICMP types, one-way and forward rules; address-free output rules once per service',
  async (t) => {
    const text = nft(edgePlan());
    const many = `${[...Array(16).keys()].map((i) => 1000 + 2 * i).join(', ')}, 2000-2010`;
    t.strictSame(nftChain(text, 'input').slice(NFT_BASELINE.input.length, -2), [
      `ip saddr @clients4_2 tcp dport { ${many} } counter accept comment "40 flows, ${WHEN}"`,
      `ip saddr @clients4_2 udp dport 514 counter accept comment "6 one-way flows (unanswered by design), ${WHEN}"`,
      `ip saddr @clients4_2 icmp type 13 counter accept comment "1 flow, ${WHEN}"`,
      `ip6 saddr @peers6_1 icmpv6 type echo-request counter accept comment "2 flows, ${WHEN}"`,
    ]);
    t.strictSame(nftChain(text, 'forward').slice(NFT_BASELINE.forward.length, -2), [
      `ip6 saddr @peers6_1 ip6 daddr 2001:db8:9::10 udp dport 53 counter accept comment "3 flows, ${WHEN}"`,
    ]);
    t.strictSame(
      nftChain(text, 'output').slice(NFT_BASELINE.output.length + 1, -2),
      [
        `meta nfproto ipv6 tcp dport 443 counter accept comment "4 flows, ${WHEN}"`,
        `meta nfproto ipv4 tcp dport 80 counter accept comment "4 flows, ${WHEN}"`,
        'meta nfproto ipv4 udp dport 53 counter accept comment "4 flows"',
      ],
      'one family only: the family is said; unknown times: the count alone',
    );
    const out = nftChain(nft(reviewPlan()), 'output');
    t.equal(
      out.filter((l) => l.includes('dport 443')).join('\n'),
      'tcp dport 443 counter accept comment "6 flows, first 2026-01-01T00:00:00Z, last 2026-01-01T00:02:00Z"',
      'tcp 443 recorded in both families: one rule for both, flows summed, times spanning both',
    );
  },
);

t.test('nft: header warnings for undirected flows and loss; local flows listed', async (t) => {
  const text = nft(edgePlan(), { lost: 12 });
  t.match(text, /\n# WARNING: the direction of 2 flows is unknown /);
  t.match(
    text,
    /\n# WARNING: 12 events were lost while recording: flows may be missing from these rules\n/,
  );
  t.match(
    text,
    /\n# not filtered \(between this host's own addresses\): {2}TCPv4 src = 10\.0\.0\.254 /,
  );
  t.notMatch(nft(reviewPlan()), /WARNING|not filtered/, 'a clean plan warns of nothing');
  t.match(
    nft(reviewPlan(), { outputChain: 'none' }),
    /\n# no output chain \(--output-chain none\)/,
  );
});

t.test(
  'summary: scan suspects, one-way and unanswered lists are capped with a count of the rest',
  async (t) => {
    const base = reviewPlan();
    const suspect = base.scanSuspects[0] as RulesPlan['scanSuspects'][number];
    const unanswered = base.unanswered[0] as RulesPlan['unanswered'][number];
    const plan: RulesPlan = {
      ...base,
      scanSuspects: [...Array(45).keys()].map((i) => ({
        ...suspect,
        address: addressBytes(`10.9.0.${i}`),
        ports: 1,
        hosts: 30,
      })),
      unanswered: [...Array(42).keys()].map((i) => ({ ...unanswered, port: 9000 + i, flows: 1 })),
    };
    const text = nft(plan);
    t.equal(
      (text.match(/\n# SCAN SUSPECT 10\.9\.0\.\d+: 30 hosts on one port /g) ?? []).length,
      40,
    );
    t.match(text, /\n# SCAN SUSPECTS: 5 more\n/);
    t.equal((text.match(/\n# {3}input IPv4 tcp 9\d+: /g) ?? []).length, 40);
    t.match(text, /\n# {3}… 2 more services with 2 flows \(ct-analyze lists every flow\)\n/);
    const wide: RulesPlan = {
      ...base,
      unanswered: [
        {
          ...unanswered,
          sources: [
            '10.0.0.1',
            '10.0.0.2',
            '10.0.0.3',
            '10.0.0.4',
            '10.0.0.5',
            '10.0.0.6',
            '10.0.0.7',
            '10.0.0.8',
          ].map(cidr),
          sourceCount: 8,
        },
      ],
    };
    t.match(
      nft(wide),
      /from 8 sources \(10\.0\.0\.1, 10\.0\.0\.2, 10\.0\.0\.3, 10\.0\.0\.4, 10\.0\.0\.5, 10\.0\.0\.6, \+2 more\)/,
    );
  },
);

const IPT_BASELINE: Record<4 | 6, Record<Chain, string[]>> = {
  4: {
    input: [
      '-A CT-INPUT -i lo -m comment --comment "loopback" -j ACCEPT',
      '-A CT-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-INPUT -m conntrack --ctstate INVALID -j DROP',
      '-A CT-INPUT -p icmp --icmp-type destination-unreachable -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-INPUT -p icmp --icmp-type time-exceeded -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-INPUT -p icmp --icmp-type parameter-problem -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-INPUT -p icmp --icmp-type echo-request -m limit --limit 10/second --limit-burst 20 -m comment --comment "ping, rate-limited" -j ACCEPT',
    ],
    forward: [
      '-A CT-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A CT-FORWARD -p icmp --icmp-type destination-unreachable -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-FORWARD -p icmp --icmp-type time-exceeded -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-FORWARD -p icmp --icmp-type parameter-problem -m comment --comment "ICMP errors" -j ACCEPT',
      '-A CT-FORWARD -p icmp --icmp-type echo-request -m limit --limit 10/second --limit-burst 20 -m comment --comment "ping, rate-limited" -j ACCEPT',
    ],
    output: [
      '-A CT-OUTPUT -o lo -m comment --comment "loopback" -j ACCEPT',
      '-A CT-OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-OUTPUT -m conntrack --ctstate INVALID -j DROP',
      '-A CT-OUTPUT -p icmp -m comment --comment "ICMP this host sends" -j ACCEPT',
      '-A CT-OUTPUT -p udp --sport 68 --dport 67 -m comment --comment "DHCP client" -j ACCEPT',
    ],
  },
  6: {
    input: [
      '-A CT-INPUT -i lo -m comment --comment "loopback" -j ACCEPT',
      '-A CT-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-INPUT -m conntrack --ctstate INVALID -j DROP',
      ...['destination-unreachable', 'packet-too-big', 'time-exceeded', 'parameter-problem'].map(
        (type) =>
          `-A CT-INPUT -p ipv6-icmp --icmpv6-type ${type} -m comment --comment "ICMPv6 errors (RFC 4890)" -j ACCEPT`,
      ),
      '-A CT-INPUT -p ipv6-icmp --icmpv6-type echo-request -m limit --limit 10/second --limit-burst 20 -m comment --comment "ping, rate-limited" -j ACCEPT',
      ...[
        'router-solicitation',
        'router-advertisement',
        'neighbour-solicitation',
        'neighbour-advertisement',
      ].map(
        (type) =>
          `-A CT-INPUT -p ipv6-icmp --icmpv6-type ${type} -m hl --hl-eq 255 -m comment --comment "IPv6 neighbour discovery (RFC 4890)" -j ACCEPT`,
      ),
      ...[130, 131, 132, 143].map(
        (type) =>
          `-A CT-INPUT -s fe80::/10 -p ipv6-icmp --icmpv6-type ${type} -m comment --comment "MLD (RFC 4890)" -j ACCEPT`,
      ),
    ],
    forward: [
      '-A CT-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-FORWARD -m conntrack --ctstate INVALID -j DROP',
      ...['destination-unreachable', 'packet-too-big', 'time-exceeded', 'parameter-problem'].map(
        (type) =>
          `-A CT-FORWARD -p ipv6-icmp --icmpv6-type ${type} -m comment --comment "ICMPv6 errors (RFC 4890)" -j ACCEPT`,
      ),
      '-A CT-FORWARD -p ipv6-icmp --icmpv6-type echo-request -m limit --limit 10/second --limit-burst 20 -m comment --comment "ping, rate-limited" -j ACCEPT',
    ],
    output: [
      '-A CT-OUTPUT -o lo -m comment --comment "loopback" -j ACCEPT',
      '-A CT-OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A CT-OUTPUT -m conntrack --ctstate INVALID -j DROP',
      '-A CT-OUTPUT -p ipv6-icmp -m comment --comment "ICMPv6 this host sends" -j ACCEPT',
      '-A CT-OUTPUT -p udp --sport 546 --dport 547 -m comment --comment "DHCPv6 client" -j ACCEPT',
    ],
  },
};

/** The `-A` lines of one of our chains, in order. */
const iptChain = (text: string, chain: Chain) =>
  text.split('\n').filter((l) => l.startsWith(`-A CT-${chain.toUpperCase()} `));

t.test(
  'iptables: only our own chains, declared for --noflush, each opening with the baseline and ending in its verdict',
  async (t) => {
    for (const plan of [reviewPlan(), edgePlan()]) {
      for (const family of [4, 6] as const) {
        for (const o of OPTION_SETS) {
          const text = ipt(plan, family, o);
          const what = `IPv${family} ${optText(o)}`;
          const chains: Chain[] =
            o.outputChain === 'none' ? ['input', 'forward'] : ['input', 'forward', 'output'];
          const body = text.slice(text.indexOf('\n*filter\n') + 1);
          t.strictSame(
            body.split('\n').filter((l) => l.startsWith(':')),
            chains.map((c) => `:CT-${c.toUpperCase()} - [0:0]`),
            `${what}: our chains declared, no built-in chain or policy`,
          );
          t.notMatch(
            body,
            /^-A (INPUT|FORWARD|OUTPUT) |^-[PFXNI] /m,
            `${what}: nothing else touched`,
          );
          t.ok(body.endsWith('\nCOMMIT\n'), `${what}: one COMMIT`);
          t.equal(
            body.split('\n').filter((l) => l.startsWith('*')).length,
            1,
            `${what}: table filter only`,
          );
          const outLog = o.outputChain === 'log';
          for (const chain of chains) {
            const lines = iptChain(text, chain);
            const base = IPT_BASELINE[family][chain];
            t.strictSame(lines.slice(0, base.length), base, `${what}: ${chain} baseline`);
            const c = `-A CT-${chain.toUpperCase()}`;
            const refuse =
              chain === 'output' && outLog
                ? `${c} -m comment --comment "not recorded: OUTPUT decides" -j RETURN`
                : o.policy === 'drop'
                  ? `${c} -j DROP`
                  : `${c} -j REJECT --reject-with ${family === 4 ? 'icmp-admin-prohibited' : 'icmp6-adm-prohibited'}`;
            t.equal(lines.at(-1), refuse, `${what}: ${chain} verdict`);
            const logs = lines.filter((l) => l.includes('-j LOG'));
            const prefix =
              chain === 'output'
                ? outLog
                  ? 'conntracker output: '
                  : `conntracker output ${o.policy}: `
                : `conntracker ${o.policy}: `;
            t.strictSame(
              logs,
              o.log || (chain === 'output' && outLog)
                ? [
                    `${c} -m limit --limit 10/minute --limit-burst 5 -j LOG --log-prefix "${prefix}"`,
                  ]
                : [],
              `${what}: ${chain} log`,
            );
            if (logs.length > 0) t.equal(lines.at(-2), logs[0], 'the log right before the verdict');
          }
        }
      }
    }
  },
);

t.test(
  'iptables: group members inline, ports in multiport matches of 15 slots, ICMP types, output destinations',
  async (t) => {
    const edge4 = ipt(edgePlan(), 4);
    const members = BIG4.members.map((c) => formatCidr(c)).join(',');
    const when = `-m comment --comment "40 flows, ${WHEN}" -j ACCEPT`;
    const first15 = [...Array(15).keys()].map((i) => 1000 + 2 * i).join(',');
    t.strictSame(iptChain(edge4, 'input').slice(IPT_BASELINE[4].input.length, -2), [
      `-A CT-INPUT -s ${members} -p tcp -m multiport --dports ${first15} ${when}`,
      `-A CT-INPUT -s ${members} -p tcp -m multiport --dports 1030,2000:2010 ${when}`,
      `-A CT-INPUT -s ${members} -p udp --dport 514 -m comment --comment "6 one-way flows (unanswered by design), ${WHEN}" -j ACCEPT`,
      `-A CT-INPUT -s ${members} -p icmp --icmp-type 13 -m comment --comment "1 flow, ${WHEN}" -j ACCEPT`,
    ]);
    t.strictSame(iptChain(edge4, 'output').slice(IPT_BASELINE[4].output.length, -2), [
      `-A CT-OUTPUT -p tcp --dport 80 -m comment --comment "4 flows, ${WHEN}" -j ACCEPT`,
      '-A CT-OUTPUT -p udp --dport 53 -m comment --comment "4 flows" -j ACCEPT',
    ]);
    const edge6 = ipt(edgePlan(), 6);
    t.strictSame(iptChain(edge6, 'forward').slice(IPT_BASELINE[6].forward.length, -2), [
      `-A CT-FORWARD -s 2001:db8:1::/64,2001:db8:2::/64 -d 2001:db8:9::10 -p udp --dport 53 -m comment --comment "3 flows, ${WHEN}" -j ACCEPT`,
    ]);
    t.strictSame(iptChain(edge6, 'input').slice(IPT_BASELINE[6].input.length, -2), [
      `-A CT-INPUT -s 2001:db8:1::/64,2001:db8:2::/64 -p ipv6-icmp --icmpv6-type echo-request -m comment --comment "2 flows, ${WHEN}" -j ACCEPT`,
    ]);
    t.notMatch(
      edge6,
      /\b10\.\d+\.\d+\.\d+/,
      'no IPv4 address in the IPv6 part, not even a local flow',
    );
    t.match(
      iptChain(ipt(reviewPlan(), 4), 'output').join('\n'),
      '-A CT-OUTPUT -d 10.66.3.10,10.66.3.11 -p tcp --dport 5432 ',
      'output: the destinations group',
    );
  },
);

t.test('iptables: the header gives the load command and the idempotent hooks', async (t) => {
  for (const family of [4, 6] as const) {
    const tool = family === 4 ? 'iptables' : 'ip6tables';
    const hooks = (o: Partial<EmitOptions>) =>
      ipt(reviewPlan(), family, o)
        .split('\n')
        .filter((l) => l.startsWith(`#   ${tool} -C `));
    t.match(ipt(reviewPlan(), family), `\n# load:  ${tool}-restore --noflush < FILE `);
    t.strictSame(hooks({}), [
      `#   ${tool} -C INPUT -j CT-INPUT 2>/dev/null || ${tool} -A INPUT -j CT-INPUT`,
      `#   ${tool} -C FORWARD -j CT-FORWARD 2>/dev/null || ${tool} -A FORWARD -j CT-FORWARD`,
      `#   ${tool} -C OUTPUT -j CT-OUTPUT 2>/dev/null || ${tool} -A OUTPUT -j CT-OUTPUT`,
    ]);
    t.equal(hooks({ outputChain: 'none' }).length, 2, 'no output chain: no output hook');
  }
  t.match(
    ipt(reviewPlan(), 4),
    '\n# ONE-WAY UDP syslog (514) from 4 hosts is unanswered by design: allow it with --allow-one-way, or: iptables -I CT-INPUT -s 10.66.2.1,10.66.2.2,10.66.2.3,10.66.2.4 -p udp --dport 514 -j ACCEPT\n',
  );
  t.notMatch(
    ipt(reviewPlan(), 6),
    /SCAN SUSPECT|ONE-WAY|Unanswered/,
    'IPv4 summaries stay in the IPv4 part',
  );
  const both = [...iptablesBoth(reviewPlan(), DEFAULTS)].join('');
  t.equal(both, `${ipt(reviewPlan(), 4)}# ip6tables-restore:\n${ipt(reviewPlan(), 6)}`);
});
