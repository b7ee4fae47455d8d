// ct-analyze check end to end on a laptop: rulesets read by nft, whole connections judged, the report and the CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { compileRuleset } from '../../../analyzer/check/compile.js';
import { parseNftJson } from '../../../analyzer/check/nft-json.js';
import { formatAddress } from '../../../analyzer/core/address.js';
import { type Collapse, type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import { addressNumber, cidrContains } from '../../../analyzer/core/prefix.js';
import type { EmitOptions } from '../../../analyzer/rules/emit.js';
import { iptablesBoth } from '../../../analyzer/rules/iptables.js';
import type { RulesPlan } from '../../../analyzer/rules/model.js';
import { nftRuleset } from '../../../analyzer/rules/nft.js';
import { planRules } from '../../../analyzer/rules/planner.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import type { CtEvent } from '../../../journal/event.js';
import { judgeFlows, NEEDS_NFT, rulesetOf } from '../../helpers/nft.js';
import { CORPUS_DIR } from '../../helpers/rulesets.js';
import { ev, tempDir, writeJournal } from '../fixtures.js';

const CONFIRMED = 0x0e;
const UNREPLIED = 0x08;
/** The firewall's own addresses: flows to them are input, others forward. */
const LOCAL = ['10.0.0.254', '2001:db8::fe'];
const C1024: Collapse = { kind: '1024' };
const NONE: Collapse = { kind: 'none' };

const bytes = (a: string) => ev(6, a, a, 1, 1, 0).orig.src;

function flowsOf(evs: readonly CtEvent[], collapse: Collapse = C1024): Flow[] {
  const table = new FlowTable({ collapse });
  const host = table.hostId('fw');
  table.addHostAddresses(
    host,
    LOCAL.map((a) => ({ address: bytes(a) })),
  );
  for (const e of evs) table.add(e, host);
  return [...table.flows()];
}

/** `10.0.0.1>22` for a flow, to compare verdict lists by eye. */
function label(f: Flow): string {
  const src = [...f.src].join('.');
  return f.family === 4 ? `${src}>${f.proto}/${f.dport || f.icmpType}` : `v6>${f.proto}/${f.dport}`;
}

/** flow label → accepted | blocked@CHAIN#N | blocked@policy | breaks@… | undetermined */
async function verdicts(dir: string, text: string, flows: readonly Flow[], collapse = C1024) {
  const result = judgeFlows(await rulesetOf(dir, text), flows, collapse);
  const out: Record<string, string> = {};
  const at = (b: { chain: { name: string }; rule?: { index: number } }) =>
    b.rule === undefined ? `${b.chain.name}:policy` : `${b.chain.name}#${b.rule.index}`;
  for (const f of flows) out[label(f)] = 'accepted';
  for (const b of result.blocked) out[label(b.flow)] = `blocked@${at(b.fate.by)}`;
  for (const b of result.breaks) out[label(b.flow)] = `breaks@${b.fate.packet}:${at(b.fate.by)}`;
  for (const u of result.undetermined) out[label(u.flow)] = 'undetermined';
  return { out, result };
}

const GENERATED_EVENTS = [
  ev(6, '10.0.0.1', '10.0.0.254', 40000, 22, CONFIRMED),
  ev(6, '10.0.0.9', '10.0.0.254', 40001, 80, CONFIRMED),
  ev(6, '10.0.0.9', '10.0.0.254', 40001, 81, UNREPLIED),
  ev(17, '10.0.0.1', '10.0.0.254', 40002, 53, CONFIRMED),
  ev(17, '10.0.0.1', '10.0.0.254', 40002, 514, UNREPLIED),
  ev(1, '10.0.0.1', '10.0.0.254', 0, 0, CONFIRMED, [8, 0]),
  ev(6, '10.0.0.1', '192.168.7.7', 40003, 443, CONFIRMED),
  ev(6, '10.0.0.1', '192.168.7.8', 40003, 443, UNREPLIED),
  ev(6, '2001:db8::1', '2001:db8::fe', 40004, 22, CONFIRMED),
  ev(17, '2001:db8::1', '2001:db8::fe', 40004, 5353, UNREPLIED),
  ev(58, '2001:db8::1', '2001:db8::fe', 0, 0, CONFIRMED, [128, 0]),
  // Sent by the host itself: the output chain (log mode) passes it.
  ev(6, '10.0.0.254', '10.0.0.1', 40005, 25, UNREPLIED),
];

t.test(
  'check: our own rules (nft and iptables, reject and drop) pass every established connection whole, block the unanswered by the final verdict, and no baseline rule is dead',
  { skip: NEEDS_NFT },
  async (t) => {
    const dir = tempDir(t, 'check-own');
    const flows = flowsOf(GENERATED_EVENTS);
    const plan = planRules(flows);
    for (const policy of ['reject', 'drop'] as const) {
      const opts: EmitOptions = { policy, log: true, outputChain: 'log', lost: 0 };
      for (const [name, text] of [
        ['nft', [...nftRuleset(plan, opts)].join('')],
        ['iptables', [...iptablesBoth(plan, opts)].join('')],
      ] as const) {
        // iptablesBoth is iptables-save then ip6tables-save: check reads one family per file.
        // Its CT-* chains are judged as a host runs them: hooked in, as the header says.
        const hooked = text.replaceAll(
          'COMMIT\n',
          '-A INPUT -j CT-INPUT\n-A FORWARD -j CT-FORWARD\n-A OUTPUT -j CT-OUTPUT\nCOMMIT\n',
        );
        const parts = name === 'nft' ? [text] : hooked.split(/(?=^# ip6tables-restore)/m);
        const blocked: Flow[] = [];
        for (const part of parts) {
          const r = judgeFlows(await rulesetOf(dir, part), flows, C1024);
          t.equal(
            r.breaks.length,
            0,
            `${name} ${policy}: no connection breaks after its first packet`,
          );
          t.equal(r.undetermined.length, 0, `${name} ${policy}: nothing undetermined`);
          for (const b of r.blocked) {
            blocked.push(b.flow);
            // The chain's last rule; never an accept-list rule.
            t.match(
              b.fate.by.rule?.text,
              policy === 'drop' ? /drop/ : /reject/,
              `${label(b.flow)}`,
            );
            t.equal(b.fate.by.verdict, policy === 'drop' ? 'drop' : 'reject');
          }
          // Rules of the input chains no flow hit: the baseline's are hit (loopback aside: no
          // flow here is local) or not judged (ND, MLD, ICMP errors: never in a recording).
          const dead = r.dead
            .filter((d) => /^(input|CT-INPUT)$/.test(d.chain.name))
            .map((d) => d.rule.text);
          t.same(
            dead.filter((d) => !/"loopback"|-i lo|iifname "lo"|iif "lo"/.test(d)),
            [],
            `${name} ${policy}: no baseline rule of input is dead`,
          );
          if (name === 'nft') {
            t.ok(
              r.unrecorded.some((d) => /nd-neighbor-solicit/.test(d.rule.text)),
              'neighbour discovery is not judged',
            );
          }
        }
        const expected = flows.filter((f) => !f.confirmed && f.direction?.[0] !== 'output');
        t.same(
          blocked.map(label).sort(),
          expected.map(label).sort(),
          `${name} ${policy}: the unconfirmed`,
        );
      }
    }
  },
);

t.test(
  'check: for any recorded flows, our own generated nft ruleset passes exactly the connections its plan admits, every established one among them',
  { skip: NEEDS_NFT },
  async (t) => {
    const dir = tempDir(t, 'check-prop');
    const host = fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.77', '10.0.3.1', '172.16.0.5');
    const dst = fc.constantFrom('10.0.0.254', '192.168.7.7', '10.0.0.1');
    const event = fc
      .record({
        proto: fc.constantFrom(6, 17, 1),
        src: host,
        dst,
        dport: fc.constantFrom(22, 53, 80, 81, 443, 8000, 8001),
        confirmed: fc.boolean(),
      })
      .map((e) =>
        e.proto === 1
          ? ev(1, e.src, e.dst, 0, 0, e.confirmed ? CONFIRMED : UNREPLIED, [8, 0])
          : ev(e.proto, e.src, e.dst, 40000, e.dport, e.confirmed ? CONFIRMED : UNREPLIED),
      );
    // check's verdicts equal the plan's own reading: a flow passes exactly when, in each chain
    // it crosses, a planned rule admits it (its group holds the source; echo by the baseline);
    // no connection breaks after its first packet, nothing is undetermined.
    const admitted = (plan: RulesPlan, f: Flow) =>
      (f.direction ?? ['input'])
        .filter((d): d is 'input' | 'forward' => d === 'input' || d === 'forward')
        .every(
          (chain) =>
            // Echo by the baseline, which a forward chain without rules does not have.
            (f.proto === 1 &&
              f.icmpType === 8 &&
              (chain === 'input' || plan.forward.rules.length > 0 || plan.forwarded === true)) ||
            plan[chain].rules.some(
              (r) =>
                r.proto === f.proto &&
                r.family === f.family &&
                (r.daddr === undefined || formatAddress(r.daddr) === formatAddress(f.dst)) &&
                (r.icmpType === undefined
                  ? r.ports.some((p) => p.from <= f.dport && f.dport <= p.to)
                  : r.icmpType === f.icmpType) &&
                (r.group?.members.some((c) => cidrContains(c, f.family, addressNumber(f.src))) ??
                  true),
            ),
        );
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { maxLength: 12 }),
        fc.boolean(),
        fc.constantFrom(32, 24),
        async (evs, reject, maxPrefix4) => {
          const flows = flowsOf(evs);
          const plan = planRules(flows, { maxPrefix4 });
          const opts: EmitOptions = {
            policy: reject ? 'reject' : 'drop',
            log: false,
            outputChain: 'log',
            lost: 0,
          };
          const text = [...nftRuleset(plan, opts)];
          const r = judgeFlows(await rulesetOf(dir, text.join('')), flows, C1024);
          const blocked = new Set(r.blocked.map((b) => b.flow));
          for (const f of flows) {
            if (f.assured && blocked.has(f)) return false;
            if (blocked.has(f) === admitted(plan, f)) return false;
          }
          return r.undetermined.length === 0 && r.breaks.length === 0;
        },
      ),
      { numRuns: 40 },
    );
    t.pass('40 generated recordings agree');
  },
);

