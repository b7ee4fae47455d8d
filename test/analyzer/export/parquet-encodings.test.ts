// The Parquet writer: integer encodings (DELTA_BINARY_PACKED where smaller, else PLAIN) read back by DuckDB, and the encoding thread's bytes equal to inline encoding.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import t from 'tap';
import { DEFAULT_COLLAPSE } from '../../../analyzer/core/flows.js';
import { runExport } from '../../../analyzer/export/export.js';
import { ExportFiles } from '../../../analyzer/export/files.js';
import { type ColumnData, ParquetFile } from '../../../analyzer/export/parquet.js';
import { deltaBinaryPacked } from '../../../analyzer/export/parquet-delta.js';
import type { Column, ColumnType } from '../../../analyzer/export/schema.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { tempDir } from '../../helpers/journals.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const GEN = join(PACKAGE_ROOT, 'bench', 'replay-gen.mjs');

/** A column's values as a generator makes them: shapes DELTA meets (runs, steps, jumps, edges). */
function arbValues(min: number, max: number, n: fc.Arbitrary<number>): fc.Arbitrary<number[]> {
  const any = fc.integer({ min, max });
  const edge = fc.constantFrom(min, max, 0, Math.max(min, -1), Math.min(max, 1));
  const value = fc.oneof(any, edge);
  return n.chain((length) =>
    fc.oneof(
      fc.array(value, { minLength: length, maxLength: length }),
      // A monotone sequence (seq, time): small steps from a start anywhere.
      fc
        .tuple(any, fc.integer({ min: 0, max: 5000 }))
        .map(([start, step]) =>
          Array.from({ length }, (_, i) => Math.min(max, Math.max(min, start + i * step))),
        ),
      // Few distinct values (type, proto, status).
      fc
        .array(value, { minLength: 1, maxLength: 4 })
        .chain((pool) =>
          fc.array(fc.constantFrom(...pool), { minLength: length, maxLength: length }),
        ),
    ),
  );
}

interface Case {
  type: ColumnType;
  nullable: boolean;
  values: number[];
  present: boolean[];
}

const RANGE: Partial<Record<ColumnType, [number, number]>> = {
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  timestamp_us: [0, 4_102_444_800_000_000],
};

const arbCase = (n: number): fc.Arbitrary<Case> =>
  fc.constantFrom(...(Object.keys(RANGE) as ColumnType[])).chain((type) => {
    const [min, max] = RANGE[type] as [number, number];
    return fc.record({
      type: fc.constant(type),
      nullable: fc.boolean(),
      values: arbValues(min, max, fc.constant(n)),
      present: fc.oneof(
        fc.constant(Array<boolean>(n).fill(true)),
        fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      ),
    });
  });

const INT32: ReadonlySet<ColumnType> = new Set(['uint8', 'uint16', 'uint32']);

function columnData(c: Case): ColumnData {
  const def = c.nullable ? Uint8Array.from(c.present, (p) => (p ? 1 : 0)) : undefined;
  return INT32.has(c.type)
    ? { kind: 'int32', values: Int32Array.from(c.values, (v) => v | 0), ...(def ? { def } : {}) }
    : { kind: 'int64', values: Float64Array.from(c.values), ...(def ? { def } : {}) };
}

/** What DuckDB should give back for the case's rows: the value, or null where it has none. */
const expected = (c: Case) =>
  c.values.map((v, i) =>
    c.nullable && !c.present[i] ? null : c.type === 'timestamp_us' ? v : String(v),
  );

