// docs/sql/flows.duckdb.sql in DuckDB (from npm) over `ct-analyze export`: the same table lines as ct-analyze, byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import t from 'tap';
import type { ExportFormat } from '../../../analyzer/export/export.js';
import { fleetsAgree, realJournalsAgree, type SqlTables } from '../../helpers/sql-agreement.js';
import { EXPORT_DOC, exportEvents, sqlFile } from '../../helpers/sql-flows.js';

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

/** Both exports of the journals, under dir/parquet and dir/ndjson, each read by the recipe. */
async function prepare(journals: readonly string[], dir: string): Promise<SqlTables> {
  for (const format of FORMATS) await exportEvents(journals, join(dir, format), format);
  return {
    tables: async (mode) => {
      const out: [string, string][] = [];
      for (const format of FORMATS) {
        out.push([format, await duckdbLines(db, join(dir, format), format, mode)]);
      }
      return out;
    },
  };
}

t.test("the samples and golden v1 fixtures give ct-analyze's table in every mode", (t) =>
  realJournalsAgree(t, 'sql-duckdb', prepare),
);

t.test("generated fleets give ct-analyze's table in every mode", (t) =>
  fleetsAgree(t, 'sql-duckdb-fleet', 'DuckDB', prepare),
);
