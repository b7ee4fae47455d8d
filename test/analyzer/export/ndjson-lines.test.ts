// NDJSON event lines from cached pieces (tuple blocks, numbered connections, digits, time, optional columns) are byte for byte JSON.stringify of the row; writes on the pool fail as a CtError.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { DEFAULT_COLLAPSE } from '../../../analyzer/core/flows.js';
import { ExportBatch } from '../../../analyzer/export/batch.js';
import { runExport } from '../../../analyzer/export/export.js';
import { ExportFiles } from '../../../analyzer/export/files.js';
import { NdjsonEventPart } from '../../../analyzer/export/ndjson.js';
import type { JournalContext } from '../../../analyzer/export/rows.js';
import { EVENT_COLUMNS } from '../../../analyzer/export/schema.js';
import { AddressCache, TimeText } from '../../../analyzer/export/values.js';
import type { CtEvent } from '../../../journal/event.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbEvent, arbFlowEvents } from '../../helpers/arbitraries.js';
import { expectedRow } from '../../helpers/export-rows.js';
import { HEADER, tempDir } from '../../helpers/journals.js';

/** The line docs/export.md promises for an event: JSON.stringify of the row, columns in order. */
function expectedLine(ev: CtEvent, seq: number, j: JournalContext): string {
  const row = expectedRow(ev, seq, j.host, j.sha256, [j.portLo, j.portHi]);
  if (Object.keys(row).join() !== EVENT_COLUMNS.map((c) => c.name).join()) {
    throw new Error('the expected row is not in schema.ts order');
  }
  return `${JSON.stringify(row)}\n`;
}

/** The bytes one NdjsonEventPart writes for the events (one batch), seq from `first`. */
async function partBytes(
  dir: string,
  events: CtEvent[],
  j: JournalContext,
  tupleBlocks?: number,
  first = 0,
  numbered = false,
): Promise<Buffer> {
  const files = new ExportFiles(dir, { force: true });
  const part = new NdjsonEventPart(
    files,
    'part.ndjson',
    j,
    new AddressCache(),
    new TimeText(),
    tupleBlocks,
  );
  const b = new ExportBatch();
  b.fill(events);
  if (numbered) numberConnections(b, events);
  for (let i = 0; i < b.n; i++) part.add(b, i, first + i);
  await part.ready();
  await part.finish();
  files.commit();
  return readFileSync(join(dir, 'part.ndjson'));
}

/** Each event's connection numbered as format 2's scan numbers them: one number per family, protocol, id and tuples. */
function numberConnections(b: ExportBatch, events: readonly CtEvent[]): void {
  const numbers = new Map<string, number>();
  events.forEach((ev, i) => {
    const key = JSON.stringify([ev.family, ev.proto, ev.id, ev.orig, ev.reply], (_, v) =>
      v instanceof Uint8Array ? [...v] : v,
    );
    let n = numbers.get(key);
    if (n === undefined) {
      n = numbers.size;
      numbers.set(key, n);
    }
    b.conn[i] = n;
  });
  b.conns = numbers.size;
}

const arbContext: fc.Arbitrary<JournalContext> = fc.record({
  // Quotes, backslashes, control characters, non-ASCII and astral characters all need escaping or UTF-8.
  host: fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom('fw"1\\', 'tür-α', 'gw\u0001\n', '🔥host'),
  ),
  sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
  portLo: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: null }),
  portHi: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: null }),
});

