// Faults injected into real journals: truncation, flipped bytes, foreign files, newer versions.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Exit } from '../../common/errors.js';
import { FRAME_HEADER_SIZE, FrameKind, MAGIC, packr } from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { openJournal } from '../../journal/reader.js';
import { ctErrorOf, plain, readAll, tcpNew, tempDir, writeJournal } from './fixtures.js';

const dir = tempDir(t, 'damage');

/** magic + header + 2 events frames + trailer, and where each frame starts. */
function smallJournal(name: string) {
  const path = join(dir, name);
  const first = [tcpNew(0), tcpNew(1)];
  const second = [tcpNew(2), tcpNew(3), tcpNew(4)];
  writeJournal(path, [first, second]);
  const bytes = readFileSync(path);
  const starts: number[] = [];
  for (let at = MAGIC.length; at < bytes.length; ) {
    starts.push(at);
    at += FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
  }
  t.equal(starts.length, 4, 'header, 2 events frames, trailer');
  return { path, bytes, starts, first, second };
}

t.test(
  'journal: every truncation reads every complete frame and reports the torn bytes exactly',
  (t) => {
    const { bytes, starts, first, second } = smallJournal('whole.mpk');
    const [header, ev1, ev2, trailer] = starts as [number, number, number, number];
    const cut = join(dir, 'cut.mpk');
    for (let len = 0; len < bytes.length; len++) {
      writeFileSync(cut, bytes.subarray(0, len));
      if (len < ev1) {
        // Inside magic or header: a clear error, never a half-open reader.
        const err = ctErrorOf(t, () => openJournal(cut));
        t.equal(err?.code, 'ETRUNCATED', `len ${len}`);
        t.match(err?.message, len < header ? /ends inside its magic/ : /ends inside its header/);
        continue;
      }
      const { events, reader } = readAll(cut);
      const whole = len >= ev2 ? [...first, ...(len >= trailer ? second : [])] : [];
      t.same(plain(events), plain(whole), `len ${len}: complete frames read`);
      t.equal(reader.trailer, undefined, `len ${len}: no trailer`);
      const frameStart = [ev1, ev2, trailer].filter((s) => s <= len).pop() as number;
      if (len === frameStart)
        t.equal(reader.tail, undefined, `len ${len}: ends on a frame boundary`);
      else
        t.same(reader.tail, { offset: frameStart, ignoredBytes: len - frameStart }, `len ${len}`);
    }
    t.end();
  },
);

t.test('journal: a flipped byte in a middle frame is ECORRUPT naming its offset', (t) => {
  const { bytes, starts } = smallJournal('mid.mpk');
  const ev1 = starts[1] as number;
  const ev2 = starts[2] as number;
  const bad = join(dir, 'mid-bad.mpk');
  // Every byte of the frame: length, crc, kind, payload.
  for (let at = ev1; at < ev2; at++) {
    const copy = Buffer.from(bytes);
    copy[at] = (copy[at] as number) ^ 0x5a;
    writeFileSync(bad, copy);
    const err = ctErrorOf(t, () => readAll(bad));
    t.equal(err?.code, 'ECORRUPT', `byte ${at}`);
    t.match(err?.message, new RegExp(`corrupt at byte ${ev1}\\b`), `byte ${at}: offset named`);
    t.equal(err?.exit, Exit.RUNTIME);
  }
  t.end();
});

t.test('journal: a flipped byte in the last frame is a torn tail, not an error', (t) => {
  const { bytes, starts, first, second } = smallJournal('last.mpk');
  const trailer = starts[3] as number;
  const bad = join(dir, 'last-bad.mpk');
  for (let at = trailer; at < bytes.length; at++) {
    const copy = Buffer.from(bytes);
    copy[at] = (copy[at] as number) ^ 0xff;
    writeFileSync(bad, copy);
    const { events, reader } = readAll(bad);
    t.same(plain(events), plain([...first, ...second]), `byte ${at}`);
    t.equal(reader.trailer, undefined);
    t.same(reader.tail, { offset: trailer, ignoredBytes: bytes.length - trailer });
  }
  t.end();
});

t.test('journal: a file that is not a journal is ENOTJOURNAL', (t) => {
  const path = join(dir, 'text.mpk');
  writeFileSync(path, 'src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2\n');
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'ENOTJOURNAL');
  t.match(err?.message, /text\.mpk is not a conntracker journal \(bad magic\)/);
  // Text-mode mangling (CRLF → LF) is caught by the magic alone.
  const { bytes } = smallJournal('crlf.mpk');
  const mangled = join(dir, 'mangled.mpk');
  writeFileSync(mangled, Buffer.from(bytes.toString('latin1').replace('\r\n', '\n'), 'latin1'));
  t.equal(ctErrorOf(t, () => openJournal(mangled))?.code, 'ENOTJOURNAL');
  t.end();
});

