// One recording: native batches → decoded events → journal frames and the live flow table.
import { type Collapse, FlowTable } from '../analyzer/flows.js';
import { textChunks } from '../analyzer/format-text.js';
import { writeFileAtomic } from '../analyzer/output.js';
import { CtError } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import type { CtEvent } from '../journal/event.js';
import type { JournalHeaderInput } from '../journal/format.js';
import { JournalWriter } from '../journal/writer.js';
import {
  type BatchInfo,
  type Capture,
  type CaptureOptions,
  startCapture,
} from '../native/index.js';
import { readHostFacts } from './host.js';
import { decodeRecords } from './records.js';
import { RecordingSink } from './sink.js';

export interface RecordOptions {
  output: string;
  force: boolean;
  /** Stop by itself after this many milliseconds. */
  durationMs?: number;
  /** Live mode: write the seed-format table here at exit and on request (SIGUSR1). */
  table?: string;
  collapse: Collapse;
  capture: Required<CaptureOptions>;
  /** The options as the user gave them, recorded in the journal header. */
  given: Record<string, unknown>;
}

export interface RecordSummary {
  output: string;
  bytes: number;
  events: number;
  byType: { new: number; update: number; destroy: number; snapshot: number };
  enobufs: number;
  dropped: number;
  malformed: number;
  flows: number;
  bufferSize: number;
}

export interface Recording {
  /** Resolves when the recording has ended and the journal is closed. */
  readonly done: Promise<RecordSummary>;
  readonly bufferSize: number;
  /** Ends the recording: drain the reader, write the trailer, close. Idempotent. */
  stop(): void;
  /** Writes the live table now (the SIGUSR1 action); returns the path, or undefined without --table. */
  writeTable(): string | undefined;
}

export function startRecording(opts: RecordOptions): Recording {
  const facts = readHostFacts();
  const start = Date.now() * 1000;
  const header: JournalHeaderInput = {
    tool: { name: 'conntracker', version: TOOL_VERSION },
    host: facts.host,
    kernel: facts.kernel,
    netns: facts.netns,
    start,
    options: opts.given,
    sysctls: facts.sysctls,
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
  const sink = new RecordingSink(writer, new FlowTable({ collapse: opts.collapse }));
  const loss = { enobufs: 0, dropped: 0, malformed: 0 };
  const batch: CtEvent[] = [];
  let failure: unknown;
  let resolveStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => {
    resolveStop = resolve;
  });
  const stop = () => resolveStop();

  deliver = (records, count, info) => {
    if (failure !== undefined) return;
    loss.enobufs += info.enobufs;
    loss.dropped += info.dropped;
    loss.malformed += info.malformed;
    batch.length = 0;
    decodeRecords(records, count, batch);
    try {
      sink.accept(batch);
    } catch (err) {
      failure = err;
      stop();
    }
  };
  fail = (err) => {
    failure ??= new CtError('ECAPTURE', `conntrack reader failed: ${err.message}`, { cause: err });
    stop();
  };
  const timer =
    opts.durationMs === undefined ? undefined : setTimeout(stop, opts.durationMs).unref();

  function writeTable(): string | undefined {
    if (opts.table === undefined) return undefined;
    writeFileAtomic(opts.table, textChunks(sink.table.flows()));
    return opts.table;
  }

  const done = (async (): Promise<RecordSummary> => {
    await stopRequested;
    if (timer !== undefined) clearTimeout(timer);
    await capture.stop();
    if (failure !== undefined) {
      writer.closeAfterFailure();
      throw failure;
    }
    writer.close({ stop: Date.now() * 1000 });
    writeTable();
    return {
      output: opts.output,
      bytes: writer.bytesWritten,
      events: writer.events,
      byType: writer.byType,
      flows: sink.table.size,
      bufferSize: capture.bufferSize,
      ...loss,
    };
  })();

  return { done, bufferSize: capture.bufferSize, stop, writeTable };
}
