// The export's every-field scans (scan-v1.ts, scan-v2.ts) against the decode path: the same batch, the same export bytes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { DEFAULT_COLLAPSE } from '../../../analyzer/core/flows.js';
import {
  BYTES_PER_EVENT,
  ExportBatch,
  F_COUNTERS,
  F_MARK,
  F_START,
  F_TCP,
  F_ZONE,
} from '../../../analyzer/export/batch.js';
import { type ExportFormat, runExport } from '../../../analyzer/export/export.js';
import { EXPORT_SCANS } from '../../../analyzer/export/read.js';
import { scanExportV1 } from '../../../analyzer/export/scan-v1.js';
import { scanExportV2 } from '../../../analyzer/export/scan-v2.js';
import type { CtEvent } from '../../../journal/event.js';
import { decodeEvents, encodeEvents } from '../../../journal/events-codec.js';
import { decodeEventsV2, encodeEventsV2 } from '../../../journal/events-v2.js';
import { EVENT_FIELDS } from '../../../journal/format.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbEvent, arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER, tempDir } from '../../helpers/journals.js';
import { arbDamaged, arbEdgePayload, arbPlainEvents } from '../../helpers/scan-cases.js';

// 80–140 s on the 2-core test machine under load (the Parquet exports, twice each): tap's
// default 180 s leaves too little room on a busy CI run.
t.setTimeout(400_000);

const FIELDS = EVENT_FIELDS.length;
const quiet = { warn: () => {}, note: () => {} };

const ALWAYS = [
  'time',
  'status',
  'id',
  'sport',
  'dport',
  'replySport',
  'replyDport',
  'icmpId',
  'type',
  'family',
  'proto',
  'icmpType',
  'icmpCode',
  'flags',
] as const;

/** What the writers read of a batch: every column, the optional ones where flags say present. */
function snapshot(b: ExportBatch): Record<string, number[]> {
  const out: Record<string, number[]> = { n: [b.n] };
  for (const name of ALWAYS) out[name] = [...b[name].subarray(0, b.n)];
  out.addr = [...b.addr.subarray(0, 16 * b.n)];
  const opt: number[] = [];
  for (let i = 0; i < b.n; i++) {
    const f = b.flags[i] as number;
    if (f & F_START) opt.push(i, b.start[i] as number);
    if (f & F_COUNTERS) {
      opt.push(i, b.origPackets[i] as number, b.origBytes[i] as number);
      opt.push(b.replyPackets[i] as number, b.replyBytes[i] as number);
    }
    if (f & F_MARK) opt.push(i, b.mark[i] as number);
    if (f & F_ZONE) opt.push(i, b.zone[i] as number);
    if (f & F_TCP) opt.push(i, b.tcpState[i] as number);
  }
  out.optional = opt;
  return out;
}

type Decode = (payload: Uint8Array, fields: number) => CtEvent[];
type Scan = (payload: Uint8Array, fields: number, b: ExportBatch) => boolean;

/** What the decode path fills from a payload; undefined when decode rejects it. */
function reference(decode: Decode, payload: Uint8Array): Record<string, number[]> | undefined {
  let events: CtEvent[];
  try {
    events = decode(payload, FIELDS);
  } catch {
    return undefined;
  }
  const b = new ExportBatch();
  b.fill(events);
  return snapshot(b);
}

/** The scan's claim: when it accepts a payload, decode accepts it and fills the same batch. */
function agrees(scan: Scan, decode: Decode, payload: Uint8Array, batch = new ExportBatch()) {
  const accepted = scan(payload, FIELDS, batch);
  if (accepted) assert.deepEqual(snapshot(batch), reference(decode, payload));
  return accepted;
}

/** Events as a recorder writes most of them: the reply elided, times in order. */
const arbEvents = fc.oneof(
  fc.array(arbEvent(), { minLength: 0, maxLength: 20 }),
  arbPlainEvents,
  arbFlowEvents({ minLength: 1, maxLength: 60 }),
);

const FORMATS = [
  {
    name: 'v1',
    scan: scanExportV1,
    decode: decodeEvents,
    encode: (e: CtEvent[]) => encodeEvents(e),
  },
  {
    name: 'v2',
    scan: scanExportV2,
    decode: decodeEventsV2 as Decode,
    encode: (e: CtEvent[]) => encodeEventsV2(e, { level: 0 }),
  },
] as const;

for (const f of FORMATS) {
  t.test(`export scan ${f.name}: every writer payload is scanned, to what decode fills`, (t) => {
    // One batch across runs, as the reader uses it: stale fields of a longer batch must not show.
    const batch = new ExportBatch();
    checkProperty(
      t,
      fc.property(arbEvents, (evs) => {
        assert.equal(agrees(f.scan, f.decode, f.encode(evs), batch), true, 'a writer payload');
      }),
      { numRuns: 400 },
    );
    t.end();
  });

  t.test(`export scan ${f.name}: damaged payloads are never read differently from decode`, (t) => {
    let accepted = 0;
    let refused = 0;
    checkProperty(
      t,
      fc.property(arbDamaged(arbEvents, f.encode), (payload) => {
        if (agrees(f.scan, f.decode, payload)) accepted++;
        else refused++;
      }),
      { numRuns: 2000 },
    );
    t.ok(accepted > 0 && refused > 0, `both outcomes were exercised (${accepted}/${refused})`);
    t.end();
  });
}

