// Faults injected into real journals: truncation, flipped bytes, foreign files, newer versions, bad gaps.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import t from 'tap';
import { Exit } from '../../common/errors.js';
import { encodeEventsV2 } from '../../journal/events-v2.js';
import {
  type FormatVersion,
  FRAME_HEADER_SIZE,
  FrameKind,
  MAGIC,
  packr,
  unpackr,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { openJournal } from '../../journal/reader.js';
import { writeResyncBomb } from '../helpers/hostile.js';
import {
  ctErrorOf,
  FORMATS,
  gap,
  type Item,
  plain,
  readAll,
  tcpNew,
  tempDir,
  writeItems,
  writeJournal,
} from './fixtures.js';

const dir = tempDir(t, 'damage');

/** A directory of its own for each format's files: the writer never replaces a file. */
function fdir(format: FormatVersion): string {
  const path = join(dir, `v${format}`);
  mkdirSync(path, { recursive: true });
  return path;
}

/** magic + header + 2 events frames + trailer, and where each frame starts. */
function smallJournal(name: string, format: FormatVersion) {
  const path = join(fdir(format), name);
  const first = [tcpNew(0), tcpNew(1)];
  const second = [tcpNew(2), tcpNew(3), tcpNew(4)];
  writeJournal(path, [first, second], true, format);
  const bytes = readFileSync(path);
  const starts: number[] = [];
  for (let at = MAGIC.length; at < bytes.length; ) {
    starts.push(at);
    at += FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
  }
  t.equal(starts.length, 4, 'header, 2 events frames, trailer');
  return { path, bytes, starts, first, second };
}

for (const format of FORMATS) {
  t.test(
    `journal: every truncation reads every complete frame and reports the torn bytes exactly (format ${format})`,
    (t) => {
      const { bytes, starts, first, second } = smallJournal('whole.mpk', format);
      const [header, ev1, ev2, trailer] = starts as [number, number, number, number];
      const cut = join(fdir(format), 'cut.mpk');
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
}

for (const format of FORMATS) {
  t.test(
    `journal: a flipped byte in a middle frame is ECORRUPT naming its offset (format ${format})`,
    (t) => {
      const { bytes, starts } = smallJournal('mid.mpk', format);
      const ev1 = starts[1] as number;
      const ev2 = starts[2] as number;
      const bad = join(fdir(format), 'mid-bad.mpk');
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
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `journal: a flipped byte in the last frame is a torn tail, not an error (format ${format})`,
    (t) => {
      const { bytes, starts, first, second } = smallJournal('last.mpk', format);
      const trailer = starts[3] as number;
      const bad = join(fdir(format), 'last-bad.mpk');
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
    },
  );
}

t.test('journal: a file that is not a journal is ENOTJOURNAL', (t) => {
  const path = join(dir, 'text.mpk');
  writeFileSync(path, 'src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2\n');
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'ENOTJOURNAL');
  t.match(err?.message, /text\.mpk is not a conntracker journal \(bad magic\)/);
  // Text-mode mangling (CRLF → LF) is caught by the magic alone.
  const { bytes } = smallJournal('crlf.mpk', FORMATS[FORMATS.length - 1] as FormatVersion);
  const mangled = join(dir, 'mangled.mpk');
  writeFileSync(mangled, Buffer.from(bytes.toString('latin1').replace('\r\n', '\n'), 'latin1'));
  t.equal(ctErrorOf(t, () => openJournal(mangled))?.code, 'ENOTJOURNAL');
  t.end();
});

t.test('journal: a header of format 3 is EVERSION with exit 3, whatever else it holds', (t) => {
  const path = join(dir, 'v3.mpk');
  const head = encodeFrame(FrameKind.HEADER, packr.pack({ format: 3, layout: 'different' }));
  writeFileSync(path, Buffer.concat([MAGIC, head]));
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'EVERSION');
  t.equal(err?.exit, Exit.VERSION);
  t.match(
    err?.message,
    /written by format v3; this ct-analyze reads v1 and v2: upgrade conntracker/,
  );
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
function forger(name: string, format: FormatVersion): (frames: Buffer[]) => string {
  const { bytes, starts } = smallJournal(`${name}.src`, format);
  const header = bytes.subarray(starts[0], starts[1]);
  return (frames) => {
    const path = join(fdir(format), name);
    writeFileSync(path, Buffer.concat([MAGIC, header, ...frames]));
    return path;
  };
}

t.test(
  'journal: valid frames with invalid content are ECORRUPT at that frame (format 1 events, every format otherwise)',
  (t) => {
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
    const v1Events: Array<[string, Buffer, RegExp]> = [
      ['port 65536', ev(ok.with(9, 65536)), /event 0 sport is 65536/],
      ['v6 family, v4 address', ev(ok.with(1, 6)), /event 0 src is 4 bytes, expected 16/],
      ['type 0', ev(ok.with(0, 0)), /type is 0/],
      ['negative time', ev(ok.with(5, -1)), /time is -1/],
      ['time as a string', ev(ok.with(5, '1')), /dtime is a string/],
      ['uint64 beyond 2^53', ev(ok.with(5, 2n ** 60n)), /dtime is \d+n/],
      ['too many fields', ev([...ok, ...Array(8).fill(null)]), /array of 19/],
      [
        'a map, not an array',
        encodeFrame(FrameKind.EVENTS, packr.pack({ a: 1 })),
        /events payload/,
      ],
      [
        'truncated msgpack',
        encodeFrame(FrameKind.EVENTS, Buffer.of(0x91, 0x9b)),
        /not valid msgpack/,
      ],
    ];
    const anyFormat: Array<[string, Buffer, RegExp]> = [
      [
        'checkpoint as an array',
        encodeFrame(FrameKind.CHECKPOINT, packr.pack([])),
        /checkpoint is an array of 0, expected a map/,
      ],
      [
        'checkpoint digest of 31 bytes',
        encodeFrame(
          FrameKind.CHECKPOINT,
          packr.pack({ frames: 1, events: 0, gaps: 0, lost: 0, digest: new Uint8Array(31) }),
        ),
        /checkpoint digest is 31 bytes, expected 32 bytes/,
      ],
      [
        'unknown kind 6, good CRC',
        encodeFrame(6, packr.pack([])),
        /a frame of kind 6 has no place/,
      ],
      ['kind 0, good CRC', encodeFrame(0, packr.pack([])), /a frame of kind 0 has no place/],
      ['second header', encodeFrame(FrameKind.HEADER, packr.pack({ format: 1 })), /kind 1/],
    ];
    // Format 2 events payloads a reader must refuse at that frame, never inflate past `raw`.
    const v2 = (n: number, codec: number, raw: number, data: Uint8Array) =>
      encodeFrame(FrameKind.EVENTS, packr.pack([n, codec, raw, data]));
    const bomb = deflateRawSync(Buffer.alloc(1024 * 1024));
    const v2Events: Array<[string, Buffer, RegExp]> = [
      ['a format 1 payload', ev(ok), /events payload is not an array of 4/],
      ['codec 7', v2(1, 7, 4, Uint8Array.of(1, 2, 3, 4)), /codec is 7/],
      ['1 MiB of zeros declared as 64 bytes', v2(1, 1, 64, bomb), /does not inflate to 64 bytes/],
      ['raw beyond 64 MiB', v2(1, 0, 2 ** 27, Uint8Array.of(0)), /raw length is 134217728/],
    ];
    const v1Forged = forger('content.mpk', 1);
    // A format 2 payload in a format 1 journal is not an array of event arrays.
    const v2InV1 = encodeFrame(FrameKind.EVENTS, encodeEventsV2([tcpNew(0)]));
    v1Events.push(['a format 2 payload', v2InV1, /event 0 array is 1, expected an array/]);
    const plan: Array<[FormatVersion, Array<[string, Buffer, RegExp]>]> = [
      [1, [...v1Events, ...anyFormat]],
      [2, [...v2Events, ...anyFormat]],
    ];
    for (const [format, cases] of plan) {
      const forged = format === 1 ? v1Forged : forger('content.mpk', format);
      for (const [what, frame, message] of cases) {
        const path = forged([frame]);
        const err = ctErrorOf(t, () => readAll(path));
        t.equal(err?.code, 'ECORRUPT', `format ${format}: ${what}`);
        t.match(err?.message, message, `format ${format}: ${what}`);
        t.match(err?.message, /corrupt at byte \d+/, `format ${format}: ${what}: at that frame`);
      }
    }
    t.end();
  },
);

for (const format of FORMATS) {
  t.test(
    `journal: an events frame removed is EMODIFIED at the trailer (digest mismatch) (format ${format})`,
    (t) => {
      const { bytes, starts } = smallJournal('drop.mpk', format);
      const [, ev1, ev2] = starts as [number, number, number];
      const path = join(fdir(format), 'dropped.mpk');
      writeFileSync(path, Buffer.concat([bytes.subarray(0, ev1), bytes.subarray(ev2)]));
      const err = ctErrorOf(t, () => readAll(path));
      t.equal(err?.code, 'EMODIFIED');
      t.equal(err?.exit, Exit.RUNTIME);
      t.match(
        err?.message,
        new RegExp(
          `dropped\\.mpk was modified after it was recorded: digest mismatch at the trailer \\(frame at byte ${bytes.length - (ev2 - ev1) - (bytes.length - (starts[3] as number))}\\)`,
        ),
      );
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `journal: a trailer with the right digest but wrong counts is EMODIFIED (a forged trailer) (format ${format})`,
    (t) => {
      const { bytes, starts } = smallJournal('forged-counts.mpk', format);
      const at = starts[3] as number;
      const real = unpackr.unpack(bytes.subarray(at + FRAME_HEADER_SIZE)) as Record<
        string,
        unknown
      >;
      const forged = encodeFrame(FrameKind.TRAILER, packr.pack({ ...real, events: 4 }));
      const path = join(fdir(format), 'forged-counts-bad.mpk');
      writeFileSync(path, Buffer.concat([bytes.subarray(0, at), forged]));
      const err = ctErrorOf(t, () => readAll(path));
      t.equal(err?.code, 'EMODIFIED');
      t.match(err?.message, /the trailer counts 4 events \(new 5, .*\) in 3 frames, 0 gaps/);
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(`journal: bytes after the trailer are ECORRUPT (format ${format})`, (t) => {
    const { bytes } = smallJournal('after.mpk', format);
    const path = join(fdir(format), 'after-extra.mpk');
    writeFileSync(path, Buffer.concat([bytes, Buffer.from('junk')]));
    t.equal(ctErrorOf(t, () => readAll(path))?.code, 'ECORRUPT');
    t.end();
  });
}

for (const format of FORMATS) {
  t.test(`journal: a damaged header frame is ECORRUPT at byte 8 (format ${format})`, (t) => {
    const { bytes } = smallJournal('head.mpk', format);
    const copy = Buffer.from(bytes);
    copy[20] = (copy[20] as number) ^ 1;
    const path = join(fdir(format), 'head-bad.mpk');
    writeFileSync(path, copy);
    const err = ctErrorOf(t, () => openJournal(path));
    t.equal(err?.code, 'ECORRUPT');
    t.match(err?.message, /corrupt at byte 8: header frame: checksum mismatch/);
    t.end();
  });
}

/** Frame start offsets of a journal file, the header's included. */
function frameStarts(bytes: Buffer): number[] {
  const starts: number[] = [];
  for (let at = MAGIC.length; at < bytes.length; ) {
    starts.push(at);
    at += FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
  }
  return starts;
}

for (const format of FORMATS) {
  t.test(
    `journal: every truncation of a journal with gaps reads every complete frame, gaps too (format ${format})`,
    (t) => {
      const path = join(fdir(format), 'gaps-whole.mpk');
      const items: Item[] = [
        gap({ lost: 1 }),
        [tcpNew(0), tcpNew(1)],
        gap({ lost: 2 }),
        [tcpNew(2)],
      ];
      writeItems(path, items, true, format);
      const bytes = readFileSync(path);
      const starts = frameStarts(bytes);
      t.equal(starts.length, items.length + 2, 'header, the items, trailer');
      const cut = join(fdir(format), 'gaps-cut.mpk');
      for (let len = starts[1] as number; len < bytes.length; len++) {
        writeFileSync(cut, bytes.subarray(0, len));
        const read = readAll(cut);
        // Item i is complete when the frame after it starts at or before len.
        const whole = items.filter((_, i) => (starts[i + 2] as number) <= len);
        t.same(
          read.items.map((i) => (i.kind === 'gap' ? i.gap : plain(i.events))),
          whole.map((i) => (Array.isArray(i) ? plain(i) : i)),
          `len ${len}`,
        );
        const lost = whole.reduce((sum, i) => sum + (Array.isArray(i) ? 0 : i.lost), 0);
        t.equal(read.reader.counts.lost, lost, `len ${len}: lost counts complete gaps only`);
        t.equal(read.reader.trailer, undefined);
      }
      t.end();
    },
  );
}

t.test('journal: a gap frame with invalid content is ECORRUPT at that frame', (t) => {
  const good = { from: 10, to: 20, lost: 3, lostKnown: true, cause: 'ENOBUFS', resync: -1 };
  const g = (m: unknown) => encodeFrame(FrameKind.GAP, packr.pack(m));
  const cases: Array<[string, Buffer, RegExp]> = [
    ['to before from', g({ ...good, to: 9 }), /gap to \(9\) is before gap from \(10\)/],
    ['cause with a newline', g({ ...good, cause: 'A\n TCPv4' }), /gap cause is not a token/],
    ['cause too long', g({ ...good, cause: 'x'.repeat(65) }), /gap cause is not a token/],
    ['cause a number', g({ ...good, cause: 5 }), /gap cause is 5, expected a string/],
    ['lost missing', g({ ...good, lost: undefined }), /gap lost is (missing|nil)/],
    ['lost negative', g({ ...good, lost: -3 }), /gap lost is -3/],
    ['lost beyond 2^53', g({ ...good, lost: 2n ** 60n }), /gap lost is \d+n/],
    ['lostKnown a number', g({ ...good, lostKnown: 1 }), /gap lostKnown is 1, expected true/],
    ['resync -2', g({ ...good, resync: -2 }), /gap resync is -2, expected -1 or a count/],
    ['resync 1.5', g({ ...good, resync: 1.5 }), /gap resync is 1\.5, expected a safe integer/],
    ['an array, not a map', g([10, 20, 3]), /gap is an array of 3, expected a map/],
    ['truncated msgpack', encodeFrame(FrameKind.GAP, Buffer.of(0x81)), /gap is not valid msgpack/],
    [
      'inherited keys only',
      g(JSON.parse('{"__proto__": {"from": 1, "to": 2}}')),
      /gap from is missing/,
    ],
  ];
  const forged = forger('gap-content.mpk', 1);
  for (const [what, frame, message] of cases) {
    const path = forged([frame]);
    const err = ctErrorOf(t, () => readAll(path));
    t.equal(err?.code, 'ECORRUPT', what);
    t.match(err?.message, message, what);
    t.match(err?.message, /corrupt at byte \d+/, what);
  }
  t.ok(readAll(forged([g(good)])).gaps.length === 1, 'the good gap reads');
  t.end();
});

t.test('journal: a gap frame first, before the header, is ECORRUPT at byte 8', (t) => {
  const path = join(dir, 'gap-first.mpk');
  writeFileSync(path, Buffer.concat([MAGIC, encodeFrame(FrameKind.GAP, packr.pack(gap()))]));
  const err = ctErrorOf(t, () => openJournal(path));
  t.equal(err?.code, 'ECORRUPT');
  t.match(err?.message, /corrupt at byte 8: the first frame is kind 4, not a header/);
  t.end();
});

for (const format of FORMATS) {
  t.test(`journal: a gap frame removed is EMODIFIED at the trailer (format ${format})`, (t) => {
    const path = join(fdir(format), 'gaps-drop.mpk');
    writeItems(path, [[tcpNew(0)], gap({ lost: 5 }), gap({ lost: 7 })], true, format);
    const bytes = readFileSync(path);
    const starts = frameStarts(bytes);
    const [, , g1, g2] = starts as [number, number, number, number];
    const dropped = join(fdir(format), 'gaps-dropped.mpk');
    writeFileSync(dropped, Buffer.concat([bytes.subarray(0, g1), bytes.subarray(g2)]));
    const err = ctErrorOf(t, () => readAll(dropped));
    t.equal(err?.code, 'EMODIFIED');
    t.match(err?.message, /digest mismatch at the trailer/);
    t.end();
  });
}

for (const format of FORMATS) {
  t.test(
    `journal: a trailer without gaps, lost or digest is ECORRUPT (all are required) (format ${format})`,
    (t) => {
      const { bytes, starts } = smallJournal('trailer-keys.mpk', format);
      const at = starts[3] as number;
      const real = unpackr.unpack(bytes.subarray(at + FRAME_HEADER_SIZE)) as Record<
        string,
        unknown
      >;
      for (const key of ['gaps', 'lost', 'digest']) {
        const { [key]: _, ...rest } = real;
        const path = join(fdir(format), `trailer-without-${key}.mpk`);
        writeFileSync(
          path,
          Buffer.concat([bytes.subarray(0, at), encodeFrame(3, packr.pack(rest))]),
        );
        const err = ctErrorOf(t, () => readAll(path));
        t.equal(err?.code, 'ECORRUPT', key);
        t.match(err?.message, new RegExp(`corrupt at byte ${at}: trailer ${key} is missing`), key);
      }
      t.end();
    },
  );
}

t.test(
  'journal: a frame-like run at every 4th byte after a bad frame is ECORRUPT once the scan budget is spent',
  (t) => {
    const path = join(dir, 'resync-bomb.mpk');
    writeResyncBomb(path, 4_000_000);
    const began = performance.now();
    const err = ctErrorOf(t, () => readAll(path));
    const ms = performance.now() - began;
    t.equal(err?.code, 'ECORRUPT');
    t.match(
      err?.message,
      /corrupt at byte \d+: checksum mismatch, and so many bytes after it look like frames/,
    );
    // Checking every candidate would cost some 2^19 CRCs of 2 MB each: minutes.
    t.ok(ms < 10_000, `judged in ${ms.toFixed(0)} ms (bound 10000)`);
    t.end();
  },
);

for (const format of FORMATS) {
  t.test(
    `journal: a real frame right after the crafted run is still found by the scan (format ${format})`,
    (t) => {
      // The budget counts candidates that fail: a good frame among a few of them is still found.
      const { bytes, starts } = smallJournal('resync-found.mpk', format);
      const ev1 = starts[1] as number;
      // Whole frames of a v1 kind, each with a broken CRC: candidates the scan checks and rejects.
      const liar = encodeFrame(FrameKind.EVENTS, packr.pack([]));
      liar[4] = (liar[4] as number) ^ 1;
      const noise = Buffer.concat(Array(8).fill(liar));
      const bad = Buffer.from(bytes.subarray(ev1, starts[2]));
      bad[4] = (bad[4] as number) ^ 1;
      const path = join(fdir(format), 'resync-found-bad.mpk');
      writeFileSync(
        path,
        Buffer.concat([bytes.subarray(0, ev1), bad, noise, bytes.subarray(starts[2])]),
      );
      const err = ctErrorOf(t, () => readAll(path));
      t.equal(err?.code, 'ECORRUPT');
      t.match(
        err?.message,
        new RegExp(
          `corrupt at byte ${ev1}: checksum mismatch, yet a valid frame follows at byte ${(starts[2] as number) + noise.length}`,
        ),
      );
      t.end();
    },
  );
}
