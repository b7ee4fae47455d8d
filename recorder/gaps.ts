// Loss is data: turns the reader's loss counts into gap records, each after a resync dump.
import { GapCause, type JournalGap } from '../journal/format.js';

interface Pending {
  from: number;
  lost: number;
}

/**
 * One resync cycle at a time: the first loss starts a table dump; losses seen while it runs
 * wait for the next cycle (the running dump may already have missed them). When the dump ends,
 * each cause's gap is written with the number of entries that resynchronised (-1 when the dump
 * failed or the recording stopped first).
 */
export class GapTracker {
  #pending = new Map<string, Pending>();
  #cycle: Promise<void> | undefined;
  #stopping = false;

  constructor(
    private readonly resync: () => Promise<number>,
    private readonly write: (gap: JournalGap) => void,
    private readonly now: () => number = () => Date.now() * 1000,
  ) {}

  /**
   * Records losses reported with a batch: `drops` by the kernel (ENOBUFS), `dropped` by the
   * reader's full queue. `since` is the time of the last event known to precede the loss.
   */
  observe(drops: number, dropped: number, since: number): void {
    if (drops > 0) this.#add(GapCause.ENOBUFS, drops, since);
    if (dropped > 0) this.#add(GapCause.QUEUE, dropped, since);
    if (this.#pending.size > 0 && this.#cycle === undefined && !this.#stopping) this.#start();
  }

  /** Ends the bookkeeping: waits for a running resync, then writes what is still pending. */
  async finish(): Promise<void> {
    this.#stopping = true;
    while (this.#cycle !== undefined) await this.#cycle;
    this.#writeAll(this.#take(), -1);
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

  #start(): void {
    const current = this.#take();
    this.#cycle = this.resync().then(
      (entries) => this.#end(current, entries),
      () => this.#end(current, -1),
    );
  }

  #end(current: Map<string, Pending>, resync: number): void {
    this.#cycle = undefined;
    this.#writeAll(current, resync);
    if (this.#pending.size > 0 && !this.#stopping) this.#start();
  }

  #writeAll(gaps: Map<string, Pending>, resync: number): void {
    const to = this.now();
    for (const [cause, p] of gaps) {
      this.write({
        from: p.from,
        to: Math.max(to, p.from),
        lost: p.lost,
        lostKnown: true,
        cause,
        resync,
      });
    }
  }
}
