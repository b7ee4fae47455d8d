// One recording: native batches → decoded events → journal frames and the live flow table.

import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { Collapse } from '../analyzer/core/flows.js';
import { textChunks } from '../analyzer/report/text.js';
import { CtError } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import type { CtEvent } from '../journal/event.js';
import {
  type EventCounts,
  type FormatVersion,
  type HostAddress,
  type HostRoute,
  type JournalGap,
  type JournalHeaderInput,
  RUN_ID_SIZE,
  sequencePath,
} from '../journal/format.js';
import type { JournalWriter } from '../journal/writer.js';
import {
  type BatchInfo,
  type Capture,
  type CaptureOptions,
  joinNetns,
  startCapture,
} from '../native/index.js';
import { type KernelFilterState, planKernelFilter } from './bpf.js';
import { enableConntrackEvents } from './conntrack-events.js';
import { EventDiet, type EventsMode } from './diet.js';
import { compileFilter, type EventFilter, filterInPlace } from './filter.js';
import { GapTracker } from './gaps.js';
import {
  readHostAddresses,
  readHostFacts,
  readHostRoutes,
  sameAddresses,
  sameRoutes,
} from './host.js';
import { conntrackMax, KnownEntries } from './known-entries.js';
import {
  applyPrivileges,
  type PrivilegePlan,
  type Privileges,
  planPrivileges,
  setConntrackEvents,
} from './privileges.js';
import { decodeRecords } from './records.js';
import { exists, refuseEarlierRun, refuseUnwritable } from './rotation-files.js';
import { liveTable, RecordingSink } from './sink.js';
import { TableFile } from './table-file.js';
import { enableTracking } from './tracking.js';

export interface RecordOptions {
  output: string;
  force: boolean;
  /** The journal format of every journal of the run (JournalWriter's default when undefined). */
  formatVersion?: FormatVersion;
  /** Stop by itself after this many milliseconds (with rotate: end each journal after it). */
  durationMs?: number;
  /**
   * Stop once the journal holds this many bytes (with rotate: go on in the next one). Checked
   * after each write: a rotated journal ends at most one frame (and its trailer) past it; a
   * stopping one also takes what the reader drains (the events the kernel already sent).
   */
  maxSize?: number;
  /**
   * Write the run as numbered journals chained by digest (sequencePath of output), starting the
   * next one when durationMs or maxSize is reached, or on rotate(), instead of stopping.
   */
  rotate?: boolean;
  /** Told each time a rotation closed a journal and opened `next` (ct-record logs both). */
  onRotate?: (closed: ClosedJournal, next: string) => void;
  /** Told of each gap once it is in the journal (ct-record logs it while the run goes on). */
  onGap?: (gap: JournalGap) => void;
  /**
   * Told when the stop waits for a resync dump (lost: the events waiting for it; limitMs: how
   * long it may take before it is cancelled), so ct-record can say why it does not end at once.
   */
  onStopResync?: (lost: number, limitMs: number) => void;
  /** How long the stop waits for that dump (default STOP_RESYNC_MS; tests shorten it). */
  stopResyncMs?: number;
  /** Checkpoint and fsync the journal this often (ms): what a crash or power loss can cost. */
  flushMs: number;
  /** Live mode: keep the flow table and write it here at exit and on request (SIGUSR1). */
  table?: string;
  collapse: Collapse;
  capture: Required<Omit<CaptureOptions, 'filter'>>;
  /** Dump the conntrack table after subscribing, so flows older than the recording are seen. */
  snapshot: boolean;
  /**
   * After a loss, at least this long (ms) from the end of one resync dump to the next: losses
   * meanwhile wait for it, coalesced (default DEFAULT_RESYNC_INTERVAL_MS).
   */
  resyncIntervalMs?: number;
  /**
   * A resync dump leaves out entries whose id and state the journal already holds (default
   * true); false writes every entry, as before (tests compare the two).
   */
  resyncSkipKnown?: boolean;
  /** minimal: leave out the UPDATEs that change no flow (recorder/diet.ts); default all. */
  eventsMode?: EventsMode;
  /** Set nf_conntrack_events=1 for the run (restored at the end). */
  enableEvents: boolean;
  /** Add an nft table whose rule needs conntrack for the run (recorder/tracking.ts). */
  enableTracking?: boolean;
  filter: EventFilter;
  /** Attach the filter to the event socket as BPF (default true; --no-kernel-filter: false). */
  kernelFilter?: boolean;
  /** The options as the user gave them, recorded in the journal header. */
  given: Record<string, unknown>;
  /** --user: who to run as once the sockets and the journal are open; undefined: DEFAULT_USER. */
  user?: string;
  /** --netns: record this network namespace (an `ip netns` name or a path) instead of ours. */
  netns?: string;
}

