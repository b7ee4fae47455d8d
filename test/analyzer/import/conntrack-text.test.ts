// Import: conntrack -E / -L text parses into the events it prints; bad lines are counted by number.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { runImport } from '../../../analyzer/commands/run/import.js';
import { formatAddress, parseAddress } from '../../../analyzer/core/address.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { parseConntrackLine, parseConntrackText } from '../../../analyzer/import/conntrack-text.js';
import {
  BAD_LINES_SHOWN,
  type ImportOptions,
  STDIN_NAME,
} from '../../../analyzer/import/import.js';
import { MAX_LINE } from '../../../analyzer/import/lines.js';
import { textLines } from '../../../analyzer/report/text.js';
import { CtError } from '../../../common/errors.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { type CtEvent, EventType, Status, type Tuple } from '../../../journal/event.js';
import { openJournal } from '../../../journal/reader.js';
import { arbEvent, checkProperty } from '../../helpers/arbitraries.js';
import { readWhole, tempDir } from '../../helpers/journals.js';
import { conntrackText } from './conntrack-print.js';

/** Lines captured from conntrack v1.4.7 in a namespace (kernel 6.x), byte for byte. */
const CAPTURE_E = [
  '[1795770432.386744]\t    [NEW] ipv4     2 icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=11300 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=11300 id=3387932844',
  '[1795770432.386799]\t [UPDATE] ipv4     2 icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=11300 src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=11300 id=3387932844',
  '[1795770432.391577]\t    [NEW] ipv6     10 icmpv6   58 30 src=fd77::1 dst=fd77::2 type=128 code=0 id=11301 [UNREPLIED] src=fd77::2 dst=fd77::1 type=129 code=0 id=11301 id=124452780',
  '[1795770432.877226]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=10.77.0.1 dst=10.77.0.2 sport=51908 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=51908 [ASSURED] id=274855872',
  '[1795770433.969605]\t[DESTROY] ipv4     2 udp      17 28 src=10.77.0.1 dst=10.77.0.2 sport=41757 dport=514 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=514 dport=41757 id=2218844965 [USERSPACE] portid=2628762932 progname=conntrack',
  'conntrack v1.4.7 (conntrack-tools): 5 flow events have been shown.',
];
const PLAIN_E = [
  '    [NEW] tcp      6 120 SYN_SENT src=10.77.0.1 dst=10.77.0.2 sport=51908 dport=80 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=80 dport=51908',
  ' [UPDATE] tcp      6 60 SYN_RECV src=10.77.0.1 dst=10.77.0.2 sport=51908 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=51908',
];
const CAPTURE_L = [
  'tcp      6 118 TIME_WAIT src=10.77.0.1 dst=10.77.0.2 sport=51908 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=51908 [ASSURED] mark=0 use=1',
  'ipv4     2 udp      17 28 src=10.77.0.1 dst=10.77.0.2 sport=41757 dport=514 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=514 dport=41757 mark=7 zone=3 use=1 id=2218844965',
];

const v4 = (s: string) => Uint8Array.from(s.split('.').map(Number));

function parsed(line: string, time = 5): CtEvent {
  const r = parseConntrackLine(line, time);
  if (r.kind !== 'event') throw new Error(`not an event: ${JSON.stringify(r)}`);
  return r.event;
}

