// The logger: RFC 3164 lines for syslog, the same text on stderr, and a lost syslog never stops a run.
import t from 'tap';
import { sendDatagram } from '../../native/index.js';
import {
  messageText,
  stderrLogger,
  syslogLine,
  syslogLogger,
  syslogTimestamp,
} from '../../recorder/log.js';

const DATE = new Date(2026, 11, 7, 21, 51, 5); // local time, as syslog writes it

t.test(
  'log: the RFC 3164 timestamp pads the day with a space and the time with zeros',
  async (t) => {
    t.equal(syslogTimestamp(DATE), 'Dec  7 21:51:05');
    t.equal(syslogTimestamp(new Date(2026, 0, 31, 0, 0, 0)), 'Jan 31 00:00:00');
  },
);

t.test(
  'log: a syslog line is <PRI>TIMESTAMP ct-record[PID]: MSG with facility daemon',
  async (t) => {
    const opts = { ident: 'ct-record', pid: 44982, date: DATE };
    t.equal(
      syslogLine('info', 'Starting to capture conntrack events', opts),
      '<30>Dec  7 21:51:05 ct-record[44982]: Starting to capture conntrack events',
    );
    t.equal(
      syslogLine('warn', '3 events lost', opts),
      '<28>Dec  7 21:51:05 ct-record[44982]: WARNING: 3 events lost',
    );
    t.equal(
      syslogLine('error', 'cannot write', opts),
      '<27>Dec  7 21:51:05 ct-record[44982]: cannot write',
    );
  },
);

t.test('log: line breaks and control characters cannot split or forge a syslog line', async (t) => {
  const line = syslogLine('info', 'a\nDec  7 00:00:00 sshd[1]: forged\r\x00\tb', {
    ident: 'ct-record',
    pid: 1,
    date: DATE,
  });
  t.equal(line, '<30>Dec  7 21:51:05 ct-record[1]: a Dec  7 00:00:00 sshd[1]: forged   b');
  const long = syslogLine('info', 'x'.repeat(5000), { ident: 'ct-record', pid: 1, date: DATE });
  t.ok(long.endsWith('…') && long.length < 2100, 'an overlong message is cut to one datagram');
});

t.test('log: stderr and syslog carry the same text for every severity', async (t) => {
  const out: string[] = [];
  const sent: string[] = [];
  const err = stderrLogger((l) => out.push(l));
  const sys = syslogLogger({ pid: 7, now: () => DATE, send: (_s, l) => sent.push(l) });
  for (const [sev, msg] of [
    ['info', 'Finished capturing conntrack events'],
    ['warn', 'the table dump failed'],
    ['error', 'conntrack reader failed'],
  ] as const) {
    err[sev](msg);
    sys[sev](msg);
  }
  t.strictSame(out, [
    'ct-record: Finished capturing conntrack events\n',
    'ct-record: WARNING: the table dump failed\n',
    'ct-record: conntrack reader failed\n',
  ]);
  t.strictSame(
    sent.map((l) => l.slice(l.indexOf(']: ') + 3)),
    out.map((l) => l.slice('ct-record: '.length, -1)),
  );
  t.equal(messageText('warn', 'x'), 'WARNING: x');
});

t.test(
  'log: a syslog that cannot be reached loses the message, keeps the reason, throws nothing',
  async (t) => {
    const missing = `/nonexistent-${process.pid}/log`;
    const sys = syslogLogger({ socket: missing, send: sendDatagram });
    sys.info('one');
    sys.warn('two');
    t.equal(sys.lost, 2);
    t.match(sys.lastFailure, new RegExp(`^${missing}: sendto: ENOENT`));
    t.throws(
      () => sendDatagram('/dev/null', 'x'),
      { name: 'CtError', code: 'ECONNREFUSED', message: /^sendto: ECONNREFUSED/ },
      'not a socket: refused, as a CtError with the errno name',
    );
    t.throws(() => sendDatagram('x'.repeat(200), 'x'), { code: 'ENAMETOOLONG' });
  },
);
