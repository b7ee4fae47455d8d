// Report formats: the coverage block and the seed's text lines exactly, and the JSON of docs/rules.md.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { coverageOf } from '../../../analyzer/core/coverage.js';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import type { JournalSummary } from '../../../analyzer/core/replay.js';
import { flowJson, JSON_FORMAT, jsonChunks, tableReport } from '../../../analyzer/report/json.js';
import {
  chunked,
  coverageLines,
  formatFlowLine,
  reportChunks,
  textChunks,
  textLines,
} from '../../../analyzer/report/text.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER } from '../../helpers/journals.js';
import { ev, SEED_EVENTS, SEED_LINES } from '../fixtures.js';

const tableOf = (evs = SEED_EVENTS) => {
  const table = new FlowTable();
  table.addAll(evs);
  return table;
};

t.test('text: hand-built v4/v6 TCP/UDP/ICMP events print the seed lines exactly', async (t) => {
  t.equal([...textChunks(tableOf().flows())].join(''), `${SEED_LINES.join('\n')}\n`);
});

t.test('text: counters are per table, right-aligned in 12, and grow past 12 digits', async (t) => {
  const [flow] = tableOf([ev(17, '10.1.2.3', '10.3.2.1', 53, 53, 0)]).flows() as Iterable<Flow>;
  assert.ok(flow);
  t.equal(
    formatFlowLine(flow, 1234567890123),
    ' UDPv4 [1234567890123] src = 10.1.2.3 (port=53) to dst = 10.3.2.1 (port=53)',
  );
  const evs = [1, 2, 3].map((i) => ev(6, `10.0.0.${i}`, '10.9.9.9', 22, 22, 0));
  evs.push(ev(17, '10.0.0.1', '10.9.9.9', 22, 22, 0));
  const counters = [...textLines(tableOf(evs).flows())].map((l) => l.slice(0, 21));
  t.strictSame(counters, [
    ' TCPv4 [           0]',
    ' TCPv4 [           1]',
    ' TCPv4 [           2]',
    ' UDPv4 [           0]',
  ]);
});

t.test('text: chunks join to the same text whatever the chunk size', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents(), fc.integer({ min: 1, max: 400 }), (evs, size) => {
      const lines = [...textLines(tableOf(evs).flows())];
      const chunks = [...chunked(lines, size)];
      assert.equal(chunks.join(''), lines.join(''));
      for (const c of chunks.slice(0, -1)) assert.ok(c.length >= size);
    }),
  );
});

const START = 1_764_230_000_000_000; // 2025-11-27T07:53:20.000Z

function summary(path: string, over: { lost?: number; gaps?: number; ignoredBytes?: number } = {}) {
  const complete = over.ignoredBytes === undefined;
  const byType = { new: 6, update: 3, destroy: 1, snapshot: 2 };
  const coverage = coverageOf({
    header: {
      format: 1,
      tool: { name: 'conntracker', version: '0.1.0' },
      host: 'fw1',
      kernel: '6.1.0',
      netns: 'net:[4026531840]',
      start: START,
      options: { snapshot: true },
      sysctls: {
        nf_conntrack_events: 2,
        nf_conntrack_timestamp: 1,
        nf_conntrack_acct: 1,
        ip_local_port_range: null,
      },
      eventFields: [],
    },
    trailer: complete
      ? {
          stop: START + 90e6,
          events: 12,
          byType,
          frames: 4,
          gaps: over.gaps ?? 0,
          lost: 0,
          digest: new Uint8Array(32),
        }
      : undefined,
    tail: complete ? undefined : { ignoredBytes: over.ignoredBytes ?? 0 },
    counts: {
      events: 12,
      byType,
      frames: 4,
      gaps: over.gaps ?? 0,
      lost: over.lost ?? 0,
      gapsLostUnknown: 0,
      lastEventTime: START + 80e6,
      checkpoints: 0,
      verified: undefined,
    },
    byCause: over.gaps ? { ENOBUFS: { gaps: over.gaps, lost: over.lost ?? 0 } } : {},
  });
  const j: JournalSummary = {
    path,
    host: 'fw1',
    kernel: '6.1.0',
    netns: 'net:[4026531840]',
    start: START,
    stop: complete ? START + 90e6 : null,
    events: 12,
    complete,
    ignoredBytes: over.ignoredBytes ?? 0,
    coverage,
  };
  return j;
}