const HAND = `define lan_net = 10.0.0.0/24
table inet a {
  set dns_ports {
    type inet_service
    elements = { 53, 123 }
  }
  chain input {
    type filter hook input priority 10; policy drop;
    ct state vmap { established : accept, related : accept, invalid : drop }
    ip saddr $lan_net jump lan
    tcp dport 8000-8010 counter accept
    udp dport @dns_ports goto dns
    ip6 saddr != 2001:db8::/64 drop
    meta l4proto tcp tcp dport { ssh, 2222 } accept comment "v6 ssh"
  }
  chain lan {
    tcp dport ssh accept
    tcp dport 23 reject with tcp reset
    icmp type echo-request limit rate 10/second accept
    return
    tcp dport 25 accept
  }
  chain dns {
    ip saddr 10.0.9.9 drop
  }
}
table ip early {
  chain input {
    type filter hook input priority filter - 10
    policy accept
    ip saddr 10.0.5.5 log prefix "early: " drop
    tcp dport 9999 accept
  }
}
`;

t.test(
  'check: defines, named sets, service names, vmaps, jump, goto, return and chain priorities decide as the kernel does',
  { skip: NEEDS_NFT },
  async (t) => {
    const flows = flowsOf([
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 22, CONFIRMED),
      ev(6, '10.0.0.2', '10.0.0.254', 40000, 23, CONFIRMED),
      ev(6, '10.0.0.3', '10.0.0.254', 40000, 25, CONFIRMED),
      ev(1, '10.0.0.4', '10.0.0.254', 0, 0, CONFIRMED, [8, 0]),
      ev(1, '10.0.1.4', '10.0.0.254', 0, 0, CONFIRMED, [8, 0]),
      ev(6, '10.0.1.1', '10.0.0.254', 40000, 8005, CONFIRMED),
      ev(6, '10.0.5.5', '10.0.0.254', 40000, 8005, CONFIRMED),
      ev(6, '10.0.1.2', '10.0.0.254', 40000, 9999, CONFIRMED),
      ev(17, '10.0.1.3', '10.0.0.254', 40000, 53, CONFIRMED),
      ev(17, '10.0.9.9', '10.0.0.254', 40000, 123, CONFIRMED),
      ev(6, '2001:db8::1', '2001:db8::fe', 40000, 2222, CONFIRMED),
      ev(6, '2001:db8:1::1', '2001:db8::fe', 40000, 2222, CONFIRMED),
    ]);
    const { out, result } = await verdicts(tempDir(t, 'check-hand'), HAND, flows);
    t.same(out, {
      '10.0.0.1>6/22': 'accepted',
      '10.0.0.2>6/23': 'blocked@lan#2',
      '10.0.0.3>6/25': 'blocked@input:policy',
      '10.0.0.4>1/8': 'accepted',
      '10.0.1.4>1/8': 'blocked@input:policy',
      '10.0.1.1>6/8005': 'accepted',
      '10.0.5.5>6/8005': 'blocked@input#1',
      // 9999 is accepted by the earlier table's chain; an accept ends that chain only.
      '10.0.1.2>6/9999': 'blocked@input:policy',
      '10.0.1.3>17/53': 'blocked@input:policy',
      '10.0.9.9>17/123': 'blocked@dns#1',
      'v6>6/2222': 'blocked@input#5',
    });
    // The two IPv6 flows share a label; the one inside 2001:db8::/64 is accepted.
    t.equal(result.accepted, 4);
    t.equal(result.blocked.length, 8);
    t.same(
      result.dead.map((d) => `${d.chain.name}#${d.rule.index}`),
      ['lan#5'],
      'only the rule after return is dead: the vmap sees every reply',
    );
    t.equal(result.limited, 1, 'the limited echo rule was met, and counted as a note');
  },
);

