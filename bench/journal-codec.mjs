// bench: journal events payloads, format 1 against format 2: bytes per event, encode cost, scan speed.
//
// Usage: node bench/journal-codec.mjs [--runs R] [--best] [--level L] [--reframe MS] JOURNAL.mpk…   (reads dist/: build first)
// Reads every events frame of the journals (v1 or v2) as CtEvents, then re-encodes the same
// frames with both codecs in this process and prints key=value lines: payload bytes per event
// and their ratio, the whole file's size in each format (same frames, same envelopes),
// encode µs/event, and events/s of the replay hot path (scanEvents against scanEventsV2, plus
// inflate alone), each the median (--best: the fastest) of R runs taken in turns.
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(root, 'dist', 'journal', p));
const { openJournal } = await dist('reader.js');
const { encodeEvents } = await dist('events-codec.js');
const { scanEvents } = await dist('events-scan.js');
const { encodeEventsV2, scanEventsV2, unwrapEventsV2, encodeLayout } = await dist('events-v2.js');
const { EventColumns } = await dist('event-columns.js');

const { values: opt, positionals: files } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    level: { type: 'string' },
    best: { type: 'boolean', default: false },
    reframe: { type: 'string' },
  },
  allowPositionals: true,
});
if (files.length === 0) {
  process.stderr.write(
    'usage: node bench/journal-codec.mjs [--runs R] [--best] [--level L] [--reframe MS] JOURNAL.mpk…\n',
  );
  process.exit(2);
}
const RUNS = Number(opt.runs);
/** The fastest run instead of the median: on a shared machine, the one least slowed by others. */
const BEST = opt.best;
const level = opt.level === undefined ? undefined : Number(opt.level);

/** Every events frame of the journals, as CtEvent arrays, and the files' total size. */
const frames = [];
let fileBytes = 0;
let events = 0;
/** Bytes of the files that are not events payloads: the same in either format. */
let other = 0;
for (const f of files) {
  const size = statSync(f).size;
  fileBytes += size;
  other += size;
  const reader = openJournal(f);
  // The payloads as the file holds them (the writers are deterministic: re-encoding gives them).
  const own = reader.header.format === 2 ? encodeEventsV2 : encodeEvents;
  for (const item of reader.batches()) {
    if (!Array.isArray(item)) continue;
    frames.push(item.slice());
    events += item.length;
    other -= own(item).length;
  }
  reader.close();
}

// --reframe MS: the same events regrouped into frames of up to 1,024 events spanning at most MS
// ms of event time (what a writer coalescing the recorder's batches up to its flush interval
// would write), instead of the frames the journal holds.
if (opt.reframe !== undefined) {
  const spanUs = Number(opt.reframe) * 1000;
  const all = frames.flat();
  frames.length = 0;
  let cur = [];
  for (const ev of all) {
    if (cur.length === 1024 || (cur.length > 0 && ev.time - cur[0].time >= spanUs)) {
      frames.push(cur);
      cur = [];
    }
    cur.push(ev);
  }
  if (cur.length > 0) frames.push(cur);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median seconds of each function over RUNS rounds (after one warm-up round); the functions
 * take turns within a round, so a machine whose load changes affects them alike.
 */
function timeEach(...fns) {
  for (const fn of fns) fn();
  const ts = fns.map(() => []);
  for (let r = 0; r < RUNS; r++) {
    fns.forEach((fn, i) => {
      const t0 = process.hrtime.bigint();
      fn();
      ts[i].push(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  }
  return ts.map((t) => (BEST ? Math.min(...t) : median(t)));
}

const sum = (ps) => ps.reduce((a, p) => a + p.length, 0);
let v1 = frames.map((evs) => encodeEvents(evs));
let v2 = frames.map((evs) => encodeEventsV2(evs, { level }));
const v1Bytes = sum(v1);
const v2Bytes = sum(v2);
const layoutBytes = frames.reduce((a, evs) => a + encodeLayout(evs).length, 0);

const [encV1, encV2, layoutOnly] = timeEach(
  () => {
    v1 = frames.map((evs) => encodeEvents(evs));
  },
  () => {
    v2 = frames.map((evs) => encodeEventsV2(evs, { level }));
  },
  () => {
    for (const evs of frames) encodeLayout(evs);
  },
);

const cols = new EventColumns();
const [scanV1, scanV2, inflate] = timeEach(
  () => {
    for (const p of v1) if (!scanEvents(p, 18, cols)) throw new Error('v1 scan declined a payload');
  },
  () => {
    for (const p of v2)
      if (!scanEventsV2(p, 18, cols)) throw new Error('v2 scan declined a payload');
  },
  () => {
    for (const p of v2) unwrapEventsV2(p);
  },
);

const us = (s) => ((s * 1e6) / events).toFixed(3);
const rate = (s) => Math.round(events / s);
const lines = {
  journals: files.length,
  frames: frames.length,
  events,
  file_bytes: fileBytes,
  v1_payload_bytes_per_event: (v1Bytes / events).toFixed(2),
  v2_payload_bytes_per_event: (v2Bytes / events).toFixed(2),
  v2_layout_bytes_per_event: (layoutBytes / events).toFixed(2),
  payload_ratio_v1_over_v2: (v1Bytes / v2Bytes).toFixed(2),
  v1_file_bytes: other + v1Bytes,
  v2_file_bytes: other + v2Bytes,
  file_ratio_v1_over_v2: ((other + v1Bytes) / (other + v2Bytes)).toFixed(2),
  v1_encode_us_per_event: us(encV1),
  v2_encode_us_per_event: us(encV2),
  v2_layout_only_us_per_event: us(layoutOnly),
  v1_scan_events_per_s: rate(scanV1),
  v2_scan_events_per_s: rate(scanV2),
  v2_inflate_only_events_per_s: rate(inflate),
  scan_speed_v2_over_v1: (scanV1 / scanV2).toFixed(2),
  runs: RUNS,
  statistic: BEST ? 'best' : 'median',
  level: level ?? 'default',
  reframe_ms: opt.reframe ?? 'no',
};
for (const [k, v] of Object.entries(lines)) process.stdout.write(`${k}=${v}\n`);