const JOURNAL = summary('a.mpk', { ignoredBytes: 3 });

t.test('text: the report is the coverage block, then the seed lines byte for byte', async (t) => {
  const text = [...reportChunks([summary('fw1.mpk')], tableOf().flows())].join('');
  t.equal(
    text,
    [
      '# conntracker flows from fw1.mpk: host fw1, kernel 6.1.0, netns net:[4026531840], 2025-11-27T07:53:20.000Z → 07:54:50.000Z (1 min 30 s)',
      '# coverage: 12 events recorded (new 6, update 3, destroy 1, snapshot 2); 0 events lost in 0 gaps',
      '# settings: table dumped at start; filters: none; nf_conntrack_events=2, timestamp=1, acct=1',
      '# WARNING: the recording covers only 1 min 30 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall',
      ...SEED_LINES,
      '',
    ].join('\n'),
  );
  const flowPart = text.slice(text.indexOf('\n', text.indexOf('# WARNING')) + 1);
  t.equal(flowPart, [...textChunks(tableOf().flows())].join(''), 'the flow lines are untouched');
});

t.test('text: one block per journal with its warnings, then the combined coverage', async (t) => {
  const lines = coverageLines([
    summary('a.mpk', { gaps: 2, lost: 40 }),
    summary('b\n TCPv4.mpk', { ignoredBytes: 9 }),
  ]);
  t.strictSame(lines, [
    '# conntracker flows from a.mpk: host fw1, kernel 6.1.0, netns net:[4026531840], 2025-11-27T07:53:20.000Z → 07:54:50.000Z (1 min 30 s)',
    '# coverage: 12 events recorded (new 6, update 3, destroy 1, snapshot 2); 40 events lost in 2 gaps',
    '# settings: table dumped at start; filters: none; nf_conntrack_events=2, timestamp=1, acct=1',
    '# WARNING: 40 events lost in 2 gaps (kernel buffer overrun): flows may be missing; record with a larger --buffer-size',
    '# WARNING: the recording covers only 1 min 30 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall',
    '# conntracker flows from b\\x0a TCPv4.mpk: host fw1, kernel 6.1.0, netns net:[4026531840], 2025-11-27T07:53:20.000Z → 07:54:40.000Z (1 min 20 s up to the last event)',
    '# coverage: 12 events recorded (new 6, update 3, destroy 1, snapshot 2); 0 events lost in 0 gaps',
    '# settings: table dumped at start; filters: none; nf_conntrack_events=2, timestamp=1, acct=1',
    '# WARNING: the recording did not end cleanly (no trailer; 9 torn bytes ignored): flows after its last event are missing; stop ct-record with Ctrl-C or SIGTERM so it ends the journal',
    '# WARNING: the recording covers only 1 min 20 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall',
    '# coverage of all 2 journals: 24 events recorded (new 12, update 6, destroy 2, snapshot 4); 40 events lost in 2 gaps',
  ]);
  t.same(coverageLines([]), [], 'no journal, no block');
});