t.test(
  'NDJSON: a line from cached pieces is JSON.stringify of its row (IPv4/IPv6, ICMP, optional columns absent and present, any host)',
  async (t) => {
    const dir = tempDir(t, 'ndjson-lines');
    // Repeated connections hit the tuple cache; 1 and 2 blocks make it start over all the time.
    const events = fc.oneof(
      fc.array(arbEvent(), { minLength: 1, maxLength: 40 }),
      arbFlowEvents({ minLength: 1, maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(
        events,
        arbContext,
        fc.constantFrom(undefined, 1, 2, 3),
        // Consecutive seqs carry in place: across 99 → 100 and 99,999 → 100,000 too.
        fc.oneof(fc.nat(2 ** 40), fc.constantFrom(0, 95, 99_990, 2 ** 40 - 5)),
        // Numbered connections (format 2) take the batch's table before the cache.
        fc.boolean(),
        async (evs, j, blocks, first, numbered) => {
          const got = await partBytes(dir, evs, j, blocks, first, numbered);
          const want = evs.map((ev, i) => expectedLine(ev, first + i, j)).join('');
          t.equal(got.toString('utf8'), want);
          t.ok(got.equals(Buffer.from(want, 'utf8')), 'and byte for byte');
        },
      ),
      { numRuns: 150 },
    );
  },
);

t.test(
  'NDJSON: times before 1970-01-01T00:00:01 (whole digits) between later ones keep seq and time_us exact',
  async (t) => {
    const dir = tempDir(t, 'ndjson-epoch');
    const base = fc.sample(arbEvent(), { numRuns: 1, seed: 17 })[0] as CtEvent;
    const times = [0, 999_999, 1_000_000, 5, 1_000_001, 2_000_000, 999_999, 86_400_000_000];
    const evs = times.map((time) => ({ ...base, time }));
    const j: JournalContext = { host: 'h', sha256: 'cd'.repeat(32), portLo: null, portHi: null };
    for (const first of [0, 97, 9_999_996]) {
      const got = await partBytes(dir, evs, j, undefined, first);
      const want = evs.map((ev, i) => expectedLine(ev, first + i, j)).join('');
      t.equal(got.toString('utf8'), want, `from seq ${first}`);
    }
  },
);

t.test(
  'NDJSON: more distinct IPv6 connections than the tuple arena holds still write every line as JSON.stringify',
  async (t) => {
    const dir = tempDir(t, 'ndjson-arena');
    // ~450 bytes a block: 12,000 of them overflow the 4 MB arena before the block count limit.
    const base = fc.sample(arbEvent({ families: [6] }), { numRuns: 200, seed: 15 });
    const evs = Array.from({ length: 12_000 }, (_, i) => {
      const ev = base[i % base.length] as CtEvent;
      return { ...ev, id: (ev.id + i) >>> 0 };
    });
    // Each connection twice, far apart: the second is a hit or a miss after the start over.
    const twice = [...evs, ...evs];
    const j: JournalContext = { host: 'h', sha256: 'ab'.repeat(32), portLo: 1, portHi: 2 };
    const want = twice.map((ev, i) => expectedLine(ev, i, j)).join('');
    for (const numbered of [false, true]) {
      const got = await partBytes(dir, twice, j, undefined, 0, numbered);
      t.ok(
        got.equals(Buffer.from(want, 'utf8')),
        `${twice.length} lines byte for byte (connections ${numbered ? '' : 'not '}numbered)`,
      );
    }
  },
);

t.test(
  'a full disk on the thread pool (writeAsync rejects ENOSPC) is a CtError saying what to do, and leaves no file',
  async (t) => {
    const dir = tempDir(t, 'ndjson-full');
    const path = join(dir, 'j.mpk');
    const w = JournalWriter.create(path, HEADER);
    const events = fc.sample(arbEvent(), { numRuns: 6000, seed: 16 });
    for (let i = 0; i < events.length; i += 100) w.append(events.slice(i, i + 100));
    w.close({ stop: HEADER.start + 60_000_000 });
    let written = 0;
    const files = {
      write(_fd: number, data: Uint8Array) {
        written += data.length;
      },
      async writeAsync(_fd: number, data: Uint8Array) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        written += data.length;
        if (written > 1_500_000) {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
          });
        }
      },
    };
    const out = join(dir, 'out');
    await t.rejects(
      runExport(
        {
          journals: [path],
          output: out,
          what: 'events',
          format: 'ndjson',
          collapse: DEFAULT_COLLAPSE,
          force: false,
        },
        { warn: () => {}, note: () => {}, files },
      ),
      {
        code: 'ENOSPC',
        exit: 1,
        message: /no space left on the device: free some space or export elsewhere/,
      },
    );
    t.ok(written > 1_500_000, 'the failing write was one on the pool');
    const left = existsSync(out)
      ? readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) =>
          statSync(join(out, f)).isFile(),
        )
      : [];
    t.same(left, [], 'no file kept, no temporary one left');
  },
);
