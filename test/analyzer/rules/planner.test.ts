// ct-analyze rules: the planner's evidence, density, sensitive pinning, shared groups, one-way services and output rules, on flows shaped like the reviewer's server.
import fc from 'fast-check';
import t from 'tap';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import {
  addressNumber,
  bitsOf,
  type Cidr,
  cidrContains,
  formatCidr,
  parseCidr,
} from '../../../analyzer/core/prefix.js';
import { densePrefixes, unitOf } from '../../../analyzer/rules/density.js';
import type { PlannedRule, RulesPlan } from '../../../analyzer/rules/model.js';
import { type PlanOptions, planRules } from '../../../analyzer/rules/planner.js';
import { parseServiceList, serviceKey } from '../../../analyzer/rules/services.js';
import type { CtEvent } from '../../../journal/event.js';
import { checkProperty } from '../../helpers/arbitraries.js';
import { ev } from '../fixtures.js';

/** Status words: a TCP connection that reached ASSURED, a reply without ASSURED, none. */
const ASSURED = 0x0e;
const REPLIED = 0x0a;
const UNREPLIED = 0x08;
const SERVER = '10.66.0.1';
const SERVER6 = '2001:db8:66::1';
const S = 1_000_000;
const T0 = Date.UTC(2026, 11, 1) * 1000;

const addr = (a: string) => ev(6, a, a, 1, 1, 0).orig.src;

function at(e: CtEvent, seconds: number): CtEvent {
  return { ...e, time: T0 + seconds * S };
}

function flowsOf(evs: readonly CtEvent[], local = [SERVER, SERVER6]): Flow[] {
  const table = new FlowTable();
  const host = table.hostId('srv');
  table.addHostAddresses(
    host,
    local.map((a) => ({ address: addr(a) })),
  );
  for (const e of evs) table.add(e, host);
  return [...table.flows()];
}

const v4 = (net: string, host: number) => `${net}.${host}`;

/** The rules of a chain that admit `src` on proto/port (any group member holding it, or no group). */
function admits(
  plan: RulesPlan,
  chain: 'input' | 'output',
  src: string,
  proto: number,
  port: number,
): boolean {
  const a = addressNumber(addr(src));
  const family = src.includes(':') ? 6 : 4;
  return plan[chain].rules.some(
    (r: PlannedRule) =>
      r.family === family &&
      r.proto === proto &&
      r.ports.some((p) => p.from <= port && port <= p.to) &&
      (r.group === undefined || r.group.members.some((m) => cidrContains(m, family, a))),
  );
}

/** The reviewer's server, in flows: clients, app servers, an admin, IPv6 privacy addresses, syslog, scanners. */
function reviewFlows(): CtEvent[] {
  const evs: CtEvent[] = [];
  let s = 0;
  const conn = (proto: number, src: string, dport: number, status: number, dst = SERVER) =>
    evs.push(at(ev(proto, src, dst, 40000 + (s % 20000), dport, status), s++));
  // Office: 150 of 10.66.10.0/24 on 80, 443 and DNS.
  for (let h = 1; h <= 150; h++) {
    const src = v4('10.66.10', h + (h > 100 ? 50 : 0));
    conn(6, src, 80, ASSURED);
    conn(6, src, 443, ASSURED);
    conn(17, src, 53, REPLIED);
  }
  // One client's DNS query unanswered: it still used HTTP, so it is no failed source.
  conn(6, '10.66.10.240', 80, ASSURED);
  conn(17, '10.66.10.240', 53, UNREPLIED);
  // App servers spread over 10.66.2.0/24 on both sides of .128: the database and the app port.
  for (const h of [5, 21, 40, 66, 90, 115, 130, 150, 171, 200, 222, 250]) {
    conn(6, v4('10.66.2', h), 5432, ASSURED);
    conn(6, v4('10.66.2', h), 8080, ASSURED);
  }
  // The admin: ssh and SNMP.
  conn(6, '10.66.1.5', 22, ASSURED);
  conn(17, '10.66.1.5', 161, REPLIED);
  // IPv6 clients with privacy addresses in one /64, on both web ports.
  for (const iid of ['1a2b:3c4d:5e6f:7081', '9a8b:7c6d:5e4f:3021', 'dead:beef:1:2']) {
    conn(6, `2001:db8:66:10:${iid}`, 80, ASSURED, SERVER6);
    conn(6, `2001:db8:66:10:${iid}`, 443, ASSURED, SERVER6);
  }
  // Syslog from four hosts: never answered by design.
  for (const h of [31, 32, 33, 34]) conn(17, v4('10.66.3', h), 514, UNREPLIED);
  // A half-open SYN scan from 10.66.1.67: the open ports answer SYN-ACK, then RST; the rest nothing.
  for (let p = 1; p <= 1024; p++) {
    const open = [22, 80, 443].includes(p);
    conn(6, '10.66.1.67', p, open ? REPLIED : UNREPLIED);
  }
  conn(6, '10.66.1.67', 5432, REPLIED);
  // A connect scan from 10.66.11.200: the open ports complete the handshake.
  for (let p = 1; p <= 1024; p++) {
    const open = [22, 80, 443].includes(p);
    conn(6, '10.66.11.200', p, open ? ASSURED : UNREPLIED);
  }
  // Echo from three hosts: the baseline allows echo from anyone, no rule is planned.
  for (const h of [1, 2, 3])
    evs.push(at(ev(1, v4('10.66.10', h), SERVER, 0, 0, REPLIED, [8, 0]), s++));
  // The host's own traffic: DNS out, and its database elsewhere.
  evs.push(at(ev(17, SERVER, '10.66.0.53', 40000, 53, REPLIED), s++));
  evs.push(at(ev(6, SERVER, '10.66.2.40', 40001, 5432, ASSURED), s++));
  return evs;
}

