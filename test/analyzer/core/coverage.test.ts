// Coverage: the time range, counts and WARNING lines a report gives for each kind of weak journal.
import t from 'tap';
import {
  type CoverageInput,
  combineCoverage,
  countsText,
  coverageFacts,
  coverageOf,
  durationText,
  filtersOf,
  SHORT_RECORDING_US,
  settingsText,
  timeRangeText,
} from '../../../analyzer/core/coverage.js';
import { printable } from '../../../common/printable.js';
import { EVENT_FIELDS, type JournalHeader } from '../../../journal/format.js';
import type { JournalCounts } from '../../../journal/reader.js';
import { HEADER } from '../../helpers/journals.js';

const START = HEADER.start; // 2025-11-27T07:53:20.000Z
/** Two days: long enough not to be a short recording. */
const LONG = 2 * 86400e6;
const header = (events: number | null = 1, snapshot = false): JournalHeader => ({
  ...HEADER,
  options: { ...HEADER.options, snapshot },
  format: 1,
  eventFields: [...EVENT_FIELDS],
  sysctls: {
    ...HEADER.sysctls,
    nf_conntrack_events: events,
    nf_conntrack_timestamp: 1,
    nf_conntrack_acct: 1,
  },
});

function counts(over: Partial<JournalCounts> = {}): JournalCounts {
  return {
    events: 41,
    byType: { new: 20, update: 15, destroy: 5, snapshot: 1 },
    frames: 3,
    gaps: 0,
    lost: 0,
    gapsLostUnknown: 0,
    lastEventTime: START + LONG - 100_000,
    checkpoints: 0,
    verified: undefined,
    ...over,
  };
}

const clean = (over: Partial<CoverageInput> = {}): CoverageInput => ({
  header: header(),
  trailer: {
    stop: START + LONG,
    events: 41,
    byType: { new: 20, update: 15, destroy: 5, snapshot: 1 },
    frames: 3,
    gaps: 0,
    lost: 0,
    digest: new Uint8Array(32),
  },
  tail: undefined,
  counts: counts(),
  byCause: {},
  ...over,
});

const c0 = clean() as CoverageInput & { trailer: NonNullable<CoverageInput['trailer']> };

t.test('coverage: a clean journal without loss has no warnings and ends at the trailer', (t) => {
  const c = coverageOf(clean());
  t.same(c.warnings, []);
  t.same(
    [c.start, c.end, c.endFrom, c.complete, c.ignoredBytes],
    [START, START + LONG, 'trailer', true, 0],
  );
  t.equal(
    countsText(c),
    '41 events recorded (new 20, update 15, destroy 5, snapshot 1); 0 events lost in 0 gaps',
  );
  t.equal(timeRangeText(c), '2025-11-27T07:53:20.000Z → 2025-11-29T07:53:20.000Z (2 d 0 h)');
  t.equal(
    timeRangeText(coverageOf(clean({ trailer: { ...c0.trailer, stop: START + 1.6e6 } }))),
    '2025-11-27T07:53:20.000Z → 07:53:21.600Z (1.6 s)',
    'the end keeps no date on the same day',
  );
  t.end();
});

t.test(
  'coverage: lost events are a WARNING with the count, the gaps, the cause and the fix',
  (t) => {
    const enobufs = coverageOf(
      clean({ counts: counts({ gaps: 2, lost: 12 }), byCause: { ENOBUFS: { gaps: 2, lost: 12 } } }),
    );
    t.same(enobufs.warnings, [
      '12 events lost in 2 gaps (kernel buffer overrun): flows may be missing; record with a larger --buffer-size',
    ]);
    t.same([enobufs.lost, enobufs.lostKnown, enobufs.gaps], [12, true, 2]);
    const mixed = coverageOf(
      clean({
        counts: counts({ gaps: 3, lost: 1, gapsLostUnknown: 1 }),
        byCause: {
          QUEUE: { gaps: 1, lost: 0 },
          ENOBUFS: { gaps: 1, lost: 1 },
          odd: { gaps: 1, lost: 0 },
        },
      }),
    );
    t.same(mixed.warnings, [
      'at least 1 event lost in 3 gaps (kernel buffer overrun, recorder queue full, odd): flows may be missing; record with a larger --buffer-size; record to a faster disk or keep fewer events (-e, -p, --mark); see ct-record’s messages',
    ]);
    t.equal(mixed.lostKnown, false);
    t.end();
  },
);

t.test('coverage: causes named like Object.prototype keys print as the tokens they are', (t) => {
  const byCause = Object.create(null);
  byCause.constructor = { gaps: 1, lost: 1 };
  Object.defineProperty(byCause, '__proto__', { value: { gaps: 1, lost: 1 }, enumerable: true });
  const c = coverageOf(clean({ counts: counts({ gaps: 2, lost: 2 }), byCause }));
  t.match(
    c.warnings[0],
    /^2 events lost in 2 gaps \(__proto__, constructor\): flows may be missing; see ct-record’s messages$/,
  );
  t.end();
});

