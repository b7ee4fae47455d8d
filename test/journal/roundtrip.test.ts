// Encode → decode is the identity for any events, batch split, gaps, header and trailer.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import type { CtEvent } from '../../journal/event.js';
import { decodeEvents, encodeEvents } from '../../journal/events-codec.js';
import { EVENT_FIELDS, type JournalGap } from '../../journal/format.js';
import { openJournal } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import { arbEvent, MAX_TIME_US } from '../helpers/arbitraries.js';
import {
  arbGap,
  FORMATS,
  gap,
  HEADER,
  type Item,
  plain,
  readAll,
  tcpNew,
  tempDir,
  writeItems,
} from './fixtures.js';

const dir = tempDir(t, 'roundtrip');

for (const format of FORMATS) {
  t.test(
    `journal: any events in any batch split read back identical, in order (format ${format})`,
    (t) => {
      let n = 0;
      fc.assert(
        fc.property(
          fc.array(fc.array(arbEvent(), { maxLength: 12 }), { maxLength: 6 }),
          (batches) => {
            const path = join(dir, `v${format}-p${n++}.mpk`);
            const w = JournalWriter.create(path, HEADER, { formatVersion: format });
            for (const b of batches) w.append(b);
            w.close({ stop: MAX_TIME_US });
            const { events, batches: read, reader } = readAll(path);
            const written = batches.flat();
            t.same(plain(events), plain(written));
            t.equal(
              read,
              batches.filter((b) => b.length > 0).length,
              'one batch per non-empty append',
            );
            t.equal(reader.trailer?.events, written.length);
            t.equal(reader.tail, undefined);
          },
        ),
        { numRuns: 150 },
      );
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `journal: gaps between any batches read back in stream order, summed in the trailer (format ${format})`,
    (t) => {
      let n = 0;
      const arbItem: fc.Arbitrary<Item> = fc.oneof(
        fc.array(arbEvent(), { maxLength: 6 }),
        arbGap(),
      );
      fc.assert(
        fc.property(fc.array(arbItem, { maxLength: 10 }), fc.boolean(), (items, clean) => {
          const path = join(dir, `v${format}-g${n++}.mpk`);
          writeItems(path, items, clean, format);
          const read = readAll(path);
          const want = items.filter((i) => !Array.isArray(i) || i.length > 0);
          t.same(
            read.items.map((i) => (i.kind === 'gap' ? i.gap : plain(i.events))),
            want.map((i) => (Array.isArray(i) ? plain(i) : i)),
          );
          const gaps = want.filter((i): i is JournalGap => !Array.isArray(i));
          const lost = gaps.reduce((sum, g) => sum + g.lost, 0);
          const c = read.reader.counts;
          t.same(
            [c.gaps, c.lost, c.frames, c.gapsLostUnknown],
            [gaps.length, lost, want.length + 1, gaps.filter((g) => !g.lostKnown).length],
          );
          if (clean)
            t.same([read.reader.trailer?.gaps, read.reader.trailer?.lost], [gaps.length, lost]);
          else t.equal(read.reader.trailer, undefined);
        }),
        { numRuns: 150 },
      );
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(`journal: batches() skips the gaps but still counts them (format ${format})`, (t) => {
    const path = join(dir, `v${format}-skip-gaps.mpk`);
    writeItems(
      path,
      [gap(), [tcpNew(0)], gap({ lost: 3, lostKnown: false }), [tcpNew(1)]],
      true,
      format,
    );
    const reader = openJournal(path);
    t.teardown(() => reader.close());
    t.same(
      [...reader.batches()].map((b) => b.length),
      [1, 1],
    );
    t.same(reader.counts, {
      events: 2,
      byType: { new: 2, update: 0, destroy: 0, snapshot: 0 },
      frames: 5,
      gaps: 2,
      lost: 20,
      gapsLostUnknown: 1,
      lastEventTime: tcpNew(1).time,
      checkpoints: 0,
      verified: undefined,
    });
    t.same([reader.trailer?.gaps, reader.trailer?.lost, reader.trailer?.frames], [2, 20, 5]);
    t.end();
  });
}

t.test('journal: event payload codec is the identity (no file), absent keys stay absent', (t) => {
  fc.assert(
    fc.property(fc.array(arbEvent(), { maxLength: 30 }), (events) => {
      const back = decodeEvents(encodeEvents(events));
      t.same(plain(back), plain(events));
      back.forEach((ev, i) => {
        t.same(Object.keys(ev).sort(), Object.keys(events[i] as CtEvent).sort());
      });
    }),
    { numRuns: 400 },
  );
  t.end();
});

t.test('journal: times above 2^32 and up to 2^53-1 round-trip exactly, deltas both ways', (t) => {
  const times = [0, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, MAX_TIME_US, Number.MAX_SAFE_INTEGER, 5];
  const events = times.map((time, i) => ({
    ...tcpNew(i),
    time,
    start: Math.max(0, time - 7),
    counters: {
      origPackets: Number.MAX_SAFE_INTEGER,
      origBytes: 2 ** 40 + 3,
      replyPackets: 0,
      replyBytes: 2 ** 32,
    },
  }));
  const back = decodeEvents(encodeEvents(events));
  t.same(
    back.map((e) => [e.time, e.start, e.counters]),
    events.map((e) => [e.time, e.start, e.counters]),
  );
  t.end();
});

/** Bytes of the last frame of a journal file (its trailer), found by walking the envelope. */
function trailerBytes(path: string): number {
  const bytes = readFileSync(path);
  let last = 0;
  for (let at = 8; at < bytes.length; at += last) last = 9 + bytes.readUInt32LE(at);
  return last;
}

for (const format of FORMATS) {
  t.test(
    `journal: header and trailer read back as written, writer fills format, counts, digest (format ${format})`,
    (t) => {
      const path = join(dir, `v${format}-meta.mpk`);
      const w = JournalWriter.create(path, HEADER, { formatVersion: format });
      w.append([tcpNew(0), { ...tcpNew(1), type: 3 }]);
      w.append([{ ...tcpNew(2), type: 4 }]);
      w.close({ stop: HEADER.start + 1 });
      const { reader } = readAll(path);
      t.same(reader.header, { ...HEADER, format, eventFields: [...EVENT_FIELDS] });
      t.same(reader.trailer, {
        stop: HEADER.start + 1,
        events: 3,
        byType: { new: 1, update: 0, destroy: 1, snapshot: 1 },
        frames: 3,
        gaps: 0,
        lost: 0,
        digest: createHash('sha256')
          .update(readFileSync(path).subarray(0, w.bytesWritten - trailerBytes(path)))
          .digest(),
      });
      t.equal(w.frames, 3);
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `journal: a gap reads back exactly as written, largest values included (format ${format})`,
    (t) => {
      const path = join(dir, `v${format}-gap-exact.mpk`);
      const edge = gap({
        from: 0,
        to: Number.MAX_SAFE_INTEGER,
        lost: Number.MAX_SAFE_INTEGER,
        lostKnown: false,
        cause: 'x'.repeat(64),
        resync: -1,
      });
      const w = writeItems(path, [edge], true, format);
      t.same(readAll(path).gaps, [edge]);
      t.same([w.gaps, w.lost, w.frames], [1, Number.MAX_SAFE_INTEGER, 2]);
      t.end();
    },
  );
}

t.test('journal: a typical IPv4 TCP NEW event without NAT costs at most 40 bytes', (t) => {
  const events = Array.from({ length: 1024 }, (_, i) => tcpNew(i));
  const perEvent = encodeEvents(events).length / events.length;
  t.ok(perEvent <= 40, `${perEvent.toFixed(1)} B/event`);
  t.end();
});

for (const format of FORMATS) {
  t.test(`journal: the writer refuses events the reader would reject (format ${format})`, (t) => {
    const bad: Array<[string, CtEvent]> = [
      ['port > 65535', { ...tcpNew(0), orig: { ...tcpNew(0).orig, sport: 70000 } }],
      ['time not an integer', { ...tcpNew(0), time: 1.5 }],
      ['time above 2^53', { ...tcpNew(0), time: 2 ** 53 }],
      ['v6 family with v4 addresses', { ...tcpNew(0), family: 6 }],
      ['mark above u32', { ...tcpNew(0), mark: 2 ** 32 }],
    ];
    const w = JournalWriter.create(join(dir, `v${format}-refused.mpk`), HEADER, {
      formatVersion: format,
    });
    for (const [what, ev] of bad) t.throws(() => w.append([tcpNew(1), ev]), TypeError, what);
    t.same([w.events, w.frames], [0, 1], 'nothing but the header written');
    w.close({ stop: HEADER.start });
    t.end();
  });
}