t.test('import: real conntrack -E -o timestamp,id,extended lines give their events', async (t) => {
  const icmp = parsed(CAPTURE_E[0] as string);
  t.strictSame(icmp, {
    type: EventType.NEW,
    family: 4,
    proto: 1,
    status: Status.CONFIRMED,
    id: 3387932844,
    time: 1795770432386744,
    timeKernel: false,
    orig: {
      src: v4('10.77.0.1'),
      dst: v4('10.77.0.2'),
      sport: 0,
      dport: 0,
      icmpType: 8,
      icmpCode: 0,
      icmpId: 11300,
    },
    reply: {
      src: v4('10.77.0.2'),
      dst: v4('10.77.0.1'),
      sport: 0,
      dport: 0,
      icmpType: 0,
      icmpCode: 0,
      icmpId: 11300,
    },
  });
  t.equal(parsed(CAPTURE_E[1] as string).status, Status.CONFIRMED | Status.SEEN_REPLY, 'replied');
  const v6 = parsed(CAPTURE_E[2] as string);
  t.strictSame(
    [v6.family, v6.proto, formatAddress(v6.orig.dst), v6.orig.icmpType],
    [6, 58, 'fd77::2', 128],
  );
  const est = parsed(CAPTURE_E[3] as string);
  t.strictSame(
    [est.type, est.status, est.tcpState, est.orig.sport, est.orig.dport, est.id],
    [EventType.UPDATE, 0x2 | 0x4 | 0x8, 3, 51908, 80, 274855872],
  );
  const destroy = parsed(CAPTURE_E[4] as string);
  t.strictSame(
    [destroy.type, destroy.status, destroy.proto, destroy.id, destroy.time],
    [EventType.DESTROY, Status.CONFIRMED, 17, 2218844965, 1795770433969605],
    'DESTROY still says [UNREPLIED]; [USERSPACE] portid= progname= are ignored',
  );
  t.strictSame(parseConntrackLine(CAPTURE_E[5] as string, 0), { kind: 'ignored' });
});

t.test('import: default-format -E lines and -L entries, mark and zone', async (t) => {
  const syn = parsed(PLAIN_E[0] as string, 42);
  t.strictSame([syn.type, syn.status, syn.tcpState, syn.time, syn.id], [1, 0x8, 1, 42, 0]);
  t.equal(parsed(PLAIN_E[1] as string).status, 0xa, 'no [UNREPLIED]: SEEN_REPLY');
  const tw = parsed(CAPTURE_L[0] as string);
  t.strictSame([tw.type, tw.status, tw.tcpState, tw.mark], [EventType.SNAPSHOT, 0xe, 7, undefined]);
  const udp = parsed(CAPTURE_L[1] as string);
  t.strictSame(
    [udp.type, udp.mark, udp.zone, udp.id, udp.status],
    [EventType.SNAPSHOT, 7, 3, 2218844965, 8],
  );
});

t.test('import: unreadable lines are reported with their reasons and line numbers', async (t) => {
  const bad: [string, RegExp][] = [
    ['hello world', /no protocol/],
    ['tcp 6 120 src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2', /two tuples/],
    [
      'tcp 6 120 src=1.2.3.4 dst=1.2.3.5 sport=1 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1',
      /sport= or dport=/,
    ],
    [
      'tcp 6 120 BOGUS src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1',
      /TCP state BOGUS/,
    ],
    [
      'udp 17 30 src=1.2.3.4 dst=1.2.3.5 sport=70000 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1',
      /sport=70000/,
    ],
    [
      'udp 17 30 src=1.2.3.999 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=1.2.3.4 sport=2 dport=1',
      /not an IP address/,
    ],
    [
      'udp 17 30 src=::1 dst=1.2.3.5 sport=1 dport=2 src=1.2.3.5 dst=::1 sport=2 dport=1',
      /not IPv6/,
    ],
    [
      'ipv4 2 udp 17 30 src=::1 dst=::2 sport=1 dport=2 src=::2 dst=::1 sport=2 dport=1',
      /not IPv4/,
    ],
    [
      'icmp 1 30 src=1.2.3.4 dst=1.2.3.5 id=3 src=1.2.3.5 dst=1.2.3.4 type=0 code=0',
      /type= or code=/,
    ],
    ['udp 300 30 src=1.2.3.4 dst=1.2.3.5 src=1.2.3.5 dst=1.2.3.4', /above 255/],
  ];
  for (const [line, reason] of bad) {
    const r = parseConntrackLine(line, 0);
    t.equal(r.kind, 'bad', line);
    if (r.kind === 'bad') t.match(r.reason, reason);
  }
  const text = [
    '',
    CAPTURE_E[0],
    'junk',
    PLAIN_E[0],
    '',
    'more junk',
    CAPTURE_E[5],
    PLAIN_E[1],
  ].join('\n');
  const cap = parseConntrackText(`${text}\n`, 1000);
  t.strictSame(
    cap.bad.map((b) => [b.line, b.text]),
    [
      [3, 'junk'],
      [6, 'more junk'],
    ],
  );
  t.strictSame(
    cap.events.map((e) => e.time),
    [1795770432386744, 1000, 1001],
    'lines without a timestamp get the import time, in file order',
  );
  t.strictSame([cap.tagged, cap.untagged, cap.unstamped], [3, 0, 2]);
});

