// ct-analyze diff: the merge walk against a naive keyed reference, its text and JSON, the CLI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import t from 'tap';
import { runDiff } from '../../../analyzer/commands/run/diff.js';
import { type Collapse, compareFlows, type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import { type Change, changeLine, diffFlows } from '../../../analyzer/diff/diff.js';
import { flowJson } from '../../../analyzer/report/json.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import type { CtEvent } from '../../../journal/event.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { arbMode, ev, SEED_EVENTS, tempDir, writeJournal } from '../fixtures.js';

const RUNS = { numRuns: 300 };

const flowsOf = (evs: readonly CtEvent[], collapse: Collapse): Flow[] => {
  const table = new FlowTable({ collapse });
  table.addAll(evs);
  return [...table.flows()];
};

/** One pool of connections, each event in BEFORE, AFTER or both: sides that overlap. */
const arbSides = arbFlowEvents().chain((evs) =>
  fc
    .array(fc.constantFrom('before', 'after', 'both'), {
      minLength: evs.length,
      maxLength: evs.length,
    })
    .map((where) => ({
      before: evs.filter((_, i) => where[i] !== 'after'),
      after: evs.filter((_, i) => where[i] !== 'before'),
    })),
);

/** The reference: flows keyed by their JSON without confirmation and hosts. */
function keyOf(f: Flow): string {
  // The key: what the flow is, not what was seen of it (confirmation, hosts, times, NAT).
  const { confirmed: _c, hosts: _h, firstSeen: _f, lastSeen: _l, nat: _n, ...key } = flowJson(f);
  return JSON.stringify(key);
}

function naiveDiff(before: Flow[], after: Flow[]) {
  const was = new Map(before.map((f) => [keyOf(f), f.confirmed]));
  const is = new Map(after.map((f) => [keyOf(f), f.confirmed]));
  return {
    appeared: after.filter((f) => !was.has(keyOf(f))).map(keyOf),
    disappeared: before.filter((f) => !is.has(keyOf(f))).map(keyOf),
    changed: after.filter((f) => was.has(keyOf(f)) && was.get(keyOf(f)) !== f.confirmed),
    unchanged: after.filter((f) => was.get(keyOf(f)) === f.confirmed).length,
  };
}

const ofKind = (changes: Change[], kind: Change['kind']) =>
  changes.filter((c) => c.kind === kind).map((c) => c.flow);

t.test('diff: a table against itself has no differences, every flow unchanged', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents(), arbMode, (evs, mode) => {
      const flows = flowsOf(evs, mode);
      const d = diffFlows(flows, flowsOf(evs, mode));
      assert.deepEqual(d.changes, []);
      assert.deepEqual(d.counts, {
        appeared: 0,
        disappeared: 0,
        changed: 0,
        unchanged: flows.length,
      });
    }),
    RUNS,
  );
});

t.test('diff: the merge walk finds what a keyed reference finds, in sort order', async (t) => {
  checkProperty(
    t,
    fc.property(arbSides, arbMode, ({ before, after }, mode) => {
      const b = flowsOf(before, mode);
      const a = flowsOf(after, mode);
      const d = diffFlows(b, a);
      const ref = naiveDiff(b, a);
      assert.deepEqual(ofKind(d.changes, 'appeared').map(keyOf), ref.appeared);
      assert.deepEqual(ofKind(d.changes, 'disappeared').map(keyOf), ref.disappeared);
      assert.deepEqual(ofKind(d.changes, 'changed'), ref.changed);
      assert.equal(d.counts.unchanged, ref.unchanged);
      assert.equal(d.counts.appeared + d.counts.unchanged + d.counts.changed, a.length);
      assert.equal(d.counts.disappeared + d.counts.unchanged + d.counts.changed, b.length);
      for (let i = 1; i < d.changes.length; i++) {
        const [x, y] = [d.changes[i - 1], d.changes[i]] as [Change, Change];
        assert.ok(compareFlows(x.flow, y.flow) < 0, 'changes come in sort order');
      }
    }),
    RUNS,
  );
});