t.test(
  'export scan v1: an edge value in any field is read as decode reads it, or declined',
  (t) => {
    let accepted = 0;
    checkProperty(
      t,
      fc.property(arbEdgePayload(FIELDS), (payload) => {
        if (agrees(scanExportV1, decodeEvents, payload)) accepted++;
      }),
      { numRuns: 8000 },
    );
    t.ok(accepted > 0, `edge values were accepted where valid (${accepted})`);
    t.end();
  },
);

t.test(
  'export scan v1: a count larger than the payload could hold is declined, not allocated',
  (t) => {
    const b = new ExportBatch();
    t.equal(scanExportV1(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), FIELDS, b), false);
    t.equal(b.capacity, 0, 'no room was made for 4 G events');
    t.equal(scanExportV1(Uint8Array.of(0x90, 0x00), FIELDS, b), false, 'trailing byte');
    t.equal(scanExportV1(Uint8Array.of(0x90), FIELDS, b), true, 'an empty batch');
    t.equal(b.n, 0);
    t.end();
  },
);

t.test('export batch: release hands the buffer over and the next reset takes a new one', (t) => {
  const given: ArrayBuffer[] = [];
  const b = new ExportBatch((bytes) => {
    const buf = new ArrayBuffer(bytes);
    given.push(buf);
    return buf;
  });
  b.reset(10);
  t.equal(b.buffer.byteLength, BYTES_PER_EVENT * 1024, 'room for 1024 events at least');
  const first = b.release();
  t.equal(first, given[0]);
  t.equal(b.capacity, 0);
  b.reset(10);
  t.equal(given.length, 2, 'a second buffer was asked for');
  t.not(b.buffer, first);
  t.end();
});

// The whole export, both ways: the scans as they are, and every payload declined (decode).

/** Every file under dir with its SHA-256, relative paths sorted. */
function digests(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else
        out.push(
          `${relative(dir, p)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`,
        );
    }
  };
  walk(dir);
  return out.sort();
}

async function exportBothWays(
  journals: string[],
  dir: string,
  format: ExportFormat,
): Promise<{ scanned: string[]; decoded: string[]; declined: number }> {
  const command = (output: string) => ({
    journals,
    output,
    what: 'events' as const,
    format,
    collapse: DEFAULT_COLLAPSE,
    force: false,
  });
  const { 1: s1, 2: s2 } = EXPORT_SCANS;
  let declined = 0;
  await runExport(command(join(dir, `scan-${format}`)), quiet);
  EXPORT_SCANS[1] = () => {
    declined++;
    return false;
  };
  EXPORT_SCANS[2] = EXPORT_SCANS[1];
  try {
    await runExport(command(join(dir, `decode-${format}`)), quiet);
  } finally {
    EXPORT_SCANS[1] = s1;
    EXPORT_SCANS[2] = s2;
  }
  return {
    scanned: digests(join(dir, `scan-${format}`)),
    decoded: digests(join(dir, `decode-${format}`)),
    declined,
  };
}

function journalOf(path: string, events: CtEvent[], formatVersion: 1 | 2): string {
  const w = JournalWriter.create(path, HEADER, { formatVersion });
  for (let i = 0; i < events.length; i += 100) w.append(events.slice(i, i + 100));
  w.close({ stop: HEADER.start + 60_000_000 });
  return path;
}

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');
const goldens = ['v1', 'v2'].flatMap((v) =>
  readdirSync(join(FIXTURES, v))
    .filter((f) => f.endsWith('.mpk'))
    .map((f) => join(FIXTURES, v, f)),
);

for (const format of ['ndjson', 'parquet'] as const) {
  t.test(
    `export scan: the ${format} export of ${format === 'ndjson' ? 'generated and golden journals' : 'generated journals'}, both formats, is byte for byte the decode path's`,
    async (t) => {
      const dir = tempDir(t, `export-scan-${format}`);
      const evs = fc.sample(arbFlowEvents({ minLength: 300, maxLength: 600 }), {
        numRuns: 1,
        seed: 15,
      })[0] as CtEvent[];
      const mixed = fc.sample(fc.array(arbEvent(), { minLength: 300, maxLength: 300 }), {
        numRuns: 1,
        seed: 16,
      })[0] as CtEvent[];
      const all = [
        journalOf(join(dir, 'flows-v1.mpk'), evs, 1),
        journalOf(join(dir, 'flows-v2.mpk'), evs, 2),
        journalOf(join(dir, 'mixed-v1.mpk'), mixed, 1),
        journalOf(join(dir, 'mixed-v2.mpk'), mixed, 2),
        ...goldens,
      ];
      // A Parquet part file costs seconds on a loaded machine, so Parquet takes one journal of
      // each format: the batches it reads are the ones the NDJSON comparison holds to decode's.
      const journals = format === 'ndjson' ? all : [all[0] as string, all[3] as string];
      const { scanned, decoded, declined } = await exportBothWays(journals, dir, format);
      t.ok(declined > 0, `the second export decoded every payload (${declined} frames)`);
      t.ok(scanned.length > 0, `${scanned.length} files`);
      t.same(scanned, decoded, 'every file, byte for byte');
    },
  );
}
