// The event diet (--events minimal): keep only the events that change what the flow table holds.
import type { CtEvent } from '../journal/event.js';
import { EventType, Status } from '../journal/event.js';

/** What --events takes: every event, or the diet's. */
export type EventsMode = 'all' | 'minimal';
export const EVENTS_MODES: readonly EventsMode[] = ['all', 'minimal'];

/**
 * The status bits the flow table reads (analyzer/core/flows.ts flagsOf): IPS_SEEN_REPLY
 * (confirmed) and IPS_ASSURED. The other bits change nothing a report or an export of flows shows.
 */
const FLAGS_KEPT = Status.SEEN_REPLY | Status.ASSURED;

/** What the journal holds of one conntrack entry: its tuples' hash, flags so far, earliest time. */
interface Entry {
  hash: number;
  flags: number;
  first: number;
}

/**
 * Decides, per event, whether the journal needs it for the flow table (analyzer/core/flows.ts)
 * to come out the same. NEW, DESTROY and SNAPSHOT events are always kept (a dump's entries are
 * sifted by recorder/known-entries.ts already); an UPDATE is kept when it is the first event of
 * its conntrack entry (id, and a hash of both tuples: ids are reused, and a changed reply tuple is
 * a NAT fact), adds a flag (confirmed, assured) the entry's events did not carry, carries a
 * non-zero mark (a flow's mark is its latest marked event's, over all the entries of its key, so
 * a repeated mark can still win), or is earlier than the entry's events so far (firstSeen).
 *
 * What the table gets identical, for every collapse mode: the flows (keys), confirmed, assured,
 * firstSeen, the mark, NAT and direction, and hosts. Not identical: lastSeen of a flow one of
 * whose entries had UPDATEs after its last kept event and no DESTROY after them (still open when
 * the recording ended, or its DESTROY lost): it is that entry's last state change instead of its
 * last UPDATE (earlier, never later); a flow whose entries all ended with a DESTROY gets the same
 * lastSeen. Event counts (per type, and the table's skipped events) are smaller, by design.
 *
 * State is bounded: at most `max` entries are remembered (nf_conntrack_max: the kernel holds no
 * more); an entry past the bound is not remembered and every event of it is kept, which is
 * always correct. DESTROY forgets its entry.
 */
export class EventDiet {
  /** Events left out since the start. */
  leftOut = 0;
  readonly max: number;
  readonly #entries = new Map<number, Entry>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`bad entry bound ${max}`);
    this.max = max;
  }

  /** Entries remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Forgets every entry: the next journal of a --rotate run then holds a first event of each
   * entry it sees, so one journal read alone shows its flows as with every event.
   */
  clear(): void {
    this.#entries.clear();
  }

  /** Whether the journal needs `ev`; notes what it holds of the entry from then on. */
  keeps(ev: CtEvent): boolean {
    const id = ev.id;
    // Without CTA_ID an event cannot be tied to its entry: kept.
    if (id === 0) return true;
    if (ev.type === EventType.DESTROY) {
      this.#entries.delete(id);
      return true;
    }
    const flags = ev.status & FLAGS_KEPT;
    const hash = tupleHash(ev);
    const known = this.#entries.get(id);
    if (known === undefined || known.hash !== hash || ev.type === EventType.NEW) {
      if (known !== undefined) this.#entries.delete(id);
      if (this.#entries.size < this.max) this.#entries.set(id, { hash, flags, first: ev.time });
      return true;
    }
    const adds = (flags & ~known.flags) !== 0;
    const earlier = ev.time < known.first;
    known.flags |= flags;
    if (earlier) known.first = ev.time;
    if (ev.type !== EventType.UPDATE) return true;
    return adds || earlier || (ev.mark !== undefined && ev.mark !== 0);
  }

  /** Removes from `batch` (in place, order kept) the events the journal does not need; returns how many. */
  siftInPlace(batch: CtEvent[]): number {
    let kept = 0;
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i] as CtEvent;
      if (this.keeps(ev)) batch[kept++] = ev;
    }
    const removed = batch.length - kept;
    batch.length = kept;
    this.leftOut += removed;
    return removed;
  }
}

/** FNV-1a over family, proto, zone and both tuples: tells a reused id's new connection apart. */
function tupleHash(ev: CtEvent): number {
  let h = Math.imul(0x811c9dc5 ^ ((ev.family << 8) | ev.proto), 0x01000193);
  h = Math.imul(h ^ (ev.zone ?? 0), 0x01000193);
  h = tupleInto(h, ev.orig);
  return tupleInto(h, ev.reply) >>> 0;
}

function tupleInto(hash: number, t: CtEvent['orig']): number {
  let h = hash;
  const { src, dst } = t;
  for (let i = 0; i < src.length; i++) h = Math.imul(h ^ (src[i] as number), 0x01000193);
  for (let i = 0; i < dst.length; i++) h = Math.imul(h ^ (dst[i] as number), 0x01000193);
  h = Math.imul(h ^ ((t.sport << 16) | t.dport), 0x01000193);
  return Math.imul(h ^ ((t.icmpType << 24) | (t.icmpCode << 16) | t.icmpId), 0x01000193);
}