t.test('journal: a header of format 2 is EVERSION with exit 3, whatever else it holds', (t) => {
  const path = join(dir, 'v2.mpk');
  const head = encodeFrame(FrameKind.HEADER, packr.pack({ format: 2, layout: 'different' }));
  writeFileSync(path, Buffer.concat([MAGIC, head]));
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'EVERSION');
  t.equal(err?.exit, Exit.VERSION);
  t.match(err?.message, /written by format v2; this ct-analyze reads v1: upgrade conntracker/);
  t.end();
});

t.test('journal: missing file and directory give their own clear errors', (t) => {
  const missing = ctErrorOf(t, () => openJournal(join(dir, 'nope.mpk')));
  t.equal(missing?.code, 'ENOENT');
  t.match(missing?.message, /cannot open .*nope\.mpk: no such file/);
  t.equal(ctErrorOf(t, () => openJournal(dir))?.code, 'EISDIR');
  t.end();
});

/** A journal whose frames are given raw: for values the writer would never produce. */
function forger(name: string): (frames: Buffer[]) => string {
  const { bytes, starts } = smallJournal(`${name}.src`);
  const header = bytes.subarray(starts[0], starts[1]);
  return (frames) => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.concat([MAGIC, header, ...frames]));
    return path;
  };
}

t.test('journal: valid frames with invalid content are ECORRUPT at that frame', (t) => {
  const ev = (a: unknown[]) => encodeFrame(FrameKind.EVENTS, packr.pack([a]));
  const ok: unknown[] = [
    1,
    4,
    6,
    8,
    1,
    5,
    0,
    Uint8Array.of(1, 2, 3, 4),
    Uint8Array.of(5, 6, 7, 8),
    1,
    2,
  ];
  const cases: Array<[string, Buffer, RegExp]> = [
    ['port 65536', ev(ok.with(9, 65536)), /event 0 sport is 65536/],
    ['v6 family, v4 address', ev(ok.with(1, 6)), /event 0 src is 4 bytes, expected 16/],
    ['type 0', ev(ok.with(0, 0)), /type is 0/],
    ['negative time', ev(ok.with(5, -1)), /time is -1/],
    ['time as a string', ev(ok.with(5, '1')), /dtime is a string/],
    ['uint64 beyond 2^53', ev(ok.with(5, 2n ** 60n)), /dtime is \d+n/],
    ['too many fields', ev([...ok, ...Array(8).fill(null)]), /array of 19/],
    ['a map, not an array', encodeFrame(FrameKind.EVENTS, packr.pack({ a: 1 })), /events payload/],
    [
      'truncated msgpack',
      encodeFrame(FrameKind.EVENTS, Buffer.of(0x91, 0x9b)),
      /not valid msgpack/,
    ],
    ['reserved kind 4', encodeFrame(FrameKind.GAP, packr.pack([])), /kind 4/],
    ['second header', encodeFrame(FrameKind.HEADER, packr.pack({ format: 1 })), /kind 1/],
  ];
  const forged = forger('content.mpk');
  for (const [what, frame, message] of cases) {
    const path = forged([frame]);
    const err = ctErrorOf(t, () => readAll(path));
    t.equal(err?.code, 'ECORRUPT', what);
    t.match(err?.message, message, what);
  }
  t.end();
});

t.test(
  'journal: a trailer whose counts disagree with the frames is ECORRUPT (a frame went missing)',
  (t) => {
    const { bytes, starts } = smallJournal('drop.mpk');
    const [, ev1, ev2] = starts as [number, number, number];
    const path = join(dir, 'dropped.mpk');
    writeFileSync(path, Buffer.concat([bytes.subarray(0, ev1), bytes.subarray(ev2)]));
    const err = ctErrorOf(t, () => readAll(path));
    t.equal(err?.code, 'ECORRUPT');
    t.match(err?.message, /trailer counts 5 events in 3 frames/);
    t.end();
  },
);

t.test('journal: bytes after the trailer are ECORRUPT', (t) => {
  const { bytes } = smallJournal('after.mpk');
  const path = join(dir, 'after-extra.mpk');
  writeFileSync(path, Buffer.concat([bytes, Buffer.from('junk')]));
  t.equal(ctErrorOf(t, () => readAll(path))?.code, 'ECORRUPT');
  t.end();
});

t.test('journal: a damaged header frame is ECORRUPT at byte 8', (t) => {
  const { bytes } = smallJournal('head.mpk');
  const copy = Buffer.from(bytes);
  copy[20] = (copy[20] as number) ^ 1;
  const path = join(dir, 'head-bad.mpk');
  writeFileSync(path, copy);
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'ECORRUPT');
  t.match(err?.message, /corrupt at byte 8: header frame: CRC mismatch/);
  t.end();
});
