// The writers' output in the kernel: iptables-restore --noflush next to fail2ban's and Docker's chains (both survive), the hooks idempotent, a reload replacing only our rules; nft's table beside another.
import '../../helpers/kernel.js';
import t from 'tap';
import type { EmitOptions } from '../../../analyzer/rules/emit.js';
import { iptablesRuleset } from '../../../analyzer/rules/iptables.js';
import type { RulesPlan } from '../../../analyzer/rules/model.js';
import { nftRuleset } from '../../../analyzer/rules/nft.js';
import { makeNetns, run } from '../../helpers/netns.js';
import {
  DEFAULTS,
  edgePlan,
  OPTION_SETS,
  optText,
  plannedServer,
  reviewPlan,
} from '../../helpers/rules-plans.js';

const PLANS: [string, () => RulesPlan][] = [
  ['review', reviewPlan],
  ['edge', edgePlan],
  ['planned', () => plannedServer({ allowOneWay: true })],
];

function inNs(ns: string, argv: string[], input?: string) {
  return run(['ip', 'netns', 'exec', ns, ...argv], {
    check: false,
    timeoutMs: 20_000,
    ...(input === undefined ? {} : { input }),
  });
}

const ipt = (plan: RulesPlan, family: 4 | 6, opts: Partial<EmitOptions> = {}) =>
  [...iptablesRuleset(plan, family, { ...DEFAULTS, ...opts })].join('');

/** What fail2ban and Docker leave in table filter: their chains, their jumps, FORWARD dropping. */
function otherTools(tool: string, family: 4 | 6): string[][] {
  const banned = family === 4 ? '192.0.2.9' : '2001:db8:bad::9';
  const docker = family === 4 ? '198.51.100.0/24' : '2001:db8:d0c::/48';
  return [
    [tool, '-N', 'f2b-sshd'],
    [tool, '-A', 'f2b-sshd', '-s', banned, '-j', 'REJECT'],
    [tool, '-A', 'f2b-sshd', '-j', 'RETURN'],
    [tool, '-I', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'f2b-sshd'],
    [tool, '-N', 'DOCKER-USER'],
    [tool, '-A', 'DOCKER-USER', '-s', docker, '-j', 'DROP'],
    [tool, '-A', 'DOCKER-USER', '-j', 'RETURN'],
    [tool, '-A', 'FORWARD', '-j', 'DOCKER-USER'],
    [tool, '-P', 'FORWARD', 'DROP'],
  ];
}

/** `iptables -S` lines of everything that is not ours. */
const notOurs = (listing: string) =>
  listing.split('\n').filter((l) => l !== '' && !/\bCT-(INPUT|FORWARD|OUTPUT)\b/.test(l));

for (const family of [4, 6] as const) {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  t.test(
    `${tool}-restore --noflush: other tools' chains, rules and policies survive; hooks once; a reload replaces only ours`,
    async (t) => {
      const ns = makeNetns(t, family === 4 ? 'iptemitfour' : 'iptemitsix');
      for (const argv of otherTools(tool, family)) {
        const r = await inNs(ns, argv);
        t.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
      }
      const before = notOurs((await inNs(ns, [tool, '-S'])).stdout);
      t.ok(before.includes('-A f2b-sshd -j RETURN') && before.includes('-P FORWARD DROP'));

      const text = ipt(reviewPlan(), family);
      const load = await inNs(ns, [`${tool}-restore`, '--noflush'], text);
      t.equal(load.code, 0, `${tool}-restore --noflush loads it: ${load.stderr}`);
      const hooks = text
        .split('\n')
        .filter((l) => l.startsWith(`#   ${tool} -C `))
        .map((l) => l.slice(4));
      t.equal(hooks.length, 3, 'the header gives three hook commands');
      for (const round of [1, 2]) {
        for (const hook of hooks) {
          const r = await inNs(ns, ['sh', '-c', hook]);
          t.equal(r.code, 0, `round ${round}: ${hook}: ${r.stderr}`);
        }
      }
      const loaded = (await inNs(ns, [tool, '-S'])).stdout;
      for (const chain of ['INPUT', 'FORWARD', 'OUTPUT']) {
        const jumps = loaded.split('\n').filter((l) => l === `-A ${chain} -j CT-${chain}`);
        t.equal(jumps.length, 1, `hooking twice leaves one jump from ${chain}`);
      }
      t.strictSame(
        notOurs(loaded).filter((l) => !/^-A (INPUT|FORWARD|OUTPUT) -j CT-/.test(l)),
        before,
        "fail2ban's and Docker's chains, their rules and jumps, and every policy are as they were",
      );
      const ours = loaded.split('\n').filter((l) => l.startsWith('-A CT-INPUT '));
      t.ok(
        ours.some((l) =>
          l.includes(family === 4 ? '-s 10.66.11.0/25 ' : '-s 2001:db8:66:10::/64 '),
        ),
        'a group member became its own rule',
      );

      const again = await inNs(ns, [`${tool}-restore`, '--noflush'], text);
      t.equal(again.code, 0, `a reload succeeds: ${again.stderr}`);
      t.equal(
        (await inNs(ns, [tool, '-S'])).stdout,
        loaded,
        'a reload replaces our rules instead of doubling them, and leaves the rest',
      );
    },
  );

  t.test(
    `${tool}-restore --test --noflush accepts every plan (hand-built and the planner's) with every option`,
    async (t) => {
      const ns = makeNetns(t, family === 4 ? 'ipttestfour' : 'ipttestsix');
      for (const [name, plan] of PLANS) {
        for (const o of OPTION_SETS) {
          const r = await inNs(
            ns,
            [`${tool}-restore`, '--test', '--noflush'],
            ipt(plan(), family, o),
          );
          t.equal(r.code, 0, `${name} ${optText(o)}: ${r.stderr}`);
        }
      }
    },
  );
}

t.test(
  "nft -f loads the table beside another tool's table, and a reload replaces only ours",
  async (t) => {
    const ns = makeNetns(t, 'nftemit');
    const other =
      'table inet f2b-table {\n  chain input {\n    type filter hook input priority filter - 1; policy accept;\n    ip saddr 192.0.2.9 counter drop\n  }\n}\n';
    t.equal((await inNs(ns, ['nft', '-f', '-'], other)).code, 0);
    const text = [...nftRuleset(reviewPlan(), DEFAULTS)].join('');
    for (const round of [1, 2]) {
      const r = await inNs(ns, ['nft', '-f', '-'], text);
      t.equal(r.code, 0, `load ${round}: ${r.stderr}`);
    }
    const listed = (await inNs(ns, ['nft', 'list', 'tables'])).stdout;
    t.match(listed, /table inet f2b-table/, "the other tool's table is still there");
    const ours = (await inNs(ns, ['nft', 'list', 'table', 'inet', 'conntracker'])).stdout;
    t.equal(
      (ours.match(/\bset clients4_1 \{/g) ?? []).length,
      1,
      'one copy of each set after two loads',
    );
    t.equal((ours.match(/\bchain output \{/g) ?? []).length, 1, 'one output chain');
    t.match(ours, /ip saddr @clients4_1 tcp dport \{ 80, 443 \} counter packets 0 bytes 0 accept/);
    const f2b = (await inNs(ns, ['nft', 'list', 'table', 'inet', 'f2b-table'])).stdout;
    t.match(f2b, /ip saddr 192\.0\.2\.9 counter packets 0 bytes 0 drop/, 'its rule is intact');
  },
);