/** A journal of a rotated run, closed with its trailer: what the next one's header chains to. */
export interface ClosedJournal {
  path: string;
  sequence: number;
  bytes: number;
  events: number;
  /** SHA-256 of the whole file, trailer included (what `ct-analyze verify` prints). */
  sha256: string;
}

/** What a run wrote; with rotate, counts are summed over its journals. */
export interface RecordSummary {
  /** The journal written last (with rotate: the run's last numbered journal). */
  output: string;
  /** Journals written: 1 without rotate. */
  journals: number;
  bytes: number;
  events: number;
  byType: EventCounts;
  /** Events the kernel or the reader's queue lost, in `gaps` gap records. */
  lost: number;
  gaps: number;
  /**
   * Events left out in user space by --proto, --mark, --no-loopback, --src or --dst (dump
   * entries, or every event without the kernel filter); those the kernel filter left out are
   * never read, so not counted.
   */
  filtered: number;
  malformed: number;
  /** Table dumps made after losses (the start-up dump not included). */
  resyncs?: number;
  /** Dump entries left out because the journal already held their id and state. */
  resyncSkipped?: number;
  /** UPDATEs left out by --events minimal because they changed no flow. */
  dietLeftOut?: number;
  /** Flows in the live table; undefined without --table. */
  flows?: number;
  /** SHA-256 of the whole (last) journal file, for the change ticket (what `ct-analyze verify` prints). */
  sha256: string;
}

export interface Recording {
  /** Resolves when the recording has ended and the journal is closed. */
  readonly done: Promise<RecordSummary>;
  readonly bufferSize: number;
  /** Resolves with the number of entries of the start-up table dump (0 without one). */
  readonly snapshot: Promise<number>;
  /**
   * Ends the recording: the resync dump losses wait for (bounded, STOP_RESYNC_MS), then drain the
   * reader, write the trailer, close. Called again while stopping: gives that dump up at once.
   */
  stop(): void;
  /**
   * With rotate: closes the journal now (trailer naming the next) and goes on in the next one,
   * with no event lost between them. Safe at any time: it does nothing without rotate, once
   * stop() was called, or after a failure (which then ends the recording, as a write error does).
   */
  rotate(): void;
  /** The journal being written now (with rotate: the current numbered one). */
  readonly output: string;
  /**
   * Writes the live table now (the SIGUSR1 action), after writing the events held for the
   * journal (the table holds only what reached it); returns the path, or undefined without --table.
   */
  writeTable(): string | undefined;
  /** What the process runs as since start (privilege drop), as one line for stderr. */
  readonly privileges: string;
  /** The network namespace recorded, as the header names it: `net:[inode]`. */
  readonly netns: string;
  /** Where the event filter runs: in the kernel, or (refused, --no-kernel-filter) in user space. */
  readonly kernelFilter: KernelFilterState;
  /** Event messages the reader has read from the kernel (a kernel filter's rejects are not). */
  received(): number;
}

/**
 * What a recording asks of the system beyond files: the capture and the privilege drop. Unit
 * tests pass a fake capture and a plan that drops nothing (test/recorder/session.test.ts).
 */
