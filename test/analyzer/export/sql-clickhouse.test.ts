// docs/sql/*.clickhouse.sql in a real ClickHouse (Debian's clickhouse-server) over the NDJSON export: ct-analyze's table lines, byte for byte.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import {
  type ClickHouse,
  clickhouseRequired,
  findClickHouse,
  startClickHouse,
} from '../../helpers/clickhouse.js';
import { tempDir } from '../../helpers/journals.js';
import {
  analyzeLines,
  arbFleet,
  checkAsyncProperty,
  clickhouseFlowsQuery,
  cliLines,
  eventParts,
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

t.test("the samples and golden v1 fixtures give ct-analyze's table in every mode", async (t) => {
  const dir = tempDir(t, 'sql-clickhouse');
  const journals = realJournals();
  await exportEvents(journals, join(dir, 'export'), 'ndjson');
  const database = await load(ch, join(dir, 'export'));
  for (const mode of [...FIXED_MODES, ...RANGE_MODES]) {
    const expected = cliLines(journals, mode);
    t.not(expected, '', `--collapse ${mode}: the journals have flows`);
    t.equal(await ch.query(clickhouseFlowsQuery(mode), database), expected, `--collapse ${mode}`);
  }
});

t.test("generated fleets give ct-analyze's table in every mode", async (t) => {
  const dir = tempDir(t, 'sql-clickhouse-fleet');
  let run = 0;
  const property = fc.asyncProperty(
    arbFleet(),
    fc.constantFrom(...RANGE_MODES),
    async (fleet, range) => {
      const at = join(dir, String(run++));
      mkdirSync(at);
      const journals = writeFleet(at, fleet);
      await exportEvents(journals, join(at, 'export'), 'ndjson');
      const database = await load(ch, join(at, 'export'));
      for (const mode of [...FIXED_MODES, range]) {
        const expected = await analyzeLines(journals, mode);
        const got = await ch.query(clickhouseFlowsQuery(mode), database);
        if (got !== expected) {
          throw new Error(`--collapse ${mode}:\nct-analyze:\n${expected}\nClickHouse:\n${got}`);
        }
      }
      await ch.query(`DROP DATABASE ${database}`);
    },
  );
  await checkAsyncProperty(t, property, PROPERTY_RUNS);
});
