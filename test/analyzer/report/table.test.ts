// CSV and Markdown reports: one row per flow that reads back exactly, whatever a journal's strings hold.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { formatAddress } from '../../../analyzer/core/address.js';
import { FlowTable } from '../../../analyzer/core/flows.js';
import type { JournalSummary } from '../../../analyzer/core/replay.js';
import { csvChunks, csvField, csvText, mdChunks, mdText } from '../../../analyzer/report/table.js';
import { checkProperty } from '../../helpers/arbitraries.js';
import { ev, journalSummary, SEED_EVENTS } from '../fixtures.js';

/** RFC 4180, written out plainly: the reference the CSV must read back through. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  assert.equal(row.length + field.length, 0, 'the text ends with a whole row');
  return rows;
}

function tableWithHost(host: string): FlowTable {
  const table = new FlowTable();
  const id = table.hostId(host);
  for (const e of SEED_EVENTS) table.add(e, id);
  return table;
}

t.test('csv: a header row, then one row per flow with its values', async (t) => {
  const table = tableWithHost('fw1');
  const rows = parseCsv([...csvChunks(table.flows())].join(''));
  const [head, ...body] = rows;
  t.strictSame(head?.slice(0, 8), [
    'table',
    'src',
    'sport',
    'dst',
    'dport',
    'icmp_type',
    'icmp_code',
    'confirmed',
  ]);
  const flows = [...table.flows()];
  t.equal(body.length, flows.length);
  for (const [i, f] of flows.entries()) {
    const r = body[i] as string[];
    t.strictSame(
      [r[0], r[1], r[3], r[7], r[13]],
      [f.table, formatAddress(f.src), formatAddress(f.dst), f.confirmed ? 'yes' : 'no', 'fw1'],
    );
  }
});

t.test('csv: any host name reads back as one field, formulas defused', async (t) => {
  checkProperty(
    t,
    fc.property(fc.string({ maxLength: 30 }), (host) => {
      const rows = parseCsv([...csvChunks(tableWithHost(host).flows())].join(''));
      const hosts = rows.slice(1).map((r) => {
        assert.equal(r.length, 14, 'every row has every column');
        return r[13];
      });
      // csvText: escaped and defused as test/analyzer/csv-injection.test.ts pins it down.
      for (const h of hosts) assert.equal(h, csvText(host));
    }),
    { numRuns: 300 },
  );
  t.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
});

const SUMMARY = (host: string): JournalSummary => journalSummary({ host });

t.test('md: the coverage, then a table whose rows keep their cells, HTML escaped', async (t) => {
  const evil = '<script>alert(1)</script>|x\n| fake |';
  const table = tableWithHost(evil);
  table.add(ev(6, '10.0.0.1', '10.0.0.2', 40000, 22, 0x0e));
  const text = [...mdChunks([SUMMARY(evil)], table.flows())].join('');
  t.notMatch(text, /<script>/, 'no live HTML');
  t.match(text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;\\\|x\\\\x0a\\\| fake \\\|/);
  const rows = text.split('\n').filter((l) => l.startsWith('| '));
  // Unescaped pipes delimit cells: every row (header, flows) has the same count.
  const cells = (l: string) => l.replace(/\\\\|\\\|/g, '').split('|').length;
  t.equal(new Set(rows.map(cells)).size, 1, 'every row has as many cells as the header');
  t.equal(rows.length, 2 + [...table.flows()].length, 'header, separator, one row per flow');
  t.equal(mdText('a_b*c`d[e]\\'), 'a\\_b\\*c\\`d\\[e\\]\\\\');
});
