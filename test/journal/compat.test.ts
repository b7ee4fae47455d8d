// Golden journals: v1 files as the first recorder wrote them (before gap frames) still read.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { FRAME_HEADER_SIZE, MAGIC, unpackr } from '../../journal/format.js';
import { readAll } from './fixtures.js';

/** The last frame's payload decoded as it is on disk, before any defaults. */
function rawTrailer(bytes: Buffer): Record<string, unknown> {
  let at = MAGIC.length;
  let last = at;
  while (at < bytes.length) {
    last = at;
    at += FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
  }
  const len = bytes.readUInt32LE(last);
  return unpackr.unpack(bytes.subarray(last + FRAME_HEADER_SIZE, last + FRAME_HEADER_SIZE + len));
}

for (const name of ['lan-2026-11-27', 'nat-router-2026-11-27']) {
  t.test(
    `journal: test/fixtures/v1/${name}.mpk (a trailer without gap counts) reads as 0 gaps`,
    (t) => {
      const path = join(PACKAGE_ROOT, 'test/fixtures/v1', `${name}.mpk`);
      const raw = rawTrailer(readFileSync(path));
      t.ok('events' in raw && !('gaps' in raw) && !('lost' in raw), 'an old-style trailer');
      const { events, gaps, reader } = readAll(path);
      t.equal(reader.trailer?.events, events.length, 'the trailer vouches for every event');
      t.ok(events.length > 0);
      t.same(gaps, []);
      t.same([reader.trailer?.gaps, reader.trailer?.lost], [0, 0]);
      t.same([reader.counts.gaps, reader.counts.lost], [0, 0]);
      t.equal(reader.tail, undefined);
      t.end();
    },
  );
}
