// The writer's file handling (no clobbering, no symlinks, mode 0600, a full disk) and its guards.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FORMAT_VERSION, type JournalGap } from '../../journal/format.js';
import { decodeGap, encodeMap } from '../../journal/meta-codec.js';
import { JournalWriter } from '../../journal/writer.js';
import { ctErrorOf, FORMATS, gap, HEADER, plain, readAll, tcpNew, tempDir } from './fixtures.js';

const dir = tempDir(t, 'writer');

t.test('journal: the writer refuses an existing file and leaves it untouched', (t) => {
  const path = join(dir, 'exists.mpk');
  writeFileSync(path, 'precious');
  const err = ctErrorOf(t, () => JournalWriter.create(path, HEADER));
  t.equal(err?.code, 'EEXIST');
  t.match(err?.message, /exists; choose another path or pass --force to overwrite/);
  t.equal(readFileSync(path, 'utf8'), 'precious');
  t.end();
});

t.test('journal: the writer refuses a symlink, dangling or not, with or without force', (t) => {
  const target = join(dir, 'target.txt');
  writeFileSync(target, 'keep');
  const link = join(dir, 'link.mpk');
  symlinkSync(target, link);
  const dangling = join(dir, 'dangling.mpk');
  symlinkSync(join(dir, 'nowhere'), dangling);
  for (const force of [false, true]) {
    for (const p of [link, dangling]) {
      const err = ctErrorOf(t, () => JournalWriter.create(p, HEADER, { force }));
      t.equal(err?.code, 'ELOOP', `${p} force=${force}`);
      t.match(err?.message, /is a symbolic link; refusing to write through it/);
    }
  }
  t.equal(readFileSync(target, 'utf8'), 'keep');
  t.throws(() => statSync(join(dir, 'nowhere')), 'nothing created through the dangling link');
  t.end();
});

t.test('journal: force replaces a regular file, never writing into its hard links', (t) => {
  const path = join(dir, 'old.mpk');
  const other = join(dir, 'other-name');
  writeFileSync(path, 'old content');
  linkSync(path, other);
  const w = JournalWriter.create(path, HEADER, { force: true });
  w.append([tcpNew(0)]);
  w.close({ stop: HEADER.start + 1 });
  t.same(plain(readAll(path).events), plain([tcpNew(0)]));
  t.equal(readFileSync(other, 'utf8'), 'old content');
  const sub = join(dir, 'a-dir');
  mkdirSync(sub);
  t.equal(ctErrorOf(t, () => JournalWriter.create(sub, HEADER, { force: true }))?.code, 'EISDIR');
  t.end();
});

t.test('journal: the file is mode 0600 whatever the umask', (t) => {
  const old = process.umask(0);
  t.teardown(() => process.umask(old));
  const path = join(dir, 'mode.mpk');
  JournalWriter.create(path, HEADER).close({ stop: HEADER.start });
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.end();
});

t.test('journal: a missing directory is a CtError with advice, not a stack', (t) => {
  const err = ctErrorOf(t, () => JournalWriter.create(join(dir, 'no/such/dir.mpk'), HEADER));
  t.equal(err?.code, 'ENOENT');
  t.match(err?.message, /no such directory: create it first/);
  t.end();
});

t.test('journal: append, close and bytesWritten agree with the file; [] writes nothing', (t) => {
  const path = join(dir, 'count.mpk');
  const w = JournalWriter.create(path, HEADER);
  const before = w.bytesWritten;
  w.append([]);
  t.equal(w.bytesWritten, before);
  w.append([tcpNew(0)]);
  w.close({ stop: HEADER.start });
  t.equal(w.bytesWritten, statSync(path).size);
  t.throws(() => w.append([tcpNew(1)]), /closed/);
  t.throws(
    () => JournalWriter.create(join(dir, 'badcount.mpk'), HEADER).close({ stop: 0, events: 9 }),
    /trailer events 9/,
  );
  t.end();
});

