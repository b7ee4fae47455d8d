// bench helper: what --events minimal would keep of a journal: events and bytes, and the flows equal (reads dist/).
// Usage: node bench/event-diet.mjs [--format-version 1|2] JOURNAL…  (default: each journal's own format)
//        node --expose-gc bench/event-diet.mjs --state [ENTRIES]  (the diet's heap per entry, ns per event)
// Each journal's events go through recorder/diet.ts in file order; both the whole stream and the
// kept events are written again with the recorder's writer settings (same format, same header,
// gaps in place), so the bytes compare like for like. The flow tables of the two are compared in
// every field but lastSeen, and lastSeen is counted where it differs (flows still open at the end).
// "event bytes%" leaves out what a journal without events takes (header, trailer, gap records).
// Exits 1 when a flow table differs in anything but lastSeen.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', p));
const { EventDiet } = await dist('recorder/diet.js');
const { openJournal } = await dist('journal/reader.js');
const { JournalWriter } = await dist('journal/writer.js');
const { FlowTable } = await dist('analyzer/core/flows.js');

/** recorder/sink.ts HOLD_EVENTS: events per frame as the recorder writes them. */
const HOLD = 1024;
const TYPES = ['', 'new', 'update', 'destroy', 'snapshot'];

const args = process.argv.slice(2);
if (args[0] === '--state') {
  await state(Number(args[1] ?? 262_144));
  process.exit(0);
}
const fv = args[0] === '--format-version' ? Number(args[1]) : undefined;
const paths = fv === undefined ? args : args.slice(2);
if (paths.length === 0 || (fv !== undefined && fv !== 1 && fv !== 2)) {
  console.error('usage: node bench/event-diet.mjs [--format-version 1|2] JOURNAL…');
  process.exit(2);
}
const tmp = mkdtempSync(join(tmpdir(), 'event-diet-'));
try {
  console.log(
    'journal\tevents\tkept\tkept%\tupdates\tupdates kept\tbytes all\tbytes minimal\tbytes%\tevent bytes%\tflows\tflows equal (but lastSeen)\tlastSeen differs',
  );
  let n = 0;
  for (const path of paths) {
    const reader = openJournal(path);
    const items = [];
    try {
      for (const item of reader.items()) items.push(item);
    } finally {
      reader.close?.();
    }
    const header = reader.header;
    const diet = new EventDiet(1 << 22);
    const counts = { all: 0, kept: 0, update: 0, updateKept: 0 };
    const allEvents = [];
    const keptEvents = [];
    const rewrite = (name, keep) => {
      const out = join(tmp, `${n++}-${name}.mpk`);
      const w = JournalWriter.create(
        out,
        { ...header, format: fv ?? header.format },
        {
          formatVersion: fv ?? header.format,
          holdEvents: HOLD,
        },
      );
      for (const item of items) {
        if (item.kind === 'events') w.append(keep(item.events));
        else if (item.kind === 'gap') w.appendGap(item.gap);
      }
      w.close({ stop: header.start });
      return statSync(out).size;
    };
    const bytesEmpty = rewrite('empty', () => []);
    const bytesAll = rewrite('all', (evs) => {
      allEvents.push(...evs);
      return evs;
    });
    const bytesMinimal = rewrite('minimal', (evs) => {
      const batch = [...evs];
      diet.siftInPlace(batch);
      for (const ev of evs) {
        counts.all++;
        if (TYPES[ev.type] === 'update') counts.update++;
      }
      for (const ev of batch) if (TYPES[ev.type] === 'update') counts.updateKept++;
      counts.kept += batch.length;
      keptEvents.push(...batch);
      return batch;
    });
    const flows = (evs) => {
      const t = new FlowTable();
      t.addAll(evs);
      return [...t.flows()];
    };
    const a = flows(allEvents);
    const m = flows(keptEvents);
    const strip = (f) => ({ ...f, lastSeen: 0 });
    const equal =
      a.length === m.length && a.every((f, i) => isDeepStrictEqual(strip(f), strip(m[i])));
    const lastSeen = a.filter((f, i) => m[i] !== undefined && m[i].lastSeen !== f.lastSeen).length;
    const pct = (x, y) => (y === 0 ? '-' : ((100 * x) / y).toFixed(1));
    console.log(
      [
        path,
        counts.all,
        counts.kept,
        pct(counts.kept, counts.all),
        counts.update,
        counts.updateKept,
        bytesAll,
        bytesMinimal,
        pct(bytesMinimal, bytesAll),
        pct(bytesMinimal - bytesEmpty, bytesAll - bytesEmpty),
        a.length,
        equal ? 'yes' : 'NO',
        lastSeen,
      ].join('\t'),
    );
    // A smoke check too: a diet that changed a flow fails the run.
    if (!equal) process.exitCode = 1;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** The diet's state for `n` live TCP entries: heap bytes per entry, ns per NEW and per UPDATE left out. */
async function state(n) {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
  const event = (i, type) => {
    const a = new Uint8Array([10, 0, (i >> 8) & 255, i & 255]);
    const b = new Uint8Array([10, 1, 0, 1]);
    const sport = 40_000 + (i % 20_000);
    // Literal objects of one shape, as recorder/records.ts makes them (spreads would not be).
    return {
      type,
      family: 4,
      proto: 6,
      status: 0xe,
      id: i + 1,
      time: i,
      timeKernel: false,
      orig: { src: a, dst: b, sport, dport: 80, icmpType: 0, icmpCode: 0, icmpId: 0 },
      reply: { src: b, dst: a, sport: 80, dport: sport, icmpType: 0, icmpCode: 0, icmpId: 0 },
    };
  };
  const news = Array.from({ length: n }, (_, i) => event(i, 1));
  const updates = Array.from({ length: n }, (_, i) => event(i, 2));
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  const diet = new EventDiet(n);
  const t0 = process.hrtime.bigint();
  for (const ev of news) diet.keeps(ev);
  const t1 = process.hrtime.bigint();
  globalThis.gc();
  const heap = process.memoryUsage().heapUsed - before;
  let kept = 0;
  const t2 = process.hrtime.bigint();
  for (let r = 0; r < 4; r++) for (const ev of updates) if (diet.keeps(ev)) kept++;
  const t3 = process.hrtime.bigint();
  // Both arrays stay alive until here, so the heap difference is the diet's alone.
  console.log(
    `${diet.size} entries (${news.length + updates.length} events made): ${(heap / diet.size).toFixed(0)} B/entry, ` +
      `${(heap / 1e6).toFixed(1)} MB; NEW ${(Number(t1 - t0) / n).toFixed(0)} ns, ` +
      `UPDATE left out ${(Number(t3 - t2) / (4 * n)).toFixed(0)} ns (${kept} kept)`,
  );
}