t.test(
  'check: a ruleset that accepts new connections but not established ones breaks them after the first packet',
  { skip: NEEDS_NFT },
  async (t) => {
    const text = `table inet f {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state new tcp dport 80 accept
    ct state new udp dport 53 accept
  }
  chain output {
    type filter hook output priority 0; policy accept;
    udp sport 53 drop
  }
}
`;
    const flows = flowsOf([
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 80, CONFIRMED),
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 81, CONFIRMED),
      ev(17, '10.0.0.1', '10.0.0.254', 40000, 53, CONFIRMED),
      // Never answered: only its first packet is judged, and it passes.
      ev(6, '10.0.0.2', '10.0.0.254', 40000, 80, UNREPLIED),
    ]);
    const { out, result } = await verdicts(tempDir(t, 'check-breaks'), text, flows, NONE);
    t.same(out, {
      '10.0.0.1>6/80': 'breaks@later:input:policy',
      '10.0.0.1>6/81': 'blocked@input:policy',
      '10.0.0.1>17/53': 'breaks@reply:output#1',
      '10.0.0.2>6/80': 'accepted',
    });
    t.equal(result.breaks[0]?.fate.hook, 'input');
    t.equal(result.breaks[1]?.fate.hook, 'output');
  },
);

t.test(
  'check: iptables-save equivalents of a ruleset give the same verdicts',
  { skip: NEEDS_NFT },
  async (t) => {
    const nft = `table ip filter {
  chain INPUT {
    type filter hook input priority filter; policy drop;
    iif lo accept
    ct state established,related accept
    ip saddr 10.0.0.0/24 jump lan
    ip saddr { 10.0.2.0/24, 10.0.3.7 } tcp dport { 80, 443, 8000-8010 } accept
    ip saddr != 10.0.4.0/24 udp dport 53 accept
    reject with icmp type admin-prohibited
  }
  chain lan {
    tcp dport 22 accept
    tcp dport 23 drop
    icmp type 8 accept
  }
}
`;
    const ipt = `# Generated by iptables-save v1.8.9 on Fri Nov 27 07:00:00 2026
*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -j DOCKER
-A DOCKER -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:lan - [0:0]
[5:300] -A INPUT -i lo -j ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.0.0.0/24 -j lan
-A INPUT -s 10.0.2.0/24,10.0.3.7/32 -p tcp -m multiport --dports 80,443,8000:8010 -m comment --comment "web, \\"quoted\\"" -j ACCEPT
-A INPUT ! -s 10.0.4.0/24 -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -m limit --limit 5/min -j LOG --log-prefix "in: "
-A INPUT -j REJECT --reject-with icmp-admin-prohibited
-A lan -p tcp -m tcp --dport 22 -j ACCEPT
-A lan -p tcp -m tcp --dport 23 -j DROP
-A lan -p icmp -m icmp --icmp-type echo-request -j ACCEPT
COMMIT
`;
    const flows = flowsOf([
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 22, CONFIRMED),
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 23, CONFIRMED),
      ev(6, '10.0.0.1', '10.0.0.254', 40000, 24, CONFIRMED),
      ev(1, '10.0.0.1', '10.0.0.254', 0, 0, CONFIRMED, [8, 0]),
      ev(1, '10.0.1.1', '10.0.0.254', 0, 0, CONFIRMED, [8, 0]),
      ev(6, '10.0.2.9', '10.0.0.254', 40000, 8009, CONFIRMED),
      ev(6, '10.0.3.7', '10.0.0.254', 40000, 443, CONFIRMED),
      ev(6, '10.0.3.8', '10.0.0.254', 40000, 443, CONFIRMED),
      ev(17, '10.0.4.1', '10.0.0.254', 40000, 53, CONFIRMED),
      ev(17, '10.0.5.1', '10.0.0.254', 40000, 53, CONFIRMED),
      ev(6, '127.0.0.1', '127.0.0.1', 40000, 5432, CONFIRMED),
    ]);
    const dir = tempDir(t, 'check-ipt');
    const a = (await verdicts(dir, nft, flows)).out;
    const b = (await verdicts(dir, ipt, flows)).out;
    const kind = (o: Record<string, string>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.replace(/#\d+$/, '#rule')]));
    t.same(kind(b), kind(a), 'same verdict per flow');
    t.same(kind(a), {
      '10.0.0.1>6/22': 'accepted',
      '10.0.0.1>6/23': 'blocked@lan#rule',
      '10.0.0.1>6/24': 'blocked@INPUT#rule',
      '10.0.0.1>1/8': 'accepted',
      '10.0.1.1>1/8': 'blocked@INPUT#rule',
      '10.0.2.9>6/8009': 'accepted',
      '10.0.3.7>6/443': 'accepted',
      '10.0.3.8>6/443': 'blocked@INPUT#rule',
      '10.0.4.1>17/53': 'blocked@INPUT#rule',
      '10.0.5.1>17/53': 'accepted',
      '127.0.0.1>6/5432': 'accepted',
    });
  },
);