for (const format of FORMATS) {
  t.test(
    `journal: ENOSPC is a CtError and the file still ends on a frame boundary (format ${format})`,
    (t) => {
      const mnt = join(dir, `tiny-v${format}`);
      mkdirSync(mnt);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'ct-journal-test', mnt]);
      } catch {
        t.comment('skipped: cannot mount a tmpfs here (needs root)');
        t.end();
        return;
      }
      t.teardown(() => execFileSync('umount', ['-l', mnt]));
      const path = join(mnt, 'full.mpk');
      const w = JournalWriter.create(path, HEADER, { formatVersion: format });
      const batch = Array.from({ length: 200 }, (_, i) => tcpNew(i));
      let appended = 0;
      const err = ctErrorOf(t, () => {
        for (;;) {
          w.append(batch);
          appended++;
        }
      });
      t.equal(err?.code, 'ENOSPC');
      t.match(err?.message, /no space left on device: free some space/);
      w.closeAfterFailure();
      t.equal(statSync(path).size, w.bytesWritten, 'the partial frame was cut off');
      const { events, reader } = readAll(path);
      t.equal(events.length, appended * batch.length);
      t.equal(reader.tail, undefined);
      t.equal(reader.trailer, undefined);
      t.end();
    },
  );
}

t.test('journal: appendGap refuses gaps the reader would reject and writes nothing', (t) => {
  const path = join(dir, 'bad-gaps.mpk');
  const w = JournalWriter.create(path, HEADER);
  t.teardown(() => w.closeAfterFailure());
  const before = w.bytesWritten;
  const bad: Array<[string, JournalGap]> = [
    ['to before from', gap({ from: 10, to: 9 })],
    ['a cause with a space', gap({ cause: 'buffer overrun' })],
    ['a cause with a newline', gap({ cause: 'ENOBUFS\n TCPv4 [0] fake' })],
    ['an empty cause', gap({ cause: '' })],
    ['a cause of 65 characters', gap({ cause: 'x'.repeat(65) })],
    ['resync below -1', gap({ resync: -2 })],
    ['lost not an integer', gap({ lost: 1.5 })],
    ['lost negative', gap({ lost: -1 })],
    ['from above 2^53', gap({ from: 2 ** 53, to: 2 ** 53 })],
    ['lostKnown not a boolean', gap({ lostKnown: 1 as unknown as boolean })],
  ];
  for (const [what, g] of bad) t.throws(() => w.appendGap(g), TypeError, what);
  t.equal(w.bytesWritten, before, 'nothing reached the file');
  t.same([w.gaps, w.lost, w.frames], [0, 0, 1]);
  t.end();
});

t.test('journal: appendGap writes only the gap keys and the trailer counts it', (t) => {
  const path = join(dir, 'gap-keys.mpk');
  const w = JournalWriter.create(path, HEADER);
  w.appendGap({ ...gap(), secret: 'not for the file' } as JournalGap);
  t.throws(() => w.close({ stop: HEADER.start, gaps: 2 }), /trailer gaps 2/);
  t.throws(() => w.close({ stop: HEADER.start, lost: 1 }), /trailer lost 1/);
  w.close({ stop: HEADER.start, gaps: 1, lost: 17 });
  t.notOk(readFileSync(path).includes('secret'), 'extra keys stay out');
  const { gaps, reader } = readAll(path);
  t.same(gaps, [gap()]);
  t.same([reader.trailer?.gaps, reader.trailer?.lost, reader.trailer?.frames], [1, 17, 2]);
  t.throws(() => w.appendGap(gap()), /closed/);
  t.end();
});

t.test(
  "journal: a gap's optional skipped count round-trips in every format; without it the frame is as before",
  (t) => {
    for (const format of FORMATS) {
      const withIt = join(dir, `gap-skipped-${format}.mpk`);
      const without = join(dir, `gap-plain-${format}.mpk`);
      for (const [path, g] of [
        [withIt, gap({ skipped: 2 })],
        [without, gap()],
      ] as const) {
        const w = JournalWriter.create(path, HEADER, { formatVersion: format });
        w.appendGap(g);
        w.close({ stop: HEADER.start });
      }
      t.same(readAll(withIt).gaps, [gap({ skipped: 2 })], `format ${format}: read back`);
      t.same(readAll(without).gaps, [gap()], `format ${format}: absent stays absent`);
      t.notOk(readFileSync(without).includes('skipped'), `format ${format}: no key written`);
    }
    const w = JournalWriter.create(join(dir, 'gap-skipped-bad.mpk'), HEADER);
    t.teardown(() => w.closeAfterFailure());
    t.throws(() => w.appendGap(gap({ skipped: 4 })), /gap skipped \(4\) is more than/);
    t.throws(() => w.appendGap(gap({ resync: -1, skipped: 0 })), TypeError, 'no dump, no count');
    t.throws(() => w.appendGap(gap({ skipped: -1 })), TypeError);
    t.end();
  },
);