t.test("planner: the reviewer's server gets rules a reviewer can defend", async (t) => {
  const plan = planRules(flowsOf(reviewFlows()));
  const TCP = 6;
  const UDP = 17;
  t.test('scanners are reported apart and allowed nothing', async (t) => {
    t.same(
      plan.scanSuspects.map((s) =>
        formatCidr({ family: s.family, network: addressNumber(s.address), prefix: 32 }),
      ),
      ['10.66.1.67', '10.66.11.200'],
    );
    for (const scanner of ['10.66.1.67', '10.66.11.200']) {
      for (const port of [22, 80, 443, 5432])
        t.notOk(admits(plan, 'input', scanner, TCP, port), `${scanner} ${port}`);
    }
  });
  t.test('the office is one dense /24 sharing web and DNS in one set', async (t) => {
    const office = plan.groups.filter((g) =>
      g.members.some((m) => formatCidr(m) === '10.66.10.0/24'),
    );
    t.equal(office.length, 1, 'one group holds the office /24');
    const rules = plan.input.rules.filter((r) => r.group === office[0]);
    t.same(
      rules.map((r) => [r.proto, r.ports.map((p) => `${p.from}-${p.to}`)]),
      [
        [TCP, ['80-80', '443-443']],
        [UDP, ['53-53']],
      ],
      'web ports merged in one rule, DNS in one rule, the same set',
    );
    t.ok(admits(plan, 'input', '10.66.10.222', TCP, 443), 'a new office client reaches 443');
    t.ok(admits(plan, 'input', '10.66.10.222', UDP, 53), '… and DNS');
  });
  t.test('sparse app servers stay exact: their neighbour reaches nothing', async (t) => {
    t.notOk(admits(plan, 'input', '10.66.2.100', TCP, 5432), 'no database for the neighbour');
    t.notOk(admits(plan, 'input', '10.66.2.100', TCP, 8080), 'no app port either (not dense)');
    t.ok(admits(plan, 'input', '10.66.2.130', TCP, 5432));
    const db = plan.input.rules.find((r) => r.ports.some((p) => p.from === 5432));
    t.equal(db?.sensitive, true);
    t.equal(db?.group?.kind, 'exact');
    t.equal(db?.group?.members.length, 12);
    const app = plan.input.rules.filter((r) => r.group === db?.group);
    t.same(
      app.map((r) => r.ports.map((p) => p.from)),
      [[5432, 8080]],
      'the sparse app servers: one set, one rule for the database and the app port',
    );
  });
  t.test('sensitive services are pinned to the admin', async (t) => {
    t.ok(admits(plan, 'input', '10.66.1.5', TCP, 22));
    t.ok(admits(plan, 'input', '10.66.1.5', UDP, 161));
    t.notOk(admits(plan, 'input', '10.66.10.5', UDP, 161), 'an office client gets no SNMP');
    t.notOk(admits(plan, 'input', '10.66.1.6', TCP, 22), "nor does the admin's neighbour get ssh");
  });
  t.test('IPv6 clients are their /64, the same for every service', async (t) => {
    const fresh = '2001:db8:66:10:4242:4242:4242:4242';
    t.ok(admits(plan, 'input', fresh, TCP, 80), 'a new privacy address on 80');
    t.ok(admits(plan, 'input', fresh, TCP, 443), '… and on 443');
    const v6 = plan.input.rules.filter((r) => r.family === 6);
    t.equal(v6.length, 1, 'one IPv6 rule');
    t.same(v6[0]?.group?.members.map(formatCidr), ['2001:db8:66:10::/64']);
    t.equal(v6[0]?.group?.observed, 3, 'the set stands for three observed addresses');
  });
  t.test('one-way syslog is summarised loudly, not allowed', async (t) => {
    t.notOk(admits(plan, 'input', '10.66.3.31', UDP, 514));
    const syslog = plan.unanswered.find((u) => u.port === 514);
    t.equal(syslog?.oneWay, 'syslog');
    t.equal(syslog?.sourceCount, 4);
    t.equal(plan.unanswered[0], syslog, 'one-way services rank first');
    const dns = plan.unanswered.find((u) => u.port === 53 && u.chain === 'input');
    t.equal(dns?.alsoAllowed, true, 'the unanswered DNS query is of an allowed service');
    const allowed = planRules(flowsOf(reviewFlows()), { allowOneWay: true });
    t.ok(admits(allowed, 'input', '10.66.3.31', UDP, 514), '--allow-one-way writes it');
    t.notOk(admits(allowed, 'input', '10.66.3.35', UDP, 514), '… for the senders only');
    t.equal(allowed.input.rules.find((r) => r.oneWay)?.group?.kind, 'exact');
  });
  t.test(
    'echo needs no rule; output services are allowed, sensitive ones to their peers',
    async (t) => {
      t.notOk(
        plan.input.rules.some((r) => r.icmpType !== undefined),
        'no ICMP rule',
      );
      t.ok(admits(plan, 'output', SERVER, UDP, 53));
      const db = plan.output.rules.find((r) => r.ports.some((p) => p.from === 5432));
      t.same(db?.group?.members.map(formatCidr), ['10.66.2.40']);
      t.equal(db?.group?.name.startsWith('peers4'), true);
      t.same(planRules(flowsOf(reviewFlows()), { outputChain: 'none' }).output.rules, []);
    },
  );
});