t.test(
  'check: a source-port match on a collapsed port is undetermined at that rule, and decided with --collapse none',
  { skip: NEEDS_NFT },
  async (t) => {
    const text = `table inet a {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp sport 2000-3000 drop
    udp sport 1024-65535 accept
    udp dport 53 drop
  }
}
`;
    const evs = [
      ev(6, '10.0.0.1', '10.0.0.254', 2500, 22, CONFIRMED),
      ev(6, '10.0.0.2', '10.0.0.254', 999, 22, CONFIRMED),
      ev(17, '10.0.0.3', '10.0.0.254', 40000, 53, CONFIRMED),
    ];
    const dir = tempDir(t, 'check-sport');
    const collapsed = await verdicts(dir, text, flowsOf(evs, C1024), C1024);
    t.same(collapsed.out, {
      '10.0.0.1>6/22': 'undetermined',
      '10.0.0.2>6/22': 'accepted',
      '10.0.0.3>17/53': 'accepted',
    });
    const u = collapsed.result.undetermined[0]?.fate;
    t.equal(u?.rule.index, 1, 'undetermined at the sport rule');
    t.match(u?.match, /tcp sport 2000-3000/);
    t.same(
      collapsed.result.undecidable.map((x) => [x.match, x.flows]),
      [[u?.match, 1]],
      'the construct is listed once, with its count',
    );
    const exact = await verdicts(dir, text, flowsOf(evs, NONE), NONE);
    t.same(exact.out, {
      '10.0.0.1>6/22': 'blocked@input#1',
      '10.0.0.2>6/22': 'accepted',
      '10.0.0.3>17/53': 'accepted',
    });
    t.same(exact.result.unfiltered, [], 'an inet table sees both families');
    const v6only = flowsOf([ev(6, '2001:db8::1', '2001:db8::fe', 40000, 22, CONFIRMED)]);
    const v4rules = '# Generated by iptables-save\n*filter\n:INPUT DROP [0:0]\nCOMMIT\n';
    const r = judgeFlows(await rulesetOf(dir, v4rules), v6only, C1024);
    t.equal(r.accepted, 1, 'iptables rules do not filter IPv6');
    t.same(r.unfiltered, [6], 'and the report says so');
  },
);

