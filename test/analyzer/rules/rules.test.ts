// ct-analyze rules, whole: which chain and address a flow is planned on (DNAT, redirect, output), properties over any recording (every established flow allowed, no failed source reached), and the CLI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import { addressNumber, cidrContains, formatCidr } from '../../../analyzer/core/prefix.js';
import { evidenceOf } from '../../../analyzer/rules/evidence.js';
import type { Chain, PlannedRule, RulesPlan } from '../../../analyzer/rules/model.js';
import { planRules } from '../../../analyzer/rules/planner.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import type { CtEvent } from '../../../journal/event.js';
import { checkProperty } from '../../helpers/arbitraries.js';
import { ev, tempDir, writeJournal } from '../fixtures.js';

const CONFIRMED = 0x0e;
const UNREPLIED = 0x08;
/** The firewall's own addresses: flows to them are input, others forward. */
const LOCAL = ['10.0.0.254', '2001:db8::fe'];
const S = 1_000_000;
/** 2026-01-01T00:00:00Z in µs. */
const T0 = Date.UTC(2026, 0, 1) * 1000;

const bytes = (a: string) => ev(6, a, a, 1, 1, 0).orig.src;

/** An event at a time (s after T0). */
function at(e: CtEvent, seconds: number): CtEvent {
  return { ...e, time: T0 + seconds * S };
}

/** A connection whose destination was rewritten (DNAT) to `to`:`port`. */
function dnat(e: CtEvent, to: string, port: number): CtEvent {
  return { ...e, reply: { ...e.reply, src: bytes(to), sport: port } };
}

/** The flows of the events as recorded on a host with the LOCAL addresses (or none known). */
function flowsOf(evs: readonly CtEvent[], local: readonly string[] | null = LOCAL): Flow[] {
  const table = new FlowTable();
  const host = table.hostId('fw');
  if (local !== null)
    table.addHostAddresses(
      host,
      local.map((a) => ({ address: bytes(a) })),
    );
  for (const e of evs) table.add(e, host);
  return [...table.flows()];
}

/** A rule as `10.0.0.1,10.0.0.0/28 daddr tcp 80,443`: its group's members, destination and ports. */
const ruleText = (r: PlannedRule) =>
  [
    r.group?.members.map(formatCidr).join(',') ?? '*',
    r.daddr === undefined ? '' : `-> ${[...r.daddr].join('.')}`,
    r.icmpType === undefined
      ? `${r.proto === 6 ? 'tcp' : 'udp'} ${r.ports.map((p) => (p.from === p.to ? p.from : `${p.from}-${p.to}`)).join(',')}`
      : `icmp ${r.icmpType}`,
  ]
    .filter((x) => x !== '')
    .join(' ');
const lines = (plan: RulesPlan, chain: Chain) => plan[chain].rules.map(ruleText);

t.test(
  'rules: a DNAT to another host is forwarded, matched on the translated address and port; a redirect is input; what the host sends is output',
  async (t) => {
    const plan = planRules(
      flowsOf([
        at(
          dnat(ev(6, '198.51.100.7', '10.0.0.254', 40000, 80, CONFIRMED), '192.168.1.10', 8080),
          0,
        ),
        at(dnat(ev(6, '198.51.100.8', '10.0.0.254', 40000, 2222, CONFIRMED), '10.0.0.254', 22), 1),
        at(ev(6, '10.0.0.1', '192.168.1.20', 40000, 25, CONFIRMED), 2),
        at(ev(6, '10.0.0.254', '192.168.1.20', 40000, 25, CONFIRMED), 2),
        at(ev(6, '10.0.0.254', '10.0.0.254', 40000, 631, CONFIRMED), 3),
      ]),
    );
    t.strictSame(lines(plan, 'forward'), [
      '198.51.100.7 -> 192.168.1.10 tcp 8080',
      '10.0.0.1 -> 192.168.1.20 tcp 25',
    ]);
    t.strictSame(
      lines(plan, 'input'),
      ['198.51.100.8 tcp 22'],
      'a redirect to the host itself is input, on the port the service listens on',
    );
    t.strictSame(lines(plan, 'output'), ['* tcp 25'], 'what the host sends: its service, any peer');
    t.equal(plan.notFiltered.length, 1, 'the host talking to itself is listed, not planned');
  },
);

// --- property: the plan allows every confirmed flow, and nothing far from what was seen ---

interface Packet {
  chain: Chain;
  family: 4 | 6;
  proto: number;
  src: bigint;
  daddr: Uint8Array;
  dport: number;
  icmpType: number;
}