t.test('planner: a half-open connection is summarised, not allowed', async (t) => {
  const plan = planRules(flowsOf([at(ev(6, '10.66.10.9', SERVER, 40000, 8443, REPLIED), 0)]));
  t.same(plan.input.rules, []);
  t.equal(plan.unanswered[0]?.halfOpen, 1);
});

t.test('planner: a source none of whose flows was answered splits a dense prefix', async (t) => {
  const evs: CtEvent[] = [];
  for (let h = 0; h < 256; h++) {
    if (h === 77) continue;
    evs.push(at(ev(6, v4('10.66.20', h), SERVER, 40000, 80, ASSURED), h));
  }
  evs.push(at(ev(6, '10.66.20.77', SERVER, 40000, 80, UNREPLIED), 300));
  const plan = planRules(flowsOf(evs));
  t.notOk(admits(plan, 'input', '10.66.20.77', 6, 80), 'the failed source is not covered');
  t.ok(admits(plan, 'input', '10.66.20.76', 6, 80));
  t.ok(admits(plan, 'input', '10.66.20.200', 6, 80));
});

t.test(
  'planner: --sensitive adds services, --min-density and --max-prefix bound the groups',
  async (t) => {
    const evs: CtEvent[] = [];
    for (let h = 0; h < 64; h++)
      evs.push(at(ev(6, v4('10.66.30', h), SERVER, 40000, 9000, ASSURED), h));
    const opts: PlanOptions = {};
    t.same(
      planRules(flowsOf(evs), opts).input.rules[0]?.group?.members.map(formatCidr),
      ['10.66.30.0/25'],
      '64 seen of 128: half, dense enough by default',
    );
    const pinned = planRules(flowsOf(evs), { sensitive: parseServiceList('tcp/9000') });
    t.equal(pinned.input.rules[0]?.group?.members.length, 64);
    const strict = planRules(flowsOf(evs.filter((_, i) => i % 2 === 0)), { minDensity: 1 });
    t.equal(
      strict.input.rules[0]?.group?.members.length,
      32,
      'every other host: nothing dense at 1',
    );
    const half = planRules(flowsOf(evs.filter((_, i) => i % 2 === 0)));
    t.same(
      half.input.rules[0]?.group?.members.map(formatCidr),
      ['10.66.30.0/26'],
      '32 of 64 is half',
    );
    const narrow = planRules(flowsOf(evs), { maxPrefix4: 28 });
    t.equal(narrow.input.rules[0]?.group?.members.length, 4, 'four /28s at --max-prefix4 28');
    t.throws(() => planRules([], { minDensity: 0 }), { code: 'EUSAGE' });
    t.throws(() => parseServiceList('tcp/0'), /not a port/);
    t.same(parseServiceList('8443,udp/5000'), [
      serviceKey(6, 8443),
      serviceKey(17, 8443),
      serviceKey(17, 5000),
    ]);
  },
);

