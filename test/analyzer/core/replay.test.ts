// Replay: journals written by the journal writer give the table built from the same events.
import assert from 'node:assert/strict';
import { mkdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { FlowTable, formatCollapse, parseCollapse } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { flowJson } from '../../../analyzer/report/json.js';
import { formatFlowLine, textLines } from '../../../analyzer/report/text.js';
import type { CtEvent } from '../../../journal/event.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER } from '../../helpers/journals.js';
import { gap, writeItems } from '../../journal/fixtures.js';
import { ev, SEED_EVENTS, SEED_LINES, tempDir, writeJournal } from '../fixtures.js';

t.test('replay: a journal replays to the same lines as the live table of its events', async (t) => {
  const dir = tempDir(t, 'replay');
  let n = 0;
  const arbCase = arbFlowEvents().chain((evs) =>
    fc.record({
      evs: fc.constant(evs),
      cuts: fc.uniqueArray(fc.nat(evs.length), { maxLength: 5 }),
    }),
  );
  checkProperty(
    t,
    fc.property(arbCase, ({ evs, cuts }) => {
      const bounds = [0, ...cuts.sort((a, b) => a - b), evs.length];
      const batches = bounds.slice(1).map((end, i) => evs.slice(bounds[i], end));
      const path = join(dir, `j${n++}.mpk`);
      writeJournal(path, batches);
      const live = new FlowTable();
      live.addAll(evs, live.hostId(HEADER.host));
      const { table, journals } = analyzeJournals([path]);
      assert.deepEqual([...textLines(table.flows())], [...textLines(live.flows())]);
      // Every fact of every flow, NAT included (the reader's columns and live events agree).
      assert.deepEqual([...table.flows()].map(flowJson), [...live.flows()].map(flowJson));
      assert.deepEqual(table.skipped, live.skipped);
      assert.equal(journals[0]?.events, evs.length);
    }),
    { numRuns: 60 },
  );
});

t.test(
  'merge: analyzing journals a and b equals analyzing their concatenation, any order',
  async (t) => {
    const dir = tempDir(t, 'merge');
    let n = 0;
    const split = arbFlowEvents({ maxLength: 80 }).chain((evs) =>
      fc.record({ evs: fc.constant(evs), cut: fc.nat(evs.length), hostB: fc.boolean() }),
    );
    checkProperty(
      t,
      fc.property(split, ({ evs, cut, hostB }) => {
        const a = join(dir, `a${n}.mpk`);
        const b = join(dir, `b${n}.mpk`);
        const ab = join(dir, `ab${n++}.mpk`);
        writeJournal(a, [evs.slice(0, cut)]);
        // b from another host half of the time: hosts differ, flows and confirmations must not.
        writeJournalAs(b, [evs.slice(cut)], hostB ? 'otherhost' : HEADER.host);
        writeJournal(ab, [evs]);
        const whole = analyzeJournals([ab]).table;
        const expected = [...textLines(whole.flows())];
        for (const order of [
          [a, b],
          [b, a],
        ]) {
          const merged = analyzeJournals(order).table;
          assert.deepEqual([...textLines(merged.flows())], expected);
          assert.deepEqual(merged.skipped, whole.skipped);
          const hosts = [...merged.flows()].map((f) => f.hosts.join(','));
          if (!hostB)
            assert.deepEqual(
              hosts,
              [...whole.flows()].map((f) => f.hosts.join(',')),
            );
        }
      }),
      { numRuns: 60 },
    );
  },
);

t.test('merge: flows name the hosts they were recorded on', async (t) => {
  const dir = tempDir(t, 'hosts');
  const a = join(dir, 'fw1.mpk');
  const b = join(dir, 'fw2.mpk');
  writeJournalAs(a, [SEED_EVENTS.slice(0, 5)], 'fw1');
  writeJournalAs(b, [SEED_EVENTS.slice(3)], 'fw2');
  const { table } = analyzeJournals([b, a]);
  const keys = (p: string) =>
    new Set([...analyzeJournals([p]).table.flows()].map((f) => formatFlowLine(f, 0)));
  const [inA, inB] = [keys(a), keys(b)];
  const got = [...table.flows()].map((f) => f.hosts.join(','));
  const expected = [...table.flows()].map((f) => {
    const key = formatFlowLine(f, 0);
    return [inA.has(key) ? 'fw1' : '', inB.has(key) ? 'fw2' : ''].filter(Boolean).join(',');
  });
  t.strictSame(got, expected);
  t.ok(got.includes('fw1,fw2') && got.includes('fw1') && got.includes('fw2'), 'all three cases');
  t.equal(got.length, SEED_LINES.length);
});

function writeJournalAs(path: string, batches: CtEvent[][], host: string): void {
  const w = JournalWriter.create(path, { ...HEADER, host });
  for (const batch of batches) w.append(batch);
  w.close({ stop: HEADER.start + 60_000_000 });
}

t.test('replay: several journals give the union of their flows, one summary each', async (t) => {
  const dir = tempDir(t, 'union');
  const a = join(dir, 'a.mpk');
  const b = join(dir, 'b.mpk');
  writeJournal(a, [SEED_EVENTS.slice(0, 5)]);
  writeJournal(b, [SEED_EVENTS.slice(3), SEED_EVENTS.slice(0, 2)]);
  const warnings: string[] = [];
  const { table, journals } = analyzeJournals([a, b], { warn: (m) => warnings.push(m) });
  t.strictSame(
    [...textLines(table.flows())],
    SEED_LINES.map((l) => `${l}\n`),
  );
  t.strictSame(warnings, []);
  t.strictSame(
    journals.map((j) => [j.path, j.events, j.complete, j.ignoredBytes, j.host]),
    [
      [a, 5, true, 0, 'testhost'],
      [b, 9, true, 0, 'testhost'],
    ],
  );
  t.equal(journals[0]?.stop, 1_764_230_060_000_000);
});

t.test('replay: gaps are counted per journal and per cause, and the loss is warned', async (t) => {
  const dir = tempDir(t, 'gaps');
  const lossy = join(dir, 'lossy.mpk');
  writeItems(lossy, [
    SEED_EVENTS.slice(0, 3),
    gap({ lost: 10 }),
    gap({ lost: 0, lostKnown: false, cause: 'QUEUE' }),
    SEED_EVENTS.slice(3),
    gap({ lost: 5, cause: '__proto__' }),
  ]);
  const whole = join(dir, 'whole.mpk');
  writeJournal(whole, [SEED_EVENTS]);
  const warnings: string[] = [];
  const { table, journals } = analyzeJournals([lossy, whole], { warn: (m) => warnings.push(m) });
  t.strictSame(
    [...textLines(table.flows())],
    SEED_LINES.map((l) => `${l}\n`),
    'gaps change no flow',
  );
  const c = journals[0]?.coverage;
  t.same([c?.gaps, c?.lost, c?.lostKnown, c?.complete], [3, 15, false, true]);
  t.same(Object.entries(c?.byCause ?? {}), [
    ['ENOBUFS', { gaps: 1, lost: 10 }],
    ['QUEUE', { gaps: 1, lost: 0 }],
    ['__proto__', { gaps: 1, lost: 5 }],
  ]);
  t.same(c?.byType, { new: SEED_EVENTS.length, update: 0, destroy: 0, snapshot: 0 });
  t.same(
    [journals[1]?.coverage.gaps, journals[1]?.coverage.warnings.filter((w) => /lost/.test(w))],
    [0, []],
  );
  t.strictSame(warnings, [
    `${lossy}: at least 15 events lost in 3 gaps (kernel buffer overrun, recorder queue full, __proto__): flows may be missing; record with a larger --buffer-size; record to a faster disk or keep fewer events (-e, -p, --mark); see ct-record’s messages`,
  ]);
});

t.test('replay: collapse none keeps the real source ports', async (t) => {
  const dir = tempDir(t, 'none');
  const path = join(dir, 'j.mpk');
  writeJournal(path, [SEED_EVENTS]);
  const { table } = analyzeJournals([path], { collapse: { kind: 'none' } });
  const sports = [...table.flows()].filter((f) => f.table === 'TCPv4').map((f) => f.sport);
  t.strictSame(sports, [51000, 51002, 40414]);
});

t.test('replay: a torn tail and a missing trailer are warnings, not failures', async (t) => {
  const dir = tempDir(t, 'torn');
  const torn = join(dir, 'torn.mpk');
  writeJournal(torn, [SEED_EVENTS.slice(0, 5), SEED_EVENTS.slice(5)], false);
  truncateSync(torn, statSync(torn).size - 3);
  const open = join(dir, 'open.mpk');
  writeJournal(open, [SEED_EVENTS.slice(0, 5)], false);
  const warnings: string[] = [];
  const { table, journals } = analyzeJournals([torn, open], { warn: (m) => warnings.push(m) });
  t.equal(table.size, 4, 'the flows of the complete frames');
  t.match(warnings[0], /torn\.mpk: ignored \d+ trailing bytes \(recording did not end cleanly\)$/);
  t.match(warnings[1], /open\.mpk: no trailer \(recording did not end cleanly\)/);
  t.equal(warnings.length, 2);
  t.strictSame(
    journals.map((j) => [j.complete, j.stop, j.events]),
    [
      [false, null, 5],
      [false, null, 5],
    ],
  );
  t.strictSame(
    journals.map((j) => [
      j.coverage.endFrom,
      j.coverage.end,
      j.coverage.warnings.filter((w) => /did not end cleanly/.test(w)).length,
    ]),
    [
      ['last-event', SEED_EVENTS[0]?.time, 1],
      ['last-event', SEED_EVENTS[0]?.time, 1],
    ],
  );
  t.ok((journals[0]?.ignoredBytes ?? 0) > 0);
});

t.test('replay: a missing file or a directory is a CtError naming the path', async (t) => {
  const dir = tempDir(t, 'missing');
  t.throws(() => analyzeJournals([join(dir, 'nope.mpk')]), {
    name: 'CtError',
    code: 'ENOENT',
    exit: 1,
    message: /^cannot open .*nope\.mpk: no such file/,
  });
  const sub = join(dir, 'sub.mpk');
  mkdirSync(sub);
  t.throws(() => analyzeJournals([sub]), { name: 'CtError', message: /sub\.mpk/ });
});

t.test('collapse ephemeral: only ports in each host recorded range collapse', async (t) => {
  const dir = tempDir(t, 'ephemeral');
  const withRange = (path: string, range: [number, number] | null, sports: number[]) => {
    const w = JournalWriter.create(path, {
      ...HEADER,
      sysctls: { ...HEADER.sysctls, ip_local_port_range: range },
    });
    w.append(sports.map((sport) => ev(17, '10.0.0.1', '10.0.0.2', sport, 53, 0x0e)));
    w.close({ stop: HEADER.start + 1 });
  };
  const a = join(dir, 'a.mpk');
  const b = join(dir, 'b.mpk');
  const none = join(dir, 'none.mpk');
  withRange(a, [40000, 50000], [123, 500, 1025, 40000, 45000, 50001, 61000]);
  withRange(b, [50001, 60000], [50001, 55000]);
  withRange(none, null, [123, 33000, 61000]);
  const mode = parseCollapse('ephemeral');
  const sports = (paths: string[], warn?: (m: string) => void) =>
    [...analyzeJournals(paths, { collapse: mode, ...(warn ? { warn } : {}) }).table.flows()].map(
      (f) => f.sport,
    );
  t.strictSame(sports([a]), [123, 500, 1025, 40000, 50001, 61000], 'well-known ports keep theirs');
  t.strictSame(sports([a, b]), [123, 500, 1025, 40000, 50001, 61000], "each journal's own range");
  const warnings: string[] = [];
  t.strictSame(
    sports([none], (m) => warnings.push(m)),
    [123, 32768, 61000],
    'Linux default',
  );
  t.match(warnings, [/none\.mpk does not record the host's ip_local_port_range: .* 32768-60999/]);
  t.equal(formatCollapse(mode), 'ephemeral');
});

t.test(
  'nat: translations seen are kept per flow, the first one and whether others came',
  async (t) => {
    const dnat = (sport: number, to: string, port: number): CtEvent => {
      const e = ev(6, '198.51.100.7', '203.0.113.1', sport, 443, 0x0e);
      return {
        ...e,
        reply: { ...e.reply, src: Uint8Array.from(to.split('.').map(Number)), sport: port },
      };
    };
    const snat = (sport: number, to: string, port: number): CtEvent => {
      const e = ev(17, '10.0.0.2', '9.9.9.9', sport, 53, 0x0e);
      return {
        ...e,
        reply: { ...e.reply, dst: Uint8Array.from(to.split('.').map(Number)), dport: port },
      };
    };
    const dir = tempDir(t, 'nat');
    const path = join(dir, 'nat.mpk');
    const events = [
      dnat(40000, '10.0.0.5', 8443),
      dnat(40001, '10.0.0.5', 8443),
      dnat(50000, '10.0.0.5', 8443),
      dnat(50001, '10.0.0.6', 8443),
      snat(40000, '203.0.113.1', 61000),
      snat(40001, '203.0.113.1', 61001),
      ev(6, '10.0.0.2', '10.0.0.3', 40000, 22, 0x0e),
    ];
    writeJournal(path, [events]);
    const { table } = analyzeJournals([path], { collapse: { kind: 'none' } });
    const lines = [...textLines(table.flows(), { nat: true })].map((l) => l.slice(22).trimEnd());
    t.strictSame(lines, [
      'src = 10.0.0.2 (port=40000) to dst = 10.0.0.3 (port=22) (confirmed)',
      'src = 198.51.100.7 (port=40000) to dst = 203.0.113.1 (port=443) (confirmed) (DNAT to 10.0.0.5:8443)',
      'src = 198.51.100.7 (port=40001) to dst = 203.0.113.1 (port=443) (confirmed) (DNAT to 10.0.0.5:8443)',
      'src = 198.51.100.7 (port=50000) to dst = 203.0.113.1 (port=443) (confirmed) (DNAT to 10.0.0.5:8443)',
      'src = 198.51.100.7 (port=50001) to dst = 203.0.113.1 (port=443) (confirmed) (DNAT to 10.0.0.6:8443)',
      'src = 10.0.0.2 (port=40000) to dst = 9.9.9.9 (port=53) (confirmed) (SNAT to 203.0.113.1)',
      'src = 10.0.0.2 (port=40001) to dst = 9.9.9.9 (port=53) (confirmed) (SNAT to 203.0.113.1)',
    ]);
    const collapsed = analyzeJournals([path]).table;
    const merged = [...textLines(collapsed.flows(), { nat: true })].map((l) =>
      l.slice(22).trimEnd(),
    );
    t.strictSame(
      merged,
      [
        'src = 10.0.0.2 (port=1024) to dst = 10.0.0.3 (port=22) (confirmed)',
        'src = 198.51.100.7 (port=1024) to dst = 203.0.113.1 (port=443) (confirmed) (DNAT to 10.0.0.5:8443 and others)',
        'src = 10.0.0.2 (port=1024) to dst = 9.9.9.9 (port=53) (confirmed) (SNAT to 203.0.113.1)',
      ],
      'a masquerade port per connection is not "others"; another DNAT target is',
    );
    const json = [...collapsed.flows()].map(flowJson);
    t.strictSame(json[1]?.nat, { dst: { address: '10.0.0.5', port: 8443, more: true } });
    t.equal(json[0]?.nat, undefined, 'no nat key for a flow never translated');
  },
);

t.test(
  'direction: input, output, forward and local from the host addresses, after DNAT',
  async (t) => {
    const table = new FlowTable();
    const fw = table.hostId('fw');
    const other = table.hostId('other');
    const ip = (s: string) => ({ address: Uint8Array.from(s.split('.').map(Number)) });
    table.addHostAddresses(fw, [ip('203.0.113.1'), ip('10.0.0.1')]);
    const dnat = ev(6, '198.51.100.7', '203.0.113.1', 40000, 443, 0x0e);
    const add = (e: CtEvent, host = fw) => table.add(e, host);
    add(ev(6, '198.51.100.7', '203.0.113.1', 40000, 22, 0x0e)); // to the firewall
    add({ ...dnat, reply: { ...dnat.reply, src: Uint8Array.of(10, 0, 0, 5), sport: 8443 } });
    add(ev(17, '10.0.0.1', '9.9.9.9', 40000, 53, 0x0e)); // from it
    add(ev(6, '10.0.0.7', '9.9.9.9', 40000, 443, 0x0e)); // through it
    add(ev(6, '10.0.0.1', '127.0.0.1', 40000, 5432, 0x0e)); // to itself
    add(ev(6, '10.0.0.7', '9.9.9.9', 40000, 443, 0x0e), other); // also seen where addresses are unknown
    add(ev(6, '10.0.0.8', '9.9.9.9', 40000, 443, 0x0e), other);
    const got = [...table.flows()].map((f) => [
      formatFlowLine(f, 0)
        .slice(22)
        .replace(/ \(confirmed\)/, ''),
      f.direction?.join(','),
    ]);
    t.strictSame(got, [
      ['src = 10.0.0.1 (port=1024) to dst = 127.0.0.1 (port=5432)', 'local'],
      ['src = 10.0.0.7 (port=1024) to dst = 9.9.9.9 (port=443)', 'forward'],
      ['src = 10.0.0.8 (port=1024) to dst = 9.9.9.9 (port=443)', undefined],
      ['src = 198.51.100.7 (port=1024) to dst = 203.0.113.1 (port=22)', 'input'],
      ['src = 198.51.100.7 (port=1024) to dst = 203.0.113.1 (port=443)', 'forward'],
      ['src = 10.0.0.1 (port=1024) to dst = 9.9.9.9 (port=53)', 'output'],
    ]);
    const line = [...textLines(table.flows(), { direction: true, nat: true, hosts: true })][4];
    t.match(line, / \(forward\) \(DNAT to 10\.0\.0\.5:8443\) \(hosts=fw\)\n$/);
  },
);
