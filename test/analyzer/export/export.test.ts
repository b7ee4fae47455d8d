// ct-analyze export: every column of every event and flow, in NDJSON and in Parquet (read back by DuckDB), the layout, and what a failure leaves.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import t from 'tap';
import { formatAddress } from '../../../analyzer/core/address.js';
import { DEFAULT_COLLAPSE, parseCollapse } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import {
  type ExportCommand,
  type ExportFormat,
  runExport,
} from '../../../analyzer/export/export.js';
import { EVENT_COLUMNS, FLOW_COLUMNS } from '../../../analyzer/export/schema.js';
import { CtError } from '../../../common/errors.js';
import type { CtEvent } from '../../../journal/event.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbEvent } from '../../helpers/arbitraries.js';
import { bin16, expectedRow, rfc3339 } from '../../helpers/export-rows.js';
import { HEADER, readWhole, tempDir } from '../../helpers/journals.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'v1');
const quiet = { warn: () => {}, note: () => {} };

/** Every file under dir (relative paths, sorted), temporary ones included. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function journalOf(path: string, events: CtEvent[], host = HEADER.host, trailer = true): string {
  const w = JournalWriter.create(path, { ...HEADER, host });
  for (let i = 0; i < events.length; i += 100) w.append(events.slice(i, i + 100));
  if (trailer) w.close({ stop: HEADER.start + 60_000_000 });
  else w.closeAfterFailure();
  return path;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function command(journals: string[], output: string, more: Partial<ExportCommand> = {}) {
  return {
    journals,
    output,
    what: 'events' as const,
    format: 'ndjson' as ExportFormat,
    collapse: DEFAULT_COLLAPSE,
    force: false,
    ...more,
  };
}

/** Every NDJSON row under dir/sub, parsed, files in name order. */
function ndjsonRows(dir: string, sub: string): Record<string, unknown>[] {
  return tree(join(dir, sub))
    .filter((f) => f.endsWith('.ndjson'))
    .flatMap((f) =>
      readFileSync(join(dir, sub, f), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
}

const bySeq = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.journal).localeCompare(String(b.journal)) || (a.seq as number) - (b.seq as number);

t.test('NDJSON: every column of generated events reads back as the journal holds it', async (t) => {
  const dir = tempDir(t, 'export-rt');
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(arbEvent(), { minLength: 1, maxLength: 60 }), async (events) => {
      const path = journalOf(join(dir, `j${run}.mpk`), events);
      const out = join(dir, `out${run++}`);
      await runExport(command([path], out), quiet);
      const rows = ndjsonRows(out, 'events').sort(bySeq);
      const { events: read } = readWhole(path);
      const want = read.map((ev, i) => expectedRow(ev, i, HEADER.host, sha256(path)));
      t.same(rows, want);
      for (const row of rows)
        t.same(
          Object.keys(row),
          EVENT_COLUMNS.map((c) => c.name),
        );
    }),
    { numRuns: 15 },
  );
});

t.test('NDJSON: the golden v1 fixtures export every event with its journal digest', async (t) => {
  const dir = tempDir(t, 'export-v1');
  const journals = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.mpk'))
    .map((f) => join(FIXTURES, f));
  await runExport(command(journals, dir), quiet);
  const rows = ndjsonRows(dir, 'events');
  let total = 0;
  for (const path of journals) {
    const digest = sha256(path);
    const { header, events } = readWhole(path);
    const mine = rows.filter((r) => r.journal === digest).sort(bySeq);
    const range = header.sysctls.ip_local_port_range;
    const want = events.map((ev, i) => ({
      ...expectedRow(ev, i, header.host, digest),
      port_lo: range?.[0] ?? null,
      port_hi: range?.[1] ?? null,
    }));
    t.same(mine, want, path);
    total += events.length;
  }
  t.equal(rows.length, total, 'no row more than the journals hold');
  t.ok(total > 0);
});

