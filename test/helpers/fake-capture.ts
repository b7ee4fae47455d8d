// A capture without a kernel: native/index.ts's Capture, fed batches a test builds (no root, no addon).
import { CtError } from '../../common/errors.js';
import type { CtEvent } from '../../journal/event.js';
import type { BatchCallback, BatchInfo, Capture, CaptureOptions } from '../../native/index.js';
import type { RecordingIo } from '../../recorder/recording.js';
import { packRecords } from './records.js';

const NO_LOSS: BatchInfo = { enobufs: 0, drops: 0, dropped: 0, malformed: 0 };

export class FakeCapture implements Capture {
  readonly bufferSize: number;
  readonly reliable: boolean;
  readonly socketInode = 4242;
  /** Set by fakeIo({ refuseFilter }) when a filter was asked for: as if the kernel refused it. */
  filterError?: string;
  /** Batches the reader still holds: stop() drains them before it resolves, as the addon does. */
  readonly pending: CtEvent[][] = [];
  /** What a table dump finds: each entry reaches onBatch as a SNAPSHOT record. */
  table: CtEvent[] = [];
  dumps = 0;
  /** Dumps started from now on never finish: stop() cancels them (ECANCELED), as the addon does. */
  hangDumps = false;
  #hung: ((err: CtError) => void)[] = [];
  stopped = false;
  #dropTotal = 0;
  #received = 0;
  /** Like the addon's reader thread, a capture keeps the process alive until stopped. */
  #alive = setInterval(() => {}, 60_000);

  constructor(
    readonly options: CaptureOptions,
    readonly onBatch: BatchCallback,
    readonly onError: (err: CtError) => void,
  ) {
    // The kernel doubles what is asked for.
    this.bufferSize = 2 * (options.bufferSize ?? 8 * 1024 * 1024);
    this.reliable = options.reliable ?? false;
  }

  /** One batch, as the reader hands it over; `info` counts losses since the previous batch. */
  emit(events: readonly CtEvent[], info: Partial<BatchInfo> = {}): void {
    if (this.stopped) throw new Error('FakeCapture: a batch after stop()');
    const loss = { ...NO_LOSS, ...info };
    this.#dropTotal += loss.drops;
    this.#received += events.filter((e) => e.type !== 4).length;
    this.onBatch(packRecords(events), events.length, loss);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    for (const cancel of this.#hung.splice(0)) {
      cancel(new CtError('ECANCELED', 'conntrack table dump cancelled: the capture stopped'));
    }
    for (const batch of this.pending.splice(0)) this.emit(batch);
    this.stopped = true;
    clearInterval(this.#alive);
  }

  async dump(): Promise<number> {
    this.dumps++;
    if (this.hangDumps) {
      return new Promise<number>((_, reject) => {
        this.#hung.push(reject);
      });
    }
    await Promise.resolve();
    const entries = this.table.map((e) => ({ ...e, type: 4 as const }));
    if (entries.length > 0) this.emit(entries);
    return entries.length;
  }

  /** Datagrams the event socket would have read: every event emitted (no kernel filter here). */
  received(): number {
    return this.#received;
  }

  drops(): number {
    return this.#dropTotal;
  }
}

/**
 * startRecording's system access for a unit test: the fake capture, and a privilege plan that
 * drops nothing (whoever runs the test). `captures` holds each capture started, newest last.
 */
export function fakeIo(
  fake: { refuseFilter?: string } = {},
): RecordingIo & { captures: FakeCapture[] } {
  const captures: FakeCapture[] = [];
  return {
    captures,
    startCapture: (opts, onBatch, onError) => {
      const c = new FakeCapture(opts, onBatch, onError);
      if (opts.filter !== undefined) c.filterError = fake.refuseFilter;
      captures.push(c);
      return c;
    },
    planPrivileges: () => ({ drop: false, why: 'unit test: no privileges to drop' }),
    applyPrivileges: (plan) => ({
      dropped: false,
      summary: plan.drop ? 'unit test: would drop' : plan.why,
    }),
  };
}
