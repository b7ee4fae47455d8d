// ct-analyze verify, in process: the verdict for each fault injected into a real journal.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import {
  type Verdict,
  verdictLine,
  verifyExit,
  verifyJournal,
} from '../../../analyzer/verify/verify.js';
import { Exit } from '../../../common/errors.js';
import { FRAME_HEADER_SIZE, FrameKind, MAGIC, packr } from '../../../journal/format.js';
import { encodeFrame } from '../../../journal/frame.js';
import { JournalWriter } from '../../../journal/writer.js';
import { applyByteMutation, arbByteMutation } from '../../helpers/mutations.js';
import { gap, HEADER, tcpNew, tempDir, writeJournal } from '../../journal/fixtures.js';

const dir = tempDir(t, 'verify');

/**
 * header, E E C E G C E, trailer: 2 checkpoints (every 2 frames), 4 events frames, a gap.
 * `salt` changes the events, so two journals have different but equally valid frames.
 */
function journal(name: string, salt = 0) {
  const path = join(dir, name);
  const header = salt === 0 ? HEADER : { ...HEADER, host: `other-${salt}` };
  const w = JournalWriter.create(path, header, { checkpointFrames: 2 });
  w.append([tcpNew(salt), tcpNew(salt + 1)]);
  w.append([tcpNew(salt + 2)]);
  w.append([tcpNew(salt + 3)]);
  w.appendGap(gap({ lost: 4, from: HEADER.start + 1_000 + salt }));
  w.append([tcpNew(salt + 4), tcpNew(salt + 5)]);
  w.close({ stop: HEADER.start + 60_000_000 });
  const bytes = readFileSync(path);
  const frames: Array<{ at: number; end: number; kind: number }> = [];
  for (let at = MAGIC.length; at < bytes.length; ) {
    const end = at + FRAME_HEADER_SIZE + bytes.readUInt32LE(at);
    frames.push({ at, end, kind: bytes[at + 8] as number });
    at = end;
  }
  return { path, bytes, frames };
}

const src = journal('source.mpk');
const K = FrameKind;
const frameAt = (i: number) => src.frames[i] as { at: number; end: number; kind: number };

t.test('verify: the source journal has the frames the faults below aim at', (t) => {
  t.same(
    src.frames.map((f) => f.kind),
    [
      K.HEADER,
      K.EVENTS,
      K.EVENTS,
      K.CHECKPOINT,
      K.EVENTS,
      K.GAP,
      K.CHECKPOINT,
      K.EVENTS,
      K.TRAILER,
    ],
  );
  t.end();
});

/** Verifies `bytes` written to a file of this test's own. */
function verifyBytes(name: string, bytes: Uint8Array) {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return verifyJournal(path);
}

t.test('verify: an intact journal is OK with its sha256sum, exit 0', (t) => {
  const r = verifyJournal(src.path);
  const sum = createHash('sha256').update(src.bytes).digest('hex');
  t.equal(
    verdictLine(r),
    `${src.path}: OK — complete, format 2, 6 events, 1 gap (4 events lost), 9 frames; sha256 ${sum}`,
  );
  t.same(
    [r.verdict, r.events, r.verifiedEvents, r.checkpoints, r.gaps, r.lost, r.frames],
    ['OK', 6, 6, 2, 1, 4, 9],
  );
  t.equal(verifyExit([r]), Exit.OK);
  t.end();
});

t.test('verify: the format version is in the line and the JSON, for each format', (t) => {
  for (const format of [1, 2] as const) {
    const path = join(dir, `format-${format}.mpk`);
    writeJournal(path, [[tcpNew(0)]], true, format);
    const ok = verifyJournal(path);
    t.equal(ok.format, format, `format ${format}: JSON format`);
    t.match(verdictLine(ok), `: OK — complete, format ${format}, 1 event, `);
    const bytes = readFileSync(path);
    const torn = verifyBytes(`format-${format}-torn.mpk`, bytes.subarray(0, bytes.length - 1));
    t.equal(torn.format, format, `format ${format}: JSON format of an INCOMPLETE one`);
    t.match(torn.detail, `no trailer, format ${format}, `);
  }
  const head = encodeFrame(FrameKind.HEADER, packr.pack({ format: 3 }));
  t.equal(verifyBytes('v3-format.mpk', Buffer.concat([MAGIC, head])).format, null, 'TOO NEW');
  t.end();
});

t.test('verify: a byte flipped in the header frame is CORRUPT at byte 8, exit 1', (t) => {
  for (const at of [8, 12, 16, frameAt(0).end - 1]) {
    const copy = Buffer.from(src.bytes);
    copy[at] = (copy[at] as number) ^ 0x01;
    const r = verifyBytes('header-flip.mpk', copy);
    t.equal(r.verdict, 'CORRUPT', `byte ${at}`);
    t.match(
      r.detail,
      /^header frame: .*, yet a valid frame follows at byte \d+|^frame at byte 8: /,
    );
    t.equal(verifyExit([r]), Exit.RUNTIME);
  }
  const magic = Buffer.from(src.bytes);
  magic[1] = 0;
  const r = verifyBytes('magic-flip.mpk', magic);
  t.equal(r.verdict, 'UNREADABLE');
  t.match(r.detail, /^is not a conntracker journal \(bad magic\)/);
  t.end();
});

