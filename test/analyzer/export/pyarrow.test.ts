// The Parquet export read by pyarrow, where it is installed: the contract's types and the NDJSON export's values.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_COLLAPSE } from '../../../analyzer/core/flows.js';
import { runExport } from '../../../analyzer/export/export.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { tempDir } from '../../helpers/journals.js';

/** The interpreter to try: CT_PYTHON (e.g. a venv with pyarrow) or python3. */
const PYTHON = process.env.CT_PYTHON ?? 'python3';
const probe = spawnSync(PYTHON, ['-c', 'import pyarrow; print(pyarrow.__version__)'], {
  encoding: 'utf8',
});
const SKIP =
  probe.status === 0
    ? false
    : `pyarrow is not importable by ${PYTHON}: pip install pyarrow, or set CT_PYTHON to a python that has it`;

const READ = `
import json, sys
import pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
rows = []
for r in t.to_pylist():
    r["time"] = r["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for k in ("src_bin", "dst_bin", "reply_src_bin", "reply_dst_bin"):
        r[k] = r[k].hex()
    del r["date"]
    rows.append(r)
types = {f.name: str(f.type) for f in t.schema}
print(json.dumps({"types": types, "rows": rows, "meta": {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}}))
`;

t.test(
  "pyarrow reads the events with the contract's types and the NDJSON export's values",
  { skip: SKIP },
  async (t) => {
    t.comment(`pyarrow ${probe.stdout.trim()}`);
    const dir = tempDir(t, 'export-pyarrow');
    const fixtures = join(PACKAGE_ROOT, 'test', 'fixtures', 'v1');
    const journals = readdirSync(fixtures)
      .filter((f) => f.endsWith('.mpk'))
      .map((f) => join(fixtures, f));
    const base = { journals, what: 'events' as const, collapse: DEFAULT_COLLAPSE, force: false };
    const quiet = { warn: () => {}, note: () => {} };
    await runExport({ ...base, format: 'parquet', output: join(dir, 'pq') }, quiet);
    await runExport({ ...base, format: 'ndjson', output: join(dir, 'nd') }, quiet);
    const res = spawnSync(PYTHON, ['-c', READ, join(dir, 'pq', 'events')], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    t.equal(res.status, 0, res.stderr);
    const got = JSON.parse(res.stdout);
    t.match(got.types, {
      journal: 'string',
      seq: 'int64',
      time: 'timestamp[us, tz=UTC]',
      type: 'uint8',
      status: 'uint32',
      sport: 'uint16',
      orig_bytes: 'uint64',
      src_bin: 'fixed_size_binary[16]',
      time_kernel: 'bool',
    });
    t.same(got.meta, { 'conntracker.export': '1' });
    const want: Record<string, unknown>[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ndjson')) {
          for (const l of readFileSync(p, 'utf8').split('\n'))
            if (l !== '') want.push(JSON.parse(l));
        }
      }
    };
    walk(join(dir, 'nd', 'events'));
    const key = (r: Record<string, unknown>) => `${r.journal} ${String(r.seq).padStart(9, '0')}`;
    const sort = (rows: Record<string, unknown>[]) =>
      rows.sort((a, b) => key(a).localeCompare(key(b)));
    t.same(sort(got.rows), sort(want));
  },
);
