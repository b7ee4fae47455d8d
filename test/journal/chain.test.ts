// Chained journals of a rotated run: the header's chain and trailer's next, and the checks over a run.
import {
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { analyzeJournals } from '../../analyzer/core/replay.js';
import {
  chainLine,
  checkChains,
  type VerifyResult,
  verifyExit,
  verifyJournal,
} from '../../analyzer/verify/verify.js';
import { Exit } from '../../common/errors.js';
import {
  EVENT_FIELDS,
  type FormatVersion,
  FrameKind,
  type JournalChain,
  type JournalHeaderInput,
  MAGIC,
  RUN_ID_SIZE,
  sequencePath,
  unpackr,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { encodeMap } from '../../journal/meta-codec.js';
import { openJournal } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import { FORMATS, HEADER, readAll, tcpNew, tempDir } from './fixtures.js';

const dir = tempDir(t, 'chain');
let runs = 0;

/** A run id that differs from every other one of this file (and reads well in a failure). */
function runId(): Uint8Array {
  return Buffer.alloc(RUN_ID_SIZE, ++runs);
}

/** A header as ct-record writes it for a run: events=2, table dumped at the run's start. */
const RUN_HEADER: JournalHeaderInput = {
  ...HEADER,
  options: { ...HEADER.options, snapshot: true, rotate: true },
  sysctls: { ...HEADER.sysctls, nf_conntrack_events: 2 },
};

/**
 * Writes journals 1…n of one run as `name` numbered (`dir/a-000001.mpk`, …), chained as
 * ct-record chains them: each with two events of its own, a trailer naming the next but the last.
 */
function writeRun(
  name: string,
  n: number,
  run = runId(),
  salt = 0,
  step = 1_000_000,
  formatVersion?: FormatVersion,
): string[] {
  const output = join(dir, name);
  const paths: string[] = [];
  let previous: JournalChain['previous'] = null;
  for (let seq = 1; seq <= n; seq++) {
    const path = sequencePath(output, seq);
    const w = JournalWriter.create(
      path,
      {
        ...RUN_HEADER,
        start: HEADER.start + seq * step,
        chain: { run, sequence: seq, previous },
      },
      { formatVersion },
    );
    w.append([tcpNew(salt + seq * 10), tcpNew(salt + seq * 10 + 1)]);
    const next = seq < n ? { next: basename(sequencePath(output, seq + 1)) } : {};
    w.close({ stop: HEADER.start + (seq + 1) * step, ...next });
    previous = { sha256: Buffer.from(w.sha256, 'hex'), file: basename(path) };
    paths.push(path);
  }
  return paths;
}

/** verify as the CLI runs it: per-file results, then the runs' verdicts. */
function verifyAll(paths: readonly string[]) {
  const results = paths.map(verifyJournal);
  const chains = checkChains(results);
  return { results, chains, exit: verifyExit(results, chains), lines: chains.map(chainLine) };
}

const hex8 = (run: Uint8Array) => Buffer.from(run).toString('hex').slice(0, 8);

t.test('chain: journals are numbered before the extension, zero-padded so names sort', (t) => {
  t.equal(sequencePath('fw1.mpk', 1), 'fw1-000001.mpk');
  t.equal(sequencePath('/var/lib/ct.d/fw1', 12), '/var/lib/ct.d/fw1-000012');
  t.equal(sequencePath('a.b/.mpk', 3), 'a.b/.mpk-000003', 'a leading dot is no extension');
  t.equal(sequencePath('fw1.mpk', 1_234_567), 'fw1-1234567.mpk', 'a seventh digit past 999999');
  const names = [1, 2, 9, 10, 11, 99, 100, 999_999].map((n) => sequencePath('x.mpk', n));
  t.strictSame([...names].sort(), names, 'lexical order is numeric order');
  t.end();
});

t.test('chain: the header chain and the trailer next round-trip, with only their keys', (t) => {
  const run = runId();
  const path = join(dir, 'roundtrip.mpk');
  const previous = { sha256: Buffer.alloc(32, 7), file: 'x-000001.mpk', extra: 'not written' };
  const chain = { run, sequence: 2, previous, secret: 'not written' };
  const w = JournalWriter.create(path, { ...HEADER, chain });
  w.append([tcpNew(1)]);
  w.close({ stop: HEADER.start + 1, next: 'x-000003.mpk' });
  const r = readAll(path);
  t.strictSame(
    {
      run: [...(r.reader.header.chain?.run ?? [])],
      sequence: r.reader.header.chain?.sequence,
      previous: {
        sha256: [...(r.reader.header.chain?.previous?.sha256 ?? [])],
        file: r.reader.header.chain?.previous?.file,
      },
    },
    { run: [...run], sequence: 2, previous: { sha256: Array(32).fill(7), file: 'x-000001.mpk' } },
  );
  t.equal(r.reader.trailer?.next, 'x-000003.mpk');
  const bytes = readFileSync(path);
  t.notOk(bytes.includes('not written'), 'a caller’s extra keys never reach the file');
  // The header is a plain msgpack map any tool reads: the chain is just one more key in it.
  const head = unpackr.unpack(
    bytes.subarray(MAGIC.length + 9, MAGIC.length + 9 + bytes.readUInt32LE(MAGIC.length)),
  );
  t.strictSame(Object.keys(head.chain), ['run', 'sequence', 'previous']);
  const plainPath = join(dir, 'unchained.mpk');
  const u = JournalWriter.create(plainPath, HEADER);
  u.close({ stop: HEADER.start + 1 });
  const plainHead = openJournal(plainPath);
  t.equal(plainHead.header.chain, undefined, 'a journal written without a chain has none');
  plainHead.close();
  t.notOk(readFileSync(plainPath).includes('chain'), 'and no chain key (not even nil)');
  t.notOk(readFileSync(plainPath).includes('next'), 'nor a next in its trailer');
  t.end();
});

t.test(
  'chain: the writer refuses a chain or next its reader would reject, creating nothing',
  (t) => {
    const run = runId();
    const link = { sha256: Buffer.alloc(32, 1), file: 'a-000001.mpk' };
    const bad: Array<[string, unknown, RegExp]> = [
      ['sequence 0', { run, sequence: 0, previous: null }, /chain\.sequence is 0/],
      [
        'sequence 1 with a previous',
        { run, sequence: 1, previous: link },
        /previous is set for sequence 1/,
      ],
      [
        'sequence 2 without one',
        { run, sequence: 2, previous: null },
        /previous is nil for sequence 2/,
      ],
      [
        'a short run id',
        { run: run.subarray(1), sequence: 1, previous: null },
        /chain\.run is 15 bytes/,
      ],
      [
        'a short digest',
        { run, sequence: 2, previous: { ...link, sha256: Buffer.alloc(31) } },
        /sha256 is 31 bytes/,
      ],
      [
        'a path as file',
        { run, sequence: 2, previous: { ...link, file: '../a.mpk' } },
        /not a file name/,
      ],
      ['.. as file', { run, sequence: 2, previous: { ...link, file: '..' } }, /not a file name/],
      ['an empty file', { run, sequence: 2, previous: { ...link, file: '' } }, /expected 1–255/],
    ];
    for (const [what, chain, message] of bad) {
      const path = join(dir, `bad-${what.replace(/\W+/g, '-')}.mpk`);
      t.throws(
        () => JournalWriter.create(path, { ...HEADER, chain: chain as JournalChain }),
        { name: 'TypeError', message },
        what,
      );
      t.notOk(existsSync(path), `${what}: no file`);
    }
    const w = JournalWriter.create(join(dir, 'bad-next.mpk'), HEADER);
    t.throws(() => w.close({ stop: HEADER.start, next: 'sub/a.mpk' }), {
      name: 'TypeError',
      message: /trailer next is not a file name/,
    });
    w.abandon();
    t.end();
  },
);

t.test('chain: a stranger’s header with a malformed chain is CORRUPT at the header', (t) => {
  const run = Buffer.alloc(RUN_ID_SIZE, 9);
  const cases: Array<[string, unknown]> = [
    ['no previous key', { run, sequence: 1 }],
    ['a sequence above the limit', { run, sequence: 2 ** 33, previous: null }],
    ['a string run', { run: 'x'.repeat(16), sequence: 1, previous: null }],
    [
      'a NUL in the file',
      { run, sequence: 2, previous: { sha256: Buffer.alloc(32), file: 'a\0b' } },
    ],
  ];
  for (const [what, chain] of cases) {
    const path = join(dir, `stranger-${what.replace(/\W+/g, '-')}.mpk`);
    const header = { ...HEADER, format: 1, eventFields: [...EVENT_FIELDS], chain };
    writeFileSync(
      path,
      Buffer.concat([MAGIC, encodeFrame(FrameKind.HEADER, encodeMap(header as never))]),
    );
    const r = verifyJournal(path);
    t.equal(r.verdict, 'CORRUPT', what);
    t.match(r.detail, /header chain/, what);
    t.equal(r.chain, null, `${what}: no chain place for an unreadable header`);
  }
  t.end();
});

for (const format of FORMATS) {
  t.test(
    `chain: a whole run verifies complete in any order, one line per run (format ${format})`,
    (t) => {
      const paths = writeRun(`whole-v${format}.mpk`, 3, runId(), 0, 1_000_000, format);
      const run = openJournal(paths[0] as string);
      const id = hex8(run.header.chain?.run as Uint8Array);
      run.close();
      for (const order of [paths, [...paths].reverse(), [paths[1], paths[2], paths[0]]]) {
        const v = verifyAll(order as string[]);
        t.strictSame(
          v.lines,
          [`chain ${id}: 3 journals, complete`],
          order.map((p) => basename(p as string)).join(' '),
        );
        t.equal(v.exit, Exit.OK);
        t.ok(v.results.every((r) => r.verdict === 'OK' && r.chain?.faults.length === 0));
      }
      const v = verifyAll([...paths, paths[1] as string]);
      t.strictSame(
        v.lines,
        [`chain ${id}: 3 journals, complete`],
        'the same path given twice counts once',
      );
      const r2 = v.results[1] as VerifyResult;
      t.match(r2.chain, {
        run: /^[0-9a-f]{32}$/,
        sequence: 2,
        previous: { sha256: v.results[0]?.sha256, file: basename(paths[0] as string) },
        next: basename(paths[2] as string),
        faults: [],
      });
      t.equal(v.results[2]?.chain?.next, null, 'the last journal names no next');
      t.end();
    },
  );
}

t.test('chain: a missing middle journal is named, at the journal after it; exit 1', (t) => {
  const paths = writeRun('middle.mpk', 4);
  const [a, b, c, d] = paths as [string, string, string, string];
  const id = hex8(openRun(a));
  const one = verifyAll([a, c, d]);
  t.strictSame(one.lines, [
    `chain ${id}: 3 journals, BROKEN — ${b} is missing: sequence 2 of run ${id}`,
  ]);
  t.equal(one.exit, Exit.RUNTIME, 'every file is OK, the run is not');
  t.ok(one.results.every((r) => r.verdict === 'OK'));
  t.strictSame(one.results[1]?.chain?.faults, [`${b} is missing: sequence 2 of run ${id}`]);
  t.strictSame(one.results[0]?.chain?.faults, []);
  const two = verifyAll([d, a]);
  t.strictSame(two.lines, [
    `chain ${id}: 2 journals, BROKEN — ${b} … ${c} are missing: sequences 2–3 of run ${id}`,
  ]);
  t.end();
});

function openRun(path: string): Uint8Array {
  const r = openJournal(path);
  r.close();
  return r.header.chain?.run as Uint8Array;
}

t.test('chain: a missing start or end of a run is a fault; a run without trailer is open', (t) => {
  const [a, b, c] = writeRun('ends.mpk', 3) as [string, string, string];
  const id = hex8(openRun(a));
  t.strictSame(verifyAll([c, b]).lines, [
    `chain ${id}: 2 journals, BROKEN — ${a} is missing: sequence 1 of run ${id}`,
  ]);
  t.strictSame(verifyAll([c]).lines, [
    `chain ${id}: 1 journal, BROKEN — ${a} … ${b} are missing: sequences 1–2 of run ${id}`,
  ]);
  const end = verifyAll([a, b]);
  t.strictSame(end.lines, [
    `chain ${id}: 2 journals, BROKEN — ${c} is missing: ${b} says the run goes on in it (sequence 3 of run ${id})`,
  ]);
  t.equal(end.exit, Exit.RUNTIME);
  // ct-record still writing the last journal (or killed): no trailer, so no next to miss.
  const open = join(dir, 'open-000002.mpk');
  const [o1] = writeRun('open.mpk', 1) as [string];
  const prev = {
    sha256: Buffer.from(verifyJournal(o1).sha256 as string, 'hex'),
    file: basename(o1),
  };
  const w = JournalWriter.create(open, {
    ...RUN_HEADER,
    chain: { run: openRun(o1), sequence: 2, previous: prev },
  });
  w.append([tcpNew(5)]);
  w.flush();
  const v = verifyAll([o1, open]);
  t.match(
    v.lines[0],
    /: 2 journals, complete as far as it goes \(.*open-000002\.mpk has no trailer: still being recorded/,
  );
  t.equal(v.exit, Exit.RUNTIME, 'the INCOMPLETE journal still fails verify');
  w.close({ stop: HEADER.start + 9 });
  t.end();
});

t.test('chain: a journal of another run in the sequence is named as such', (t) => {
  const [x1, x2, x3] = writeRun('mixed-x.mpk', 3) as [string, string, string];
  const [, y2] = writeRun('mixed-y.mpk', 2, runId(), 100) as [string, string];
  // Someone "restores" x's second journal from another run's file of the same name.
  renameSync(x2, `${x2}.orig`);
  copyFileSync(y2, x2);
  const idX = hex8(openRun(x1));
  const idY = hex8(openRun(y2));
  const v = verifyAll([x1, x2, x3]);
  t.strictSame(v.lines, [
    `chain ${idX}: 2 journals, BROKEN — ${x3} does not follow ${x2}: ${x2} is of another run (${idY}); sequence 2 of run ${idX} is missing`,
    `chain ${idY}: 1 journal, BROKEN — ${join(dir, 'mixed-y-000001.mpk')} is missing: sequence 1 of run ${idY}`,
  ]);
  t.equal(v.exit, Exit.RUNTIME);
  t.end();
});

for (const format of FORMATS) {
  t.test(
    `chain: a replaced journal, itself intact, breaks the digest link to the next (format ${format})`,
    (t) => {
      const run = runId();
      const [a, b, c] = writeRun(`swap-v${format}.mpk`, 3, run, 0, 1_000_000, format) as [
        string,
        string,
        string,
      ];
      const id = hex8(run);
      // Journal 2 written again: same run, same sequence, same predecessor, other events.
      const other = writeRun(
        `swap-other-v${format}.mpk`,
        2,
        run,
        500,
        1_000_000,
        format,
      )[1] as string;
      const prevOfB = openJournal(b);
      const header = { ...prevOfB.header, chain: prevOfB.header.chain as JournalChain };
      prevOfB.close();
      renameSync(b, `${b}.orig`);
      const w = JournalWriter.create(b, header, { formatVersion: format });
      w.append([tcpNew(777)]);
      w.close({ stop: HEADER.start + 5, next: basename(c) });
      const v = verifyAll([a, b, c]);
      t.equal(verifyJournal(b).verdict, 'OK', 'the replacement is a valid journal');
      t.strictSame(v.lines, [
        `chain ${id}: 3 journals, BROKEN — ${c} does not follow ${b}: its previous sha256 differs`,
      ]);
      t.strictSame(v.results[2]?.chain?.faults, [
        `${c} does not follow ${b}: its previous sha256 differs`,
      ]);
      // The other run's journal 2 points at its own journal 1, which is not a's file either.
      const again = verifyAll([a, other]);
      t.match(
        again.lines[0],
        /BROKEN — .*swap-other-v\d-000002\.mpk does not follow .*swap-v\d-000001\.mpk: its previous sha256 differs/,
      );
      t.end();
    },
  );
}

for (const format of FORMATS) {
  t.test(
    `chain: the same sequence twice, or a damaged predecessor, is a fault (format ${format})`,
    (t) => {
      const [a, b] = writeRun(`twice-v${format}.mpk`, 2, runId(), 0, 1_000_000, format) as [
        string,
        string,
      ];
      const id = hex8(openRun(a));
      const copy = join(dir, `copy-of-twice-v${format}-000002.mpk`);
      copyFileSync(b, copy);
      t.strictSame(verifyAll([a, b, copy]).lines, [
        `chain ${id}: 3 journals, BROKEN — ${copy} and ${b} are both sequence 2 of run ${id}`,
      ]);
      const [c, d] = writeRun(`torn-v${format}.mpk`, 2, runId(), 0, 1_000_000, format) as [
        string,
        string,
      ];
      truncateSync(c, readFileSync(c).length - 3);
      const v = verifyAll([c, d]);
      t.equal(v.results[0]?.verdict, 'INCOMPLETE');
      t.match(v.lines[0], `BROKEN — cannot check that ${d} follows ${c}: ${c} is not OK`);
      t.end();
    },
  );
}

t.test('chain: journals without a chain give no run line and a null chain', (t) => {
  const path = join(dir, 'plain.mpk');
  const w = JournalWriter.create(path, HEADER);
  w.close({ stop: HEADER.start + 1 });
  const v = verifyAll([path, join(dir, 'does-not-exist.mpk')]);
  t.strictSame(v.chains, []);
  t.strictSame(
    v.results.map((r) => r.chain),
    [null, null],
  );
  t.equal(verifyExit(v.results.slice(0, 1), v.chains), Exit.OK);
  t.end();
});

const NO_DUMP = /no table dump at start/;

t.test('chain: analyzed together, a run has no missing-dump or hole warning', (t) => {
  const paths = writeRun('analyze.mpk', 3);
  const whole = analyzeJournals(paths);
  const [first, ...later] = whole.journals;
  t.equal(first?.coverage.snapshotDumped, true, 'journal 1 holds the run’s table dump');
  t.ok(
    later.every((j) => !j.coverage.snapshotDumped),
    'the others have none of their own',
  );
  for (const j of whole.journals) {
    t.notOk(
      j.coverage.warnings.some((w) => NO_DUMP.test(w) || /is analyzed without/.test(w)),
      j.path,
    );
  }
  t.equal(whole.table.size, 6, 'two flows from each journal');
  // The same journals without a chain: journal 2 and 3 would each warn of the missing dump.
  const unchained = join(dir, 'unchained-2.mpk');
  const w = JournalWriter.create(unchained, {
    ...RUN_HEADER,
    options: { ...RUN_HEADER.options, snapshot: false },
  });
  w.close({ stop: HEADER.start + 1 });
  t.match(
    analyzeJournals([unchained]).journals[0]?.coverage.warnings,
    [NO_DUMP],
    'the warning the chain replaces',
  );
  t.end();
});

t.test(
  'chain: a hole, or a run analyzed from its middle, warns which journals are missing',
  (t) => {
    const [a, b, c, d] = writeRun('hole.mpk', 4) as [string, string, string, string];
    const id = hex8(openRun(a));
    const warned: string[] = [];
    const r = analyzeJournals([d, a, c], { warn: (m) => warned.push(m) });
    const hole = `journal 3 of run ${id} is analyzed without journal 2 (${basename(b)}) of that run: flows seen only in it are missing; analyze them all: ct-analyze ${join(dir, 'hole-*.mpk')}`;
    t.strictSame(
      r.journals.map((j) => j.coverage.warnings.filter((w) => /analyzed without/.test(w))),
      [[], [], [hole]],
    );
    t.ok(warned.includes(`${c}: ${hole}`), 'on stderr too, with the path');
    t.equal(r.table.size, 6, 'the union of what is there');
    const middle = analyzeJournals([c, d]).journals[0]?.coverage.warnings ?? [];
    t.ok(
      middle.includes(
        `journal 3 of run ${id} is analyzed without journals 1–2 of that run: flows seen only in them, and flows older than the run (its table dump is in journal 1), are missing; analyze them all: ct-analyze ${join(dir, 'hole-*.mpk')}`,
      ),
      middle.join('\n'),
    );
    t.notOk(
      middle.some((w) => NO_DUMP.test(w)),
      'the chain warning replaces the missing-dump one',
    );
    t.end();
  },
);

t.test('chain: a run is judged short once, by its whole span, not each journal by its own', (t) => {
  const SHORT = /covers only/;
  const short = analyzeJournals(writeRun('short.mpk', 3)).journals;
  t.strictSame(
    short.map((j) => j.coverage.warnings.filter((w) => SHORT.test(w))),
    [
      [
        'the rotated run (3 journals) covers only 3.0 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall',
      ],
      [],
      [],
    ],
  );
  // Three journals of 10 h: each alone is short, the run of 30 h is not.
  const long = writeRun('long.mpk', 3, runId(), 0, 10 * 3600e6);
  t.strictSame(
    analyzeJournals(long).journals.map((j) => j.coverage.warnings.filter((w) => SHORT.test(w))),
    [[], [], []],
  );
  const alone = analyzeJournals([long[1] as string]).journals[0]?.coverage.warnings ?? [];
  t.ok(
    alone.some((w) => w.startsWith('the recording covers only 10 h 0 min')),
    'alone, a journal of the run is judged by itself',
  );
  t.end();
});