t.test(
  'import: parsing what conntrack prints gives back the event, in every output form',
  async (t) => {
    const arbCase = fc.record({
      ev: arbEvent({ protos: [1, 6, 17, 58, 132, 47] }).map((e) => {
        const { start: _start, ...ev } = e;
        if (ev.tcpState !== undefined) ev.tcpState %= 10;
        return ev;
      }),
      stamp: fc.boolean(),
      extended: fc.boolean(),
      id: fc.boolean(),
    });
    checkProperty(
      t,
      fc.property(arbCase, ({ ev, stamp, extended, id }) => {
        const line = conntrackText(ev, { stamp, extended, id });
        const r = parseConntrackLine(line, 77);
        assert.equal(r.kind, 'event', `${line}: ${JSON.stringify(r)}`);
        if (r.kind !== 'event') return;
        // structuredClone: fast-check may draw null-prototype objects; the parser makes plain ones.
        const want: CtEvent = structuredClone({
          ...ev,
          status: (ev.status & (Status.SEEN_REPLY | Status.ASSURED)) | Status.CONFIRMED,
          id: id ? ev.id : 0,
          time: stamp ? ev.time : 77,
          timeKernel: false,
        });
        if (ev.proto !== 6 || ev.tcpState === undefined) delete want.tcpState;
        if (want.mark === 0) delete want.mark;
        assert.deepEqual(r.event, want, line);
      }),
      { numRuns: 400 },
    );
  },
);

t.test(
  'import: runImport writes a journal marked as imported that replays to the flows',
  async (t) => {
    const dir = tempDir(t, 'import');
    const capture = join(dir, 'capture.txt');
    const junk = Array.from({ length: BAD_LINES_SHOWN + 3 }, (_, i) => `# note ${i}`);
    writeFileSync(capture, [...CAPTURE_E, ...junk, ...CAPTURE_L].join('\n'));
    const out = join(dir, 'imported.mpk');
    const warnings: string[] = [];
    const notes: string[] = [];
    const io = { warn: (m: string) => warnings.push(m), note: (m: string) => notes.push(m) };
    const code = runImport({ file: capture, output: out, force: false, host: 'fw1' }, io);
    t.equal(code, 0, 'exit 0: something was imported');
    t.equal(warnings.length, BAD_LINES_SHOWN + 1, 'the first ten bad lines, then a count');
    t.equal(
      warnings[0],
      `${capture}:7: not a conntrack entry (no protocol name and number (like "tcp 6")): "# note 0"`,
    );
    t.equal(warnings.at(-1), `${capture}: … and 3 more unreadable lines`);
    t.match(notes[0], /imported 7 entries \(conntrack -E and -L\) .*skipped 13 unreadable lines/);
    const j = readWhole(out);
    t.ok(j.complete);
    t.equal(j.header.host, 'fw1');
    t.strictSame(j.header.options.importedFrom, {
      tool: 'conntrack -E and -L',
      file: capture,
      lines: 20,
      unreadable: 13,
      unstamped: 2,
    });
    t.equal(j.events.length, 7);
    const { table } = analyzeJournals([out]);
    t.strictSame(
      [...textLines(table.flows())].map((l) => l.trimEnd()),
      [
        ' TCPv4 [           0] src = 10.77.0.1 (port=1024) to dst = 10.77.0.2 (port=80) (confirmed)',
        ' UDPv4 [           0] src = 10.77.0.1 (port=1024) to dst = 10.77.0.2 (port=514)',
        'ICMPv4 [           0] src = 10.77.0.1 to dst = 10.77.0.2 (type=8 | code=0) (confirmed)',
        'ICMPv6 [           0] src = fd77::1 to dst = fd77::2 (type=128 | code=0)',
      ],
    );

    t.throws(() => runImport({ file: capture, output: out, force: false, host: 'x' }, io), {
      code: 'EEXIST',
    });
    t.equal(runImport({ file: capture, output: out, force: true, host: 'x' }, io), 0, '--force');
    const none = join(dir, 'none.txt');
    writeFileSync(none, 'nothing here\n');
    t.throws(
      () => runImport({ file: none, output: join(dir, 'n.mpk'), force: false, host: 'x' }, io),
      { code: 'ENOENTRIES', name: 'CtError' },
    );
    t.throws(
      () => runImport({ file: join(dir, 'missing'), output: out, force: true, host: 'x' }, io),
      {
        code: 'ENOENT',
      },
    );
  },
);

