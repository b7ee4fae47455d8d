// docs/sql/flows.duckdb.sql in DuckDB (from npm) over `ct-analyze export`: the same table lines as ct-analyze, byte for byte.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import t from 'tap';
import type { ExportFormat } from '../../../analyzer/export/export.js';
import { tempDir } from '../../helpers/journals.js';
import {
  analyzeLines,
  arbFleet,
  checkAsyncProperty,
  cliLines,
  EXPORT_DOC,
  exportEvents,
  FIXED_MODES,
  PROPERTY_RUNS,
  RANGE_MODES,
  realJournals,
  sqlFile,
  writeFleet,
} from '../../helpers/sql-flows.js';

// 80–135 s on the 2-core test machine under load (fast-check's runs stop at 100 s): tap's
// default 180 s leaves too little room on a busy CI run.
t.setTimeout(400_000);

t.test('docs/export.md shows each SQL file of docs/sql as it is', async (t) => {
  const doc = readFileSync(EXPORT_DOC, 'utf8');
  for (const name of ['flows.duckdb.sql', 'events.clickhouse.sql', 'flows.clickhouse.sql']) {
    t.ok(doc.includes(`\`\`\`sql\n${sqlFile(name)}\`\`\``), `${name} is in the doc, verbatim`);
  }
});

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The query over an export in `format`: the file as docs/export.md shows it; an NDJSON export is
 * read with read_ndjson where the file says read_parquet, as the doc says to.
 */
async function duckdbLines(
  db: DuckDBConnection,
  dir: string,
  format: ExportFormat,
  mode: string,
): Promise<string> {
  let sql = sqlFile('flows.duckdb.sql');
  if (format === 'ndjson') sql = sql.replace('read_parquet(', 'read_ndjson(');
  await db.run(`SET VARIABLE events = ${quote(join(dir, 'events', '**', `*.${format}`))}`);
  await db.run(`SET VARIABLE collapse = ${quote(mode)}`);
  const rows = (await db.runAndReadAll(sql)).getRows();
  return rows.map((r) => `${String(r[0])}\n`).join('');
}

const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
t.teardown(() => {
  db.closeSync();
  instance.closeSync();
});
const version = String((await db.runAndReadAll('SELECT version()')).getRows()[0]?.[0]);
t.comment(`DuckDB ${version}`);

// Parquet is what the doc's recipe reads; NDJSON (read_ndjson) must give the same table.
const FORMATS: ExportFormat[] = ['parquet', 'ndjson'];

/** Both exports of the journals, under dir/parquet and dir/ndjson. */
async function exportBoth(journals: readonly string[], dir: string): Promise<void> {
  for (const format of FORMATS) await exportEvents(journals, join(dir, format), format);
}

t.test("the samples and golden v1 fixtures give ct-analyze's table in every mode", async (t) => {
  const dir = tempDir(t, 'sql-duckdb');
  const journals = realJournals();
  await exportBoth(journals, dir);
  for (const mode of [...FIXED_MODES, ...RANGE_MODES]) {
    const expected = cliLines(journals, mode);
    t.not(expected, '', `--collapse ${mode}: the journals have flows`);
    for (const format of FORMATS) {
      const got = await duckdbLines(db, join(dir, format), format, mode);
      t.equal(got, expected, `${format}, --collapse ${mode}`);
    }
  }
});

t.test("generated fleets give ct-analyze's table in every mode", async (t) => {
  const dir = tempDir(t, 'sql-duckdb-fleet');
  let run = 0;
  const property = fc.asyncProperty(
    arbFleet(),
    fc.constantFrom(...RANGE_MODES),
    async (fleet, range) => {
      const at = join(dir, String(run++));
      mkdirSync(at);
      const journals = writeFleet(at, fleet);
      await exportBoth(journals, at);
      for (const mode of [...FIXED_MODES, range]) {
        const expected = await analyzeLines(journals, mode);
        for (const format of FORMATS) {
          const got = await duckdbLines(db, join(at, format), format, mode);
          if (got !== expected) {
            throw new Error(
              `${format}, --collapse ${mode}:\nct-analyze:\n${expected}\nDuckDB:\n${got}`,
            );
          }
        }
      }
    },
  );
  await checkAsyncProperty(t, property, PROPERTY_RUNS);
});