t.test('verify: a byte flipped in a middle frame is CORRUPT naming that frame, exit 1', (t) => {
  const mid = frameAt(4);
  for (let at = mid.at; at < mid.end; at++) {
    const copy = Buffer.from(src.bytes);
    copy[at] = (copy[at] as number) ^ 0x5a;
    const r = verifyBytes('mid-flip.mpk', copy);
    t.equal(r.verdict, 'CORRUPT', `byte ${at}`);
    t.match(r.detail, new RegExp(`^frame at byte ${mid.at}: `), `byte ${at}`);
    t.equal(r.offset, mid.at);
    t.equal(verifyExit([r]), Exit.RUNTIME);
  }
  t.end();
});

t.test(
  'verify: a byte flipped in the trailer is INCOMPLETE (torn or damaged), verified up to checkpoint 2',
  (t) => {
    const trailer = frameAt(8);
    for (let at = trailer.at; at < trailer.end; at++) {
      const copy = Buffer.from(src.bytes);
      copy[at] = (copy[at] as number) ^ 0xff;
      const r = verifyBytes('trailer-flip.mpk', copy);
      t.equal(r.verdict, 'INCOMPLETE', `byte ${at}`);
      t.equal(
        r.detail,
        `no trailer, format 2, verified up to checkpoint 2 (4 events), 2 events after it unverified; ${trailer.end - trailer.at} trailing bytes ignored`,
        `byte ${at}`,
      );
      t.equal(verifyExit([r]), Exit.RUNTIME);
    }
    t.end();
  },
);

t.test('verify: every truncation is INCOMPLETE, verified up to its last whole checkpoint', (t) => {
  const seen = new Set<string>();
  for (let len = 0; len < src.bytes.length; len++) {
    const r = verifyBytes('cut.mpk', src.bytes.subarray(0, len));
    t.equal(r.verdict, 'INCOMPLETE', `len ${len}: ${r.detail}`);
    const whole = src.frames.filter((f) => f.end <= len);
    const cps = whole.filter((f) => f.kind === K.CHECKPOINT).length;
    if (len < frameAt(0).end) {
      t.match(r.detail, /^ends inside its (magic|header)/, `len ${len}`);
    } else if (cps === 0) {
      t.match(r.detail, /^no trailer, format 2, no checkpoint: \d events? read, none vouched for/);
    } else {
      t.match(
        r.detail,
        new RegExp(`^no trailer, format 2, verified up to checkpoint ${cps} \\(`),
        `len ${len}`,
      );
    }
    const last = whole.at(-1);
    const torn = last === undefined ? 0 : len - last.end;
    if (len >= frameAt(0).end) t.equal(r.ignoredBytes, torn, `len ${len}`);
    t.equal(verdictLine(r).includes('\n'), false);
    seen.add(r.detail.replace(/\d+/g, 'N'));
  }
  t.ok(seen.size >= 4, [...seen].join(' | '));
  t.end();
});

/** The journal's frames reassembled: magic, then frames in the order given. */
function reassemble(order: readonly Buffer[]): Buffer {
  return Buffer.concat([MAGIC, ...order]);
}
const frameBytes = (j: typeof src, i: number) => {
  const f = j.frames[i] as { at: number; end: number };
  return j.bytes.subarray(f.at, f.end);
};
const all = src.frames.map((_, i) => frameBytes(src, i));

t.test('verify: a frame removed is MODIFIED at the next checkpoint or the trailer', (t) => {
  const cases: Array<[number, RegExp]> = [
    [1, /^digest mismatch at checkpoint 1 \(frame at byte \d+\)$/],
    [4, /^digest mismatch at checkpoint 2 /],
    [5, /^digest mismatch at checkpoint 2 /],
    [3, /^digest mismatch at checkpoint 1 /], // checkpoint 1 removed: checkpoint 2 is now the first
    [7, /^digest mismatch at the trailer /],
  ];
  for (const [drop, detail] of cases) {
    const r = verifyBytes('removed.mpk', reassemble(all.filter((_, i) => i !== drop)));
    t.equal(r.verdict, 'MODIFIED', `frame ${drop} removed`);
    t.match(r.detail, detail, `frame ${drop} removed`);
    t.equal(verifyExit([r]), Exit.RUNTIME);
  }
  t.end();
});