t.test('diff: swapping the sides swaps appeared and disappeared and turns changes', async (t) => {
  checkProperty(
    t,
    fc.property(arbSides, arbMode, ({ before, after }, mode) => {
      const b = flowsOf(before, mode);
      const a = flowsOf(after, mode);
      const there = diffFlows(b, a);
      const back = diffFlows(a, b);
      assert.deepEqual(ofKind(back.changes, 'appeared'), ofKind(there.changes, 'disappeared'));
      assert.deepEqual(ofKind(back.changes, 'disappeared'), ofKind(there.changes, 'appeared'));
      const turned = ofKind(there.changes, 'changed').map((f) => keyOf(f) + !f.confirmed);
      assert.deepEqual(
        ofKind(back.changes, 'changed').map((f) => keyOf(f) + f.confirmed),
        turned,
      );
      assert.equal(back.counts.unchanged, there.counts.unchanged);
    }),
    RUNS,
  );
});

t.test('diff: compareFlows is the table order, and unsorted input is refused', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents(), arbMode, (evs, mode) => {
      const flows = flowsOf(evs, mode);
      for (let i = 1; i < flows.length; i++) {
        assert.ok(compareFlows(flows[i - 1] as Flow, flows[i] as Flow) < 0);
      }
    }),
    RUNS,
  );
  const seed = flowsOf(SEED_EVENTS, { kind: '1024' });
  t.throws(() => diffFlows([...seed].reverse(), seed), /not in sort order/);
});

/** A Writable that keeps what is written to it. */
function sink(): { out: Writable; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { out, text: () => text };
}

const dir = tempDir(t, 'diff');
const before = join(dir, 'before.mpk');
const after = join(dir, 'after.mpk');
const same = join(dir, 'same.mpk');
// After: the first TCP flow gone, DHCP now replied, 8.8.8.8 no longer replied, SSH new.
writeJournal(before, [SEED_EVENTS]);
writeJournal(same, [SEED_EVENTS]);
writeJournal(after, [
  [
    ...SEED_EVENTS.filter((e) => e.orig.dport !== 53 && e.orig.sport !== 40414),
    ev(17, '192.168.100.203', '8.8.8.8', 53798, 53, 0x08),
    ev(17, '0.0.0.0', '255.255.255.255', 68, 67, 0x0a),
    ev(6, '10.0.0.1', '10.0.0.2', 40000, 22, 0x0a),
  ],
]);

const RANGE = '2025-11-27T07:53:20.000Z → 07:54:20.000Z (1 min 0 s)';
/** What every fixture journal is warned about: one minute long, kernel timestamps off. */
const fixtureWarnings = (path: string) => [
  `# WARNING: ${path}: the recording covers only 1 min 0 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall`,
  `# WARNING: ${path}: nf_conntrack_timestamp=0: last-seen times are when events arrived (an ended flow is reported 10–40 s late); set net.netfilter.nf_conntrack_timestamp=1 before recording`,
];

const EXPECTED_TEXT = [
  `# before: ${before}: host testhost, netns net:[4026531840], ${RANGE}`,
  ...fixtureWarnings(before),
  `# after: ${after}: host testhost, netns net:[4026531840], ${RANGE}`,
  ...fixtureWarnings(after),
  '# 1 appeared, 1 disappeared, 2 changed, 5 unchanged',
  '+  TCPv4 src = 10.0.0.1 (port=1024) to dst = 10.0.0.2 (port=22) (confirmed)',
  '-  TCPv4 src = 192.168.100.118 (port=1024) to dst = 65.8.205.11 (port=443) (confirmed)',
  '~  UDPv4 src = 0.0.0.0 (port=68) to dst = 255.255.255.255 (port=67) (unconfirmed → confirmed)',
  '~  UDPv4 src = 192.168.100.203 (port=1024) to dst = 8.8.8.8 (port=53) (confirmed → unconfirmed)',
];

t.test('diff: text report names both journals, counts, then + - ~ lines exactly', async (t) => {
  const s = sink();
  const warnings: string[] = [];
  const code = await runDiff(
    {
      before: [before],
      after: [after],
      format: 'text',
      collapse: { kind: '1024' },
      exitCode: false,
    },
    { stdout: s.out, warn: (m) => warnings.push(m) },
  );
  t.equal(code, 0, 'differences are not a failure without --exit-code');
  t.equal(s.text(), `${EXPECTED_TEXT.join('\n')}\n`);
  t.same(warnings, []);
});