/** An independent reading of a planned rule: does it accept this packet? */
function accepts(r: PlannedRule, p: Packet): boolean {
  if (r.chain !== p.chain || r.family !== p.family || r.proto !== p.proto) return false;
  if (r.daddr !== undefined && Buffer.compare(r.daddr, p.daddr) !== 0) return false;
  if (r.group !== undefined && !r.group.members.some((c) => cidrContains(c, p.family, p.src)))
    return false;
  if (r.icmpType !== undefined) return r.icmpType === p.icmpType;
  return r.ports.some((x) => x.from <= p.dport && p.dport <= x.to);
}

function packetsOf(f: Flow): Packet[] {
  const dirs = f.direction ?? ['input'];
  const to = f.nat?.dst ?? { address: f.dst, port: f.dport };
  return (['input', 'forward'] as const)
    .filter((c) => dirs.includes(c))
    .map((chain) => ({
      chain,
      family: f.family,
      proto: f.proto,
      src: addressNumber(f.src),
      daddr: to.address,
      dport: to.port,
      icmpType: f.icmpType,
    }));
}

const arbV4 = fc
  .tuple(fc.constantFrom(0, 1, 128), fc.integer({ min: 0, max: 255 }))
  .map(([c, d]) => `10.0.${c}.${d}`);
const arbV6 = fc
  .tuple(fc.constantFrom('0', '1'), fc.integer({ min: 0, max: 0xffff }))
  .map(([g, h]) => `2001:db8:0:${g}::${h.toString(16)}`);
const arbEv = fc
  .record({
    v6: fc.boolean(),
    src: fc.tuple(arbV4, arbV6),
    dst: fc.constantFrom(0, 1, 2),
    proto: fc.constantFrom(6, 17, 1),
    dport: fc.constantFrom(22, 23, 24, 80, 443, 8080),
    type: fc.constantFrom(8, 13, 0),
    confirmed: fc.boolean(),
    nat: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
    time: fc.integer({ min: 0, max: 10_000 }),
  })
  .map((r) => {
    const family = r.v6 ? 6 : 4;
    const src = r.src[r.v6 ? 1 : 0];
    // 0: the firewall (input), 1 and 2: hosts behind it (forward).
    const dst = [
      LOCAL[r.v6 ? 1 : 0],
      r.v6 ? '2001:db8:1::1' : '192.168.1.1',
      r.v6 ? '2001:db8:1::2' : '192.168.1.2',
    ][r.dst] as string;
    const proto = r.proto === 1 && family === 6 ? 58 : r.proto;
    const icmp = proto === 1 || proto === 58;
    const type = family === 6 && r.type === 8 ? 128 : r.type;
    let e = ev(
      proto,
      src,
      dst,
      icmp ? 0 : 40000,
      icmp ? 0 : r.dport,
      r.confirmed ? CONFIRMED : UNREPLIED,
      [type, 0],
    );
    if (r.nat !== undefined && !icmp) {
      e = dnat(
        e,
        r.nat === 0 ? (LOCAL[r.v6 ? 1 : 0] as string) : r.v6 ? '2001:db8:1::9' : '192.168.1.9',
        8443,
      );
    }
    return at(e, r.time);
  });

/** The sources none of whose input/forward flows was established: failed ones (IPv6: per /64). */
function failedSources(flows: readonly Flow[]): Set<string> {
  const unit = (f: Flow) =>
    f.family === 4 ? `4/${addressNumber(f.src)}` : `6/${addressNumber(f.src) >> 64n}`;
  const tried = new Set<string>();
  const answered = new Set<string>();
  for (const f of flows) {
    if (packetsOf(f).length === 0) continue;
    // Echo needs no rule (the baseline admits it), so it is no evidence for a source either way.
    if ((f.proto === 1 && f.icmpType === 8) || (f.proto === 58 && f.icmpType === 128)) continue;
    tried.add(unit(f));
    if (evidenceOf(f) === 'established') answered.add(unit(f));
  }
  return new Set([...tried].filter((u) => !answered.has(u)));
}