export interface RecordingIo {
  startCapture: typeof startCapture;
  planPrivileges: (user: string | undefined) => PrivilegePlan;
  applyPrivileges: (plan: PrivilegePlan) => Privileges;
}

const SYSTEM_IO: RecordingIo = {
  startCapture,
  planPrivileges: (user) => planPrivileges(user),
  applyPrivileges,
};

/** conntrackd's NetlinkOverrunResync default: 30 s between two resync dumps. */
export const DEFAULT_RESYNC_INTERVAL_MS = 30_000;

/**
 * How long the stop waits for the resync dump of losses still waiting (docs/record.md): with
 * 250,000 entries in the table, SIGTERM to exit took 0.5–0.9 s with that dump (0.1 s without)
 * on a 2-core VM at load 4–5; 10 s is over ten times that, and with the drain stays well inside
 * the 60 s TimeoutStopSec of docs/deploy.md. Past it, or at a second signal, it is cancelled.
 */
export const STOP_RESYNC_MS = 10_000;

export function startRecording(opts: RecordOptions, io: RecordingIo = SYSTEM_IO): Recording {
  // First of all, on the main thread: every socket, thread, child process and /proc/sys/net
  // read from here on belongs to that namespace (the keeper that restores the sysctl too), and
  // setns needs CAP_SYS_ADMIN, which the privilege drop takes away.
  if (opts.netns !== undefined) joinNetns(opts.netns);
  // Before anything is opened: an unknown --user leaves nothing behind.
  const plan = io.planPrivileges(opts.user);
  // As root and before subscribing; its holder process keeps root, ending it needs none.
  const tracking = opts.enableTracking === true ? enableTracking() : undefined;
  let restore = () => {};
  try {
    // Before the header is written, so the header says what the kernel really did for this run.
    // The restore runs after the drop, when only the keeper thread may write a net.* sysctl.
    const events = opts.enableEvents
      ? enableConntrackEvents('/proc', setConntrackEvents)
      : undefined;
    restore = events?.restore ?? restore;
    return record(
      opts,
      async () => {
        restore();
        await tracking?.stop();
      },
      plan,
      io,
    );
  } catch (err) {
    restore();
    void tracking?.stop();
    throw err;
  }
}

/** The addresses now, or undefined when they cannot be read this time: the next tick retries. */
function pollAddresses(): HostAddress[] | undefined {
  try {
    return readHostAddresses();
  } catch {
    return undefined;
  }
}

/**
 * The routes now (from /proc, no root needed), or undefined when they cannot be read this
 * time: the header then has none, and the first poll that reads them writes them.
 */
function pollRoutes(): HostRoute[] | undefined {
  try {
    return readHostRoutes();
  } catch {
    return undefined;
  }
}