t.test(
  'journal: a gap map with keys a reader does not know still decodes (they are ignored)',
  (t) => {
    const payload = encodeMap({ ...gap(), later: 'a key of a later writer' } as JournalGap);
    t.same(decodeGap(payload), gap());
    t.end();
  },
);

t.test('journal: the writer writes format 2 unless told 1, and refuses any other', (t) => {
  const read = (
    name: string,
    opts: Parameters<typeof JournalWriter.create>[2],
    format?: number,
  ) => {
    const path = join(dir, name);
    const w = JournalWriter.create(path, { ...HEADER, format }, opts);
    w.append([tcpNew(0), tcpNew(1)]);
    w.close({ stop: HEADER.start + 1 });
    const { reader, events } = readAll(path);
    t.same(plain(events), plain([tcpNew(0), tcpNew(1)]), `${name}: the events read back`);
    return [w.formatVersion, reader.header.format];
  };
  t.equal(FORMAT_VERSION, 2, 'the newest format');
  t.same(read('default.mpk', {}), [2, 2], 'default: format 2');
  t.same(read('v1.mpk', { formatVersion: 1 }), [1, 1], 'formatVersion 1');
  t.same(read('v2.mpk', { formatVersion: 2 }), [2, 2], 'formatVersion 2');
  t.same(read('header-v1.mpk', {}, 1), [1, 1], "the header's format when no option says");
  const refused = join(dir, 'refused.mpk');
  t.throws(
    () => JournalWriter.create(refused, HEADER, { formatVersion: 3 as 2 }),
    { name: 'RangeError', message: /writes format 1 or 2, not 3/ },
    'format 3',
  );
  t.throws(
    () => JournalWriter.create(refused, { ...HEADER, format: 1 }, { formatVersion: 2 }),
    /header format 1 ≠ formatVersion 2/,
    'a header and an option that disagree',
  );
  t.throws(() => statSync(refused), { code: 'ENOENT' }, 'no file for a refused format');
  t.end();
});

/** A writer holding `hold` events that keeps what `written` was told, frame by frame. */
function holding(name: string, hold: number, format?: 1 | 2) {
  const path = join(dir, name);
  const frames: number[][] = [];
  const w = JournalWriter.create(path, HEADER, {
    holdEvents: hold,
    formatVersion: format,
    written: (events) => frames.push(events.map((e) => e.orig.sport - 40000)),
  });
  return { path, w, frames };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => tcpNew(from + i));

for (const format of FORMATS) {
  t.test(
    `journal: holdEvents writes the held events as one frame once that many are held, counted then (format ${format})`,
    (t) => {
      const { path, w, frames } = holding(`hold-v${format}.mpk`, 5, format);
      const empty = w.bytesWritten;
      w.append(range(0, 2));
      w.append(range(2, 2));
      t.same(
        [w.bytesWritten, w.events, w.held, w.frames],
        [empty, 0, 4, 1],
        'four held, none written',
      );
      t.same(w.byType, { new: 0, update: 0, destroy: 0, snapshot: 0 }, 'nor counted by type');
      t.same(frames, [], 'written was told nothing yet');
      w.append(range(4, 3));
      t.same([w.events, w.held, w.frames], [7, 0, 2], 'seven events in one frame');
      t.same(frames, [[0, 1, 2, 3, 4, 5, 6]], 'written was told them once, in order');
      w.append(range(7, 1));
      w.close({ stop: HEADER.start + 1 });
      const { events, batches, reader } = readAll(path);
      t.same(plain(events), plain(range(0, 8)), 'every event reads back in order');
      t.equal(batches, 2, 'the one left held went into its own frame before the trailer');
      t.same(frames, [[0, 1, 2, 3, 4, 5, 6], [7]]);
      t.same([reader.trailer?.events, reader.trailer?.byType.new], [8, 8]);
      t.end();
    },
  );
}