t.test('coverage: no trailer ends at the latest event, warns, and counts the torn bytes', (t) => {
  const torn = coverageOf(clean({ trailer: undefined, tail: { ignoredBytes: 17 } }));
  t.same(
    [torn.end, torn.endFrom, torn.complete, torn.ignoredBytes],
    [START + LONG - 1e5, 'last-event', false, 17],
  );
  t.same(torn.warnings, [
    'the recording did not end cleanly (no trailer; 17 torn bytes ignored): flows after its last event are missing; stop ct-record with Ctrl-C or SIGTERM so it ends the journal',
  ]);
  t.equal(
    timeRangeText(torn),
    '2025-11-27T07:53:20.000Z → 2025-11-29T07:53:19.900Z (1 d 23 h up to the last event)',
  );
  const empty = coverageOf(
    clean({ trailer: undefined, counts: counts({ events: 0, lastEventTime: undefined }) }),
  );
  t.same([empty.end, empty.endFrom], [START, 'start']);
  t.match(empty.warnings[0], /^the recording did not end cleanly \(no trailer\): /);
  t.equal(timeRangeText(empty), '2025-11-27T07:53:20.000Z (no events, no trailer)');
  t.end();
});

t.test(
  'coverage: nf_conntrack_events 2 without a table dump at start, and 0, say what to do',
  (t) => {
    const noSnapshot = counts({ byType: { new: 20, update: 15, destroy: 6, snapshot: 0 } });
    const two = coverageOf(clean({ header: header(2), counts: noSnapshot }));
    t.same(two.warnings, [
      'nf_conntrack_events=2 and no table dump at start: flows older than the recording were not seen (they send no events); record again without --no-snapshot, or with --enable-events',
    ]);
    t.equal(two.nfConntrackEvents, 2);
    t.same(
      coverageOf(clean({ header: header(2, true), counts: noSnapshot })).warnings,
      [],
      'the table was dumped at start, even if it was empty',
    );
    t.same(coverageOf(clean({ header: header(null), counts: noSnapshot })).warnings, [], 'unknown');
    t.same(coverageOf(clean({ header: header(1), counts: noSnapshot })).warnings, []);
    t.match(coverageOf(clean({ header: header(0) })).warnings, [
      /^nf_conntrack_events=0: the kernel sent no events/,
    ]);
    t.end();
  },
);

t.test('coverage: several journals sum, and one unknown loss makes the sum a lower bound', (t) => {
  const a = coverageOf(
    clean({ counts: counts({ gaps: 1, lost: 5 }), byCause: { ENOBUFS: { gaps: 1, lost: 5 } } }),
  );
  const b = coverageOf(
    clean({
      counts: counts({ gaps: 1, lost: 0, gapsLostUnknown: 1 }),
      byCause: { QUEUE: { gaps: 1, lost: 0 } },
    }),
  );
  const sum = combineCoverage([a, b, coverageOf(clean())]);
  t.equal(
    countsText(sum),
    '123 events recorded (new 60, update 45, destroy 15, snapshot 3); at least 5 events lost in 2 gaps',
  );
  t.equal(countsText(combineCoverage([a])), countsText(a));
  t.end();
});

t.test('coverage: durations read as a person says them; other days keep their date', (t) => {
  t.same(
    [0, 400_000, 59_999_999, 61e6, 3599e6, 3600e6, 7_500e6, 86_399e6, 3 * 86400e6 + 4 * 3600e6].map(
      durationText,
    ),
    [
      '0.0 s',
      '0.4 s',
      '59.9 s',
      '1 min 1 s',
      '59 min 59 s',
      '1 h 0 min',
      '2 h 5 min',
      '23 h 59 min',
      '3 d 4 h',
    ],
  );
  t.equal(durationText(-2e6), '−2.0 s');
  const c = coverageOf(
    clean({
      trailer: {
        ...(clean().trailer as NonNullable<CoverageInput['trailer']>),
        stop: START + 86400e6,
      },
    }),
  );
  t.equal(timeRangeText(c), '2025-11-27T07:53:20.000Z → 2025-11-28T07:53:20.000Z (1 d 0 h)');
  t.end();
});

t.test(
  'coverage: control characters from a journal are escaped, so one string is one line',
  (t) => {
    t.equal(
      printable('vm\n TCPv4 [0]\r\x1b[2J\u2028ok\x7f'),
      'vm\\x0a TCPv4 [0]\\x0d\\x1b[2J\\u2028ok\\x7f',
    );
    t.equal(printable('net:[4026531840] é'), 'net:[4026531840] é');
    t.end();
  },
);