function record(
  opts: RecordOptions,
  undo: () => Promise<void>,
  plan: PrivilegePlan,
  io: RecordingIo,
): Recording {
  const facts = readHostFacts();
  let addresses = readHostAddresses();
  let routes = pollRoutes();
  // --rotate: one random id for the run, and every journal numbered from 1.
  const run = opts.rotate === true ? randomBytes(RUN_ID_SIZE) : undefined;
  let sequence = 1;
  const header: JournalHeaderInput = {
    tool: { name: 'conntracker', version: TOOL_VERSION },
    host: facts.host,
    kernel: facts.kernel,
    netns: facts.netns,
    start: Date.now() * 1000,
    options: opts.given,
    sysctls: facts.sysctls,
    addresses,
    ...(routes === undefined ? {} : { routes }),
    ...(run === undefined ? {} : { chain: { run, sequence, previous: null } }),
  };
  const firstPath = run === undefined ? opts.output : sequencePath(opts.output, 1);

  // Subscribe before touching the output path: when the capture cannot start (no privilege, no
  // addon), a journal that --force would have replaced is still there. Batches arrive in later
  // ticks, so none is missed while the file is created; until then there is nothing to feed.
  let deliver: (records: ArrayBuffer, count: number, info: BatchInfo) => void = () => {};
  let fail: (err: Error) => void = () => {};
  // The kernel filter spares the reader the events it leaves out; the user-space filter below
  // still runs on every batch (dump entries are not filtered in the kernel), and so does the
  // diet, of which the kernel runs only the stateless part.
  const planned = planKernelFilter(opts.filter, opts.kernelFilter !== false, {
    diet: opts.eventsMode === 'minimal',
  });
  const capture: Capture = io.startCapture(
    'program' in planned ? { ...opts.capture, filter: planned.program } : opts.capture,
    (records, count, info) => deliver(records, count, info),
    (err) => fail(err),
  );
  const kernelFilter: KernelFilterState = !('program' in planned)
    ? planned
    : capture.filterError === undefined
      ? { where: 'kernel', instructions: planned.instructions, diet: opts.eventsMode === 'minimal' }
      : { where: 'fallback', reason: capture.filterError };
  // 'ephemeral' is this host's own ip_local_port_range, as ct-analyze reads it from the header.
  const table =
    opts.table === undefined
      ? undefined
      : liveTable(opts.collapse, facts.sysctls.ip_local_port_range);
  const sink = new RecordingSink(table);
  let writer: JournalWriter;
  try {
    if (run !== undefined) {
      if (!opts.force) refuseEarlierRun(opts.output);
      if (plan.drop) refuseUnwritable(dirname(opts.output), plan.user);
    }
    writer = sink.open(firstPath, header, {
      force: opts.force,
      formatVersion: opts.formatVersion,
    });
  } catch (err) {
    void capture.stop();
    throw err;
  }
  let tableFile: TableFile | undefined;
  try {
    tableFile =
      opts.table === undefined
        ? undefined
        : new TableFile(opts.table, { uid: plan.drop ? plan.user.uid : undefined });
  } catch (err) {
    void capture.stop();
    writer.abandon();
    throw err;
  }
  // Least privilege: the sockets and the files are open, root is no longer needed.
  let privileges: string;
  try {
    privileges = io.applyPrivileges(plan).summary;
  } catch (err) {
    void capture.stop();
    writer.closeAfterFailure();
    throw err;
  }
  const keep = compileFilter(opts.filter);
  const batch: CtEvent[] = [];
  let failure: unknown;
  let lastTime = header.start;
  let filtered = 0;
  let malformed = 0;
  let resolveStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => {
    resolveStop = resolve;
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    resolveStop();
  };
  // A stop asked for while stopping (a second signal): no waiting for the stop's resync dump.
  let resolveHurry!: () => void;
  const hurry = new Promise<void>((resolve) => {
    resolveHurry = resolve;
  });
  const failWith = (err: unknown) => {
    failure ??= err;
    stop();
  };
  // What the journal holds per conntrack id, so that a resync dump writes only what is new.
  const known = opts.resyncSkipKnown === false ? undefined : new KnownEntries();
  // --events minimal: per conntrack entry, what the journal holds of it, so repeats stay out.
  const diet = opts.eventsMode === 'minimal' ? new EventDiet(conntrackMax()) : undefined;
  const gaps = new GapTracker(
    async () => {
      known?.beginDump();
      const before = known?.skipped ?? 0;
      const entries = await capture.dump();
      known?.endDump();
      return { entries, skipped: (known?.skipped ?? 0) - before };
    },
    (gap) => {
      if (failure !== undefined) return;
      try {
        writer.appendGap(gap);
        opts.onGap?.(gap);
        checkSize();
      } catch (err) {
        failWith(err);
      }
    },
    undefined,
    { intervalMs: opts.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS },
  );

  deliver = (records, count, info) => {
    if (failure !== undefined) return;
    malformed += info.malformed;
    gaps.observe(info.drops, info.dropped, lastTime);
    // Before any record becomes an object: a known dump entry costs a lookup, nothing more.
    const kept = known !== undefined && count > 0 ? known.sift(records, count) : count;
    if (kept === 0) return;
    batch.length = 0;
    decodeRecords(records, kept, batch);
    const last = batch[batch.length - 1];
    if (last !== undefined) lastTime = Math.max(lastTime, last.time);
    if (keep !== undefined) filtered += filterInPlace(batch, keep);
    diet?.siftInPlace(batch);
    try {
      sink.accept(batch);
      checkSize();
    } catch (err) {
      failWith(err);
    }
  };
  fail = (err) =>
    failWith(new CtError('ECAPTURE', `conntrack reader failed: ${err.message}`, { cause: err }));

  const snapshot = opts.snapshot ? capture.dump() : Promise.resolve(0);
  // A failed start-up dump is reported by the CLI (it has the advice); the recording goes on.
  snapshot.catch(() => {});
  /** --max-size, after each write. */
  function checkSize(): void {
    if (opts.maxSize === undefined || writer.bytesWritten < opts.maxSize) return;
    if (run === undefined) stop();
    else rotate();
  }
  let timer: NodeJS.Timeout | undefined;
  /** --duration, from the start of each journal: the run's end, or (rotate) the journal's. */
  function arm(): void {
    if (timer !== undefined) clearTimeout(timer);
    if (opts.durationMs === undefined) return;
    timer = setTimeout(run === undefined ? stop : rotate, opts.durationMs).unref();
  }
  arm();
  // Sums over the journals a rotation closed; the summary adds the last one's.
  const closed = { journals: 0, bytes: 0, events: 0, lost: 0, gaps: 0 };
  const closedByType: EventCounts = { new: 0, update: 0, destroy: 0, snapshot: 0 };

  /** Set when the next journal's name was taken: the run ended cleanly, but not as asked. */
  let clash: CtError | undefined;
  /**
   * Synchronous, so no batch can arrive between the two journals: the next batch after it goes
   * to the new one. Sysctls are read again (they may have been changed), everything else of the
   * header is the run's; no table dump: the chain carries the flows, and a dump per journal
   * (about 1 s and 10 MB for 250k flows) would cost more than a small --max-size allows.
   */
  function rotate(): void {
    if (run === undefined || stopping || failure !== undefined) return;
    const old = writer;
    const nextPath = sequencePath(opts.output, sequence + 1);
    if (!opts.force && exists(nextPath)) {
      // Seen before the current journal is closed, so the run ends cleanly with it.
      clash = new CtError(
        'EEXIST',
        `cannot rotate to ${nextPath}: it exists; the run ended with ${old.path}, complete: move old journals away or record with --force`,
      );
      stop();
      return;
    }
    try {
      const now = Date.now() * 1000;
      old.close({ stop: now, next: basename(nextPath) });
      closed.journals++;
      closed.bytes += old.bytesWritten;
      closed.events += old.events;
      closed.lost += old.lost;
      closed.gaps += old.gaps;
      const t = old.byType;
      for (const k of ['new', 'update', 'destroy', 'snapshot'] as const) closedByType[k] += t[k];
      const previous = { sha256: Buffer.from(old.sha256, 'hex'), file: basename(old.path) };
      // Closed above with its held events: the next batch goes to the new journal.
      writer = sink.open(
        nextPath,
        {
          ...header,
          start: now,
          sysctls: readHostFacts().sysctls,
          addresses,
          ...(routes === undefined ? {} : { routes }),
          chain: { run, sequence: sequence + 1, previous },
        },
        // The run's format in every journal: a reader that opened the first opens them all.
        { force: opts.force, formatVersion: opts.formatVersion },
      );
      sequence++;
      diet?.clear();
      arm();
      opts.onRotate?.(
        {
          path: old.path,
          sequence: sequence - 1,
          bytes: old.bytesWritten,
          events: old.events,
          sha256: old.sha256,
        },
        nextPath,
      );
    } catch (err) {
      failWith(err);
    }
  }
  const flusher = setInterval(() => {
    if (failure !== undefined) return;
    try {
      // Polled, not subscribed: a change reaches the journal within one flush interval, the
      // same bound as what a crash may cost; its time is when it was seen, not when it was made.
      // One checkpoint for whatever changed, carrying each changed list whole (the other
      // one's last set stays in force).
      const now = pollAddresses();
      const nowRoutes = pollRoutes();
      const time = Date.now() * 1000;
      const addressesChanged = now !== undefined && !sameAddresses(now, addresses);
      const routesChanged =
        nowRoutes !== undefined && (routes === undefined || !sameRoutes(nowRoutes, routes));
      writer.noteNetwork({
        ...(addressesChanged ? { addresses: { time, addresses: now } } : {}),
        ...(routesChanged ? { routes: { time, routes: nowRoutes } } : {}),
      });
      if (addressesChanged) addresses = now;
      if (routesChanged) routes = nowRoutes;
      // The held events are written here (or sooner, once HOLD_EVENTS are held): --max-size
      // is checked after this write too.
      writer.flush();
      checkSize();
    } catch (err) {
      failWith(err);
    }
  }, opts.flushMs).unref();

  function writeTable(): string | undefined {
    if (tableFile === undefined || table === undefined) return undefined;
    tableFile.write(textChunks(table.flows()));
    return tableFile.path;
  }

  /**
   * Before the capture stops (a dump needs it): losses waiting for their paced dump get it now,
   * bounded by STOP_RESYNC_MS or a second stop(); stopping the capture then cancels the dump.
   */
  async function resyncAtStop(): Promise<void> {
    if (failure !== undefined || !gaps.busy) return;
    const limitMs = opts.stopResyncMs ?? STOP_RESYNC_MS;
    opts.onStopResync?.(gaps.waiting, limitMs);
    let limit: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      limit = setTimeout(resolve, limitMs);
    });
    await Promise.race([gaps.resyncNow(), late, hurry]);
    clearTimeout(limit);
  }

  const done = (async (): Promise<RecordSummary> => {
    try {
      await stopRequested;
      if (timer !== undefined) clearTimeout(timer);
      clearInterval(flusher);
      await resyncAtStop();
      await capture.stop();
      await gaps.finish();
    } finally {
      // The sysctl and the --enable-tracking table: only once every event has been drained.
      await undo();
    }
    if (failure !== undefined) {
      writer.closeAfterFailure();
      tableFile?.close();
      throw failure;
    }
    writer.close({ stop: Date.now() * 1000 });
    try {
      writeTable();
    } finally {
      tableFile?.close();
    }
    if (clash !== undefined) throw clash;
    const byType = writer.byType;
    for (const k of ['new', 'update', 'destroy', 'snapshot'] as const) byType[k] += closedByType[k];
    return {
      output: writer.path,
      journals: closed.journals + 1,
      bytes: closed.bytes + writer.bytesWritten,
      events: closed.events + writer.events,
      byType,
      lost: closed.lost + writer.lost,
      gaps: closed.gaps + writer.gaps,
      filtered,
      malformed,
      resyncs: gaps.dumps,
      resyncSkipped: known?.skipped ?? 0,
      dietLeftOut: diet?.leftOut ?? 0,
      flows: table?.size,
      sha256: writer.sha256,
    };
  })();

  return {
    done,
    bufferSize: capture.bufferSize,
    snapshot,
    stop: () => {
      if (stopping) resolveHurry();
      else stop();
    },
    rotate,
    get output() {
      return writer.path;
    },
    writeTable: () => {
      if (tableFile === undefined) return undefined;
      if (!stopping && failure === undefined) {
        try {
          // The held events with a checkpoint: the flows so far, in the journal and the table.
          writer.checkpoint();
          checkSize();
        } catch (err) {
          failWith(err);
        }
      }
      return writeTable();
    },
    privileges,
    netns: facts.netns,
    kernelFilter,
    received: () => capture.received(),
  };
}
