// Checkpoints and the digest chain: when the writer puts them, what they vouch for, forged ones.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Exit } from '../../common/errors.js';
import {
  type FormatVersion,
  FRAME_HEADER_SIZE,
  FrameKind,
  MAGIC,
  packr,
  unpackr,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { JournalWriter } from '../../journal/writer.js';
import { ctErrorOf, FORMATS, gap, HEADER, readAll, tcpNew, tempDir } from './fixtures.js';

const dir = tempDir(t, 'checkpoint');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** Every frame of a journal file: where it starts, its kind and its payload decoded. */
function frames(bytes: Buffer) {
  const out: Array<{ at: number; end: number; kind: number; value: Record<string, unknown> }> = [];
  for (let at = MAGIC.length; at < bytes.length; ) {
    const end = at + FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
    const kind = bytes[at + 8] as number;
    out.push({
      at,
      end,
      kind,
      value: unpackr.unpack(bytes.subarray(at + FRAME_HEADER_SIZE, end)) as Record<string, unknown>,
    });
    at = end;
  }
  return out;
}

for (const format of FORMATS) {
  t.test(
    `journal: a checkpoint goes before the frame after every K frames, vouching for all before it (format ${format})`,
    (t) => {
      const path = join(dir, `v${format}-every3.mpk`);
      const w = JournalWriter.create(path, HEADER, { formatVersion: format, checkpointFrames: 3 });
      for (let i = 0; i < 7; i++) {
        if (i === 4) w.appendGap(gap({ lost: 5 }));
        w.append([tcpNew(2 * i), tcpNew(2 * i + 1)]);
      }
      w.close({ stop: HEADER.start + 1 });
      const bytes = readFileSync(path);
      const fs = frames(bytes);
      // Frames since the last checkpoint count the gap too, never the header.
      t.same(
        fs.map((f) => f.kind),
        [1, 2, 2, 2, 5, 2, 4, 2, 5, 2, 2, 3],
        'header, 3 frames, checkpoint, 3 frames, checkpoint, …, trailer',
      );
      const cps = fs.filter((f) => f.kind === FrameKind.CHECKPOINT);
      t.equal(w.checkpoints, 2);
      for (const cp of cps) {
        const v = cp.value;
        const before = fs.filter((f) => f.at < cp.at);
        t.same(
          v.digest,
          sha256(bytes.subarray(0, cp.at)),
          `checkpoint at ${cp.at}: sha256 of every byte before it`,
        );
        t.equal(v.frames, before.length);
        t.equal(v.events, 2 * before.filter((f) => f.kind === FrameKind.EVENTS).length);
      }
      t.same([cps[1]?.value.gaps, cps[1]?.value.lost], [1, 5]);
      const trailer = fs.at(-1);
      t.same(trailer?.value.digest, sha256(bytes.subarray(0, trailer?.at)));
      t.equal(
        w.sha256,
        sha256(bytes).toString('hex'),
        'writer.sha256 after close is the file’s sha256sum',
      );
      const { reader, events } = readAll(path);
      t.equal(events.length, 14);
      t.equal(reader.counts.checkpoints, 2);
      t.same(reader.counts.verified, {
        frames: 8,
        events: 10,
        gaps: 1,
        lost: 5,
        offset: cps[1]?.at,
      });
      t.equal(reader.sha256, w.sha256);
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `journal: a checkpoint goes before the next frame once checkpointMs passed, never for nothing (format ${format})`,
    (t) => {
      const path = join(dir, `v${format}-timed.mpk`);
      let now = 1000;
      const w = JournalWriter.create(path, HEADER, {
        formatVersion: format,
        checkpointMs: 60_000,
        clock: () => now,
      });
      w.append([tcpNew(0)]);
      now += 59_999;
      w.append([tcpNew(1)]);
      t.equal(w.checkpoints, 0, 'not before the interval');
      now += 1;
      w.append([tcpNew(2)]);
      t.equal(w.checkpoints, 1, 'due: written before the third frame');
      now += 120_000;
      t.equal(w.checkpoint(), true, 'an explicit checkpoint after a frame');
      t.equal(w.checkpoint(), false, 'nothing new since: none');
      w.append([tcpNew(3)]);
      t.equal(w.checkpoints, 2, 'the explicit one restarted the interval');
      w.close({ stop: HEADER.start + 1 });
      const kinds = frames(readFileSync(path)).map((f) => f.kind);
      t.same(kinds, [1, 2, 2, 5, 2, 5, 2, 3]);
      t.equal(readAll(path).reader.counts.checkpoints, 2);
      t.end();
    },
  );
}

t.test('journal: checkpoint options below 1 are a RangeError, before any file exists', (t) => {
  for (const opts of [
    { checkpointFrames: 0 },
    { checkpointMs: -5 },
    { checkpointFrames: Number.NaN },
  ]) {
    t.throws(() => JournalWriter.create(join(dir, 'never.mpk'), HEADER, opts), RangeError);
  }
  t.throws(() => readFileSync(join(dir, 'never.mpk')), { code: 'ENOENT' });
  t.end();
});

/** A journal with checkpoints every 2 frames, and its frames. */
function withCheckpoints(name: string, formatVersion: FormatVersion) {
  const path = join(dir, `v${formatVersion}-${name}`);
  const w = JournalWriter.create(path, HEADER, { checkpointFrames: 2, formatVersion });
  for (let i = 0; i < 5; i++) w.append([tcpNew(i)]);
  w.close({ stop: HEADER.start + 1 });
  const bytes = readFileSync(path);
  return { bytes, fs: frames(bytes) };
}

for (const format of FORMATS) {
  t.test(
    `journal: a forged checkpoint digest or count is EMODIFIED at that checkpoint (format ${format})`,
    (t) => {
      const { bytes, fs } = withCheckpoints('forge-src.mpk', format);
      const cps = fs.filter((f) => f.kind === FrameKind.CHECKPOINT);
      t.equal(cps.length, 2);
      const second = cps[1] as (typeof cps)[number];
      const real = second.value;
      const forge = (value: object) => {
        const path = join(dir, `v${format}-forged.mpk`);
        const frame = encodeFrame(FrameKind.CHECKPOINT, packr.pack(value));
        writeFileSync(
          path,
          Buffer.concat([bytes.subarray(0, second.at), frame, bytes.subarray(second.end)]),
        );
        return ctErrorOf(t, () => readAll(path));
      };
      const digest = forge({ ...real, digest: Buffer.alloc(32, 7) });
      t.equal(digest?.code, 'EMODIFIED');
      t.equal(digest?.exit, Exit.RUNTIME);
      t.match(digest?.message, `digest mismatch at checkpoint 2 (frame at byte ${second.at})`);
      const counts = forge({ ...real, events: 99 });
      t.equal(counts?.code, 'EMODIFIED');
      t.match(
        counts?.message,
        /checkpoint 2 counts 99 events in 6 frames, 0 gaps losing 0 events but the journal holds 4 events/,
      );
      t.end();
    },
  );
}
