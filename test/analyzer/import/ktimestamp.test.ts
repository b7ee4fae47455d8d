// Import: -o ktimestamp times land in the journal; a protocol name contradicting its number is a bad line.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { runImport } from '../../../analyzer/commands/run/import.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { parseConntrackLine } from '../../../analyzer/import/conntrack-text.js';
import { ctimeUs } from '../../../analyzer/import/ktimestamp.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { type CtEvent, EventType } from '../../../journal/event.js';
import { arbEvent, checkProperty } from '../../helpers/arbitraries.js';
import { readWhole, tempDir } from '../../helpers/journals.js';
import { conntrackText } from './conntrack-print.js';

const FIXTURES = join(PACKAGE_ROOT, 'test', 'fixtures', 'conntrack');
/** µs since the epoch of a UTC wall-clock time on the capture's day (2026-12-06). */
const at = (hms: string) => Date.parse(`2026-12-06T${hms}Z`) * 1000;
/** Far from the capture, so an entry given the import time cannot pass for one with its own. */
const IMPORT_US = Date.UTC(2030, 0, 1) * 1000;

function importFixture(t: Test, name: string) {
  const dir = tempDir(t, 'ktimestamp');
  const out = join(dir, `${name}.mpk`);
  const file = join(FIXTURES, name);
  const warnings: string[] = [];
  const notes: string[] = [];
  const io = { warn: (m: string) => warnings.push(m), note: (m: string) => notes.push(m) };
  runImport({ file, output: out, force: false, host: 'ns' }, io, { importUs: IMPORT_US });
  return { out, file, warnings, notes, journal: readWhole(out) };
}

const unstamped = (j: { header: { options: Record<string, unknown> } }) =>
  (j.header.options.importedFrom as { unstamped: number }).unstamped;
const key = (e: CtEvent) => `${e.proto} ${e.orig.sport || e.orig.icmpId} ${e.orig.dport}`;

t.test(
  'import: the real conntrack -E -o timestamp,ktimestamp capture puts each DESTROY at its kernel stop time',
  async (t) => {
    const { out, warnings, journal } = importFixture(t, 'events-timestamp-ktimestamp.txt');
    t.strictSame(warnings, [], 'every line read');
    t.equal(journal.events.length, 34);
    t.equal(unstamped(journal), 0);
    const destroys = journal.events.filter((e) => e.type === EventType.DESTROY);
    t.strictSame(
      destroys.map((e) => [key(e), e.start, e.time, e.timeKernel]),
      [
        ['6 59852 8080', at('08:47:16'), at('08:47:18'), true],
        ['17 33630 5354', at('08:47:17'), at('08:47:20'), true],
        ['17 59877 5353', at('08:47:17'), at('08:47:20'), true],
        ['1 7081 0', at('08:47:17'), at('08:47:20'), true],
        ['6 51310 9090', at('08:47:18'), at('08:47:24'), true],
        ['6 59866 8080', at('08:47:16'), at('08:47:18'), true],
        ['17 58553 5400', at('08:47:18'), at('08:47:21'), true],
      ],
      'start and stop from the line; the receive time (up to 08:47:34) is not the event time',
    );
    const news = journal.events.filter((e) => e.type === EventType.NEW);
    t.ok(
      news.every((e) => !e.timeKernel && e.start === undefined),
      'NEW keeps its receive time',
    );
    t.equal(news[0]?.time, 1796546836597617);

    // The analysis: the unanswered UDP flow lasts from its NEW's receive time to its stop.
    const { table } = analyzeJournals([out]);
    const udp = [...table.flows()].find((f) => f.proto === 17 && f.dport === 5400);
    t.strictSame([udp?.firstSeen, udp?.lastSeen], [1796546838163421, at('08:47:21')]);
    t.equal(journal.header.start, 1796546836597617, 'the header starts at the first event');
  },
);