t.test(
  'import: writes format 2 unless --format-version 1 is given; both replay to the same flows',
  async (t) => {
    const dir = tempDir(t, 'import-format');
    const capture = join(dir, 'capture.txt');
    writeFileSync(capture, [...CAPTURE_E, ...CAPTURE_L].join('\n'));
    const io = { warn: () => {}, note: () => {} };
    const tables: string[][] = [];
    for (const formatVersion of [undefined, 1, 2] as const) {
      const out = join(dir, `v${formatVersion ?? 'default'}.mpk`);
      runImport({ file: capture, output: out, force: false, host: 'fw1', formatVersion }, io);
      t.equal(readWhole(out).header.format, formatVersion ?? 2, `${out}: its format`);
      tables.push([...textLines(analyzeJournals([out]).table.flows())]);
    }
    t.strictSame(tables[1], tables[0], 'format 1 replays to the same table');
    t.strictSame(tables[2], tables[0], 'format 2 replays to the same table');
    const cli = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
    const bad = spawnSync(
      process.execPath,
      [cli, 'import', capture, '-o', join(dir, 'never.mpk'), '--format-version', '3'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    t.equal(bad.status, 2, 'an unknown format is a usage error');
    t.match(bad.stderr, /'--format-version <n>' argument '3' is invalid\. give 2 .* or 1 /);
    const v1 = spawnSync(
      process.execPath,
      [cli, 'import', capture, '-o', join(dir, 'cli-v1.mpk'), '--format-version', '1'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    t.equal(v1.status, 0, v1.stderr);
    t.equal(readWhole(join(dir, 'cli-v1.mpk')).header.format, 1, 'the CLI passes it on');
  },
);

t.test('import: IPv4 addresses are read exactly when net.isIPv4 accepts them', async (t) => {
  const arbText = fc.oneof(
    fc
      .array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 5 })
      .map((a) => a.join('.')),
    fc.stringMatching(/^[0-9.]{0,16}$/),
  );
  checkProperty(
    t,
    fc.property(arbText, (text) => {
      const got = parseAddress(text);
      if (!isIPv4(text)) return assert.ok(got === undefined || got.length === 16, text);
      assert.deepEqual(got, Uint8Array.from(text.split('.').map(Number)), text);
    }),
    { numRuns: 2000 },
  );
});

/** What runImport printed and wrote, for comparing two imports or an import with the reference. */
function importOf(t: Test, dir: string, name: string, text: string | Buffer, opts: ImportOptions) {
  const capture = join(dir, `${name}.txt`);
  const out = join(dir, `${name}.mpk`);
  writeFileSync(capture, text);
  const warnings: string[] = [];
  const notes: string[] = [];
  runImport(
    { file: capture, output: out, force: false, host: 'h' },
    { warn: (m) => warnings.push(m), note: (m) => notes.push(m) },
    opts,
  );
  const j = readWhole(out);
  t.ok(j.complete, `${name}: the journal has its trailer`);
  return { capture, warnings, notes, j: { ...j, events: j.events.map(plain) } };
}

/** The reader hands addresses out as Buffers, the parser as Uint8Arrays: compare the bytes. */
function plain(ev: CtEvent): CtEvent {
  const tu = (x: Tuple): Tuple => ({
    ...x,
    src: Uint8Array.from(x.src),
    dst: Uint8Array.from(x.dst),
  });
  return { ...ev, orig: tu(ev.orig), reply: tu(ev.reply) };
}

/** The warnings and header a whole-text parse says an import of `text` must give. */
function expectedFromWhole(capture: string, text: string, importUs: number) {
  const cap = parseConntrackText(text, importUs);
  const warnings = cap.bad
    .slice(0, BAD_LINES_SHOWN)
    .map(
      (b) =>
        `${capture}:${b.line}: not a conntrack entry (${b.reason}): ${JSON.stringify(b.text.length > 120 ? `${b.text.slice(0, 120)}…` : b.text)}`,
    );
  if (cap.bad.length > BAD_LINES_SHOWN) {
    warnings.push(`${capture}: … and ${cap.bad.length - BAD_LINES_SHOWN} more unreadable lines`);
  }
  const times = cap.events.map((e) => e.time);
  return {
    cap,
    warnings,
    start: Math.min(...times),
    importedFrom: {
      tool:
        cap.tagged > 0 && cap.untagged > 0
          ? 'conntrack -E and -L'
          : cap.tagged > 0
            ? 'conntrack -E'
            : 'conntrack -L',
      file: capture,
      lines: cap.events.length + cap.bad.length,
      unreadable: cap.bad.length,
      unstamped: cap.unstamped,
    },
  };
}

const POOL = [
  ...CAPTURE_E,
  ...PLAIN_E,
  ...CAPTURE_L,
  '',
  '   ',
  'junk',
  'ünïcödé jünk € 😀 straddles',
  `${'x'.repeat(MAX_LINE)}y and more`,
];

t.test(
  'import: read in chunks smaller than a line, borders anywhere (mid-line, mid-\\r\\n, mid-character), the journal equals parsing the text whole',
  async (t) => {
    const dir = tempDir(t, 'import-chunks');
    const arbCase = fc.record({
      lines: fc.array(
        fc.record({
          text: fc.constantFrom(...POOL),
          crlf: fc.boolean(),
        }),
        { minLength: 1, maxLength: 40 },
      ),
      finalNewline: fc.boolean(),
      chunkSize: fc.integer({ min: 1, max: 97 }),
      batchSize: fc.integer({ min: 1, max: 5 }),
    });
    let run = 0;
    checkProperty(
      t,
      fc.property(arbCase, ({ lines, finalNewline, chunkSize, batchSize }) => {
        const body = lines.map((l, k) => `${l.text}${l.crlf || k === 0 ? '\r\n' : '\n'}`).join('');
        const text = finalNewline ? body : body.replace(/\r?\n$/, '');
        const want = expectedFromWhole(join(dir, `c${run}.txt`), text, 7_000_000);
        const name = `c${run++}`;
        if (want.cap.events.length === 0) return; // an error case, tested elsewhere
        const got = importOf(t, dir, name, text, { chunkSize, batchSize, importUs: 7_000_000 });
        assert.ok(Buffer.byteLength(text) > chunkSize, 'more than one chunk');
        assert.deepEqual(got.j.events, want.cap.events);
        assert.deepEqual(got.warnings, want.warnings);
        assert.deepEqual(got.j.header.options.importedFrom, want.importedFrom);
        assert.equal(got.j.header.start, want.start);
      }),
      { numRuns: 150 },
    );

    // The same, fixed: every line of the fixtures, 13 bad ones, read 7 bytes at a time.
    const junk = Array.from({ length: BAD_LINES_SHOWN + 3 }, (_, i) => `# note ${i}`);
    const text = [...CAPTURE_E, ...junk, ...PLAIN_E, ...CAPTURE_L].join('\n');
    const want = expectedFromWhole(join(dir, 'fixed.txt'), text, 9_000_000);
    const got = importOf(t, dir, 'fixed', text, { chunkSize: 7, batchSize: 2, importUs: 9e6 });
    t.strictSame(got.j.events, want.cap.events, 'the events of the whole-text parse, in order');
    t.equal(got.j.events.length, 9);
    t.strictSame(got.warnings, want.warnings);
    t.equal(got.warnings.length, BAD_LINES_SHOWN + 1);
    t.strictSame(got.j.header.options.importedFrom, want.importedFrom);
  },
);

t.test(
  'import: CRLF line ends and a last line without a newline read as the LF text does',
  async (t) => {
    const dir = tempDir(t, 'import-crlf');
    const lines = [CAPTURE_E[0], 'junk', '', CAPTURE_E[3], PLAIN_E[0], 'more junk', CAPTURE_L[1]];
    const lf = `${lines.join('\n')}\n`;
    const crlf = lines.join('\r\n'); // and no newline after the last entry
    const opts = { chunkSize: 16, importUs: 1_000_000 };
    const a = importOf(t, dir, 'lf', lf, opts);
    const b = importOf(t, dir, 'crlf', crlf, opts);
    t.equal(b.j.events.length, 4, 'the last line, without a newline, is an entry too');
    t.strictSame(b.j.events, a.j.events, 'the same events');
    t.strictSame(
      b.warnings,
      a.warnings.map((w) => w.replace(a.capture, b.capture)),
      'the same warnings, same line numbers, no \\r in the shown text',
    );
    t.equal(
      b.warnings[0],
      `${b.capture}:2: not a conntrack entry (no protocol name and number (like "tcp 6")): "junk"`,
    );
    t.strictSame(b.j.header.options.importedFrom, {
      ...(a.j.header.options.importedFrom as object),
      file: b.capture,
    });
    t.equal(b.j.header.start, a.j.header.start);
  },
);

t.test('import: a line longer than MAX_LINE is one bad line, however it is read', async (t) => {
  const dir = tempDir(t, 'import-long');
  const long = 'z'.repeat(3 * MAX_LINE);
  const text = `${CAPTURE_E[0]}\n${long}\n${CAPTURE_E[1]}\n${long}`;
  const got = importOf(t, dir, 'long', text, { chunkSize: 1000 });
  t.equal(got.j.events.length, 2);
  t.strictSame(
    got.warnings.map((w) => w.slice(got.capture.length, got.capture.length + 60)),
    [2, 4].map((n) =>
      `:${n}: not a conntrack entry (longer than ${MAX_LINE} characters): "zz`.slice(0, 60),
    ),
  );
  t.match(got.notes[0], /imported 2 entries .*skipped 2 unreadable lines/);
});

t.test(
  'import: - reads a pipe (copied aside, read twice) to the same journal as the file',
  async (t) => {
    const dir = tempDir(t, 'import-pipe');
    const text = `${[...CAPTURE_E, 'junk', ...PLAIN_E].join('\n')}\n`;
    const opts = { chunkSize: 10, batchSize: 3, importUs: 5_000_000 };
    const fromFile = importOf(t, dir, 'file', text, opts);

    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `cat "${fromFile.capture}" > "${fifo}"`], {
      stdio: 'ignore',
    });
    const done = new Promise((resolve) => writer.on('exit', resolve));
    const fd = openSync(fifo, 'r'); // waits for sh to open the other end
    t.teardown(() => closeSync(fd));
    const out = join(dir, 'pipe.mpk');
    const warnings: string[] = [];
    const notes: string[] = [];
    const io = { warn: (m: string) => warnings.push(m), note: (m: string) => notes.push(m) };
    runImport({ file: '-', output: out, force: false, host: 'h' }, io, { ...opts, stdin: fd });
    t.equal(await done, 0, 'the writer finished');
    const j = readWhole(out);
    t.ok(j.complete);
    t.strictSame(j.events.map(plain), fromFile.j.events, 'the events of the file import');
    t.strictSame(j.header.options.importedFrom, {
      ...(fromFile.j.header.options.importedFrom as object),
      file: STDIN_NAME,
    });
    t.strictSame(warnings, [
      `${STDIN_NAME}:7: not a conntrack entry (no protocol name and number (like "tcp 6")): "junk"`,
    ]);
    t.match(notes[0], `from ${STDIN_NAME} into ${out}`);
    t.strictSame(
      (await import('node:fs')).readdirSync(dir).filter((f) => f.endsWith('.import')),
      [],
      'the temporary copy is gone',
    );
  },
);

