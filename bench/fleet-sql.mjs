// bench helper: docs/sql/flows.duckdb.sql in DuckDB over an export's events, its lines to a file.
//
// Usage: node bench/fleet-sql.mjs --export DIR --out FILE [--collapse MODE] [--threads N]
//          [--format parquet|ndjson]
// Runs the SQL file verbatim after the two SET VARIABLE lines it asks for (events = the
// export's Parquet glob, collapse = MODE, default 1024), streams the result (no table of a million
// lines in memory) and prints `duckdb=VERSION`, `threads=N` and `lines=N`. A process of its own,
// so that bench/fleet.sh measures DuckDB's CPU and peak RSS alone. Needs the devDependency
// @duckdb/node-api (npm ci).
import { createWriteStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  process.stderr.write(`fleet-sql: ${message}\n`);
  process.exit(2);
}

const { values: opt } = parseArgs({
  options: {
    export: { type: 'string' },
    out: { type: 'string' },
    collapse: { type: 'string', default: '1024' },
    threads: { type: 'string' },
    format: { type: 'string', default: 'parquet' },
  },
});
if (opt.export === undefined || opt.out === undefined)
  fail('--export DIR and --out FILE are required');
if (opt.format !== 'parquet' && opt.format !== 'ndjson') fail('--format must be parquet or ndjson');
if (opt.threads !== undefined && !/^[1-9]\d*$/.test(opt.threads))
  fail('--threads must be a positive integer');

let duckdb;
try {
  duckdb = await import('@duckdb/node-api');
} catch (err) {
  fail(`cannot load @duckdb/node-api (${err.message}): run npm ci (it is a devDependency)`);
}
let sql = readFileSync(join(ROOT, 'docs', 'sql', 'flows.duckdb.sql'), 'utf8');
// An NDJSON export is read with read_ndjson where the file says read_parquet (docs/export.md).
if (opt.format === 'ndjson') sql = sql.replace('read_parquet(', 'read_ndjson(');
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

const instance = await duckdb.DuckDBInstance.create(
  ':memory:',
  opt.threads === undefined ? {} : { threads: opt.threads },
);
const db = await instance.connect();
const one = async (q) => String((await db.runAndReadAll(q)).getRows()[0]?.[0]);
const version = await one('SELECT version()');
const threads = await one("SELECT current_setting('threads')");
await db.run(`SET VARIABLE events = ${quote(join(opt.export, 'events', '**', `*.${opt.format}`))}`);
await db.run(`SET VARIABLE collapse = ${quote(opt.collapse)}`);

const out = createWriteStream(opt.out);
const result = await db.stream(sql);
let lines = 0;
for (;;) {
  const chunk = await result.fetchChunk();
  if (chunk === null || chunk.rowCount === 0) break;
  const col = chunk.getColumnValues(0);
  lines += col.length;
  if (!out.write(`${col.join('\n')}\n`)) await new Promise((ok) => out.once('drain', ok));
}
await new Promise((ok, ko) => out.end((err) => (err ? ko(err) : ok())));
db.closeSync();
instance.closeSync();
process.stdout.write(`duckdb=${version}\nthreads=${threads}\nlines=${lines}\n`);