t.test('Parquet read back by DuckDB equals the NDJSON export, column for column', async (t) => {
  const dir = tempDir(t, 'export-pq');
  // Three days: a few partitions, several parts and row groups each.
  const events = fc
    .sample(arbEvent(), { numRuns: 400, seed: 15 })
    .map((e) => ({ ...e, time: 1_795_737_600_000_000 + (e.time % 259_200_000_000) }));
  const path = journalOf(join(dir, 'j.mpk'), events, 'fw/1');
  await runExport(command([path], join(dir, 'nd')), quiet);
  // Small parts and a second journal: several files and row groups.
  const path2 = journalOf(join(dir, 'k.mpk'), events.slice(0, 50), 'fw2');
  await runExport(
    command([path, path2], join(dir, 'pq'), { format: 'parquet', partRows: 7 }),
    quiet,
  );
  await runExport(command([path2], join(dir, 'nd2')), quiet);
  const want = [
    ...ndjsonRows(join(dir, 'nd'), 'events'),
    ...ndjsonRows(join(dir, 'nd2'), 'events'),
  ];
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  t.teardown(() => db.closeSync());
  const glob = join(dir, 'pq', 'events', '**', '*.parquet');
  const cols = EVENT_COLUMNS.map((c) =>
    c.type === 'binary16'
      ? `lower(hex(${c.name})) AS ${c.name}`
      : c.type === 'timestamp_us'
        ? `strftime(${c.name}, '%Y-%m-%dT%H:%M:%S.%fZ') AS ${c.name}`
        : c.name,
  );
  const reader = await db.runAndReadAll(
    `SELECT ${cols.join(', ')} FROM read_parquet('${glob}', hive_partitioning = false) ORDER BY journal, seq`,
  );
  const got = reader.getRowObjectsJson().map((r) => {
    const row: Record<string, unknown> = {};
    for (const c of EVENT_COLUMNS) {
      const v = r[c.name];
      row[c.name] = typeof v === 'string' && ['int64', 'uint64'].includes(c.type) ? Number(v) : v;
    }
    return row;
  });
  t.same(got, want.sort(bySeq));
  // The types the contract names, as DuckDB sees them.
  const types = await db.runAndReadAll(
    `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${glob}', hive_partitioning = false))`,
  );
  const typeOf = Object.fromEntries(
    types.getRowObjectsJson().map((r) => [r.column_name, r.column_type]),
  );
  t.match(typeOf, {
    time: 'TIMESTAMP WITH TIME ZONE',
    time_us: 'BIGINT',
    type: 'UTINYINT',
    status: 'UINTEGER',
    sport: 'USMALLINT',
    orig_bytes: 'UBIGINT',
    src: 'VARCHAR',
    src_bin: 'BLOB',
    time_kernel: 'BOOLEAN',
  });
  const meta = await db.runAndReadAll(
    `SELECT DISTINCT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${glob}')`,
  );
  t.same(meta.getRowObjectsJson(), [{ k: 'conntracker.export', v: '1' }]);
  const nulls = await db.runAndReadAll(
    `SELECT name AS c FROM parquet_schema('${glob}') WHERE repetition_type = 'OPTIONAL' GROUP BY 1 ORDER BY 1`,
  );
  t.same(
    nulls.getRowObjectsJson().map((r) => r.c),
    EVENT_COLUMNS.filter((c) => c.nullable)
      .map((c) => c.name)
      .sort(),
    'exactly the nullable columns are OPTIONAL',
  );
});

t.test(
  'partitions: host escaped as Hive does, one date per UTC day, parts named by digest',
  async (t) => {
    const dir = tempDir(t, 'export-part');
    const day = 86_400_000_000;
    const base = fc.sample(arbEvent({ protos: [6] }), { numRuns: 1, seed: 3 })[0] as CtEvent;
    const at = (time: number): CtEvent => ({ ...base, time });
    const t0 = Date.UTC(2026, 11, 1) * 1000;
    const events = [at(t0 - 1), at(t0), at(t0 + 5), at(t0 + 7), at(t0 + 9), at(t0 + day)];
    const path = journalOf(join(dir, 'j.mpk'), events, 'fw/1=a%b');
    const out = join(dir, 'out');
    await runExport(command([path], out, { partRows: 2 }), quiet);
    const tag = sha256(path).slice(0, 16);
    const h = 'host=fw%2F1%3Da%25b';
    t.same(tree(out), [
      `events/${h}/date=2026-11-30/part-${tag}-0.ndjson`,
      `events/${h}/date=2026-12-01/part-${tag}-0.ndjson`,
      `events/${h}/date=2026-12-01/part-${tag}-1.ndjson`,
      `events/${h}/date=2026-12-02/part-${tag}-0.ndjson`,
      'schema.json',
    ]);
    const schema = JSON.parse(readFileSync(join(out, 'schema.json'), 'utf8'));
    t.equal(schema.version, 1);
    t.same(
      schema.events.map((c: { name: string }) => c.name),
      EVENT_COLUMNS.map((c) => c.name),
    );
    t.same(
      schema.flows.map((c: { name: string }) => c.name),
      FLOW_COLUMNS.map((c) => c.name),
    );
  },
);