t.test(
  'rules property: every established flow is allowed (echo by the baseline), no rule reaches a failed source, no prefix is wider than the max',
  async (t) => {
    checkProperty(
      t,
      fc.property(
        fc.array(arbEv, { maxLength: 40 }),
        fc.integer({ min: 16, max: 32 }),
        fc.integer({ min: 48, max: 128 }),
        (evs, m4, m6) => {
          const flows = flowsOf(evs);
          const plan = planRules(flows, { maxPrefix4: m4, maxPrefix6: m6 });
          const all = [...plan.input.rules, ...plan.forward.rules];
          const suspects = new Set(
            plan.scanSuspects.map((s) =>
              formatCidr({
                family: s.family,
                network: addressNumber(s.address),
                prefix: s.family === 4 ? 32 : 128,
              }),
            ),
          );
          const failed = failedSources(flows);
          for (const f of flows) {
            const echo =
              (f.proto === 1 && f.icmpType === 8) || (f.proto === 58 && f.icmpType === 128);
            const src = formatCidr({
              family: f.family,
              network: addressNumber(f.src),
              prefix: f.family === 4 ? 32 : 128,
            });
            for (const p of packetsOf(f)) {
              const hit = all.some((r) => accepts(r, p));
              if (evidenceOf(f) === 'established' && !echo && !suspects.has(src)) {
                assert.ok(hit, `established flow allowed: ${src} ${p.chain} ${p.proto}/${p.dport}`);
              }
              const u = f.family === 4 ? `4/${p.src}` : `6/${p.src >> 64n}`;
              if (failed.has(u))
                assert.ok(!hit, `failed source reached: ${src} ${p.proto}/${p.dport}`);
            }
          }
          for (const r of all) {
            for (const c of r.group?.members ?? []) {
              assert.ok(
                c.prefix >= (r.family === 4 ? m4 : m6),
                `${formatCidr(c)} no wider than the max`,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  },
);

// --- the CLI ---

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, 'rules', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test(
  'rules cli: nft to stdout or -o, iptables as BASE.v4 and BASE.v6, usage errors exit 2',
  async (t) => {
    const built = statSync(CLI, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (built < statSync(join(PACKAGE_ROOT, 'analyzer', 'rules', 'planner.ts')).mtimeMs) {
      t.fail(`${CLI} is missing or older than analyzer/rules/planner.ts: run npm run build first`);
      return;
    }
    const dir = tempDir(t, 'rules');
    const journal = join(dir, 'j.mpk');
    writeJournal(journal, [
      [
        ev(6, '10.0.0.1', '10.0.0.2', 40000, 80, CONFIRMED),
        ev(6, '10.0.0.9', '10.0.0.2', 40000, 80, CONFIRMED),
      ],
    ]);
    const nft = cli(journal);
    t.equal(nft.code, 0, nft.err);
    t.match(
      nft.out,
      /\n {4}elements = \{ 10\.0\.0\.1, 10\.0\.0\.9 \}\n/,
      'two sparse hosts stay two',
    );
    t.match(
      nft.out,
      /\n {4}ip saddr @hosts4_1 tcp dport 80 counter accept comment "2 flows, first 2025-/,
    );
    t.equal(cli('-o', join(dir, 'r.nft'), journal).code, 0);
    t.equal(readFileSync(join(dir, 'r.nft'), 'utf8'), nft.out, '-o writes what stdout shows');
    const base = join(dir, 'rules');
    t.equal(cli('--format', 'iptables', '-o', base, journal).code, 0);
    t.ok(existsSync(`${base}.v4`) && existsSync(`${base}.v6`), 'BASE.v4 and BASE.v6 are written');
    t.match(
      readFileSync(`${base}.v4`, 'utf8'),
      /\n-A CT-INPUT -s 10\.0\.0\.1,10\.0\.0\.9 -p tcp --dport 80 /,
    );
    const both = cli('--format', 'iptables', journal);
    t.equal(
      both.out,
      `${readFileSync(`${base}.v4`, 'utf8')}# ip6tables-restore:\n${readFileSync(`${base}.v6`, 'utf8')}`,
      'stdout holds both parts, separated',
    );
    t.equal(
      cli('--format', 'iptables', '--family', '6', journal).out,
      readFileSync(`${base}.v6`, 'utf8'),
    );
    const famNft = cli('--family', '4', journal);
    t.equal(famNft.code, 2);
    t.match(famNft.err, /--family applies to --format iptables only/);
    t.equal(cli('--max-prefix4', 'x', journal).code, 2);
    const wide = cli('--max-prefix4', '40', journal);
    t.equal(wide.code, 2);
    t.match(wide.err, /--max-prefix4 must be a whole number from 0 to 32/);
    t.notMatch(wide.err, /\n\s+at /, 'no stack trace for a user error');
    for (const [args, message] of [
      [['--min-density', '0'], /--min-density/],
      [['--min-density', '1.5'], /--min-density/],
      [['--sensitive', 'tcp/99999'], /not a port/],
      [['--scan-ports', '1'], /--scan-ports must be a whole number of at least 2/],
      [['--output-chain', 'off'], /--output-chain/],
    ] as const) {
      const r = cli(...args, journal);
      t.equal(r.code, 2, args.join(' '));
      t.match(r.err, message);
    }
    const noLog = cli('--no-log', '--output-chain', 'none', journal);
    t.notMatch(noLog.out, /log prefix|chain output/, '--no-log and --output-chain none');
    const pinned = cli('--sensitive', '80', journal);
    t.match(
      pinned.out,
      /ip saddr @hosts4_1 tcp dport 80 /,
      '--sensitive pins 80 to the exact hosts',
    );
  },
);
