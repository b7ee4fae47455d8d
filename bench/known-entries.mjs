// bench helper: what leaving a known dump entry out costs next to decoding it (reads dist/).
// Usage: node bench/known-entries.mjs [ENTRIES]  (default 262144, the default nf_conntrack_max)
// Prints ns per record for KnownEntries.sift() over a dump whose entries are all known, over one
// whose entries are all new, and for decodeRecords() (the first step of writing an entry).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { KnownEntries } = await import(join(root, 'dist', 'recorder', 'known-entries.js'));
const { decodeRecords } = await import(join(root, 'dist', 'recorder', 'records.js'));
const { RECORD_SIZE, FIELDS } = await import(join(root, 'dist', 'native', 'layout.js'));

const n = Number(process.argv[2] ?? 262_144);
const BATCH = 1024; // the addon's batch size (native/reader.h kBatchRecords)

/** One batch of `count` UDP records of type `type`, ids from `first`, like the flood's. */
function batch(type, first, count) {
  const buf = new ArrayBuffer(count * RECORD_SIZE);
  const v = new DataView(buf);
  for (let i = 0; i < count; i++) {
    const at = i * RECORD_SIZE;
    const id = first + i;
    v.setUint8(at + FIELDS.type.offset, type);
    v.setUint8(at + FIELDS.family.offset, 4);
    v.setUint8(at + FIELDS.proto.offset, 17);
    v.setUint32(at + FIELDS.status.offset, 8, true);
    v.setUint32(at + FIELDS.id.offset, (id * 2654435761) >>> 0 || 1, true);
    v.setUint32(at + FIELDS.time.offset, 1_000_000, true);
    v.setUint32(at + FIELDS.origSrc.offset, 0x010000da, false);
    v.setUint32(at + FIELDS.origDst.offset, 0x0a000000 + (id >>> 16), false);
    v.setUint16(at + FIELDS.origSport.offset, 40_000, true);
    v.setUint16(at + FIELDS.origDport.offset, id & 0xffff, true);
    v.setUint32(at + FIELDS.replySrc.offset, 0x0a000000 + (id >>> 16), false);
    v.setUint32(at + FIELDS.replyDst.offset, 0x010000da, false);
    v.setUint16(at + FIELDS.replySport.offset, id & 0xffff, true);
    v.setUint16(at + FIELDS.replyDport.offset, 40_000, true);
  }
  return buf;
}

const batches = (type, offset = 0) =>
  Array.from({ length: Math.ceil(n / BATCH) }, (_, b) =>
    batch(type, 1 + offset + b * BATCH, Math.min(BATCH, n - b * BATCH)),
  );
const ns = (t0, count) => ((Number(process.hrtime.bigint() - t0) / count) | 0).toString();

function run() {
  const known = new KnownEntries(2 * n);
  for (const b of batches(1)) known.sift(b, b.byteLength / RECORD_SIZE);
  const snaps = batches(4);
  let t0 = process.hrtime.bigint();
  known.beginDump();
  let kept = 0;
  for (const b of snaps) kept += known.sift(b, b.byteLength / RECORD_SIZE);
  known.endDump();
  const skip = ns(t0, n);
  const fresh = batches(4, n);
  t0 = process.hrtime.bigint();
  for (const b of fresh) kept += known.sift(b, b.byteLength / RECORD_SIZE);
  const write = ns(t0, n);
  const decode = batches(4);
  const out = [];
  t0 = process.hrtime.bigint();
  for (const b of decode) {
    out.length = 0;
    decodeRecords(b, b.byteLength / RECORD_SIZE, out);
  }
  const dec = ns(t0, n);
  return { skip, write, dec, kept, bytes: known.bytes, size: known.size };
}

run(); // warm-up
const r = run();
console.log(
  `entries=${n} sift_known_ns=${r.skip} sift_new_ns=${r.write} decode_ns=${r.dec} ` +
    `kept=${r.kept} table_bytes=${r.bytes} entries_known=${r.size} bytes_per_entry=${(r.bytes / r.size).toFixed(1)}`,
);