t.test(
  'journal: held events go before a gap, a checkpoint, a network checkpoint and the trailer',
  (t) => {
    const { path, w, frames } = holding('hold-order.mpk', 1000);
    w.append(range(0, 2));
    w.appendGap(gap());
    t.same(frames, [[0, 1]], 'the events held before the gap were written before it');
    w.append(range(2, 1));
    t.ok(w.checkpoint(), 'checkpoint() wrote a checkpoint');
    t.same([w.events, w.held, w.checkpoints], [3, 0, 1], 'after the event held before it');
    w.append(range(3, 1));
    t.equal(w.checkpoint(), true, 'the held event is a frame the checkpoint follows');
    t.equal(w.checkpoint(), false, 'nothing held, nothing new: no checkpoint');
    w.append(range(4, 2));
    w.flush();
    t.same([w.events, w.held, w.checkpoints], [6, 0, 3], 'flush writes them, then its checkpoint');
    w.append(range(6, 1));
    w.noteAddresses({ time: HEADER.start + 9, addresses: [] });
    t.same([w.events, w.checkpoints], [7, 4], 'an address change comes after the event held');
    w.append(range(7, 1));
    const mid = readAll(path);
    t.equal(mid.events.length, 7, 'mid-recording, the file holds what was written, verified');
    t.equal(mid.reader.counts.events, 7);
    w.close({ stop: HEADER.start + 10 });
    t.same(frames, [[0, 1], [2], [3], [4, 5], [6], [7]], 'written was told each frame in order');
    const { items, reader } = readAll(path);
    t.same(
      items.map((i) => (i.kind === 'gap' ? 'gap' : i.events.length)),
      [2, 'gap', 1, 1, 2, 1, 1],
      'the stream order of the appends and the gap is kept',
    );
    t.same(
      [reader.trailer?.events, reader.trailer?.gaps, reader.trailer?.frames],
      [7 + 1, 1, 1 + 6 + 1 + 4],
      'the trailer counts every frame and event',
    );
    t.end();
  },
);

t.test(
  'journal: a network set the reader would reject writes nothing, held events included',
  (t) => {
    const { w, frames } = holding('hold-bad-set.mpk', 100);
    t.teardown(() => w.abandon());
    w.append(range(0, 3));
    const size = w.bytesWritten;
    t.throws(() => w.noteAddresses({ time: -1, addresses: [] }), TypeError);
    t.same([w.bytesWritten, w.held, frames.length], [size, 3, 0], 'still held, nothing written');
    t.end();
  },
);

t.test(
  'journal: closeAfterFailure writes the held events; abandon drops them with the file',
  (t) => {
    const kept = holding('hold-after-failure.mpk', 100);
    kept.w.append(range(0, 3));
    kept.w.closeAfterFailure();
    const { events, reader } = readAll(kept.path);
    t.equal(events.length, 3, 'what was appended is in the file');
    t.equal(reader.trailer, undefined, 'without a trailer');
    t.same(kept.frames, [[0, 1, 2]]);
    const dropped = holding('hold-abandoned.mpk', 100);
    dropped.w.append(range(0, 3));
    dropped.w.abandon();
    t.throws(() => statSync(dropped.path), { code: 'ENOENT' }, 'the file is gone');
    t.same(dropped.frames, [], 'nothing was told written');
    t.throws(() => JournalWriter.create(join(dir, 'hold-0.mpk'), HEADER, { holdEvents: 0 }), {
      name: 'RangeError',
      message: /holdEvents must be ≥ 1/,
    });
    t.end();
  },
);

t.test('journal: ENOSPC writing held events loses them from the counts and from `written`', (t) => {
  const mnt = join(dir, 'tiny-hold');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'ct-journal-test', mnt]);
  } catch {
    t.comment('skipped: cannot mount a tmpfs here (needs root)');
    t.end();
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', mnt]));
  const path = join(mnt, 'full.mpk');
  const told: number[] = [];
  const w = JournalWriter.create(path, HEADER, {
    holdEvents: 300,
    formatVersion: 1,
    written: (events) => told.push(events.length),
  });
  let appended = 0;
  const err = ctErrorOf(t, () => {
    for (let i = 0; ; i += 100) {
      w.append(range(i, 100));
      appended += 100;
    }
  });
  t.equal(err?.code, 'ENOSPC');
  const sum = told.reduce((a, b) => a + b, 0);
  t.equal(appended + 100 - sum, 300, 'the 300 events of the frame that failed were not told');
  t.equal(w.events, sum, 'the writer counts what written was told');
  t.equal(w.held, 0, 'nothing stays held for a retry');
  w.closeAfterFailure();
  t.equal(statSync(path).size, w.bytesWritten, 'the partial frame was cut off');
  t.equal(readAll(path).events.length, sum, 'the file holds exactly what written was told');
  t.end();
});
