// What ct-record tells its user: the lines at start, on a rotation or a gap, and the summary at the end.
import { type JournalGap, splitOutput } from '../journal/format.js';
import type { Logger } from './log.js';
import type { ClosedJournal, RecordSummary } from './recording.js';
import { trackingTable } from './tracking.js';

/** `fw1-*.mpk` for `-o fw1.mpk`: what verifies or analyzes a whole --rotate run. */
export function runGlob(output: string): string {
  const { stem, ext } = splitOutput(output);
  return `${stem}-*${ext}`;
}

/** One line per rotation, while the run goes on. */
export function rotationLine(c: ClosedJournal, next: string): string {
  return `journal ${c.path} complete: ${c.events} events, ${c.bytes} bytes, sha256 ${c.sha256}; now writing ${next}`;
}

/** One warning per gap, once it is in the journal. */
export function gapLine(g: JournalGap): string {
  const cause =
    g.cause === 'ENOBUFS' ? 'the netlink receive buffer overran' : "the recorder's queue was full";
  const held =
    g.skipped === undefined || g.skipped === 0
      ? ''
      : ` (${g.skipped} of them already in the journal, left out)`;
  const resync =
    g.resync >= 0
      ? `a table dump resynchronised ${g.resync} flows${held}`
      : 'no table dump resynchronised it';
  return `${g.lostKnown ? '' : 'at least '}${g.lost} events lost (${cause}), recorded in the journal as a gap; ${resync}: raise --buffer-size or narrow what is recorded`;
}

/** Why a stop does not end at once: the resync dump that losses waited for runs first. */
export function stopResyncLine(lost: number, limitMs: number): string {
  const what = lost > 0 ? `the ${lost} events lost since the last one` : 'the losses';
  return `stopping: a table dump first, to resynchronise ${what} (at most ${limitMs / 1000} s; signal again to stop without it)`;
}

/** What the start-up lines say: the recording as it started and the options that shape it. */
export interface StartFacts {
  /** -o as given. */
  output: string;
  /** The journal written first (with --rotate: the first numbered one). */
  current: string;
  rotate: boolean;
  /** The privilege line of startRecording. */
  privileges: string;
  /** --netns as given, and the namespace it is (`net:[inode]`). */
  netns?: { spec: string; id: string };
  enableTracking: boolean;
  /** What the kernel granted. */
  bufferSize: number;
  reliable: boolean;
  pidfile?: string;
  pid: number;
}

export function logStart(log: Logger, f: StartFacts): void {
  log.info('Starting to capture conntrack events');
  log.info(f.privileges);
  if (f.netns !== undefined)
    log.info(`recording network namespace ${f.netns.spec} (${f.netns.id})`);
  if (f.enableTracking) {
    log.info(
      `--enable-tracking: table inet ${trackingTable(f.pid)} makes conntrack track this namespace; the kernel removes it when ct-record ends`,
    );
  }
  log.info(
    `netlink receive buffer: ${f.bufferSize} bytes${f.reliable ? ', reliable delivery' : ''}`,
  );
  const into = f.rotate ? `${f.current}, then the next of ${runGlob(f.output)}` : f.output;
  log.info(`capturing conntrack events into ${into} (Ctrl-C or SIGTERM to stop)`);
  if (f.pidfile !== undefined) log.info(`pid ${f.pid} in ${f.pidfile}`);
}

/** The start-up table dump's outcome, when it settles. */
export function logSnapshot(log: Logger, snapshot: Promise<number>, asked: boolean): void {
  snapshot.then(
    (n) => asked && log.info(`table dump: ${n} existing flows recorded as snapshot entries`),
    (err: Error) =>
      log.warn(
        `the table dump failed (${err.message}): flows older than the recording may be missing`,
      ),
  );
}

/**
 * The end of a run: what was written, its digest and the command that checks it, then what was
 * lost, left out or skipped. `output` is -o as given.
 */
export function logSummary(
  log: Logger,
  s: RecordSummary,
  o: { output: string; rotate: boolean; table?: string },
): void {
  if (o.table !== undefined) log.info(`Dumping the flow table into: ${o.table}`);
  log.info('Finished capturing conntrack events');
  const t = s.byType;
  log.info(
    `stopped: ${s.events} events (new ${t.new}, update ${t.update}, destroy ${t.destroy}, ` +
      `snapshot ${t.snapshot})${s.flows === undefined ? '' : `, ${s.flows} flows`}, ` +
      `${s.bytes} bytes written to ${o.rotate ? `${s.journals} journals, the last ` : ''}${s.output}`,
  );
  log.info(
    o.rotate
      ? `journal sha256 ${s.sha256} of ${s.output} (check the run with: ct-analyze verify ${runGlob(o.output)})`
      : `journal sha256 ${s.sha256} (check it with: ct-analyze verify ${s.output})`,
  );
  if (s.lost > 0) {
    log.warn(
      `${s.lost} events were lost in ${s.gaps} gaps (recorded in the journal; ` +
        'resynchronised by table dumps, at most one per --resync-interval): raise --buffer-size or narrow what is recorded with -e, -p, --mark',
    );
  }
  if ((s.resyncs ?? 0) > 0 || (s.resyncSkipped ?? 0) > 0) {
    log.info(
      `${s.resyncs ?? 0} resync table dumps; ${s.resyncSkipped ?? 0} dump entries the journal already held were left out`,
    );
  }
  if (s.filtered > 0) {
    log.info(`${s.filtered} events left out by --proto, --mark, --no-loopback, --src or --dst`);
  }
  if ((s.dietLeftOut ?? 0) > 0) {
    log.info(`${s.dietLeftOut} UPDATE events left out by --events minimal (they changed no flow)`);
  }
  if (s.malformed > 0) log.warn(`${s.malformed} malformed netlink messages were skipped`);
}