t.test(
  'two journals of one host and date share a directory without a file in common',
  async (t) => {
    const dir = tempDir(t, 'export-fleet');
    const events = fc.sample(arbEvent(), { numRuns: 20, seed: 7 }).map((e) => ({
      ...e,
      time: Date.UTC(2026, 11, 1, 12) * 1000,
    }));
    const a = journalOf(join(dir, 'a.mpk'), events);
    const b = journalOf(join(dir, 'b.mpk'), events.slice(1));
    const out = join(dir, 'out');
    await runExport(command([a], out), quiet);
    await runExport(command([b], out, { what: 'both' }), quiet);
    const files = tree(out);
    t.equal(files.filter((f) => f.startsWith('events/host=testhost/date=2026-12-01/')).length, 2);
    t.equal(ndjsonRows(out, 'events').length, 39, 'both journals, every event');
  },
);

t.test('an existing file is refused (EEXIST) and kept; --force replaces it', async (t) => {
  const dir = tempDir(t, 'export-exist');
  const path = journalOf(join(dir, 'j.mpk'), fc.sample(arbEvent(), { numRuns: 5, seed: 1 }));
  const out = join(dir, 'out');
  await runExport(command([path], out), quiet);
  const [part] = tree(out).filter((f) => f.endsWith('.ndjson'));
  const file = join(out, part as string);
  writeFileSync(file, 'mine\n');
  await t.rejects(runExport(command([path], out), quiet), { code: 'EEXIST', message: /--force/ });
  t.equal(readFileSync(file, 'utf8'), 'mine\n', 'the file in the way is untouched');
  t.notOk(
    tree(out).some((f) => f.includes('.tmp')),
    'no temporary file left',
  );
  writeFileSync(join(out, 'schema.json'), '{}');
  await t.rejects(runExport(command([path], out), quiet), { code: 'EEXIST' });
  await runExport(command([path], out, { force: true }), quiet);
  t.not(readFileSync(file, 'utf8'), 'mine\n', 'replaced');
  t.equal(ndjsonRows(out, 'events').length, 5, 'the 5 rows, once each');
});

t.test('one journal given twice is refused before anything is written', async (t) => {
  const dir = tempDir(t, 'export-twice');
  const path = journalOf(join(dir, 'j.mpk'), fc.sample(arbEvent(), { numRuns: 3, seed: 2 }));
  const out = join(dir, 'out');
  await t.rejects(runExport(command([path, path], out), quiet), { code: 'EUSAGE', exit: 2 });
  t.same(tree(out), []);
});

t.test('a corrupt journal fails as ct-analyze does and leaves no file of the export', async (t) => {
  const dir = tempDir(t, 'export-corrupt');
  const good = journalOf(join(dir, 'good.mpk'), fc.sample(arbEvent(), { numRuns: 50, seed: 4 }));
  const bad = journalOf(
    join(dir, 'bad.mpk'),
    fc.sample(arbEvent(), { numRuns: 500, seed: 5 }).map((e, i) => ({ ...e, time: i })),
  );
  const bytes = readFileSync(bad);
  // A byte in the middle of an events frame: damage with good frames after it.
  const at = Math.floor(bytes.length / 3);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  writeFileSync(bad, bytes);
  let analyzeError: unknown;
  try {
    analyzeJournals([bad]);
  } catch (err) {
    analyzeError = err;
  }
  t.type(analyzeError, CtError, 'ct-analyze refuses the journal');
  const out = join(dir, 'out');
  for (const format of ['ndjson', 'parquet'] as const) {
    const failed = runExport(command([good, bad], out, { format, what: 'both' }), quiet);
    await t.rejects(failed, {
      code: (analyzeError as CtError).code,
      message: (analyzeError as CtError).message,
    });
    t.same(
      tree(out),
      [],
      `${format}: not schema.json, not the good journal's parts, no temporary file`,
    );
  }
});

t.test('a full disk (ENOSPC) is a CtError saying what to do, and leaves no file', async (t) => {
  const dir = tempDir(t, 'export-full');
  const path = journalOf(join(dir, 'j.mpk'), fc.sample(arbEvent(), { numRuns: 2000, seed: 6 }));
  const out = join(dir, 'out');
  let written = 0;
  const files = {
    write(_fd: number, data: Uint8Array) {
      written += data.length;
      if (written > 100_000) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      }
    },
  };
  for (const format of ['ndjson', 'parquet'] as const) {
    written = 0;
    await t.rejects(
      runExport(command([path], out, { format, partRows: 300 }), { ...quiet, files }),
      {
        code: 'ENOSPC',
        exit: 1,
        message: /no space left on the device: free some space or export elsewhere/,
      },
    );
    t.same(tree(out), [], `${format}: nothing left behind`);
  }
});

