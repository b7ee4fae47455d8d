// What the SQL flow-table tests share: fleets of journals (fast-check), their export, ct-analyze's lines and the SQL files.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { runAnalyze } from '../../analyzer/commands/run/analyze.js';
import { parseCollapse } from '../../analyzer/core/flows.js';
import { type ExportFormat, runExport } from '../../analyzer/export/export.js';
import { PACKAGE_ROOT } from '../../common/package.js';
import type { CtEvent, EventTypeCode } from '../../journal/event.js';
import { JournalWriter } from '../../journal/writer.js';
import { arbEvent, arbStatus, PORT_PROTOS } from './arbitraries.js';
import { HEADER } from './journals.js';

export const SQL_DIR = join(PACKAGE_ROOT, 'docs', 'sql');
export const EXPORT_DOC = join(PACKAGE_ROOT, 'docs', 'export.md');
export const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');

/** The SQL files as the docs show them. */
export const sqlFile = (name: string): string => readFileSync(join(SQL_DIR, name), 'utf8');

/** The recorded journals a newcomer analyzes first, and the golden v1 fixtures. */
export function realJournals(): string[] {
  const samples = join(PACKAGE_ROOT, 'samples');
  const v1 = join(PACKAGE_ROOT, 'test', 'fixtures', 'v1');
  return [
    ...readdirSync(samples)
      .filter((f) => f.endsWith('.mpk'))
      .map((f) => join(samples, f)),
    ...readdirSync(v1)
      .filter((f) => f.endsWith('.mpk'))
      .map((f) => join(v1, f)),
  ];
}

/**
 * The modes every case is checked in: the default, none, ephemeral (each journal's recorded
 * range), and ranges whose bounds sit on the pooled ports (1024, 1025, 33000, 65535, 0).
 */
export const FIXED_MODES = ['1024', 'none', 'ephemeral'] as const;
export const RANGE_MODES = ['1025-33000', '1024-1024', '0-65535', '33000-65535', '22-443'];

/** ct-analyze's flow lines (every line not starting with `#`) of the journals, in this process. */
export async function analyzeLines(journals: readonly string[], mode: string): Promise<string> {
  let text = '';
  const stdout = new Writable({
    decodeStrings: false,
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  const quiet = () => {};
  await runAnalyze(
    { journals: [...journals], format: 'text', collapse: parseCollapse(mode) },
    { stdout, warn: quiet, note: quiet },
  );
  return tableLines(text);
}

/** The same from the built CLI, as a user runs it (build first). */
export function cliLines(journals: readonly string[], mode: string): string {
  const r = spawnSync(process.execPath, [CLI, '--collapse', mode, ...journals], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`ct-analyze exited ${r.status}: ${r.stderr}`);
  return tableLines(r.stdout);
}

/** The lines of a report that are not `#` lines, each newline-terminated. */
export function tableLines(report: string): string {
  return report
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => `${l}\n`)
    .join('');
}

/** `ct-analyze export --what events --format F -o dir journals…`, in this process. */
export async function exportEvents(
  journals: readonly string[],
  dir: string,
  format: ExportFormat,
): Promise<void> {
  const quiet = () => {};
  await runExport(
    {
      journals,
      what: 'events',
      format,
      collapse: parseCollapse('1024'),
      output: dir,
      force: false,
    },
    { warn: quiet, note: quiet },
  );
}

/** The event part files of an export, relative to its root, sorted. */
export function eventParts(dir: string, ext: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith(`.${ext}`)) out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(join(dir, 'events'));
  return out.sort();
}

/** One journal of a generated fleet. */
export interface FleetJournal {
  host: string;
  /** The header's ip_local_port_range (null: not recorded; lo > hi: recorded but unusable). */
  portRange: [number, number] | null;
  /** Written as these event frames. */
  batches: CtEvent[][];
}

// Host names a fleet draws from: plain ones, and ones the Hive path must escape.
const HOSTS = ['fw1', 'fw2', 'db-3.example.org', 'a=b/c', 'ünïcode host', '50%'];
const RANGES: ([number, number] | null)[] = [
  [32768, 60999],
  null,
  [1024, 1025],
  [1025, 33000],
  [443, 443],
  [60999, 32768],
  [33000, 65535],
];