t.test('verify: two frames swapped are MODIFIED', (t) => {
  for (const [a, b] of [
    [1, 2],
    [4, 5],
    [2, 3],
    [7, 6],
  ] as const) {
    const order = [...all];
    const [x, y] = [order[a], order[b]];
    if (x === undefined || y === undefined) throw new Error('no such frame');
    [order[a], order[b]] = [y, x];
    const r = verifyBytes('swapped.mpk', reassemble(order));
    t.equal(r.verdict, 'MODIFIED', `frames ${a} and ${b} swapped: ${r.detail}`);
    t.match(r.detail, /^digest mismatch at (checkpoint \d|the trailer) \(frame at byte \d+\)$/);
  }
  t.end();
});

t.test('verify: a frame replaced by a valid frame of another journal is MODIFIED', (t) => {
  const other = journal('other.mpk', 100);
  t.equal(verifyJournal(other.path).verdict, 'OK');
  for (const i of [0, 2, 5, 7]) {
    const order = [...all];
    order[i] = frameBytes(other, i);
    const r = verifyBytes('replaced.mpk', reassemble(order));
    t.equal(r.verdict, 'MODIFIED', `frame ${i} replaced: ${r.detail}`);
  }
  // The trailer of another journal with the same counts vouches for other frames.
  const order = [...all];
  order[8] = frameBytes(other, 8);
  const r = verifyBytes('replaced-trailer.mpk', reassemble(order));
  t.equal(r.verdict, 'MODIFIED');
  t.match(r.detail, /^digest mismatch at the trailer/);
  t.end();
});

t.test('verify: bytes after the trailer are CORRUPT at the first of them', (t) => {
  const r = verifyBytes('after.mpk', Buffer.concat([src.bytes, Buffer.from('junk')]));
  t.equal(r.verdict, 'CORRUPT');
  t.equal(r.detail, `byte ${src.bytes.length}: 4 bytes follow the trailer`);
  t.end();
});

t.test(
  'verify: TOO NEW exits 3 alone, 1 beside any other fault; UNREADABLE for a missing file',
  (t) => {
    const head = encodeFrame(FrameKind.HEADER, packr.pack({ format: 3 }));
    const newer = verifyBytes('v3.mpk', Buffer.concat([MAGIC, head]));
    t.equal(newer.verdict, 'TOO NEW');
    t.match(
      newer.detail,
      /^was written by format v3; this ct-analyze reads v1 and v2: upgrade conntracker/,
    );
    const ok = verifyJournal(src.path);
    const missing = verifyJournal(join(dir, 'nope.mpk'));
    t.equal(missing.verdict, 'UNREADABLE');
    t.match(missing.detail, /^cannot open .*nope\.mpk: no such file/);
    t.equal(verifyExit([ok, newer]), Exit.VERSION);
    t.equal(verifyExit([newer, missing]), Exit.RUNTIME);
    t.equal(verifyExit([ok, ok]), Exit.OK);
    t.end();
  },
);

const mutation = fc.oneof(
  arbByteMutation,
  fc.record({ kind: fc.constant('move' as const), from: fc.nat(), to: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function apply(buf: Buffer, m: Mutation): Buffer {
  if (m.kind !== 'move') return applyByteMutation(buf, m);
  // A whole frame moved elsewhere: the fault CRCs cannot see.
  const n = src.frames.length;
  const order = [...all];
  const [f] = order.splice(m.from % n, 1);
  if (f !== undefined) order.splice(m.to % n, 0, f);
  return buf === src.bytes ? reassemble(order) : buf;
}

const VERDICTS: readonly Verdict[] = [
  'OK',
  'INCOMPLETE',
  'CORRUPT',
  'MODIFIED',
  'UNREADABLE',
  'TOO NEW',
];

t.test('verify: fast-check byte mutations always give one verdict line and its exit code', (t) => {
  const path = join(dir, 'mutant.mpk');
  const seen = new Map<string, number>();
  let slowest = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
      const bytes = ms.reduce(apply, src.bytes);
      writeFileSync(path, bytes);
      const began = performance.now();
      const r = verifyJournal(path);
      slowest = Math.max(slowest, performance.now() - began);
      seen.set(r.verdict, (seen.get(r.verdict) ?? 0) + 1);
      const line = verdictLine(r);
      if (!VERDICTS.includes(r.verdict) || line.includes('\n') || /\n\s+at /.test(r.detail)) {
        throw new Error(`bad verdict line: ${line}`);
      }
      const exit = verifyExit([r]);
      const want = r.verdict === 'OK' ? 0 : r.verdict === 'TOO NEW' ? 3 : 1;
      if (exit !== want) throw new Error(`${line}: exit ${exit}, expected ${want}`);
      // OK only when the file is the journal, byte for byte: nothing slips past the digests.
      if (r.verdict === 'OK' && !bytes.equals(src.bytes)) throw new Error(`OK for a changed file`);
    }),
    { numRuns: 5000 },
  );
  const summary = JSON.stringify(Object.fromEntries(seen));
  for (const v of ['INCOMPLETE', 'CORRUPT', 'MODIFIED'] as const)
    t.ok((seen.get(v) ?? 0) > 0, `${v} seen: ${summary}`);
  t.ok(slowest < 1000, `slowest verification ${slowest.toFixed(1)} ms`);
  t.end();
});