t.test(
  'density: prefixes cover every observed unit once, no avoided one, each dense enough',
  async (t) => {
    const arb = fc.record({
      hosts: fc.uniqueArray(fc.integer({ min: 0, max: 1023 }), { maxLength: 300 }),
      avoid: fc.uniqueArray(fc.integer({ min: 0, max: 1023 }), { maxLength: 10 }),
      widest: fc.integer({ min: 20, max: 32 }),
      minDensity: fc.constantFrom(0.25, 0.5, 0.75, 1),
    });
    checkProperty(
      t,
      fc.property(arb, ({ hosts, avoid, widest, minDensity }) => {
        const base = addressNumber(addr('10.1.0.0'));
        const seen = hosts.map((h) => base + BigInt(h));
        const avoided = avoid.map((h) => base + BigInt(h)).filter((a) => !seen.includes(a));
        const out = densePrefixes(seen, 4, { widest, unit: 32, minDensity }, avoided);
        for (const a of seen) {
          if (out.filter((c) => cidrContains(c, 4, a)).length !== 1) return false;
        }
        if (avoided.some((a) => out.some((c) => cidrContains(c, 4, a)))) return false;
        return out.every((c: Cidr) => {
          if (c.prefix < widest) return false;
          const inside = seen.filter((a) => cidrContains(c, 4, a)).length;
          return c.prefix === 32 || (inside >= 2 && inside >= minDensity * 2 ** (32 - c.prefix));
        });
      }),
    );
    const v6 = densePrefixes(
      ['2001:db8:1:1::1', '2001:db8:1:1::2', '2001:db8:1:2::9'].map((a) => addressNumber(addr(a))),
      6,
      { widest: 64, unit: 64, minDensity: 0.5 },
    );
    t.same(v6.map(formatCidr), ['2001:db8:1:1::/64', '2001:db8:1:2::/64'], 'IPv6 per /64');
    const unit = unitOf(addressNumber(addr('2001:db8:1:1::1')), 6, 64);
    t.equal(unit, (parseCidr('2001:db8:1:1::/64') as Cidr).network);
    t.equal(bitsOf(6), 128);
  },
);

t.test('planner: the host sweeping its own monitoring targets is no scan suspect', async (t) => {
  const evs: CtEvent[] = [];
  for (let h = 1; h <= 40; h++) {
    evs.push(at(ev(6, SERVER, v4('10.66.40', h), 40000, 9100, h <= 10 ? ASSURED : UNREPLIED), h));
  }
  const plan = planRules(flowsOf(evs));
  t.same(plan.scanSuspects, []);
  t.ok(admits(plan, 'output', SERVER, 6, 9100), 'its output rule stays');
});