/** Writes `lines` lines of -E text (every 1000th unreadable) to `path`; returns bytes written. */
function writeBigCapture(path: string, lines: number): number {
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    let block: string[] = [];
    for (let i = 0; i < lines; i++) {
      const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const p = 1024 + (i % 60000);
      const us = String(i % 1_000_000).padStart(6, '0');
      block.push(
        i % 1000 === 999
          ? `garbage line ${i}`
          : `[${1795770000 + Math.floor(i / 1_000_000)}.${us}]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=${a} dst=192.0.2.7 sport=${p} dport=443 src=192.0.2.7 dst=${a} sport=443 dport=${p} [ASSURED] mark=0 use=1 id=${i}`,
      );
      if (block.length === 20_000 || i === lines - 1) {
        const buf = Buffer.from(`${block.join('\n')}\n`);
        writeSync(fd, buf);
        bytes += buf.length;
        block = [];
      }
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

t.test(
  'import: a 200 MB capture streams through in bounded memory (heap sampled during the import)',
  async (t) => {
    const dir = tempDir(t, 'import-big');
    const capture = join(dir, 'big.txt');
    const out = join(dir, 'big.mpk');
    const lines = 1_050_000;
    const size = writeBigCapture(capture, lines);
    t.ok(size > 200e6, `the capture is ${(size / 1e6).toFixed(0)} MB`);
    // Live memory, not garbage V8 has not collected yet: what the import holds at that moment.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const base = used();
    let peak = base;
    let samples = 0;
    let chunks = 0;
    const passes = new Set<number>();
    const notes: string[] = [];
    const t0 = performance.now();
    runImport(
      { file: capture, output: out, force: false, host: 'h' },
      { warn: () => {}, note: (m) => notes.push(m) },
      {
        progress: (p) => {
          passes.add(p.pass);
          // Every 8th chunk: a full collection each time would double the test's run time.
          if (chunks++ % 8 === 0) {
            samples++;
            peak = Math.max(peak, used());
          }
        },
      },
    );
    const secs = (performance.now() - t0) / 1000;
    const grew = peak - base;
    t.comment(
      `${lines} lines in ${secs.toFixed(1)} s, sampling included; live heap+external grew at most ${(grew / 1e6).toFixed(1)} MB over ${samples} samples`,
    );
    t.strictSame([...passes], [1, 2], 'sampled in both passes');
    t.ok(chunks >= (2 * size) / (1 << 20), 'called for every chunk read');
    t.ok(samples >= chunks / 8, 'sampled every 8th');
    // A whole-file read holds the capture's text (> 200 MB) at every sample, and its events more.
    t.ok(grew < 32e6, `memory grew ${(grew / 1e6).toFixed(1)} MB, under 32 MB for ${size} bytes`);

    const entries = lines - Math.floor(lines / 1000);
    t.match(notes[0], `imported ${entries} entries (conntrack -E)`);
    const reader = openJournal(out);
    t.teardown(() => reader.close());
    let events = 0;
    for (const item of reader.items()) if (item.kind === 'events') events += item.events.length;
    t.equal(events, entries, 'every entry is in the journal');
    t.equal(reader.trailer?.events, entries, 'and the trailer counts them');
  },
);

t.test(
  'import: a disk filling up mid-import leaves a readable journal without trailer, and says what to do',
  async (t) => {
    const dir = tempDir(t, 'import-full');
    const mnt = join(dir, 'tiny');
    mkdirSync(mnt);
    try {
      execFileSync('mount', [
        '-t',
        'tmpfs',
        '-o',
        'size=64k',
        `ct-import-test-${process.pid}`,
        mnt,
      ]);
    } catch {
      t.comment('skipped: cannot mount a tmpfs here (needs root)');
      return;
    }
    t.teardown(() => execFileSync('umount', ['-l', mnt]));
    const capture = join(dir, 'many.txt');
    const size = writeBigCapture(capture, 3000);
    const entries = 3000 - 3;
    const io = { warn: () => {}, note: () => {} };

    const out = join(mnt, 'full.mpk');
    // Format 1: 3,000 entries compressed (format 2) would fit on the small disk.
    const cmd = { file: capture, output: out, force: false, host: 'h', formatVersion: 1 as const };
    const err = ctErrorOf(() => runImport(cmd, io, { batchSize: 100 }));
    t.equal(err?.code, 'ENOSPC');
    const m = /incomplete \((\d+) of (\d+) entries, no trailer\): import again with --force/.exec(
      err?.message ?? '',
    );
    t.match(err?.message, /^cannot write .*full\.mpk: no space left on device/);
    t.ok(m, err?.message ?? 'no error');
    t.equal(Number(m?.[2]), entries);
    const j = readWhole(out);
    t.notOk(j.complete, 'no trailer: verify calls it INCOMPLETE');
    t.ok(j.events.length > 0 && j.events.length < entries, `${j.events.length} events made it`);
    t.equal(j.events.length, Number(m?.[1]), 'the message counts what is in the file');
    rmSync(out);

    // Piped: the copy of standard input goes beside the output, and that fills the disk first.
    t.ok(size > 64 * 1024, 'the capture does not fit on the small disk');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', 'cat "$0" > "$1"', capture, fifo], { stdio: 'ignore' });
    const fd = openSync(fifo, 'r');
    t.teardown(() => closeSync(fd));
    const out2 = join(mnt, 'piped.mpk');
    const err2 = ctErrorOf(() =>
      runImport({ file: '-', output: out2, force: false, host: 'h' }, io, { stdin: fd }),
    );
    writer.kill();
    t.equal(err2?.code, 'ENOSPC');
    t.match(
      err2?.message,
      `cannot copy ${STDIN_NAME} to a temporary file in ${mnt} (ENOSPC: no space left on device`,
    );
    t.match(err2?.message, /save the capture to a file and import that/);
    t.strictSame(readdirSync(mnt), [], 'neither the copy nor a journal is left behind');
  },
);

t.test('import: FILE that cannot be a capture is refused with what to do', async (t) => {
  const dir = tempDir(t, 'import-refuse');
  const io = { warn: () => {}, note: () => {} };
  const out = join(dir, 'x.mpk');
  const isDir = ctErrorOf(() => runImport({ file: dir, output: out, force: false, host: 'h' }, io));
  t.equal(isDir?.code, 'EISDIR');
  t.match(isDir?.message, 'is a directory: give the file holding the capture');
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  const none = ctErrorOf(() =>
    runImport({ file: empty, output: out, force: false, host: 'h' }, io),
  );
  t.equal(none?.code, 'ENOENTRIES');
  t.strictSame(readdirSync(dir).sort(), ['empty.txt'], 'no journal is created for nothing');
});

function ctErrorOf(fn: () => unknown): { code: string; message: string } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CtError) return err;
    throw err;
  }
  return undefined;
}