t.test('coverage: a recording shorter than a day warns how long it is and what it misses', (t) => {
  const at = (us: number) => coverageOf(clean({ trailer: { ...c0.trailer, stop: START + us } }));
  t.match(at(90e6).warnings, [
    /^the recording covers only 1 min 30 s: services used less often \(nightly backups, .*record for at least a day/,
  ]);
  t.same(at(SHORT_RECORDING_US).warnings, [], 'a whole day is enough');
  t.equal(at(SHORT_RECORDING_US - 1).warnings.length, 1, 'a microsecond less is not');
  const following = coverageOf({ ...clean({ trailer: undefined }), following: true });
  t.equal(following.end, START + LONG - 1e5);
  const short = coverageOf({
    ...clean({ trailer: undefined, counts: counts({ lastEventTime: START + 5e6 }) }),
    following: true,
  });
  t.same(short.warnings, [], 'a recording still in progress is not yet short');
  t.end();
});

t.test(
  'coverage: timestamps or accounting off say what is missing and which sysctl to set',
  (t) => {
    const sysctls = (timestamp: number | null, acct: number | null) =>
      coverageOf(
        clean({
          header: {
            ...header(),
            sysctls: {
              ...header().sysctls,
              nf_conntrack_timestamp: timestamp,
              nf_conntrack_acct: acct,
            },
          },
        }),
      ).warnings;
    t.same(sysctls(0, 0), [
      'nf_conntrack_timestamp=0 and nf_conntrack_acct=0: last-seen times are when events arrived (an ended flow is reported 10–40 s late), and flows carry no packet or byte counts; set net.netfilter.nf_conntrack_timestamp=1 and net.netfilter.nf_conntrack_acct=1 before recording',
    ]);
    t.match(sysctls(0, 1), [
      /^nf_conntrack_timestamp=0: last-seen times .*; set net\.netfilter\.nf_conntrack_timestamp=1 before recording$/,
    ]);
    t.match(sysctls(1, 0), [
      /^nf_conntrack_acct=0: flows carry no packet or byte counts; set net\.netfilter\.nf_conntrack_acct=1 before recording$/,
    ]);
    t.same(sysctls(null, null), [], 'unknown is not off');
    const imported = coverageOf(
      clean({
        header: {
          ...header(),
          options: { importedFrom: { tool: 'conntrack -E', file: 'cap.txt' } },
          sysctls: { ...header().sysctls, nf_conntrack_timestamp: 0, nf_conntrack_acct: 0 },
        },
      }),
    );
    t.same(imported.warnings, [], 'an import has no sysctls of its own to blame');
    t.equal(imported.importedFrom, 'conntrack -E text cap.txt');
    t.end();
  },
);

t.test(
  'coverage: no event of any type means no traffic or conntrack inactive: says how to check',
  (t) => {
    const none = counts({
      events: 0,
      byType: { new: 0, update: 0, destroy: 0, snapshot: 0 },
      lastEventTime: undefined,
    });
    const c = coverageOf(clean({ counts: none }));
    t.match(c.warnings, [
      /^no connection was tracked: .*conntrack is not active in it .*ct-record --check/,
    ]);
    t.same(
      coverageOf(
        clean({ counts: counts({ byType: { new: 0, update: 0, destroy: 0, snapshot: 1 } }) }),
      ).warnings,
      [],
      'one table entry is a tracked connection',
    );
    t.end();
  },
);

t.test(
  'coverage: the recorder filters read back as ct-record options, odd shapes left out',
  (t) => {
    t.same(filtersOf({}), []);
    t.same(
      filtersOf({
        events: { new: true, update: false, destroy: true },
        filter: { protos: [6, 17], mark: { value: 16, mask: 255 }, noLoopback: true },
      }),
      ['-e new,destroy', '-p 6,17', '--mark 0x10/0xff', '--no-loopback'],
    );
    t.same(
      filtersOf({
        events: { new: true, update: true, destroy: true },
        filter: { protos: null, mark: null, noLoopback: false },
      }),
      [],
      'the defaults are no filter',
    );
    t.same(
      filtersOf({
        events: ['new'],
        filter: { protos: ['x'], mark: { value: 'a' }, noLoopback: 'yes' },
      }),
      [],
      'a journal from a stranger cannot make a filter appear from values of the wrong type',
    );
    t.same(
      filtersOf({
        filter: { src: ['10.0.0.0/8', 'fd00::/8', 7, 'x; rm -rf /'], dst: ['192.0.2.7'] },
      }),
      ['--src 10.0.0.0/8', '--src fd00::/8', '--dst 192.0.2.7'],
      '--src and --dst read back; what is not a prefix is left out',
    );
    t.same(
      filtersOf({ eventsMode: 'minimal' }),
      ['-e minimal'],
      '--events minimal reads back: the journal left out UPDATEs that changed no flow',
    );
    t.same(filtersOf({ eventsMode: 'all' }), [], '--events all is no filter');
    const c = coverageOf(
      clean({
        header: {
          ...header(2, true),
          options: { ...header().options, snapshot: true, filter: { protos: [6] } },
        },
      }),
    );
    t.equal(
      settingsText(c),
      'table dumped at start; filters: -p 6; nf_conntrack_events=2, timestamp=1, acct=1',
    );
    t.same(
      coverageFacts({
        path: 'a.mpk',
        host: 'fw1',
        kernel: '6.1',
        netns: 'net:[1]',
        coverage: c,
      }).map((f) => f.label),
      ['journal', 'host', 'kernel', 'netns', 'time', 'coverage', 'settings'],
    );
    t.end();
  },
);
