// A whole ct-record session over a fake capture: signals, drain, trailer, the table file and every line said.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FlowTable } from '../../analyzer/core/flows.js';
import { textChunks } from '../../analyzer/report/text.js';
import { CtError } from '../../common/errors.js';
import type { CtEvent } from '../../journal/event.js';
import { openJournal } from '../../journal/reader.js';
import type { Logger } from '../../recorder/log.js';
import { type RecordRun, recorderProgram, settleOptions } from '../../recorder/options.js';
import { startRecording } from '../../recorder/recording.js';
import { runSession } from '../../recorder/session.js';
import { type FakeCapture, fakeIo } from '../helpers/fake-capture.js';
import { readWhole, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'session');
let n = 0;

/** ct-record's options as the command line gives them, settled. */
function settle(args: readonly string[]): RecordRun {
  const program = recorderProgram();
  program.parse(args, { from: 'user' });
  const run = settleOptions(program, () => {});
  if (run.kind !== 'record') throw new Error(`not a recording: ${args.join(' ')}`);
  return run;
}

/** A logger that keeps each line, prefixed by its severity as stderr shows it. */
function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`WARNING: ${m}`),
    error: (m) => lines.push(`ERROR: ${m}`),
  };
}

const NOW = Date.now() * 1000;

/** A TCP flow 10.0.0.1:port → 10.0.0.2:dport (its reply seen: confirmed), as one event. */
function tcp(type: 1 | 2 | 3, port: number, dport = 443, time = NOW): CtEvent {
  const a = new Uint8Array([10, 0, 0, 1]);
  const b = new Uint8Array([10, 0, 0, 2]);
  const none = { icmpType: 0, icmpCode: 0, icmpId: 0 };
  return {
    type,
    family: 4,
    proto: 6,
    status: 0x2 | 0x4 | 0x8,
    id: port,
    time,
    timeKernel: false,
    orig: { src: a, dst: b, sport: port, dport, ...none },
    reply: { src: b, dst: a, sport: dport, dport: port, ...none },
  };
}

