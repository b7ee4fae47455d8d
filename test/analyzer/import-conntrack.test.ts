// Import: conntrack -E / -L text parses into the events it prints; bad lines are counted by number.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { formatAddress } from '../../analyzer/address.js';
import { textLines } from '../../analyzer/format-text.js';
import { BAD_LINES_SHOWN, runImport } from '../../analyzer/import.js';
import { parseConntrackLine, parseConntrackText } from '../../analyzer/import-conntrack.js';
import { analyzeJournals } from '../../analyzer/replay.js';
import { type CtEvent, EventType, Status, type Tuple } from '../../journal/event.js';
import { arbEvent, checkProperty, PORT_PROTOS } from '../helpers/arbitraries.js';
import { readWhole, tempDir } from '../helpers/journals.js';

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

// The inverse of the parser: how conntrack prints an event (libnetfilter_conntrack's default).
const TCP_NAMES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
];
const PROTO_NAMES = new Map([
  [1, 'icmp'],
  [6, 'tcp'],
  [17, 'udp'],
  [58, 'icmpv6'],
  [132, 'sctp'],
]);
const TAGS = ['', '    [NEW]', ' [UPDATE]', '[DESTROY]', ''];

function tupleText(tu: Tuple, proto: number, packets?: number, bytes?: number): string {
  const parts = [`src=${formatAddress(tu.src)}`, `dst=${formatAddress(tu.dst)}`];
  if (PORT_PROTOS.has(proto)) parts.push(`sport=${tu.sport}`, `dport=${tu.dport}`);
  if (proto === 1 || proto === 58) {
    parts.push(`type=${tu.icmpType}`, `code=${tu.icmpCode}`, `id=${tu.icmpId}`);
  }
  if (packets !== undefined) parts.push(`packets=${packets}`, `bytes=${bytes}`);
  return parts.join(' ');
}

function conntrackText(ev: CtEvent, o: { stamp: boolean; extended: boolean; id: boolean }): string {
  const out: string[] = [];
  const s = Math.floor(ev.time / 1e6);
  const stamp = o.stamp ? `[${s}.${String(ev.time - s * 1e6).padStart(6, '0')}]\t` : '';
  const tag = TAGS[ev.type] ?? '';
  if (tag !== '') out.push(tag);
  if (o.extended) out.push(ev.family === 4 ? 'ipv4     2' : 'ipv6     10');
  out.push(`${(PROTO_NAMES.get(ev.proto) ?? 'unknown').padEnd(8)} ${ev.proto}`);
  if (ev.type !== EventType.DESTROY) out.push('120');
  if (ev.tcpState !== undefined) out.push(TCP_NAMES[ev.tcpState] as string);
  const c = ev.counters;
  out.push(tupleText(ev.orig, ev.proto, c?.origPackets, c?.origBytes));
  if ((ev.status & Status.SEEN_REPLY) === 0) out.push('[UNREPLIED]');
  out.push(tupleText(ev.reply, ev.proto, c?.replyPackets, c?.replyBytes));
  if ((ev.status & Status.ASSURED) !== 0) out.push('[ASSURED]');
  out.push(`mark=${ev.mark ?? 0}`);
  if (ev.zone !== undefined) out.push(`zone=${ev.zone}`);
  out.push('use=1');
  if (o.id) out.push(`id=${ev.id}`);
  return `${stamp}${out.join(' ')}`;
}

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
