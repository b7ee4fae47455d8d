// One recording: native batches → decoded events → journal frames and the live flow table.
import { type Collapse, collapseFor, FlowTable } from '../analyzer/flows.js';
import { textChunks } from '../analyzer/format-text.js';
import { CtError } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import type { CtEvent } from '../journal/event.js';
import type { EventCounts, HostAddress, JournalHeaderInput } from '../journal/format.js';
import { JournalWriter } from '../journal/writer.js';
import {
  type BatchInfo,
  type Capture,
  type CaptureOptions,
  startCapture,
} from '../native/index.js';
import { enableConntrackEvents } from './conntrack-events.js';
import { compileFilter, type EventFilter, filterInPlace } from './filter.js';
import { GapTracker } from './gaps.js';
import { readHostAddresses, readHostFacts, sameAddresses } from './host.js';
import {
  applyPrivileges,
  type PrivilegePlan,
  planPrivileges,
  writePrivileged,
} from './privileges.js';
import { decodeRecords } from './records.js';
import { RecordingSink } from './sink.js';
import { TableFile } from './table-file.js';

export interface RecordOptions {
  output: string;
  force: boolean;
  /** Stop by itself after this many milliseconds. */
  durationMs?: number;
  /** Checkpoint and fsync the journal this often (ms): what a crash or power loss can cost. */
  flushMs: number;
  /** Live mode: keep the flow table and write it here at exit and on request (SIGUSR1). */
  table?: string;
  collapse: Collapse;
  capture: Required<CaptureOptions>;
  /** Dump the conntrack table after subscribing, so flows older than the recording are seen. */
  snapshot: boolean;
  /** Set nf_conntrack_events=1 for the run (restored at the end). */
  enableEvents: boolean;
  filter: EventFilter;
  /** The options as the user gave them, recorded in the journal header. */
  given: Record<string, unknown>;
  /** --user: who to run as once the sockets and the journal are open; undefined: nobody. */
  user?: string;
}

export interface RecordSummary {
  output: string;
  bytes: number;
  events: number;
  byType: EventCounts;
  /** Events the kernel or the reader's queue lost, in `gaps` gap records. */
  lost: number;
  gaps: number;
  /** Events left out by --proto, --mark or --no-loopback. */
  filtered: number;
  malformed: number;
  /** Flows in the live table; undefined without --table. */
  flows?: number;
  /** SHA-256 of the whole journal file, for the change ticket (what `ct-analyze verify` prints). */
  sha256: string;
}

export interface Recording {
  /** Resolves when the recording has ended and the journal is closed. */
  readonly done: Promise<RecordSummary>;
  readonly bufferSize: number;
  /** Resolves with the number of entries of the start-up table dump (0 without one). */
  readonly snapshot: Promise<number>;
  /** Ends the recording: drain the reader, write the trailer, close. Idempotent. */
  stop(): void;
  /** Writes the live table now (the SIGUSR1 action); returns the path, or undefined without --table. */
  writeTable(): string | undefined;
  /** What the process runs as since start (privilege drop), as one line for stderr. */
  readonly privileges: string;
}

