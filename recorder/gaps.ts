// Loss is data: turns the reader's loss counts into gap records, each after a resync dump.
import { InvalidArgumentError } from 'commander';
import { GapCause, type JournalGap } from '../journal/format.js';

interface Pending {
  from: number;
  lost: number;
}

/** What a resync dump did: the entries it returned, and how many of them were left out. */
export interface ResyncCount {
  entries: number;
  /** Entries left out because the journal already held their id and state (KnownEntries). */
  skipped?: number;
}

/** The resync's pacing, and the clock and timer it runs on (tests pass their own). */
export interface ResyncPacing {
  /** At least this long (ms) from the end of one resync dump to the start of the next. */
  intervalMs: number;
  /** A monotonic clock in ms. */
  monoMs?: () => number;
  /** Calls `fn` once after `ms`; returns what cancels it. Must not keep the process alive. */
  setTimer?: (fn: () => void, ms: number) => () => void;
}

const systemTimer = (fn: () => void, ms: number) => {
  const t = setTimeout(fn, ms).unref();
  return () => clearTimeout(t);
};

/**
 * One resync cycle at a time, and at most one per interval (conntrackd's NetlinkOverrunResync):
 * a loss starts a table dump at once when the last one ended at least `intervalMs` ago, else
 * when that time comes. Losses seen while a dump runs or while the next one waits are
 * coalesced into the next dump (the running one may already have missed them): an overrun
 * never starts a second dump. When a dump ends, each cause's gap is written with the number of
 * entries the dump returned and how many it left out (resync -1 when the dump failed or was
 * cancelled). At the stop, resyncNow() makes the waiting dump at once rather than leave its
 * losses without one.
 */
export class GapTracker {
  #pending = new Map<string, Pending>();
  #cycle: Promise<void> | undefined;
  #stopping = false;
  #lastEnd: number | undefined;
  #cancel: (() => void) | undefined;
  readonly #intervalMs: number;
  readonly #monoMs: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => () => void;
  /** Resync dumps started. */
  dumps = 0;

  constructor(
    private readonly resync: () => Promise<number | ResyncCount>,
    private readonly write: (gap: JournalGap) => void,
    private readonly now: () => number = () => Date.now() * 1000,
    pacing: ResyncPacing = { intervalMs: 0 },
  ) {
    this.#intervalMs = pacing.intervalMs;
    this.#monoMs = pacing.monoMs ?? (() => performance.now());
    this.#setTimer = pacing.setTimer ?? systemTimer;
  }

  /**
   * Records losses reported with a batch: `drops` by the kernel (ENOBUFS), `dropped` by the
   * reader's full queue. `since` is the time of the last event known to precede the loss.
   */
  observe(drops: number, dropped: number, since: number): void {
    if (drops > 0) this.#add(GapCause.ENOBUFS, drops, since);
    if (dropped > 0) this.#add(GapCause.QUEUE, dropped, since);
    this.#schedule();
  }

  /** Whether losses wait for a dump (the paced one not started yet), or a dump runs. */
  get busy(): boolean {
    return this.#pending.size > 0 || this.#cycle !== undefined;
  }

  /** Events lost that no dump has started for yet. */
  get waiting(): number {
    let n = 0;
    for (const p of this.#pending.values()) n += p.lost;
    return n;
  }

  /**
   * The recording stops: no more pacing. Waits for a running dump, then, if losses still wait,
   * makes their dump now (one, whatever the interval: a last dump cannot start a storm) and
   * waits for it. Losses seen after that wait for finish(). The caller bounds the time: stopping
   * the capture cancels a dump, whose losses are then written with resync -1.
   */
  async resyncNow(): Promise<void> {
    this.#stopping = true;
    this.#cancel?.();
    this.#cancel = undefined;
    while (this.#cycle !== undefined) await this.#cycle;
    if (this.#pending.size === 0) return;
    this.#start();
    while (this.#cycle !== undefined) await this.#cycle;
  }

  /** Ends the bookkeeping: waits for a running resync, then writes what is still pending. */
  async finish(): Promise<void> {
    this.#stopping = true;
    this.#cancel?.();
    this.#cancel = undefined;
    while (this.#cycle !== undefined) await this.#cycle;
    this.#writeAll(this.#take(), { entries: -1 });
  }

  #add(cause: string, lost: number, since: number): void {
    const p = this.#pending.get(cause);
    if (p === undefined) this.#pending.set(cause, { from: since, lost });
    else p.lost += lost;
  }

  #take(): Map<string, Pending> {
    const taken = this.#pending;
    this.#pending = new Map();
    return taken;
  }

  /** Starts the next dump now, or arms the one timer that will; nothing while one runs or waits. */
  #schedule(): void {
    if (this.#pending.size === 0 || this.#cycle !== undefined || this.#stopping) return;
    if (this.#cancel !== undefined) return;
    const wait =
      this.#lastEnd === undefined ? 0 : this.#lastEnd + this.#intervalMs - this.#monoMs();
    if (wait <= 0) {
      this.#start();
      return;
    }
    this.#cancel = this.#setTimer(() => {
      this.#cancel = undefined;
      this.#schedule();
    }, wait);
  }

  #start(): void {
    const current = this.#take();
    this.dumps++;
    this.#cycle = this.resync().then(
      (r) => this.#end(current, typeof r === 'number' ? { entries: r } : r),
      () => this.#end(current, { entries: -1 }),
    );
  }

  #end(current: Map<string, Pending>, count: ResyncCount): void {
    this.#cycle = undefined;
    this.#lastEnd = this.#monoMs();
    this.#writeAll(current, count);
    this.#schedule();
  }

  #writeAll(gaps: Map<string, Pending>, count: ResyncCount): void {
    const to = this.now();
    const resync = count.entries;
    // Never more than the dump returned (a start-up dump still running may add its own).
    const skipped =
      resync < 0 || count.skipped === undefined ? undefined : Math.min(count.skipped, resync);
    for (const [cause, p] of gaps) {
      this.write({
        from: p.from,
        to: Math.max(to, p.from),
        lost: p.lost,
        lostKnown: true,
        cause,
        resync,
        ...(skipped === undefined ? {} : { skipped }),
      });
    }
  }
}

/** --resync-interval's bounds (s): a dump per second at most; an hour's wait at most. */
export const MIN_RESYNC_INTERVAL = 1;
export const MAX_RESYNC_INTERVAL = 3600;

/** --resync-interval SECONDS: a whole or decimal number from 1 to 3600. */
export function parseResyncInterval(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n >= MIN_RESYNC_INTERVAL && n <= MAX_RESYNC_INTERVAL)) {
    throw new InvalidArgumentError(
      `give a number of seconds from ${MIN_RESYNC_INTERVAL} to ${MAX_RESYNC_INTERVAL}, e.g. 30.`,
    );
  }
  return n;
}