t.test(
  'check: forward flows are judged after DNAT, output ones by the output chain, replies by the chains they cross',
  { skip: NEEDS_NFT },
  async (t) => {
    const dnat = (e: CtEvent, to: string, port: number): CtEvent => ({
      ...e,
      reply: { ...e.reply, src: bytes(to), sport: port },
    });
    const flows = flowsOf([
      dnat(ev(6, '10.0.0.1', '10.0.0.254', 40000, 8080, CONFIRMED), '192.168.7.7', 80),
      ev(6, '10.0.0.254', '10.0.0.1', 40000, 25, CONFIRMED),
    ]);
    const base = `table inet a {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ip daddr 192.168.7.7 tcp dport 80 accept
    ip saddr 192.168.7.7 tcp sport 80 accept
  }
`;
    const dir = tempDir(t, 'check-fwd');
    t.same((await verdicts(dir, `${base}}\n`, flows)).out, {
      '10.0.0.1>6/8080': 'accepted',
      '10.0.0.254>6/25': 'accepted',
    });
    const out = `${base}  chain output {\n    type filter hook output priority 0; policy accept;\n    tcp dport 25 reject\n  }\n}\n`;
    t.same((await verdicts(dir, out, flows)).out, {
      '10.0.0.1>6/8080': 'accepted',
      '10.0.0.254>6/25': 'blocked@output#1',
    });
  },
);

