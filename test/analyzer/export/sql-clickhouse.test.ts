// docs/sql/*.clickhouse.sql in a real ClickHouse (Debian's clickhouse-server) over the NDJSON export: ct-analyze's table lines, byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  type ClickHouse,
  clickhouseRequired,
  findClickHouse,
  startClickHouse,
} from '../../helpers/clickhouse.js';
import { fleetsAgree, realJournalsAgree, type SqlTables } from '../../helpers/sql-agreement.js';
import {
  clickhouseFlowsQuery,
  eventParts,
  exportEvents,
  sqlFile,
} from '../../helpers/sql-flows.js';

// 80–135 s on the 2-core test machine under load (fast-check's runs stop at 100 s): tap's
// default 180 s leaves too little room on a busy CI run.
t.setTimeout(400_000);

const found = findClickHouse();
if ('reason' in found) {
  if (clickhouseRequired()) {
    throw new Error(`${found.reason} (CI=true: a skipped ClickHouse test fails)`);
  }
  t.plan(0, found.reason);
  process.exit(0);
}

// One server for the whole file: starting one costs a second or more.
const ch = await startClickHouse(found.server, t);
t.comment(`ClickHouse ${ch.version}`);

let databases = 0;

/**
 * The NDJSON export under dir in the doc's events table, in a database of its own (the name the
 * queries use), so that no case reads a table an earlier one is still dropping.
 */
async function load(ch: ClickHouse, dir: string): Promise<string> {
  const database = `case${databases++}`;
  await ch.query(`CREATE DATABASE ${database}`);
  await ch.query(sqlFile('events.clickhouse.sql'), database);
  for (const part of eventParts(dir, 'ndjson')) {
    await ch.insertJsonEachRow('events', readFileSync(join(dir, part)), database);
  }
  return database;
}

/** The NDJSON export of the journals under dir/export, loaded; its database dropped when done. */
async function prepare(journals: readonly string[], dir: string): Promise<SqlTables> {
  await exportEvents(journals, join(dir, 'export'), 'ndjson');
  const database = await load(ch, join(dir, 'export'));
  return {
    tables: async (mode) => [['', await ch.query(clickhouseFlowsQuery(mode), database)]],
    done: async () => {
      await ch.query(`DROP DATABASE ${database}`);
    },
  };
}

t.test("the samples and golden v1 fixtures give ct-analyze's table in every mode", (t) =>
  realJournalsAgree(t, 'sql-clickhouse', prepare),
);

t.test("generated fleets give ct-analyze's table in every mode", (t) =>
  fleetsAgree(t, 'sql-clickhouse-fleet', 'ClickHouse', prepare),
);