export function startRecording(opts: RecordOptions): Recording {
  // Before anything is opened: an unknown --user leaves nothing behind.
  const plan = planPrivileges(opts.user);
  // Before the header is written, so the header says what the kernel really did for this run.
  // The restore runs after the drop, when only the keeper thread may write a net.* sysctl.
  const events = opts.enableEvents ? enableConntrackEvents('/proc', writePrivileged) : undefined;
  const restore = events?.restore ?? (() => {});
  try {
    return record(opts, restore, plan);
  } catch (err) {
    restore();
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

function record(opts: RecordOptions, restoreSysctl: () => void, plan: PrivilegePlan): Recording {
  const facts = readHostFacts();
  let addresses = readHostAddresses();
  const header: JournalHeaderInput = {
    tool: { name: 'conntracker', version: TOOL_VERSION },
    host: facts.host,
    kernel: facts.kernel,
    netns: facts.netns,
    start: Date.now() * 1000,
    options: opts.given,
    sysctls: facts.sysctls,
    addresses,
  };

  // Subscribe before touching the output path: when the capture cannot start (no privilege, no
  // addon), a journal that --force would have replaced is still there. Batches arrive in later
  // ticks, so none is missed while the file is created; until then there is nothing to feed.
  let deliver: (records: ArrayBuffer, count: number, info: BatchInfo) => void = () => {};
  let fail: (err: Error) => void = () => {};
  const capture: Capture = startCapture(
    opts.capture,
    (records, count, info) => deliver(records, count, info),
    (err) => fail(err),
  );
  let writer: JournalWriter;
  try {
    writer = JournalWriter.create(opts.output, header, { force: opts.force });
  } catch (err) {
    void capture.stop();
    throw err;
  }
  let tableFile: TableFile | undefined;
  try {
    tableFile = opts.table === undefined ? undefined : new TableFile(opts.table);
  } catch (err) {
    void capture.stop();
    writer.abandon();
    throw err;
  }
  // Least privilege: the sockets and the files are open, root is no longer needed.
  let privileges: string;
  try {
    privileges = applyPrivileges(plan).summary;
  } catch (err) {
    void capture.stop();
    writer.closeAfterFailure();
    throw err;
  }
  // 'ephemeral' is this host's own ip_local_port_range, as ct-analyze reads it from the header.
  const collapse = collapseFor(opts.collapse, facts.sysctls.ip_local_port_range).mode;
  const table = tableFile === undefined ? undefined : new FlowTable({ collapse });
  const sink = new RecordingSink(writer, table);
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
  const stop = () => resolveStop();
  const failWith = (err: unknown) => {
    failure ??= err;
    stop();
  };
  const gaps = new GapTracker(
    () => capture.dump(),
    (gap) => {
      if (failure !== undefined) return;
      try {
        writer.appendGap(gap);
      } catch (err) {
        failWith(err);
      }
    },
  );

  deliver = (records, count, info) => {
    if (failure !== undefined) return;
    malformed += info.malformed;
    gaps.observe(info.drops, info.dropped, lastTime);
    if (count === 0) return;
    batch.length = 0;
    decodeRecords(records, count, batch);
    const last = batch[batch.length - 1];
    if (last !== undefined) lastTime = Math.max(lastTime, last.time);
    if (keep !== undefined) filtered += filterInPlace(batch, keep);
    try {
      sink.accept(batch);
    } catch (err) {
      failWith(err);
    }
  };
  fail = (err) =>
    failWith(new CtError('ECAPTURE', `conntrack reader failed: ${err.message}`, { cause: err }));

  const snapshot = opts.snapshot ? capture.dump() : Promise.resolve(0);
  // A failed start-up dump is reported by the CLI (it has the advice); the recording goes on.
  snapshot.catch(() => {});
  const timer =
    opts.durationMs === undefined ? undefined : setTimeout(stop, opts.durationMs).unref();
  const flusher = setInterval(() => {
    if (failure !== undefined) return;
    try {
      // Polled, not subscribed: a change reaches the journal within one flush interval, the
      // same bound as what a crash may cost; its time is when it was seen, not when it was made.
      const now = pollAddresses();
      if (now !== undefined && !sameAddresses(now, addresses)) {
        writer.noteAddresses({ time: Date.now() * 1000, addresses: now });
        addresses = now;
      }
      writer.flush();
    } catch (err) {
      failWith(err);
    }
  }, opts.flushMs).unref();

  function writeTable(): string | undefined {
    if (tableFile === undefined || table === undefined) return undefined;
    tableFile.write(textChunks(table.flows()));
    return tableFile.path;
  }

  const done = (async (): Promise<RecordSummary> => {
    try {
      await stopRequested;
      if (timer !== undefined) clearTimeout(timer);
      clearInterval(flusher);
      await capture.stop();
      await gaps.finish();
    } finally {
      restoreSysctl();
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
    return {
      output: opts.output,
      bytes: writer.bytesWritten,
      events: writer.events,
      byType: writer.byType,
      lost: writer.lost,
      gaps: writer.gaps,
      filtered,
      malformed,
      flows: table?.size,
      sha256: writer.sha256,
    };
  })();

  return { done, bufferSize: capture.bufferSize, snapshot, stop, writeTable, privileges };
}
