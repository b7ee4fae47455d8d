// CSV formula injection: no spreadsheet, whatever separator it splits on, starts a cell with a formula.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { FlowTable } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { COLUMNS, csvChunks, csvField, csvText } from '../../../analyzer/report/table.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { printable } from '../../../common/printable.js';
import { checkProperty } from '../../helpers/arbitraries.js';
import { SEED_EVENTS } from '../fixtures.js';

/** The separators spreadsheets are told to split on: CSV's comma, `;` locales, tab, space. */
const SEPARATORS = [',', ';', '\t', ' '];
const FORMULA = /^[=+\-@]/;

/** Strings dense in separators, formula characters, quotes and blanks, and anything at all. */
const arbField = fc.oneof(
  fc.string({ unit: fc.constantFrom(...',;\t "=+-@\'\r\nfw6*7'.split('')), maxLength: 16 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('fw;=6*7', '=HYPERLINK("http://x","y")', 'a, -1', '@SUM(A1)', ' =1', 'x;"=1'),
);

/** RFC 4180 with any separator, written out plainly: the quote-aware reading of one row. */
function parseRow(line: string, sep = ','): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === sep) {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  cells.push(cell);
  return cells;
}

/**
 * Where a spreadsheet that splits naively (quotes are text) could start a cell, and what the
 * cell would then begin with once the blanks and quotes it may strip are gone.
 */
function naiveCellStarts(row: string, sep: string): string[] {
  return row.split(sep).map((cell) => cell.replace(/^[ "]+/, ''));
}

t.test('csv: the audit’s host fw;=6*7 is quoted and defused for a ; spreadsheet', (t) => {
  t.equal(csvField('fw;=6*7'), `"fw;'=6*7"`);
  const table = new FlowTable();
  const id = table.hostId('fw;=6*7');
  for (const e of SEED_EVENTS) table.add(e, id);
  const csv = [...csvChunks(table.flows())].join('');
  for (const line of csv.split('\r\n').slice(1, -1)) {
    t.ok(line.endsWith(`,"fw;'=6*7"`), line);
    for (const sep of SEPARATORS) {
      const starts = naiveCellStarts(line, sep).filter((c) => FORMULA.test(c));
      t.strictSame(starts, [], `split on ${JSON.stringify(sep)}: no cell is a formula`);
    }
  }
  t.end();
});

t.test('csv: split on , ; tab or space, quote-aware or not, no cell starts with = + - @', (t) => {
  checkProperty(
    t,
    fc.property(fc.array(arbField, { minLength: 1, maxLength: 5 }), (fields) => {
      const row = fields.map(csvField).join(',');
      assert.ok(!/[\t\r\n]/.test(row), 'no tab, CR or LF inside a row');
      for (const sep of SEPARATORS) {
        for (const cell of naiveCellStarts(row, sep)) {
          assert.ok(!FORMULA.test(cell), `split on ${JSON.stringify(sep)}: ${cell}`);
        }
        for (const cell of parseRow(row, sep)) {
          assert.ok(!FORMULA.test(cell.replace(/^ +/, '')), `quote-aware on ${sep}: ${cell}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
  t.end();
});

t.test('csv: a quote-aware reader gets each value back, escaped and defused only', (t) => {
  checkProperty(
    t,
    fc.property(fc.array(arbField, { minLength: 1, maxLength: 5 }), (fields) => {
      const cells = parseRow(fields.map(csvField).join(','));
      assert.deepEqual(cells, fields.map(csvText), 'one cell per field, its csvText');
      for (const [i, v] of fields.entries()) {
        const cell = cells[i] as string;
        // Defusing only adds apostrophes to the printable text, and only where a formula starts.
        assert.equal(cell.replace(/'/g, ''), printable(v).replace(/'/g, ''));
        if (!/[=+\-@]/.test(v)) assert.equal(cell, printable(v), 'nothing to defuse: unchanged');
      }
    }),
    { numRuns: 2000 },
  );
  t.end();
});

/** The CSV field as 0.1.0 wrote it: what real journals' reports must still be, byte for byte. */
function csvField010(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

t.test('csv: the sample journals’ reports are byte for byte what 0.1.0 wrote', (t) => {
  for (const name of ['lan', 'nat-router']) {
    const { table } = analyzeJournals([`${PACKAGE_ROOT}/samples/${name}.mpk`]);
    const now = [...csvChunks(table.flows())].join('');
    const head = `${COLUMNS.map(([n]) => n).join(',')}\r\n`;
    const then = [...table.flows()]
      .map((f) => `${COLUMNS.map(([, get]) => csvField010(get(f))).join(',')}\r\n`)
      .join('');
    t.equal(now, head + then, name);
    t.ok(now.split('\r\n').length > 3, `${name}: flows to compare`);
  }
  t.end();
});
