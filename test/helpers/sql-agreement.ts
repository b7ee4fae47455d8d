// The two cases every SQL recipe test makes (DuckDB, ClickHouse): the real journals and generated fleets give ct-analyze's table in every --collapse mode.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { tempDir } from './journals.js';
import {
  analyzeLines,
  arbFleet,
  checkAsyncProperty,
  cliLines,
  FIXED_MODES,
  PROPERTY_RUNS,
  RANGE_MODES,
  realJournals,
  writeFleet,
} from './sql-flows.js';

/**
 * An engine's tables over the export of some journals: for a --collapse mode, [label, table lines]
 * for each way it reads the export (label '' where there is one); `done` frees what was loaded.
 */
export interface SqlTables {
  tables(mode: string): Promise<[string, string][]>;
  done?(): Promise<void>;
}

/** Exports `journals` under `dir` and loads them into the engine. */
export type PrepareSql = (journals: readonly string[], dir: string) => Promise<SqlTables>;

const named = (label: string, mode: string) =>
  label === '' ? `--collapse ${mode}` : `${label}, --collapse ${mode}`;

type Tap = {
  teardown(fn: () => void): void;
  equal(a: unknown, b: unknown, msg: string): void;
  not(a: unknown, b: unknown, msg: string): void;
  pass(msg: string): void;
  fail(msg: string): void;
};

/** The samples and golden v1 fixtures: the engine's table is ct-analyze's in every mode. */
export async function realJournalsAgree(t: Tap, tag: string, prepare: PrepareSql): Promise<void> {
  const dir = tempDir(t, tag);
  const journals = realJournals();
  const sql = await prepare(journals, dir);
  for (const mode of [...FIXED_MODES, ...RANGE_MODES]) {
    const expected = cliLines(journals, mode);
    t.not(expected, '', `--collapse ${mode}: the journals have flows`);
    for (const [label, got] of await sql.tables(mode)) t.equal(got, expected, named(label, mode));
  }
}

/** Generated fleets (fast-check): the engine's table is ct-analyze's, or the counterexample. */
export async function fleetsAgree(
  t: Tap,
  tag: string,
  engine: string,
  prepare: PrepareSql,
): Promise<void> {
  const dir = tempDir(t, tag);
  let run = 0;
  const property = fc.asyncProperty(
    arbFleet(),
    fc.constantFrom(...RANGE_MODES),
    async (fleet, range) => {
      const at = join(dir, String(run++));
      mkdirSync(at);
      const journals = writeFleet(at, fleet);
      const sql = await prepare(journals, at);
      for (const mode of [...FIXED_MODES, range]) {
        const expected = await analyzeLines(journals, mode);
        for (const [label, got] of await sql.tables(mode)) {
          if (got !== expected) {
            throw new Error(`${named(label, mode)}:\nct-analyze:\n${expected}\n${engine}:\n${got}`);
          }
        }
      }
      await sql.done?.();
    },
  );
  await checkAsyncProperty(t, property, PROPERTY_RUNS);
}
