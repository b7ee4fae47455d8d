// ct-record hands its filter to the kernel as BPF, says where it runs, falls back to user space
// with one warning when the kernel refuses it, and records --src/--dst in the header.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import t from 'tap';
import { filtersOf } from '../../analyzer/core/coverage.js';
import type { CtEvent } from '../../journal/event.js';
import { kernelFilterLine, planKernelFilter } from '../../recorder/bpf.js';
import type { Logger } from '../../recorder/log.js';
import { recorderProgram, settleOptions } from '../../recorder/options.js';
import { startRecording } from '../../recorder/recording.js';
import { runSession } from '../../recorder/session.js';
import { fakeIo } from '../helpers/fake-capture.js';
import { readWhole, tempDir } from '../helpers/journals.js';

const dir = tempDir(t, 'kernel-filter');
let n = 0;

function settle(args: readonly string[]) {
  const program = recorderProgram();
  program.parse(args, { from: 'user' });
  const run = settleOptions(program, () => {});
  if (run.kind !== 'record') throw new Error('not a recording');
  return run;
}

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`WARNING: ${m}`),
    error: (m) => lines.push(`ERROR: ${m}`),
  };
}

const none = { icmpType: 0, icmpCode: 0, icmpId: 0 };
/** A UDP event src → dst:53 (IPv4). */
function udp(type: 1 | 3, src: number[], dst: number[], sport: number): CtEvent {
  const a = Uint8Array.from(src);
  const b = Uint8Array.from(dst);
  return {
    type,
    family: 4,
    proto: 17,
    status: 0x8,
    id: sport,
    time: Date.now() * 1000,
    timeKernel: false,
    orig: { src: a, dst: b, sport, dport: 53, ...none },
    reply: { src: b, dst: a, sport: 53, dport: sport, ...none },
  };
}

/** A session over a fake capture; `refuseFilter`: the kernel refuses the socket filter. */
async function session(args: readonly string[], refuseFilter?: string) {
  const io = fakeIo({ refuseFilter });
  const signals = new EventEmitter();
  const log = memoryLog();
  const done = runSession(settle(args), {
    log,
    signals,
    pid: 4343,
    start: (o) => startRecording(o, io),
  });
  const capture = io.captures.at(-1);
  if (capture === undefined) throw new Error('no capture');
  await new Promise((r) => setImmediate(r));
  return { capture, signals, log, done };
}