t.test('json: the document parses and carries every flow with ports or type/code', async (t) => {
  const table = tableOf();
  const doc = JSON.parse([...jsonChunks(tableReport(table, [JOURNAL]))].join(''));
  t.equal(doc.format, JSON_FORMAT);
  t.equal(doc.version, 1);
  t.equal(doc.collapse, '1024');
  t.strictSame(doc.journals, [JOURNAL]);
  t.strictSame(Object.keys(doc.journals[0].coverage), [
    'start',
    'end',
    'endFrom',
    'events',
    'byType',
    'lost',
    'lostKnown',
    'gaps',
    'byCause',
    'complete',
    'ignoredBytes',
    'nfConntrackEvents',
    'snapshotDumped',
    'nfConntrackTimestamp',
    'nfConntrackAcct',
    'filters',
    'importedFrom',
    'warnings',
  ]);
  t.strictSame(doc.skipped, { 'IPv4 proto 47': 1 });
  t.equal(doc.flows.length, SEED_LINES.length);
  t.strictSame(doc.flows[0], {
    table: 'TCPv4',
    proto: 'tcp',
    src: '192.168.100.111',
    dst: '157.240.12.54',
    sport: 1024,
    dport: 443,
    confirmed: true,
    firstSeen: HEADER.start + 1,
    lastSeen: HEADER.start + 1,
    hosts: [],
  });
  t.strictSame(doc.flows[7], {
    table: 'ICMPv6',
    proto: 'icmpv6',
    src: '2001:db8::10',
    dst: '2606:4700:4700::1111',
    type: 128,
    code: 0,
    confirmed: true,
    firstSeen: HEADER.start + 1,
    lastSeen: HEADER.start + 1,
    hosts: [],
  });
  t.strictSame(
    doc.flows.map((f: { proto: string }) => f.proto),
    ['tcp', 'tcp', 'udp', 'udp', 'icmp', 'tcp', 'udp', 'icmpv6'],
  );
});

t.test('json: any table renders as valid JSON with its flows in table order', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents(), fc.boolean(), (evs, withJournal) => {
      const table = tableOf(evs);
      const text = [...jsonChunks(tableReport(table, withJournal ? [JOURNAL] : []))].join('');
      const doc = JSON.parse(text);
      assert.deepEqual(doc.flows, [...table.flows()].map(flowJson));
      assert.deepEqual(doc.skipped, table.skipped);
    }),
  );
});

t.test('hosts: each flow names the hosts whose events hold it, in both formats', async (t) => {
  const table = new FlowTable();
  const fw1 = table.hostId('fw1');
  const evil = table.hostId('a,b)\n TCPv4');
  t.equal(table.hostId('fw1'), fw1, 'a name keeps its id');
  table.add(ev(6, '10.0.0.1', '10.0.0.2', 40000, 443, 2), fw1);
  table.add(ev(6, '10.0.0.1', '10.0.0.2', 50000, 443, 0), evil);
  table.add(ev(17, '10.0.0.1', '10.0.0.3', 40000, 53, 2), evil);
  table.add(ev(17, '10.0.0.9', '10.0.0.3', 40000, 53, 2));
  const lines = [...textLines(table.flows(), { hosts: true })];
  t.strictSame(lines, [
    ' TCPv4 [           0] src = 10.0.0.1 (port=1024) to dst = 10.0.0.2 (port=443) (confirmed) (hosts=a\\x2cb\\x29\\x0a TCPv4,fw1)\n',
    ' UDPv4 [           0] src = 10.0.0.1 (port=1024) to dst = 10.0.0.3 (port=53) (confirmed) (hosts=a\\x2cb\\x29\\x0a TCPv4)\n',
    ' UDPv4 [           1] src = 10.0.0.9 (port=1024) to dst = 10.0.0.3 (port=53) (confirmed) (hosts=)\n',
  ]);
  t.strictSame(
    [...textLines(table.flows())].map((l) => l.includes('hosts=')),
    [false, false, false],
    'no column unless asked for',
  );
  const doc = JSON.parse([...jsonChunks(tableReport(table, []))].join(''));
  t.strictSame(
    doc.flows.map((f: { hosts: string[] }) => f.hosts),
    [['a,b)\n TCPv4', 'fw1'], ['a,b)\n TCPv4'], []],
  );
});

t.test('hosts: more than 32 hosts are all kept', async (t) => {
  const table = new FlowTable();
  const names = Array.from({ length: 40 }, (_, i) => `h${String(i).padStart(2, '0')}`);
  for (const name of names)
    table.add(ev(6, '10.0.0.1', '10.0.0.2', 40000, 22, 2), table.hostId(name));
  const [flow] = [...table.flows()];
  t.strictSame(flow?.hosts, names);
});