t.test('integer columns of several row groups read back by DuckDB as written', async (t) => {
  const dir = tempDir(t, 'pq-enc');
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  t.teardown(() => db.closeSync());
  let run = 0;
  const encodings = new Set<string>();
  await fc.assert(
    fc.asyncProperty(
      // Columns of one row group have the same number of rows.
      fc
        .integer({ min: 1, max: 700 })
        .chain((n) => fc.array(arbCase(n), { minLength: 1, maxLength: 4 })),
      fc.integer({ min: 1, max: 3 }),
      fc.constantFrom('gzip' as const, 'none' as const),
      async (cases, groups, codec) => {
        const out = join(dir, `r${run++}`);
        const files = new ExportFiles(out);
        const columns: Column[] = cases.map((c, i) => ({
          name: `c${i}`,
          type: c.type,
          nullable: c.nullable,
        }));
        const file = new ParquetFile(files, 'x.parquet', columns, codec);
        // The same rows in each row group: readers must restart every column's decoder.
        for (let g = 0; g < groups; g++) {
          file.writeRowGroup(
            (cases[0] as Case).values.length,
            cases.map((c) => columnData(c)),
          );
        }
        await file.finish();
        files.commit();
        const select = cases
          .map((c, i) => (c.type === 'timestamp_us' ? `epoch_us(c${i})` : `c${i}::VARCHAR`))
          .join(', ');
        const rows = (
          await db.runAndReadAll(`SELECT ${select} FROM read_parquet('${join(out, 'x.parquet')}')`)
        ).getRows();
        const meta = await db.runAndReadAll(
          `SELECT DISTINCT encodings FROM parquet_metadata('${join(out, 'x.parquet')}')`,
        );
        for (const [e] of meta.getRows()) encodings.add(String(e));
        const n = (cases[0] as Case).values.length;
        t.equal(rows.length, n * groups);
        cases.forEach((c, i) => {
          const want = expected(c);
          const got = rows.slice(0, n).map((r) => {
            const v = r[i];
            return v === null ? null : c.type === 'timestamp_us' ? Number(v) : String(v);
          });
          t.same(got, want, `column ${i} (${c.type}${c.nullable ? ', nullable' : ''})`);
        });
      },
    ),
    { numRuns: 60, seed: 1515 },
  );
  const seen = [...encodings].join(' | ');
  t.match(seen, /DELTA_BINARY_PACKED/, `both encodings were read: ${seen}`);
  t.match(seen, /PLAIN/, 'PLAIN too');
});

t.test(
  'DELTA_BINARY_PACKED is chosen where it is smaller, and refused where a delta is too wide',
  async (t) => {
    const seq = Float64Array.from({ length: 1000 }, (_, i) => 1e15 + i);
    const packed = deltaBinaryPacked(seq, seq.length, 8 * seq.length, false);
    t.ok(packed !== undefined && packed.length < 100, 'a sequence takes a few bytes');
    const wide = Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0);
    t.equal(deltaBinaryPacked(wide, 3, 1e6, true), undefined, 'INT32 deltas beyond 32 bits: PLAIN');
    const far = Float64Array.of(0, 2 ** 53 - 1);
    t.equal(deltaBinaryPacked(far, 2, 1e6, false), undefined, 'INT64 deltas beyond 2^52: PLAIN');
    const random = Int32Array.from({ length: 1000 }, (_, i) => Math.imul(i, 0x9e3779b1));
    t.equal(deltaBinaryPacked(random, 1000, 4000, true), undefined, 'no smaller than PLAIN: PLAIN');
  },
);

