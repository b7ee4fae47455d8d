// Hand-built rules plans (model.ts) for the writers' tests: the reviewer's server in small, and the edge cases it lacks.
import { addressBytes } from '../../analyzer/core/address.js';
import { type Flow, FlowTable } from '../../analyzer/core/flows.js';
import { type Cidr, type PortRange, parseCidr } from '../../analyzer/core/prefix.js';
import type { EmitOptions } from '../../analyzer/rules/emit.js';
import type { AddressGroup, Chain, PlannedRule, RulesPlan } from '../../analyzer/rules/model.js';
import { type PlanOptions, planRules } from '../../analyzer/rules/planner.js';
import { ev } from '../analyzer/fixtures.js';

/** 2026-01-01T00:00:00Z in µs. */
export const T0 = Date.UTC(2026, 0, 1) * 1000;
export const S = 1_000_000;

const CONFIRMED = 0x0e;

/** Flows as a host with no known addresses records them (for the local-flow lines). */
function flowsOf(evs: ReturnType<typeof ev>[]): Flow[] {
  const table = new FlowTable();
  const host = table.hostId('fw');
  for (const e of evs) table.add(e, host);
  return [...table.flows()];
}

export const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(`not a prefix: ${text}`);
  return c;
};

export function group(
  name: string,
  members: string[],
  kind: AddressGroup['kind'],
  observed: number,
): AddressGroup {
  const family = members[0]?.includes(':') ? 6 : 4;
  return { name, family, members: members.map(cidr), kind, observed };
}

export const ports = (...ps: (number | [number, number])[]): PortRange[] =>
  ps.map((p) => (typeof p === 'number' ? { from: p, to: p } : { from: p[0], to: p[1] }));

export function rule(
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

export const CLIENTS4 = group('clients4_1', ['10.66.10.0/24', '10.66.11.0/25'], 'aggregated', 230);
export const ADMINS4 = group('admins4_1', ['10.66.1.5'], 'exact', 1);
export const CLIENTS6 = group('clients6_1', ['2001:db8:66:10::/64'], 'aggregated', 6);
export const DBS4 = group('peers4_1', ['10.66.3.10', '10.66.3.11'], 'exact', 2);

/** The reviewer's server in small: client groups, an admin, a forwarded service, output. */
export function reviewPlan(): RulesPlan {
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

export const BIG4 = group(
  'clients4_2',
  ['10.1.0.0/24', '10.1.2.0/24', '10.1.4.0/24', '10.1.6.0/24', '10.1.8.0/25', '10.1.9.0/24'],
  'aggregated',
  700,
);
export const V6 = group('peers6_1', ['2001:db8:1::/64', '2001:db8:2::/64'], 'aggregated', 9);

/** What the reviewer plan lacks: ICMP, many ports, long sets, one-way rules, IPv6 forwarding. */
export function edgePlan(): RulesPlan {
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

export const WHEN = 'first 2026-01-01T00:00:00Z, last 2026-01-01T00:01:00Z';

export const DEFAULTS: EmitOptions = { policy: 'reject', log: true, outputChain: 'log', lost: 0 };

export const OPTION_SETS: EmitOptions[] = (['reject', 'drop'] as const).flatMap((policy) =>
  [true, false].flatMap((log) =>
    (['log', 'enforce', 'none'] as const).map((outputChain) => ({
      policy,
      log,
      outputChain,
      lost: 0,
    })),
  ),
);

export const optText = (o: EmitOptions) =>
  `--policy ${o.policy} --output-chain ${o.outputChain}${o.log ? '' : ' --no-log'}`;

/** Status words: TCP that reached ASSURED (and a reply), a reply alone, nothing. */
const ASSURED = 0x0e;
const REPLIED = 0x0a;
const UNREPLIED = 0x08;

/**
 * The planner's plan (not a hand-built one) for a small server 10.66.0.1 / 2001:db8:66::1:
 * office clients dense in a /25 on web and DNS, an admin on ssh, app servers on the database,
 * IPv6 clients, one-way syslog, a port scan, and what the server sends (DNS, HTTPS, a database).
 */
export function plannedServer(opts: PlanOptions = {}): RulesPlan {
  const server = ['10.66.0.1', '2001:db8:66::1'];
  const table = new FlowTable();
  const host = table.hostId('srv');
  table.addHostAddresses(
    host,
    server.map((a) => ({ address: addressBytes(a) })),
  );
  let s = 0;
  const conn = (proto: number, src: string, dst: string, dport: number, status: number) =>
    table.add(
      { ...ev(proto, src, dst, 40000 + (s % 20000), dport, status), time: T0 + s++ * S },
      host,
    );
  for (let h = 1; h <= 100; h++) {
    conn(6, `10.66.10.${h}`, '10.66.0.1', 80, ASSURED);
    conn(6, `10.66.10.${h}`, '10.66.0.1', 443, ASSURED);
    conn(17, `10.66.10.${h}`, '10.66.0.1', 53, REPLIED);
  }
  conn(6, '10.66.1.5', '10.66.0.1', 22, ASSURED);
  for (const h of [3, 77, 140, 201]) conn(6, `10.66.2.${h}`, '10.66.0.1', 5432, ASSURED);
  for (const h of [0x1a2b, 0x9f00, 0x77]) {
    conn(6, `2001:db8:66:10::${h.toString(16)}`, '2001:db8:66::1', 443, ASSURED);
  }
  for (const h of [1, 2, 3, 4]) conn(17, `10.66.3.${h}`, '10.66.0.1', 514, UNREPLIED);
  for (let p = 1; p <= 40; p++) {
    conn(6, '10.66.1.67', '10.66.0.1', p, p === 22 ? REPLIED : UNREPLIED);
  }
  conn(6, '10.66.10.7', '10.66.0.1', 8443, UNREPLIED);
  conn(17, '10.66.0.1', '10.66.0.53', 53, REPLIED);
  conn(6, '10.66.0.1', '198.51.100.20', 443, ASSURED);
  conn(6, '2001:db8:66::1', '2001:db8:ff::20', 443, ASSURED);
  conn(6, '10.66.0.1', '10.66.4.9', 5432, ASSURED);
  return planRules(table.flows(), opts);
}
