// Chain names (header chain.previous.file, trailer next) with control or invisible characters are damage.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { verifyJournal } from '../../analyzer/verify/verify.js';
import {
  EVENT_FIELDS,
  FrameKind,
  type JournalChain,
  MAGIC,
  RUN_ID_SIZE,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { decodeTrailer, encodeMap } from '../../journal/meta-codec.js';
import { JournalWriter } from '../../journal/writer.js';
import { HEADER, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'chain-names');

/** Each kind the decoder must refuse, with the code point its message names. */
const BAD: Array<[string, string, string]> = [
  ['ESC (the audit’s title sequence)', '\x1b]0;pwned\x07-000001.mpk', 'U+001B'],
  ['BEL', 'fw\x07-000001.mpk', 'U+0007'],
  ['a newline', 'fw-000001.mpk\nALL FLOWS VERIFIED OK', 'U+000A'],
  ['a tab', 'fw\t-000001.mpk', 'U+0009'],
  ['DEL', 'fw\x7f-000001.mpk', 'U+007F'],
  ['C1 CSI', 'fw\x9b2J-000001.mpk', 'U+009B'],
  ['a right-to-left override', 'fw-\u202e1000000.mpk', 'U+202E'],
  ['a first-strong isolate', 'fw\u2068-000001.mpk', 'U+2068'],
  ['a left-to-right mark', 'fw\u200e-000001.mpk', 'U+200E'],
  ['an Arabic letter mark', 'fw\u061c-000001.mpk', 'U+061C'],
  ['a zero-width space', 'fw\u200b-000001.mpk', 'U+200B'],
  ['a line separator', 'fw\u2028-000001.mpk', 'U+2028'],
];

/** A stranger's file: the magic and a header whose chain names `file` as the journal before. */
function strangerWith(file: string, tag: string): string {
  const path = join(dir, `${tag}.mpk`);
  const header = {
    ...HEADER,
    format: 1,
    eventFields: [...EVENT_FIELDS],
    chain: {
      run: Buffer.alloc(RUN_ID_SIZE, 9),
      sequence: 2,
      previous: { sha256: Buffer.alloc(32), file },
    },
  };
  writeFileSync(
    path,
    Buffer.concat([MAGIC, encodeFrame(FrameKind.HEADER, encodeMap(header as never))]),
  );
  return path;
}

t.test(
  'chain names: a previous.file with a control, bidi or invisible character is CORRUPT, the character named, the name not quoted',
  (t) => {
    BAD.forEach(([what, file, code], i) => {
      const r = verifyJournal(strangerWith(file, `bad-${i}`));
      t.equal(r.verdict, 'CORRUPT', what);
      t.match(
        r.detail,
        `header chain.previous.file holds the control or invisible character ${code}, which no journal name has`,
        what,
      );
      t.notOk(r.detail.includes(file), `${what}: the name itself is not repeated`);
    });
    t.end();
  },
);

t.test('chain names: ordinary names, non-ASCII letters included, still decode', (t) => {
  for (const [i, file] of [
    'fw1-000001.mpk',
    'pare-feu-é-000001.mpk',
    '東京-000001.mpk',
  ].entries()) {
    const r = verifyJournal(strangerWith(file, `good-${i}`));
    t.equal(r.verdict, 'INCOMPLETE', file);
    t.equal(r.chain?.previous?.file, file);
  }
  t.end();
});

t.test('chain names: the writer refuses them too, and a trailer next with one is damage', (t) => {
  const run = Buffer.alloc(RUN_ID_SIZE, 4);
  for (const [what, file, code] of BAD.slice(0, 3)) {
    const path = join(dir, `refused-${code}.mpk`);
    const chain: JournalChain = { run, sequence: 2, previous: { sha256: Buffer.alloc(32), file } };
    t.throws(() => JournalWriter.create(path, { ...HEADER, chain }), { message: code }, what);
    t.notOk(existsSync(path), `${what}: no file`);
  }
  const trailer = {
    stop: HEADER.start,
    events: 0,
    byType: { new: 0, update: 0, destroy: 0, snapshot: 0 },
    frames: 1,
    gaps: 0,
    lost: 0,
    digest: Buffer.alloc(32),
    next: 'fw-000002.mpk\x1b[2J',
  };
  t.throws(() => decodeTrailer(encodeMap(trailer)), {
    message: 'trailer next holds the control or invisible character U+001B',
  });
  t.end();
});
