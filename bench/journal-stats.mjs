// bench helper: what a journal holds, as key=value lines for bench/capture.sh (reads dist/).
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { openJournal } = await import(join(root, 'dist', 'journal', 'reader.js'));

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write('usage: node bench/journal-stats.mjs JOURNAL.mpk\n');
  process.exit(2);
}

const reader = openJournal(path);
const counts = { new: 0, update: 0, destroy: 0, snapshot: 0 };
const TYPES = [undefined, 'new', 'update', 'destroy', 'snapshot'];
/** Distinct original (dst address, dst port) of NEW events: each flood datagram has its own. */
const distinct = new Set();
/** Distinct original 4-tuples of NEW events: each TCP flood connection has its own (bench/tcpflood.c). */
const distinctTuple = new Set();
/** The same over NEW and SNAPSHOT: every flood flow the journal holds in any form. */
const distinctAll = new Set();
let events = 0;
let gaps = 0;
let lost = 0;
let resyncGaps = 0;
let resyncEntries = 0;
try {
  // items(): events frames and gap records in stream order (a build without items() reads
  // batches() and counts no gap).
  const items = reader.items
    ? reader.items()
    : (function* () {
        for (const events of reader.batches()) yield { kind: 'events', events };
      })();
  for (const item of items) {
    if (item.kind === 'gap') {
      gaps++;
      lost += item.gap.lost;
      if (item.gap.resync >= 0) {
        resyncGaps++;
        resyncEntries += item.gap.resync;
      }
      continue;
    }
    for (const ev of item.events) {
      events++;
      const key = TYPES[ev.type];
      if (key !== undefined) counts[key]++;
      if (ev.type === 1) {
        distinct.add(`${ev.orig.dst.join('.')}:${ev.orig.dport}`);
        distinctTuple.add(
          `${ev.orig.src.join('.')}:${ev.orig.sport}>${ev.orig.dst.join('.')}:${ev.orig.dport}`,
        );
      }
      if (ev.type === 1 || ev.type === 4) {
        distinctAll.add(`${ev.orig.dst.join('.')}:${ev.orig.dport}`);
      }
    }
  }
} finally {
  reader.close();
}

const trailer = reader.trailer;
const out = {
  bytes: statSync(path).size,
  events,
  new: counts.new,
  update: counts.update,
  destroy: counts.destroy,
  snapshot: counts.snapshot,
  distinct_new: distinct.size,
  distinct_all: distinctAll.size,
  distinct_new_tuples: distinctTuple.size,
  resync_gaps: resyncGaps,
  resync_entries: resyncEntries,
  complete: trailer !== undefined,
  trailer_events: trailer?.events ?? 'none',
  // 'absent' when this journal format has no loss fields yet (before gap records existed).
  trailer_gaps: trailer?.gaps ?? 'absent',
  trailer_lost: trailer?.lost ?? 'absent',
  read_gaps: gaps,
  read_lost: lost,
};
for (const [k, v] of Object.entries(out)) process.stdout.write(`${k}=${v}\n`);