t.test(
  'import: the real conntrack -E -o ktimestamp capture imports with the DESTROY times, the rest at the import time',
  async (t) => {
    const { warnings, notes, journal } = importFixture(t, 'events-ktimestamp.txt');
    t.strictSame(warnings, [], 'no "not a conntrack entry" for [start=…] [stop=…]');
    t.match(notes[0], /imported 34 entries \(conntrack -E\).*; 27 lines had no timestamp/);
    t.equal(unstamped(journal), 27, 'only the DESTROYs carry a time');
    const destroys = journal.events.filter((e) => e.type === EventType.DESTROY);
    t.equal(destroys.length, 7);
    t.strictSame(
      destroys.map((e) => [e.time, e.timeKernel]),
      [18, 20, 20, 20, 24, 18, 21].map((s) => [at(`08:47:${s}`), true]),
    );
    t.ok(
      journal.events.every((e) => e.type === EventType.DESTROY || e.time >= IMPORT_US),
      'NEW and UPDATE carry no time in this form: they get the import time',
    );
    t.equal(journal.header.start, at('08:47:18'), 'the earliest time is the first stop');
  },
);

t.test(
  'import: the real conntrack -L -o ktimestamp listing puts each entry at its kernel start time',
  async (t) => {
    const { out, warnings, notes, journal } = importFixture(t, 'list-ktimestamp.txt');
    t.strictSame(warnings, []);
    t.match(notes[0], /imported 7 entries \(conntrack -L\)/);
    t.notMatch(notes[0], /no timestamp/, 'every entry has a time');
    t.strictSame(
      journal.events.map((e) => [key(e), e.type, e.time, e.start, e.timeKernel]),
      [
        ['1 7081 0', EventType.SNAPSHOT, at('08:47:17'), at('08:47:17'), true],
        ['17 59877 5353', EventType.SNAPSHOT, at('08:47:17'), at('08:47:17'), true],
        ['6 51310 9090', EventType.SNAPSHOT, at('08:47:18'), at('08:47:18'), true],
        ['17 33630 5354', EventType.SNAPSHOT, at('08:47:17'), at('08:47:17'), true],
        ['6 59866 8080', EventType.SNAPSHOT, at('08:47:16'), at('08:47:16'), true],
        ['17 58553 5400', EventType.SNAPSHOT, at('08:47:18'), at('08:47:18'), true],
        ['58 7082 0', EventType.SNAPSHOT, at('08:47:17'), at('08:47:17'), true],
      ],
    );
    t.equal(journal.header.start, at('08:47:16'));
    const { table } = analyzeJournals([out]);
    const tcp = [...table.flows()].find((f) => f.proto === 6 && f.dport === 9090);
    t.strictSame([tcp?.firstSeen, tcp?.confirmed], [at('08:47:18'), true]);
  },
);

t.test(
  'import: the real -L listing with -o ktimestamp gives the same entries as without, apart from times',
  async (t) => {
    const read = (name: string) =>
      readFileSync(join(FIXTURES, name), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => parseConntrackLine(l, 5));
    const kt = read('list-ktimestamp.txt');
    const plain = read('list-plain.txt');
    t.equal(kt.length, 7);
    kt.forEach((r, i) => {
      const p = plain[i];
      assert.ok(r.kind === 'event' && p?.kind === 'event');
      const { time: _t, timeKernel: _k, start: _s, ...rest } = r.event;
      const { time: _pt, timeKernel: _pk, ...plainRest } = p.event;
      t.strictSame(rest, plainRest, `entry ${i + 1}`);
    });
  },
);

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');

