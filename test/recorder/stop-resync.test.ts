// The stop with losses still waiting for their paced resync dump: the dump runs first, bounded.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import t from 'tap';
import { FlowTable } from '../../analyzer/core/flows.js';
import type { CtEvent } from '../../journal/event.js';
import type { Logger } from '../../recorder/log.js';
import { type RecordRun, recorderProgram, settleOptions } from '../../recorder/options.js';
import { type RecordOptions, startRecording } from '../../recorder/recording.js';
import { runSession } from '../../recorder/session.js';
import { fakeIo } from '../helpers/fake-capture.js';
import { readWhole, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'stop-resync');
let n = 0;
const tick = () => new Promise((r) => setImmediate(r));
const NOW = Date.now() * 1000;

function settle(args: readonly string[]): RecordRun {
  const program = recorderProgram();
  program.parse(args, { from: 'user' });
  const run = settleOptions(program, () => {});
  if (run.kind !== 'record') throw new Error(`not a recording: ${args.join(' ')}`);
  return run;
}

/** A UDP flow 10.0.1.x:port → 10.0.2.1:53, replied (confirmed), as one event of `type`. */
function udp(type: 1 | 2 | 3 | 4, i: number): CtEvent {
  const a = new Uint8Array([10, 0, 1, i & 0xff]);
  const b = new Uint8Array([10, 0, 2, 1]);
  const none = { icmpType: 0, icmpCode: 0, icmpId: 0 };
  const sport = 1000 + (i >> 8);
  return {
    type,
    family: 4,
    proto: 17,
    status: 0x2 | 0x8,
    id: 1 + i,
    time: NOW,
    timeKernel: false,
    orig: { src: a, dst: b, sport, dport: 53, ...none },
    reply: { src: b, dst: a, sport: 53, dport: sport, ...none },
  };
}

const flowsOf = (events: readonly CtEvent[]) => {
  const table = new FlowTable();
  table.addAll(events);
  return [...table.flows()].map((f) => `${f.src} ${f.dst} ${f.sport} ${f.dport} ${f.confirmed}`);
};

/**
 * A session over a fake capture with a 30 s --resync-interval, after its first loss has had its
 * dump (of an empty table): the next loss waits for the interval.
 */
async function waitingSession(extra: Partial<RecordOptions> = {}) {
  const io = fakeIo();
  const signals = new EventEmitter();
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`WARNING: ${m}`),
    error: (m) => lines.push(`ERROR: ${m}`),
  };
  const journal = join(dir, `stop-${n++}.mpk`);
  const done = runSession(settle(['-o', journal, '--no-snapshot', '--resync-interval', '30']), {
    log,
    signals,
    pid: 4242,
    start: (o) => startRecording({ ...o, ...extra }, io),
  });
  const capture = io.captures.at(-1);
  if (capture === undefined) throw new Error('no capture was started');
  await tick();
  capture.emit([udp(1, 0)], { drops: 3, enobufs: 1 });
  await tick();
  if (capture.dumps !== 1) throw new Error('the first loss did not dump at once');
  return { capture, signals, lines, journal, done };
}

t.test(
  'stop during the paced wait: the waiting dump runs before the capture stops, no flow of the table is missing',
  async (t) => {
    const { capture, signals, lines, journal, done } = await waitingSession();
    // The flood the overrun hid: 300 flows in the kernel's table, none of them in the journal
    // but flow 0, whose entry the journal already holds as it is.
    capture.table = Array.from({ length: 300 }, (_, i) => udp(2, i));
    capture.emit([], { drops: 299, enobufs: 1 });
    await tick();
    t.equal(capture.dumps, 1, 'the second loss waits for the 30 s interval');
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.equal(capture.dumps, 2, 'the stop made the waiting dump');
    const j = readWhole(journal);
    t.ok(j.complete, 'the journal has its trailer');
    t.same(
      j.gaps.map((g) => [g.lost, g.resync, g.skipped]),
      [
        [3, 0, 0],
        [299, 300, 1],
      ],
      'the waiting gap has its dump: 300 entries, 1 left out as held already',
    );
    t.same(flowsOf(j.events), flowsOf(capture.table), 'every flow of the table is in the journal');
    t.ok(
      lines.includes(
        'stopping: a table dump first, to resynchronise the 299 events lost since the last one (at most 10 s; signal again to stop without it)',
      ),
      `the stop says why it waits\n${lines.join('\n')}`,
    );
    t.ok(
      lines.includes(
        'WARNING: 299 events lost (the netlink receive buffer overran), recorded in the journal as a gap; a table dump resynchronised 300 flows (1 of them already in the journal, left out): raise --buffer-size or narrow what is recorded',
      ),
      'the gap line counts the entries left out',
    );
  },
);

t.test(
  'a second signal gives up the stop dump: the capture stops at once, the gap has resync -1',
  async (t) => {
    const { capture, signals, journal, done } = await waitingSession();
    capture.hangDumps = true;
    capture.emit([], { drops: 5, enobufs: 1 });
    signals.emit('SIGTERM');
    for (let i = 0; i < 5; i++) await tick();
    t.equal(capture.dumps, 2, 'the stop dump started');
    t.notOk(capture.stopped, 'the first signal waits for it');
    const at = Date.now();
    signals.emit('SIGINT');
    t.equal(await done, 0);
    t.ok(Date.now() - at < 5_000, 'ended well before the 10 s bound');
    t.ok(capture.stopped);
    const j = readWhole(journal);
    t.ok(j.complete);
    t.same(
      j.gaps.map((g) => [g.lost, g.resync, g.skipped]),
      [
        [3, 0, 0],
        [5, -1, undefined],
      ],
      'the cancelled dump: resync -1, no skipped count',
    );
  },
);

t.test('a stop dump that outlasts its bound is cancelled; the gap has resync -1', async (t) => {
  const { capture, signals, journal, done } = await waitingSession({ stopResyncMs: 50 });
  capture.hangDumps = true;
  capture.emit([], { drops: 5, enobufs: 1 });
  signals.emit('SIGTERM');
  t.equal(await done, 0, 'the recording ended without a second signal');
  t.equal(capture.dumps, 2);
  t.same(
    readWhole(journal).gaps.map((g) => g.resync),
    [0, -1],
  );
});

t.test('a stop with no loss waiting makes no dump and says nothing about one', async (t) => {
  const { capture, signals, lines, done } = await waitingSession();
  signals.emit('SIGTERM');
  t.equal(await done, 0);
  t.equal(capture.dumps, 1, 'only the dump of the first loss');
  t.notOk(
    lines.some((l) => l.startsWith('stopping:')),
    'no stop-dump line',
  );
});
