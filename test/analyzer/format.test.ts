// Report formats: the seed's text lines exactly, and the JSON document of docs/rules.md.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { type Flow, FlowTable } from '../../analyzer/flows.js';
import { flowJson, JSON_FORMAT, jsonChunks, tableReport } from '../../analyzer/format-json.js';
import { chunked, formatFlowLine, textChunks, textLines } from '../../analyzer/format-text.js';
import type { JournalSummary } from '../../analyzer/replay.js';
import { arbFlowEvents, checkProperty } from '../helpers/arbitraries.js';
import { ev, SEED_EVENTS, SEED_LINES } from './fixtures.js';

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

const JOURNAL: JournalSummary = {
  path: 'a.mpk',
  host: 'fw1',
  kernel: '6.1.0',
  netns: 'net:[4026531840]',
  start: 1,
  stop: null,
  events: 10,
  complete: false,
  ignoredBytes: 3,
};

t.test('json: the document parses and carries every flow with ports or type/code', async (t) => {
  const table = tableOf();
  const doc = JSON.parse([...jsonChunks(tableReport(table, [JOURNAL]))].join(''));
  t.equal(doc.format, JSON_FORMAT);
  t.equal(doc.version, 1);
  t.equal(doc.collapse, '1024');
  t.strictSame(doc.journals, [JOURNAL]);
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
  });
  t.strictSame(doc.flows[7], {
    table: 'ICMPv6',
    proto: 'icmpv6',
    src: '2001:db8::10',
    dst: '2606:4700:4700::1111',
    type: 128,
    code: 0,
    confirmed: true,
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