t.test(
  "flows: one row per (host, flow) with that host's facts; grouped, they are ct-analyze's merged table",
  async (t) => {
    const dir = tempDir(t, 'export-flows');
    const events = fc.sample(arbEvent({ small: true, protos: [6, 17, 1, 58] }), {
      numRuns: 300,
      seed: 8,
    });
    const a = journalOf(join(dir, 'a.mpk'), events.slice(0, 200), 'fw1');
    const b = journalOf(join(dir, 'b.mpk'), events.slice(100), 'fw2');
    for (const mode of ['1024', 'none']) {
      const collapse = parseCollapse(mode);
      const out = join(dir, `out-${mode}`);
      await runExport(command([a, b], out, { what: 'flows', collapse }), quiet);
      t.same(
        tree(out).filter((f) => f.startsWith('events/')),
        [],
        '--what flows writes no events',
      );
      const rows = ndjsonRows(out, 'flows');
      for (const host of ['fw1', 'fw2']) {
        const { table } = analyzeJournals([host === 'fw1' ? a : b], { collapse });
        const want = [...table.flows()].map((f) => ({
          host,
          table: f.table,
          family: f.family,
          proto: f.proto,
          src: formatAddress(f.src),
          dst: formatAddress(f.dst),
          src_bin: bin16(f.src),
          dst_bin: bin16(f.dst),
          sport: f.sport,
          dport: f.dport,
          icmp_type: f.icmpType,
          icmp_code: f.icmpCode,
          confirmed: f.confirmed,
          assured: f.assured,
          first_seen: rfc3339(f.firstSeen),
          last_seen: rfc3339(f.lastSeen),
          first_us: f.firstSeen,
          last_us: f.lastSeen,
          collapse: mode,
        }));
        t.same(
          rows.filter((r) => r.host === host),
          want,
          `${host}, --collapse ${mode}`,
        );
      }
      // The fleet's table: group by the key, OR the flags, extremes of the times.
      const merged = new Map<string, { confirmed: boolean; first: number; last: number }>();
      for (const r of rows) {
        const key = [r.table, r.src, r.dst, r.sport, r.dport, r.icmp_type, r.icmp_code].join(' ');
        const m = merged.get(key);
        merged.set(key, {
          confirmed: (m?.confirmed ?? false) || (r.confirmed as boolean),
          first: Math.min(m?.first ?? Number.POSITIVE_INFINITY, r.first_us as number),
          last: Math.max(m?.last ?? 0, r.last_us as number),
        });
      }
      const { table } = analyzeJournals([a, b], { collapse });
      const all = [...table.flows()].map((f) => [
        [
          f.table,
          formatAddress(f.src),
          formatAddress(f.dst),
          f.sport,
          f.dport,
          f.icmpType,
          f.icmpCode,
        ].join(' '),
        { confirmed: f.confirmed, first: f.firstSeen, last: f.lastSeen },
      ]);
      t.same(Object.fromEntries(merged), Object.fromEntries(all), `merged, --collapse ${mode}`);
    }
  },
);

t.test(
  '--since/--until keep the events inside the window, seq still counting every event',
  async (t) => {
    const dir = tempDir(t, 'export-window');
    const events = fc
      .sample(arbEvent(), { numRuns: 30, seed: 9 })
      .map((e, i) => ({ ...e, time: 1_000_000_000 + i }));
    const path = journalOf(join(dir, 'j.mpk'), events);
    const out = join(dir, 'out');
    await runExport(
      command([path], out, { window: { since: 1_000_000_010, until: 1_000_000_019 } }),
      quiet,
    );
    const rows = ndjsonRows(out, 'events').sort(bySeq);
    t.same(
      rows.map((r) => r.seq),
      [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
    );
  },
);

t.test(
  'a torn tail is a warning, as in ct-analyze; the complete frames are exported',
  async (t) => {
    const dir = tempDir(t, 'export-torn');
    const events = fc.sample(arbEvent(), { numRuns: 250, seed: 10 });
    const path = journalOf(join(dir, 'j.mpk'), events, HEADER.host, false);
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0, 0, 0, 9, 1, 2])]));
    const warnings: string[] = [];
    const out = join(dir, 'out');
    await runExport(command([path], out), { warn: (m) => warnings.push(m), note: () => {} });
    t.match(warnings, [/ignored 6 trailing bytes \(recording did not end cleanly\)/]);
    const rows = ndjsonRows(out, 'events').sort(bySeq);
    t.equal(rows.length, 250);
    t.equal(rows[0]?.journal, sha256(path), 'the digest of the file as it is, torn tail included');
  },
);
