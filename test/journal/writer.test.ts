// The writer's file handling (no clobbering, no symlinks, mode 0600, a full disk) and its guards.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FORMAT_VERSION, type JournalGap } from '../../journal/format.js';
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