/**
 * Several journals of several hosts whose events share connections (the same flow seen by
 * two firewalls, twice by one, under other statuses and source ports): TCP, UDP, ICMP, ICMPv6
 * and protocols no table takes (SCTP, GRE, ICMP in the wrong family), IPv4 and IPv6, NAT
 * (reply tuples that are not the inverse), snapshots, duplicates, ports on the modes' bounds.
 */
export function arbFleet(): fc.Arbitrary<FleetJournal[]> {
  const protos = [6, 17, 1, 58, 6, 17, 132, 47];
  const connection = fc.oneof(
    { arbitrary: arbEvent({ small: true, protos }), weight: 4 },
    // Whole-domain addresses and ports: IPv6 text forms, big ICMP types.
    { arbitrary: arbEvent({ protos }), weight: 1 },
  );
  const sport = fc.constantFrom(0, 22, 443, 1023, 1024, 1025, 32767, 32768, 33000, 60999, 61000);
  return fc.array(connection, { minLength: 1, maxLength: 10 }).chain((bases) => {
    const event = fc
      .record({
        base: fc.constantFrom(...bases),
        type: fc.constantFrom(1, 2, 3, 4).map((t) => t as EventTypeCode),
        status: arbStatus(true),
        sport: fc.option(sport, { nil: undefined }),
      })
      .map(({ base, type, status, sport }): CtEvent => {
        const moved = sport !== undefined && PORT_PROTOS.has(base.proto);
        return { ...base, type, status, orig: moved ? { ...base.orig, sport } : base.orig };
      });
    const journal = fc.record({
      host: fc.constantFrom(...HOSTS),
      portRange: fc.constantFrom(...RANGES),
      batches: fc.array(fc.array(event, { minLength: 1, maxLength: 30 }), {
        minLength: 1,
        maxLength: 3,
      }),
    });
    return fc.array(journal, { minLength: 1, maxLength: 4 });
  });
}

/** Writes the fleet's journals into dir; their paths. */
export function writeFleet(dir: string, fleet: readonly FleetJournal[]): string[] {
  return fleet.map((j, i) => {
    const path = join(dir, `j${i}.mpk`);
    const w = JournalWriter.create(path, {
      ...HEADER,
      host: j.host,
      // Distinct starts: two journals never have the same bytes (export refuses a duplicate).
      start: HEADER.start + i,
      sysctls: { ...HEADER.sysctls, ip_local_port_range: j.portRange },
    });
    for (const b of j.batches) w.append(b);
    w.close({ stop: HEADER.start + 60_000_000 });
    return path;
  });
}

/** The ClickHouse query of a mode: 18.16 has no query parameters, so the literal goes in. */
export function clickhouseFlowsQuery(mode: string): string {
  const sql = sqlFile('flows.clickhouse.sql');
  return `${sql.replaceAll('{collapse:String}', `'${mode}'`)}\nFORMAT TSVRaw`;
}

/**
 * Runs per property: each writes, exports and queries a fleet (~0.5-1.5 s), so a file stays
 * well under tap's 180 s. A failure is shrunk until 100 s have gone by in all, then reported
 * with the smallest counterexample found by then (shrinking all the way can take minutes).
 */
export const PROPERTY_RUNS = { numRuns: 25, interruptAfterTimeLimit: 100_000 } as const;

/** checkProperty for an async property: one tap assertion, fast-check's shrunk counterexample. */
export async function checkAsyncProperty<Ts>(
  t: { pass(msg: string): void; fail(msg: string): void },
  property: fc.IAsyncProperty<Ts>,
  params: fc.Parameters<Ts> = {},
): Promise<void> {
  const details = await fc.check(property, params);
  if (details.failed) {
    t.fail(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${details.errorInstance}`);
  } else if (details.numRuns === 0) {
    t.fail('no run of the property finished in time');
  } else t.pass(`property held for ${details.numRuns} runs`);
}