t.test('--src and --dst reach the filter and the header, which ct-analyze shows', (t) => {
  const run = settle([
    '-o',
    'x.mpk',
    '--src',
    '10.0.0.0/8,fd00::/8',
    '--src',
    '192.0.2.7',
    '--dst',
    '2001:db8::1/32',
  ]);
  t.same(
    run.record.filter.src?.map((c) => [c.family, c.prefix]),
    [
      [4, 8],
      [6, 8],
      [4, 32],
    ],
  );
  const filter = (run.record.given as { filter: Record<string, unknown> }).filter;
  t.same(filter.src, ['10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
  t.same(filter.dst, ['2001:db8::/32'], 'host bits cleared, as the filter applies it');
  t.same(filtersOf({ filter }), [
    '--src 10.0.0.0/8',
    '--src fd00::/8',
    '--src 192.0.2.7',
    '--dst 2001:db8::/32',
  ]);
  t.equal(run.record.kernelFilter, true, 'the kernel filter is the default');
  t.equal(settle(['-o', 'x.mpk', '--no-kernel-filter']).record.kernelFilter, false);
  const plain = (settle(['-o', 'x.mpk']).record.given as { filter: Record<string, unknown> })
    .filter;
  t.same(
    plain,
    { protos: null, mark: null, noLoopback: false },
    'without them the header is as before',
  );
  t.end();
});

t.test('a bad --src is a usage error naming the form', (t) => {
  const program = recorderProgram();
  program.configureOutput({ writeErr: () => {}, outputError: () => {} });
  t.throws(
    () => program.parse(['-o', 'x.mpk', '--src', '10.0.0.300/8'], { from: 'user' }),
    /not an address prefix/,
  );
  t.end();
});

t.test('planKernelFilter: no filter, --no-kernel-filter, and a program to attach', (t) => {
  t.same(planKernelFilter({}, true), { where: 'none' });
  t.same(planKernelFilter({ protos: [6] }, false), { where: 'user' });
  const p = planKernelFilter({ protos: [6] }, true);
  t.ok('program' in p && p.program.length === p.instructions * 8, 'packed sock_filter array');
  t.equal(kernelFilterLine({ where: 'none' }), undefined, 'nothing to say without a filter');
  t.end();
});

t.test(
  'the filter goes to the kernel: the capture gets the program, the log says so',
  async (t) => {
    const journal = join(dir, `kernel-${n++}.mpk`);
    const { capture, signals, log, done } = await session(['-o', journal, '--src', '10.0.0.0/8']);
    t.ok(capture.options.filter instanceof Uint8Array, 'the capture was given a program');
    t.match(log.lines.join('\n'), /filter: in the kernel \(a \d+-instruction socket filter\)/);
    t.notMatch(log.lines.join('\n'), /WARNING/);
    // A fake capture filters nothing: the user-space filter still keeps only 10/8.
    capture.emit([udp(1, [10, 1, 1, 1], [192, 0, 2, 1], 40001)]);
    capture.emit([udp(1, [172, 16, 0, 1], [192, 0, 2, 1], 40002)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0);
    t.same(
      readWhole(journal).events.map((e) => e.orig.sport),
      [40001],
    );
    t.match(log.lines.join('\n'), /filter: 2 event messages read from the kernel/);
  },
);

t.test(
  'the kernel refuses the filter: one warning (what failed, user space, the cost), and the same journal',
  async (t) => {
    const journal = join(dir, `fallback-${n++}.mpk`);
    const refused = 'setsockopt(SO_ATTACH_FILTER): EINVAL (Invalid argument)';
    const { capture, signals, log, done } = await session(
      ['-o', journal, '--src', '10.0.0.0/8', '-p', 'udp'],
      refused,
    );
    capture.emit([udp(1, [10, 1, 1, 1], [192, 0, 2, 1], 40001)]);
    capture.emit([udp(1, [172, 16, 0, 1], [192, 0, 2, 1], 40002)]);
    capture.emit([udp(3, [10, 1, 1, 1], [192, 0, 2, 1], 40001)]);
    signals.emit('SIGTERM');
    t.equal(await done, 0, 'the recording goes on and ends normally');
    const warnings = log.lines.filter((l) => l.startsWith('WARNING'));
    t.equal(warnings.length, 1, 'warned once');
    t.match(warnings[0], /cannot filter in the kernel \(setsockopt\(SO_ATTACH_FILTER\): EINVAL/);
    t.match(warnings[0], /filtering in user space instead/);
    t.match(warnings[0], /CPU/);
    t.same(
      readWhole(journal).events.map((e) => [e.type, e.orig.sport]),
      [
        [1, 40001],
        [3, 40001],
      ],
      'user space keeps exactly what the filter says',
    );
  },
);

t.test('--no-kernel-filter: no program for the capture, the log says user space', async (t) => {
  const journal = join(dir, `user-${n++}.mpk`);
  const { capture, signals, log, done } = await session([
    '-o',
    journal,
    '-p',
    'tcp',
    '--no-kernel-filter',
  ]);
  t.equal(capture.options.filter, undefined);
  t.match(log.lines.join('\n'), /filter: in user space \(--no-kernel-filter\)/);
  signals.emit('SIGTERM');
  t.equal(await done, 0);
});

t.test(
  '-e minimal alone gives the capture a program; refused, one warning and the diet still runs in user space',
  async (t) => {
    const none = { icmpType: 0, icmpCode: 0, icmpId: 0 };
    const a = Uint8Array.of(10, 0, 0, 1);
    const b = Uint8Array.of(10, 0, 0, 2);
    /** One TCP entry's event in `state` with `status`. */
    const tcp = (type: 1 | 2 | 3, status: number, tcpState: number): CtEvent => ({
      type,
      family: 4,
      proto: 6,
      status,
      id: 9,
      time: Date.now() * 1000,
      timeKernel: false,
      orig: { src: a, dst: b, sport: 40000, dport: 80, ...none },
      reply: { src: b, dst: a, sport: 80, dport: 40000, ...none },
      tcpState,
    });
    const assured = 0x2 | 0x4 | 0x8;
    for (const refused of [undefined, 'setsockopt(SO_ATTACH_FILTER): EINVAL (Invalid argument)']) {
      const journal = join(dir, `diet-${n++}.mpk`);
      const { capture, signals, log, done } = await session(
        ['-o', journal, '-e', 'minimal'],
        refused,
      );
      t.ok(capture.options.filter instanceof Uint8Array, 'the capture was given a program');
      // A fake capture filters nothing: what reaches user space is what a refused program lets by.
      capture.emit([tcp(1, 0x8, 1), tcp(2, assured, 3), tcp(2, assured, 4), tcp(3, assured, 7)]);
      signals.emit('SIGTERM');
      t.equal(await done, 0);
      const text = log.lines.join('\n');
      if (refused === undefined) {
        t.match(text, /filter: in the kernel \(a \d+-instruction socket filter\)/);
        t.notMatch(text, /WARNING/);
      } else {
        t.equal(log.lines.filter((l) => l.startsWith('WARNING')).length, 1, 'warned once');
        t.match(text, /cannot filter in the kernel \(setsockopt/);
      }
      t.same(
        readWhole(journal).events.map((e) => [e.type, e.tcpState]),
        [
          [1, 1],
          [2, 3],
          [3, 7],
        ],
        'the user-space diet leaves out the FIN_WAIT UPDATE',
      );
    }
  },
);