t.test(
  'row groups encoded on the encoding thread (the built package) are the bytes encoded inline',
  async (t) => {
    const built = join(PACKAGE_ROOT, 'dist', 'analyzer', 'export', 'parquet.js');
    t.ok(existsSync(built), `${built} exists (npm run build, as npm test does first)`);
    const dist = (await import(pathToFileURL(built).href)) as { ParquetFile: typeof ParquetFile };
    const distFiles = (await import(
      pathToFileURL(join(PACKAGE_ROOT, 'dist', 'analyzer', 'export', 'files.js')).href
    )) as { ExportFiles: typeof ExportFiles };
    const dir = tempDir(t, 'pq-thread');
    const cases = fc.sample(arbCase(20_000), { numRuns: 6, seed: 16 });
    const columns: Column[] = cases.map((c, i) => ({
      name: `c${i}`,
      type: c.type,
      nullable: c.nullable,
    }));
    const write = async (File: typeof ParquetFile, Files: typeof ExportFiles, name: string) => {
      const files = new Files(dir);
      const file = new File(files, name, columns, 'gzip');
      // Enough row groups that a column stored for a while is tried with GZIP again.
      for (let g = 0; g < 12; g++) file.writeRowGroup(20_000, cases.map(columnData));
      await file.finish();
      files.commit();
      return readFileSync(join(dir, name));
    };
    const inline = await write(ParquetFile, ExportFiles, 'inline.parquet');
    const threaded = await write(dist.ParquetFile, distFiles.ExportFiles, 'thread.parquet');
    t.ok(inline.equals(threaded), `the same ${inline.length} bytes`);
  },
);

t.test(
  'ct-analyze export (read and encoded on threads) writes the Parquet bytes of the inline export',
  async (t) => {
    const dir = tempDir(t, 'pq-cli');
    const journal = join(dir, 'j.mpk');
    // Over 1 MB and 2 row groups: the reading thread, and row groups handed to the encoding thread.
    const gen = spawnSync(
      process.execPath,
      [GEN, '--events', '150000', '--flows', '5000', '--journal', journal, '--text', '/dev/null'],
      { encoding: 'utf8' },
    );
    t.equal(gen.status, 0, gen.stderr);
    const res = spawnSync(
      process.execPath,
      [CLI, 'export', '--format', 'parquet', '-o', join(dir, 'cli'), journal],
      { encoding: 'utf8' },
    );
    t.equal(res.status, 0, res.stderr);
    await runExport(
      {
        journals: [journal],
        what: 'events',
        format: 'parquet',
        collapse: DEFAULT_COLLAPSE,
        output: join(dir, 'inline'),
        force: false,
      },
      { warn: () => {}, note: () => {} },
    );
    const parts = (root: string) =>
      readdirSync(root, { recursive: true, encoding: 'utf8' })
        .filter((p) => p.endsWith('.parquet'))
        .sort();
    const names = parts(join(dir, 'inline'));
    t.ok(names.length > 0, 'parts written');
    t.same(parts(join(dir, 'cli')), names, 'the same part files');
    for (const name of names) {
      const a = readFileSync(join(dir, 'inline', name));
      const b = readFileSync(join(dir, 'cli', name));
      t.ok(a.equals(b), `${name}: the same ${a.length} bytes`);
    }
    // The addresses of connections seen many times (memoised slots) against the NDJSON export's.
    const nd = spawnSync(
      process.execPath,
      [CLI, 'export', '--format', 'ndjson', '-o', join(dir, 'nd'), journal],
      { encoding: 'utf8' },
    );
    t.equal(nd.status, 0, nd.stderr);
    const cols = ['seq', 'src', 'dst', 'reply_src', 'reply_dst', 'src_bin', 'reply_dst_bin'];
    const want = readdirSync(join(dir, 'nd'), { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.ndjson'))
      .flatMap((p) =>
        readFileSync(join(dir, 'nd', p), 'utf8')
          .trim()
          .split('\n'),
      )
      .map((line) => {
        const r = JSON.parse(line) as Record<string, unknown>;
        return cols.map((c) => String(r[c])).join(' ');
      });
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    t.teardown(() => db.closeSync());
    const rows = (
      await db.runAndReadAll(
        `SELECT seq, src, dst, reply_src, reply_dst, lower(hex(src_bin)), lower(hex(reply_dst_bin)) FROM read_parquet('${join(dir, 'cli', '**', '*.parquet')}') ORDER BY seq`,
      )
    )
      .getRows()
      .map((r) => r.map(String).join(' '));
    t.equal(rows.length, 150_000);
    t.ok(
      rows.length === want.length && rows.every((r, i) => r === want[i]),
      'every address of every event as the NDJSON export has it',
    );
  },
);