/** Starts a session over a fake capture; resolves with it once the capture is subscribed. */
async function session(args: readonly string[], prepare: (c: FakeCapture) => void = () => {}) {
  const io = fakeIo();
  const signals = new EventEmitter();
  const log = memoryLog();
  const run = settle(args);
  const done = runSession(run, {
    log,
    signals,
    pid: 4242,
    start: (o) => {
      const rec = startRecording(o, io);
      const c = io.captures.at(-1);
      if (c !== undefined) prepare(c);
      return rec;
    },
  });
  const capture = io.captures.at(-1);
  if (capture === undefined) throw new Error('no capture was started');
  await new Promise((r) => setImmediate(r)); // the start-up dump settles
  return { capture, signals, log, done, run };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

t.test(
  'session: SIGTERM drains the reader, ends the journal with its trailer, then says the summary',
  async (t) => {
    const journal = join(dir, `term-${n++}.mpk`);
    const table = join(dir, `term-${n++}.txt`);
    const { capture, signals, log, done } = await session(
      ['-o', journal, '--table', table],
      (c) => {
        c.table = [tcp(1, 40000, 22)];
        // Still in the socket when SIGTERM arrives: stop() must hand it over first.
        c.pending.push([tcp(3, 50001)]);
      },
    );
    capture.emit([tcp(1, 50001)]);
    t.notOk(capture.stopped, 'the recording runs until a signal');
    signals.emit('SIGTERM');
    t.equal(await done, 0, 'exit 0');
    t.ok(capture.stopped, 'the capture was stopped');

    const whole = readWhole(journal);
    t.ok(whole.complete, 'the journal ends with its trailer');
    t.strictSame(
      whole.events.map((e) => [e.type, e.orig.sport]),
      [
        [4, 40000],
        [1, 50001],
        [3, 50001],
      ],
      'the snapshot, the event, and the event drained at stop, in order',
    );
    const live = new FlowTable();
    for (const e of whole.events) live.add(e);
    t.equal(readFileSync(table, 'utf8'), [...textChunks(live.flows())].join(''), 'table at exit');
    const bytes = statSync(journal).size;
    t.strictSame(log.lines, [
      'Starting to capture conntrack events',
      'unit test: no privileges to drop',
      `netlink receive buffer: ${2 * 8 * 1024 * 1024} bytes`,
      `capturing conntrack events into ${journal} (Ctrl-C or SIGTERM to stop)`,
      'table dump: 1 existing flows recorded as snapshot entries',
      `Dumping the flow table into: ${table}`,
      'Finished capturing conntrack events',
      `stopped: 3 events (new 1, update 0, destroy 1, snapshot 1), 2 flows, ${bytes} bytes written to ${journal}`,
      `journal sha256 ${sha256(journal)} (check it with: ct-analyze verify ${journal})`,
    ]);
    t.equal(signals.listenerCount('SIGTERM'), 0, 'the signals are unwired once it ended');
  },
);

t.test('session: SIGINT stops like SIGTERM', async (t) => {
  const journal = join(dir, `int-${n++}.mpk`);
  const { signals, done } = await session(['-o', journal, '--no-snapshot']);
  signals.emit('SIGINT');
  t.equal(await done, 0);
  t.ok(readWhole(journal).complete, 'a complete journal');
});

t.test(
  'session: SIGUSR1 rewrites the --table file with the flows so far, and goes on',
  async (t) => {
    const journal = join(dir, `usr1-${n++}.mpk`);
    const table = join(dir, `usr1-${n++}.txt`);
    const { capture, signals, log, done } = await session([
      '-o',
      journal,
      '--table',
      table,
      '--no-snapshot',
    ]);
    capture.emit([tcp(1, 50002, 80)]);
    signals.emit('SIGUSR1');
    const first = readFileSync(table, 'utf8');
    t.match(first, /10\.0\.0\.1.*10\.0\.0\.2.*\b80\b/, 'the flow so far is in the table');
    t.equal(first.trimEnd().split('\n').length, 1, 'one flow line');
    t.ok(log.lines.includes(`flow table written to ${table}`), 'SIGUSR1 is acknowledged');
    t.notOk(capture.stopped, 'SIGUSR1 does not stop the recording');
    capture.emit([tcp(1, 50003, 8080)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.equal(readFileSync(table, 'utf8').trimEnd().split('\n').length, 2, 'rewritten at exit');
  },
);

t.test(
  'session: SIGUSR1 without --table and SIGHUP without --rotate are ignored, said so',
  async (t) => {
    const journal = join(dir, `ign-${n++}.mpk`);
    const { capture, signals, log, done } = await session(['-o', journal, '--no-snapshot']);
    signals.emit('SIGUSR1');
    signals.emit('SIGHUP');
    t.notOk(capture.stopped, 'neither signal ends the recording');
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.ok(log.lines.includes('SIGUSR1 ignored: no --table file given'));
    t.ok(
      log.lines.includes(
        `SIGHUP ignored: without --rotate the recording is one journal (${journal}); record with --rotate to end a journal on SIGHUP`,
      ),
    );
    t.equal(readWhole(journal).events.length, 0, 'one journal, empty');
  },
);

t.test(
  'session: --format-version 1 writes format 1 in every journal of a rotated run; the default is 2',
  async (t) => {
    const out = join(dir, `fv-${n++}.mpk`);
    const { capture, signals, done } = await session([
      '-o',
      out,
      '--rotate',
      '--duration',
      '3600',
      '--no-snapshot',
      '--format-version',
      '1',
    ]);
    capture.emit([tcp(1, 50010)]);
    signals.emit('SIGHUP');
    capture.emit([tcp(3, 50010)]);
    signals.emit('SIGHUP');
    capture.emit([tcp(1, 50011)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    const journals = [1, 2, 3].map((i) => readWhole(out.replace(/\.mpk$/, `-00000${i}.mpk`)));
    t.strictSame(
      journals.map((j) => [j.header.format, j.events.length, j.complete]),
      [
        [1, 1, true],
        [1, 1, true],
        [1, 1, true],
      ],
      'three complete format 1 journals, one event each',
    );
    const plain = join(dir, `fv-${n++}.mpk`);
    const second = await session(['-o', plain, '--no-snapshot']);
    second.capture.emit([tcp(1, 50012)]);
    second.signals.emit('SIGTERM');
    t.equal(await second.done, 0);
    t.equal(readWhole(plain).header.format, 2, 'without the option: format 2');
  },
);

t.test('session: SIGHUP with --rotate ends the journal and goes on in the next one', async (t) => {
  const out = join(dir, `rot-${n++}.mpk`);
  const first = out.replace(/\.mpk$/, '-000001.mpk');
  const second = out.replace(/\.mpk$/, '-000002.mpk');
  const { capture, signals, log, done } = await session([
    '-o',
    out,
    '--rotate',
    '--duration',
    '3600',
    '--no-snapshot',
  ]);
  capture.emit([tcp(1, 50004)]);
  signals.emit('SIGHUP');
  capture.emit([tcp(3, 50004)]);
  signals.emit('SIGTERM');
  t.equal(await done, 0);
  const a = readWhole(first);
  const b = readWhole(second);
  t.ok(a.complete && b.complete, 'both journals are complete');
  t.strictSame(
    [a.events.map((e) => e.type), b.events.map((e) => e.type)],
    [[1], [3]],
    'no event lost or doubled across the rotation',
  );
  t.ok(log.lines.includes(`SIGHUP: ending ${first}, going on in the next journal`));
  t.ok(
    log.lines.some((l) =>
      l.startsWith(`journal ${first} complete: 1 events, ${statSync(first).size} bytes, sha256 `),
    ),
    'the rotation is said with the closed journal',
  );
  const glob = out.replace(/\.mpk$/, '-*.mpk');
  t.ok(
    log.lines.includes(
      `capturing conntrack events into ${first}, then the next of ${glob} (Ctrl-C or SIGTERM to stop)`,
    ),
  );
  t.match(log.lines.join('\n'), `bytes written to 2 journals, the last ${second}`);
  t.ok(
    log.lines.includes(
      `journal sha256 ${sha256(second)} of ${second} (check the run with: ct-analyze verify ${glob})`,
    ),
  );
});

t.test(
  'session: a loss is a gap in the journal, a warning now, and a line in the summary',
  async (t) => {
    const journal = join(dir, `gap-${n++}.mpk`);
    const { capture, signals, log, done } = await session(['-o', journal, '--no-snapshot']);
    capture.emit([tcp(1, 50005)], { drops: 7, enobufs: 1 });
    await new Promise((r) => setImmediate(r)); // the resync dump settles, the gap is written
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.equal(capture.dumps, 1, 'the loss started one resync dump');
    t.match(readWhole(journal).gaps, [{ lost: 7, cause: 'ENOBUFS', resync: 0 }]);
    t.ok(
      log.lines.includes(
        'WARNING: 7 events lost (the netlink receive buffer overran), recorded in the journal as a gap; a table dump resynchronised 0 flows: raise --buffer-size or narrow what is recorded',
      ),
    );
    t.ok(
      log.lines.includes(
        'WARNING: 7 events were lost in 1 gaps (recorded in the journal; resynchronised by table dumps, at most one per --resync-interval): raise --buffer-size or narrow what is recorded with -e, -p, --mark',
      ),
    );
    t.ok(
      log.lines.includes(
        '1 resync table dumps; 0 dump entries the journal already held were left out',
      ),
      'the summary counts the resync dumps and the entries they left out',
    );
  },
);

t.test('session: --duration ends the recording by itself', async (t) => {
  const journal = join(dir, `dur-${n++}.mpk`);
  const { done, log } = await session(['-o', journal, '--duration', '0.05', '--no-snapshot']);
  t.equal(await done, 0);
  t.ok(readWhole(journal).complete);
  t.ok(log.lines.includes('Finished capturing conntrack events'));
});

t.test(
  'session: a reader failure ends the run with ECAPTURE, no trailer, no summary',
  async (t) => {
    const journal = join(dir, `fail-${n++}.mpk`);
    const { capture, log, done } = await session(['-o', journal, '--no-snapshot']);
    capture.emit([tcp(1, 50006)]);
    capture.onError(new CtError('ENOBUFS', 'recv: ENOBUFS'));
    await t.rejects(done, { code: 'ECAPTURE' });
    t.ok(existsSync(journal), 'the journal stays');
    t.notOk(readWhole(journal).complete, 'without a trailer: it did not end cleanly');
    t.notOk(log.lines.includes('Finished capturing conntrack events'), 'no summary claims success');
  },
);

t.test(
  'session: a quiet host writes its batches as one frame at the flush interval or on SIGUSR1',
  async (t) => {
    const journal = join(dir, `hold-${n++}.mpk`);
    const table = join(dir, `hold-${n++}.txt`);
    const { capture, signals, done } = await session([
      '-o',
      journal,
      '--table',
      table,
      '--no-snapshot',
      '--flush-interval',
      '0.2',
    ]);
    capture.emit([tcp(1, 50020, 80)]);
    capture.emit([tcp(1, 50021, 81)]);
    capture.emit([tcp(1, 50022, 82)]);
    t.equal(readWhole(journal).events.length, 0, 'held: not yet in the journal');
    // Two flush intervals: a loaded machine may run the timer late, never early.
    await new Promise((r) => setTimeout(r, 400));
    t.equal(readWhole(journal).events.length, 3, 'the flush wrote them');
    capture.emit([tcp(1, 50023, 83)]);
    signals.emit('SIGUSR1');
    t.equal(readWhole(journal).events.length, 4, 'SIGUSR1 writes what is held first');
    t.equal(readFileSync(table, 'utf8').trimEnd().split('\n').length, 4, 'then the table of it');
    capture.emit([tcp(3, 50020, 80)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    const reader = openJournal(journal);
    t.same(
      [...reader.batches()].map((b) => b.length),
      [3, 1, 1],
      'three batches in one frame, then one each: SIGUSR1 and the trailer',
    );
    reader.close();
  },
);

t.test(
  'session: -e minimal writes NEW and DESTROY but not the UPDATEs that change no flow, counts them, and the header says minimal',
  async (t) => {
    const journal = join(dir, `diet-${n++}.mpk`);
    const { capture, signals, log, done } = await session([
      '-o',
      journal,
      '--no-snapshot',
      '-e',
      'minimal',
    ]);
    capture.emit([tcp(1, 50001), tcp(2, 50001), tcp(2, 50001)]);
    capture.emit([tcp(2, 50001), tcp(3, 50001)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    const whole = readWhole(journal);
    t.strictSame(
      whole.events.map((e) => e.type),
      [1, 3],
      'the UPDATEs repeat what NEW held: left out',
    );
    t.equal(whole.header.options.eventsMode, 'minimal');
    t.ok(
      log.lines.includes('3 UPDATE events left out by --events minimal (they changed no flow)'),
      'the summary counts them',
    );
  },
);

t.test(
  'session: -e minimal with --rotate writes an entry once again in the next journal, so each journal read alone has its flows',
  async (t) => {
    const out = join(dir, `diet-rot-${n++}.mpk`);
    const first = out.replace(/\.mpk$/, '-000001.mpk');
    const second = out.replace(/\.mpk$/, '-000002.mpk');
    const { capture, signals, done } = await session([
      ...['-o', out, '--rotate', '--duration', '3600', '--no-snapshot', '-e', 'minimal'],
    ]);
    capture.emit([tcp(1, 50005), tcp(2, 50005), tcp(2, 50005)]);
    signals.emit('SIGHUP');
    capture.emit([tcp(2, 50005), tcp(2, 50005)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.strictSame(
      [readWhole(first).events.map((e) => e.type), readWhole(second).events.map((e) => e.type)],
      [[1], [2]],
      'the first UPDATE after the rotation is kept, the repeats are not',
    );
  },
);
