// A large journal replayed by ct-analyze with its decoding thread: the same report, the same errors.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { formatCollapse } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { jsonChunks, tableReport } from '../../../analyzer/report/json.js';
import { reportChunks } from '../../../analyzer/report/text.js';
import { CtError } from '../../../common/errors.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import type { CtEvent } from '../../../journal/event.js';
import { FORMAT_VERSIONS, type FormatVersion } from '../../../journal/format.js';
import { JournalWriter } from '../../../journal/writer.js';
import { HEADER } from '../../helpers/journals.js';
import { SEED_EVENTS, tempDir } from '../fixtures.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });

/** The CtError analyzeJournals throws on this thread. */
function threadError(path: string): CtError {
  try {
    analyzeJournals([path]);
  } catch (err) {
    if (err instanceof CtError) return err;
    throw err;
  }
  throw new Error(`${path} analyzed without error`);
}

// ct-analyze hands journals of 8 MiB and more to a worker thread (analyzer/core/replay.ts).
const dir = tempDir(t, 'parallel');
// Two journals of 8 MiB, each replayed several times on one thread and by the CLI: on a busy
// 2-core machine that takes minutes.
t.setTimeout(600_000);
const base = SEED_EVENTS[0] as CtEvent;
/** Varied bits per event, so that a compressed (format 2) journal reaches 8 MiB soon too. */
const mix = (n: number) => Math.imul(n ^ 0x9e3779b9, 0x85ebca6b) >>> 0;

function batchAt(b: number): CtEvent[] {
  const batch: CtEvent[] = [];
  for (let i = 0; i < 1024; i++) {
    const n = b * 1024 + i;
    const r = mix(n);
    batch.push({
      ...base,
      type: ((n % 3) + 1) as CtEvent['type'],
      proto: n % 5 === 0 ? 17 : 6,
      status: n % 7 === 0 ? 0x08 : 0x0e,
      id: r,
      time: base.time + n * 10,
      // Byte counts as a busy host has them: entropy a compressed journal keeps.
      counters: {
        origPackets: r & 0xfff,
        origBytes: r,
        replyPackets: r >>> 20,
        replyBytes: mix(r),
      },
      orig: {
        ...base.orig,
        src: Uint8Array.of(10, 1, (r >>> 16) & 0x0f, r & 0xff),
        sport: 1024 + (r % 60000),
        dport: [22, 53, 80, 443][n % 4] as number,
      },
    });
  }
  return batch;
}

const EIGHT_MIB = 8 * 1024 * 1024;

/**
 * A journal just over 8 MiB in `format`. The host's addresses at start and one change half
 * way: direction must come through the decoding thread too (every flow goes to 65.8.205.11,
 * local only after the change).
 */
function bigJournal(path: string, formatVersion: FormatVersion): void {
  const eth0 = {
    ifname: 'eth0',
    family: 4 as const,
    address: Uint8Array.of(10, 1, 0, 7),
    prefix: 24,
  };
  const w = JournalWriter.create(path, { ...HEADER, addresses: [eth0] }, { formatVersion });
  let changed = false;
  for (let b = 0; w.bytesWritten < EIGHT_MIB + 64 * 1024; b++) {
    const batch = batchAt(b);
    w.append(batch);
    if (!changed && w.bytesWritten >= EIGHT_MIB / 2) {
      changed = true;
      w.noteAddresses({
        time: (batch[0] as CtEvent).time,
        addresses: [
          eth0,
          { ifname: 'eth1', family: 4, address: Uint8Array.of(65, 8, 205, 11), prefix: 24 },
        ],
      });
    }
  }
  w.close({ stop: HEADER.start + 60_000_000 });
}

for (const format of FORMAT_VERSIONS) {
  const big = join(dir, `big-v${format}.mpk`);
  bigJournal(big, format);
  t.ok(
    statSync(big).size >= EIGHT_MIB,
    `format ${format}: the journal is large enough for the worker`,
  );

  t.test(
    `parallel: the report is the one the single-threaded replay makes (format ${format})`,
    async (t) => {
      const { table, journals } = analyzeJournals([big]);
      const text = cli(big);
      t.equal(text.status, 0, text.stderr);
      t.equal(text.stdout, [...reportChunks(journals, table.flows())].join(''));
      const shown = cli('--show', 'direction', big);
      t.equal(
        shown.stdout,
        [...reportChunks(journals, table.flows(), { direction: true })].join(''),
      );
      t.match(shown.stdout, /\(input\)\n/, 'the changed addresses made flows input');
      t.match(shown.stdout, /\(local\)\n/, 'flows between the two local addresses are local');
      const json = cli('--format', 'json', '--collapse', 'none', big);
      t.equal(json.status, 0, json.stderr);
      const none = analyzeJournals([big], { collapse: { kind: 'none' } });
      t.equal(json.stdout, [...jsonChunks(tableReport(none.table, none.journals))].join(''));
      t.equal(formatCollapse(none.table.collapse), 'none');
      t.ok(table.size > 4000, `many flows (${table.size})`);
    },
  );

  t.test(
    `parallel: damage in the middle is the same CORRUPT error, at the same byte (format ${format})`,
    async (t) => {
      const bytes = readFileSync(big);
      const at = Math.floor(bytes.length / 2);
      const damaged = join(dir, `damaged-v${format}.mpk`);
      const copy = Buffer.from(bytes);
      copy[at] = (copy[at] as number) ^ 0x40;
      writeFileSync(damaged, copy);
      const expected = threadError(damaged);
      t.equal(expected.code, 'ECORRUPT');
      const r = cli(damaged);
      t.equal(r.status, 1);
      t.equal(r.stderr, `ct-analyze: ${expected.message}\n`);
      t.equal(r.stdout, '', 'no report from a corrupt journal');
    },
  );

  t.test(
    `parallel: a swapped pair of frames is MODIFIED, as on one thread (format ${format})`,
    async (t) => {
      const bytes = readFileSync(big);
      // Frames: magic, header, then events frames; swap the 3rd and 4th events frames.
      const starts: number[] = [];
      for (let p = 8; p < bytes.length; p += 9 + bytes.readUInt32LE(p)) starts.push(p);
      const [a, b, c] = [starts[3], starts[4], starts[5]] as number[];
      const swapped = Buffer.concat([
        bytes.subarray(0, a),
        bytes.subarray(b, c),
        bytes.subarray(a, b),
        bytes.subarray(c),
      ]);
      const path = join(dir, `swapped-v${format}.mpk`);
      writeFileSync(path, swapped);
      const expected = threadError(path);
      t.equal(expected.code, 'EMODIFIED');
      const r = cli(path);
      t.equal(r.status, 1);
      t.equal(r.stderr, `ct-analyze: ${expected.message}\n`);
    },
  );

  t.test(
    `parallel: a torn tail is read up to its last whole frame, with the warning (format ${format})`,
    async (t) => {
      const bytes = readFileSync(big);
      const path = join(dir, `torn-v${format}.mpk`);
      writeFileSync(path, bytes.subarray(0, bytes.length - 5000));
      const { table, journals } = analyzeJournals([path]);
      const r = cli(path);
      t.equal(r.status, 0, r.stderr);
      t.equal(r.stdout, [...reportChunks(journals, table.flows())].join(''));
      t.match(r.stderr, /ignored \d+ trailing bytes \(recording did not end cleanly\)/);
    },
  );
}