t.test(
  'check: every corpus ruleset, as nft reads it back, compiles and judges flows of every kind without an error',
  async (t) => {
    const dir = join(CORPUS_DIR, 'loaded');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    t.ok(files.length >= 50, `${files.length} loaded corpus rulesets`);
    const flows = flowsOf([...GENERATED_EVENTS]);
    for (const file of files) {
      const json = parseNftJson(readFileSync(join(dir, file), 'utf8'), file);
      const { ruleset } = compileRuleset(json);
      const r = judgeFlows(ruleset, flows, C1024);
      t.equal(
        r.accepted + r.blocked.length + r.breaks.length + r.undetermined.length,
        flows.length,
        `${file}: a verdict for each of ${flows.length} flows`,
      );
    }
  },
);

const ANALYZER = join(PACKAGE_ROOT, 'dist/analyzer/cli.js');

t.test(
  "check: the CLI reports the blocked flow and its rule, JSON too, --exit-code, and nft's own error for a bad ruleset",
  { skip: existsSync(ANALYZER) ? NEEDS_NFT : 'run `npm run build` first' },
  async (t) => {
    const dir = tempDir(t, 'check');
    const journal = join(dir, 'j.mpk');
    writeJournal(journal, [
      [
        ev(6, '10.0.0.1', '10.0.0.254', 40000, 22, CONFIRMED),
        ev(6, '10.0.0.1', '10.0.0.254', 40000, 23, CONFIRMED),
      ],
    ]);
    const rules = join(dir, 'r.nft');
    writeFileSync(
      rules,
      'table inet a {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    ct state established accept\n    tcp dport 22 accept\n    tcp dport 25 accept\n  }\n}\n',
    );
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [ANALYZER, 'check', '--ruleset', rules, ...args, journal], {
        encoding: 'utf8',
      });
    const text = run();
    t.equal(text.status, 0, text.stderr);
    t.match(
      text.stdout,
      /# 2 flows: 1 accepted, 1 blocked, 0 break after the first packet, 0 undetermined; 1 rules no flow hit\n/,
    );
    t.match(
      text.stdout,
      /\nblocked {2}TCPv4 src = 10\.0\.0\.1 \(port=1024\) to dst = 10\.0\.0\.254 \(port=23\) \(confirmed\)\n {4}first packet on input: policy drop of inet a input\n/,
    );
    t.match(text.stdout, /\ndead inet a input rule 3: tcp dport 25 accept\n/);
    const doc = JSON.parse(run('--format', 'json').stdout);
    t.equal(doc.format, 'conntracker-check');
    t.equal(doc.version, 2);
    t.same(doc.counts, {
      flows: 2,
      accepted: 1,
      blocked: 1,
      breaks: 0,
      undetermined: 0,
      dead: 1,
      unrecorded: 0,
    });
    t.equal(doc.blocked[0].dport, 23);
    t.same(doc.blocked[0].by, {
      family: 'inet',
      table: 'a',
      chain: 'input',
      rule: null,
      text: null,
      verdict: 'drop',
      policy: true,
    });
    t.equal(run('--exit-code').status, 1, '--exit-code: 1 when a flow is blocked');
    writeFileSync(
      rules,
      'table inet a {\n  chain input {\n    type filter hook input priority 0;\n    ip saddr @x drop\n  }\n}\n',
    );
    const bad = run();
    t.equal(bad.status, 2, 'a ruleset nft refuses is a syntax error: exit 2');
    t.match(bad.stderr, /r\.nft:4:/, "nft's own file:line");
    t.notMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
  },
);

t.test(
  'check: a random-number verdict map no packet reaches is one dead rule, not one per way',
  { skip: NEEDS_NFT },
  async (t) => {
    const text = `table ip t {
  chain a {
  }
  chain b {
  }
  chain x {
    numgen random mod 2 vmap { 0 : goto a, 1 : goto b }
  }
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 1 jump x
  }
}
`;
    const ruleset = await rulesetOf(tempDir(t, 'check-numgen'), text);
    t.equal(ruleset.chain('ip', 't', 'x')?.rules.length, 2, 'compiled as one rule per way');
    const r = judgeFlows(ruleset, flowsOf(GENERATED_EVENTS), C1024);
    t.same(
      r.dead.map((d) => `${d.chain.name}#${d.rule.index}`),
      ['x#1', 'input#1'],
    );
  },
);