t.test('diff: ICMP lines and --collapse none keep real ports and type/code', async (t) => {
  const flows = flowsOf(SEED_EVENTS, { kind: 'none' });
  const lines = flows.map((flow) => changeLine({ kind: 'appeared', flow }));
  t.equal(
    lines[1],
    '+  TCPv4 src = 192.168.100.111 (port=51002) to dst = 157.240.12.54 (port=443) (confirmed)',
  );
  t.equal(
    lines.find((l) => l.includes('ICMPv6')),
    '+ ICMPv6 src = 2001:db8::10 to dst = 2606:4700:4700::1111 (type=128 | code=0) (confirmed)',
  );
  const [gone] = flowsOf([ev(1, '10.0.0.1', '10.0.0.2', 0, 0, 0x08, [3, 1])], { kind: '1024' });
  t.equal(
    changeLine({ kind: 'disappeared', flow: gone as Flow }),
    '- ICMPv4 src = 10.0.0.1 to dst = 10.0.0.2 (type=3 | code=1)',
  );
});

t.test('diff: JSON report parses and holds the same differences', async (t) => {
  const out = join(dir, 'diff.json');
  const code = await runDiff(
    {
      before: [before],
      after: [after],
      format: 'json',
      output: out,
      collapse: { kind: 'range', lo: 32768, hi: 60999 },
      exitCode: true,
    },
    { stdout: sink().out, warn: () => {} },
  );
  t.equal(code, 1, '--exit-code: 1 when there are differences');
  const doc = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(doc.format, 'conntracker-diff');
  t.equal(doc.version, 1);
  t.equal(doc.collapse, '32768-60999');
  t.same(
    [doc.before.length, doc.before[0].path, doc.after[0].path, doc.after[0].host],
    [1, before, after, 'testhost'],
  );
  t.equal(doc.before[0].coverage.events, SEED_EVENTS.length);
  t.same(doc.counts, { appeared: 1, disappeared: 1, changed: 2, unchanged: 5 });
  const hosts = ['testhost'];
  // Each flow as the JSON report writes it (its times too: checked to be numbers below).
  const times = (f: { firstSeen: unknown; lastSeen: unknown }) =>
    typeof f.firstSeen === 'number' && typeof f.lastSeen === 'number';
  t.ok([...doc.appeared, ...doc.disappeared, ...doc.changed].every(times), 'first/last seen');
  t.has(doc.appeared, [
    {
      table: 'TCPv4',
      proto: 'tcp',
      src: '10.0.0.1',
      dst: '10.0.0.2',
      sport: 32768,
      dport: 22,
      confirmed: true,
      hosts,
    },
  ]);
  t.equal(doc.appeared.length, 1);
  t.equal(doc.disappeared.length, 1);
  t.has(doc.disappeared, [
    {
      table: 'TCPv4',
      proto: 'tcp',
      src: '192.168.100.118',
      dst: '65.8.205.11',
      sport: 32768,
      dport: 443,
      confirmed: true,
      hosts,
    },
  ]);
  t.same(
    doc.changed.map((c: { dst: string; confirmed: boolean; before: unknown }) => [
      c.dst,
      c.confirmed,
      c.before,
    ]),
    [
      ['255.255.255.255', true, { confirmed: false }],
      ['8.8.8.8', false, { confirmed: true }],
    ],
  );
  t.same(
    doc.changed.map((c: { sport: number }) => c.sport),
    [68, 32768],
    'ports inside the range become its start, others stay',
  );
});

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, 'diff', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test('diff cli: exit 0, 1 with --exit-code on differences, 2 for one journal', async (t) => {
  const built = statSync(CLI, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (built < statSync(join(PACKAGE_ROOT, 'analyzer', 'diff', 'diff.ts')).mtimeMs) {
    t.fail(`${CLI} is missing or older than analyzer/diff/diff.ts: run npm run build first`);
    return;
  }
  const plain = cli(before, after);
  t.equal(plain.code, 0);
  t.equal(plain.out, `${EXPECTED_TEXT.join('\n')}\n`);
  t.equal(cli('--exit-code', before, after).code, 1);
  const none = cli('--exit-code', before, same);
  t.equal(none.code, 0, '--exit-code: 0 when nothing differs');
  t.match(none.out, /\n# 0 appeared, 0 disappeared, 0 changed, 8 unchanged\n$/);
  const one = cli(before);
  t.equal(one.code, 2);
  t.match(one.err, /missing required argument 'after'/);
  t.equal(cli(before, after, same).code, 2, 'a third journal is a usage error');
  const missing = cli(before, join(dir, 'nope.mpk'));
  t.equal(missing.code, 1);
  t.match(missing.err, /^ct-analyze: .*nope\.mpk/);
  t.notMatch(missing.err, /\n\s+at /, 'no stack trace for a user error');
});