/** ctime(3) in UTC, as glibc prints it: "%.3s %.3s%3d %.2d:%.2d:%.2d %d". */
function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]}${String(d.getUTCDate()).padStart(3)} ${time} ${d.getUTCFullYear()}`;
}

t.test(
  'import: -o ktimestamp lines parse the same as plain ones apart from their times',
  async (t) => {
    const SECONDS = { min: 0, max: Date.UTC(9999, 11, 31) / 1000 };
    const arbCase = fc.record({
      ev: arbEvent({ protos: [1, 6, 17, 58, 132, 47] }).map((e) => {
        const { start: _start, ...ev } = e;
        if (ev.tcpState !== undefined) ev.tcpState %= 10;
        return ev;
      }),
      stamp: fc.boolean(),
      extended: fc.boolean(),
      id: fc.boolean(),
      start: fc.integer(SECONDS),
      stop: fc.integer(SECONDS),
    });
    checkProperty(
      t,
      fc.property(arbCase, ({ ev, stamp, extended, id, start, stop }) => {
        const plain = conntrackText(ev, { stamp, extended, id });
        // Where conntrack puts them: after mark= (and zone=), before use=.
        const destroy = ev.type === EventType.DESTROY;
        const fields = `delta-time=${Math.abs(stop - start)} [start=${ctime(start)}]${destroy ? ` [stop=${ctime(stop)}]` : ''}`;
        const line = plain.replace(' use=1', ` ${fields} use=1`);
        const p = parseConntrackLine(plain, 77);
        const k = parseConntrackLine(line, 77);
        assert.ok(p.kind === 'event' && k.kind === 'event', `${line}: ${JSON.stringify(k)}`);
        const want: CtEvent = { ...p.event, start: start * 1e6 };
        if (destroy) Object.assign(want, { time: stop * 1e6, timeKernel: true });
        if (ev.type === EventType.SNAPSHOT && !stamp) {
          Object.assign(want, { time: start * 1e6, timeKernel: true });
        }
        assert.deepEqual(k.event, want, line);
        assert.equal(k.stamped, p.stamped || destroy || ev.type === EventType.SNAPSHOT, line);
      }),
      { numRuns: 400 },
    );
  },
);

t.test('import: a ktimestamp field that is not a ctime date is a bad line saying so', async (t) => {
  const base =
    '[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 delta-time=3';
  const bad: [string, RegExp][] = [
    ['[stop=yesterday]', /\[stop=yesterday\] is not a date as conntrack prints it/],
    ['[stop=Sun Feb 30 08:47:20 2026]', /is not a valid date/],
    ['[stop=Mon Dec  6 08:47:20 2026]', /says Mon, but that date is a Sun/],
    ['[start=Sun Dec  6 08:47:17 2026] [start=Sun Dec  6 08:47:17 2026]', /\[start=…\] twice/],
  ];
  for (const [fields, reason] of bad) {
    const r = parseConntrackLine(`${base} ${fields}`, 0);
    t.equal(r.kind, 'bad', fields);
    if (r.kind === 'bad') t.match(r.reason, reason);
  }
  t.equal(ctimeUs('Thu Jan  1 00:00:00 1970'), 0);
  t.equal(ctimeUs('Sun Dec  6 08:47:16 2026'), 1796546836000000);
});

t.test(
  'import: a protocol name that contradicts its number is a bad line, warned with its number',
  async (t) => {
    const tuple =
      'src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1';
    const cases: [string, RegExp][] = [
      [`udp      6 30 ${tuple}`, /"udp 6": udp is protocol 17, not 6/],
      [`tcp      17 30 ${tuple}`, /"tcp 17": tcp is protocol 6, not 17/],
      [`ipv4     10 udp 17 30 ${tuple}`, /"ipv4 10": ipv4 is family 2/],
      [
        'icmpv6   1 30 src=::1 dst=::2 type=128 code=0 id=1 src=::2 dst=::1 type=129 code=0 id=1',
        /icmpv6 is protocol 58, not 1/,
      ],
    ];
    for (const [line, reason] of cases) {
      const r = parseConntrackLine(line, 0);
      t.equal(r.kind, 'bad', line);
      if (r.kind === 'bad') t.match(r.reason, reason);
    }
    for (const ok of [`unknown  47 30 ${tuple}`, `gre      47 30 ${tuple}`, `sctp 132 ${tuple}`]) {
      t.equal(parseConntrackLine(ok, 0).kind, 'event', `${ok}: a name that fits, or unknown`);
    }

    const dir = tempDir(t, 'ktimestamp');
    const capture = join(dir, 'capture.txt');
    writeFileSync(capture, `tcp      6 30 ESTABLISHED ${tuple}\nudp      6 30 ${tuple}\n`);
    const warnings: string[] = [];
    const io = { warn: (m: string) => warnings.push(m), note: () => {} };
    runImport({ file: capture, output: join(dir, 'c.mpk'), force: false, host: 'x' }, io);
    t.strictSame(warnings, [
      `${capture}:2: not a conntrack entry ("udp 6": udp is protocol 17, not 6): "udp      6 30 ${tuple}"`,
    ]);
    t.equal(readWhole(join(dir, 'c.mpk')).events.length, 1, 'only the TCP entry is imported');
  },
);
