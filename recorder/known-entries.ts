// What the journal already holds of each conntrack entry, so a resync dump writes only what is new.
import { readFileSync } from 'node:fs';
import { FIELDS, RECORD_SIZE, RecordType } from '../native/index.js';

/**
 * The status bits the flow table reads (analyzer/core/flows.ts flagsOf): IPS_SEEN_REPLY
 * (confirmation) and IPS_ASSURED. Other bits (CONFIRMED, DYING…) change nothing a report shows.
 */
const STATUS_KEPT = 0x2 | 0x4;
/** Where nf_conntrack_max is read: the table can never hold more entries than this. */
const CONNTRACK_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
/** When nf_conntrack_max cannot be read: the kernel's default on a host with 4 GB or more. */
const FALLBACK_MAX = 262_144;
const MIN_SLOTS = 1 << 12;

// The record as 32-bit words (RECORD_SIZE and every field used here are multiples of 4).
const WORDS = RECORD_SIZE / 4;
const W_HEAD = FIELDS.type.offset / 4; // type, family, proto, tcpState
const W_STATUS = FIELDS.status.offset / 4;
const W_MARK = FIELDS.mark.offset / 4;
const W_ID = FIELDS.id.offset / 4;
const W_TUPLES = FIELDS.origSrc.offset / 4; // orig then reply tuple: 20 words
const TUPLE_WORDS = (FIELDS.replyIcmpCode.offset + 1 - FIELDS.origSrc.offset) / 4;
/** family and proto of the head word; type and tcpState change while an entry lives. */
const HEAD_KEPT = 0x00ffff00;

/** The table's bound: nf_conntrack_max of the recorded namespace, or FALLBACK_MAX. */
export function conntrackMax(path = CONNTRACK_MAX): number {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : FALLBACK_MAX;
  } catch {
    return FALLBACK_MAX;
  }
}

/**
 * conntrack id → the state the journal last recorded for it: the kept status bits, the mark,
 * and a hash of both tuples with family and proto (ids can be reused by another connection).
 * A dump entry whose id and state are known adds nothing to the flow table and is left out,
 * unless it is marked (see #note). What it changes: a flow's lastSeen is its last written
 * event or entry, not the last dump that saw it alive (docs/record.md).
 *
 * Open addressing with linear probing over four Uint32Arrays (id, state, mark, tuple hash;
 * 16 bytes a slot, at most half full: 32–64 bytes an entry), id 0 meaning an empty slot. It
 * never holds more than `max` entries: past that an entry is simply not remembered, and a dump
 * writes it, which is always correct. DESTROY events remove entries; a dump's end removes those
 * the dump did not return (their DESTROY was lost).
 */
export class KnownEntries {
  /** Snapshot records left out since the start, because the journal already held their state. */
  skipped = 0;
  /** Entries removed at a dump's end: gone from the kernel's table without a DESTROY seen. */
  swept = 0;
  readonly max: number;
  #ids = new Uint32Array(0);
  #state = new Uint32Array(0);
  #marks = new Uint32Array(0);
  #hashes = new Uint32Array(0);
  #mask = -1;
  #count = 0;
  /** Dump generation: a state's upper 24 bits say the last generation that saw the entry. */
  #gen = 0;

  constructor(max: number = conntrackMax()) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`bad entry bound ${max}`);
    this.max = max;
    this.#resize(MIN_SLOTS);
  }

  get size(): number {
    return this.#count;
  }

  /** Bytes the table holds now (its typed arrays). */
  get bytes(): number {
    return 4 * this.#ids.byteLength;
  }

  /**
   * Goes through a batch of native records (RECORD_SIZE each): events update what is known,
   * SNAPSHOT records whose state is known are removed (the later records move down). Returns
   * how many records the batch keeps.
   */
  sift(records: ArrayBuffer, count: number): number {
    const w = new Uint32Array(records, 0, count * WORDS);
    const bytes = new Uint8Array(records, 0, count * RECORD_SIZE);
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const at = i * WORDS;
      const type = (w[at + W_HEAD] as number) & 0xff;
      const id = w[at + W_ID] as number;
      let keep = true;
      if (id !== 0) {
        if (type === RecordType.DESTROY) this.#remove(id);
        else keep = this.#note(id, w, at, type === RecordType.SNAPSHOT);
      }
      if (!keep) {
        this.skipped++;
        continue;
      }
      if (kept !== i) bytes.copyWithin(kept * RECORD_SIZE, i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
      kept++;
    }
    return kept;
  }

  /**
   * A resync dump is about to be asked for: entries seen from here on (by an event or by the
   * dump) are the ones still alive when it ends.
   */
  beginDump(): void {
    this.#gen = (this.#gen + 1) & 0xffffff;
  }

  /**
   * A dump completed: an entry neither returned by it nor named by an event since beginDump()
   * is no longer in the kernel's table (its DESTROY was lost): forget it. Not after a failed dump.
   */
  endDump(): void {
    const gen = this.#gen;
    const ids = this.#ids;
    const state = this.#state;
    const stale: number[] = [];
    for (let s = 0; s < ids.length; s++) {
      if (ids[s] !== 0 && (state[s] as number) >>> 8 !== gen) stale.push(ids[s] as number);
    }
    for (const id of stale) this.#remove(id);
    this.swept += stale.length;
  }

  /** Records what the journal now holds for `id`; for a snapshot, whether it was known already. */
  #note(id: number, w: Uint32Array, at: number, snapshot: boolean): boolean {
    const state = (((w[at + W_STATUS] as number) & STATUS_KEPT) | (this.#gen << 8)) >>> 0;
    const mark = w[at + W_MARK] as number;
    const hash = tupleHash(w, at);
    const ids = this.#ids;
    let s = mix32(id) & this.#mask;
    for (;;) {
      const v = ids[s] as number;
      if (v === 0) break;
      if (v === id) {
        const same =
          ((this.#state[s] as number) & 0xff) === (state & 0xff) &&
          this.#marks[s] === mark &&
          this.#hashes[s] === hash;
        this.#state[s] = state;
        // A marked entry is always written: a flow's mark is its latest marked event's, and
        // two entries of one flow key (collapsed source ports) marked differently are told
        // apart by time, so the dump's time must reach the journal for the same mark to win.
        if (same) return !snapshot || mark !== 0;
        this.#marks[s] = mark;
        this.#hashes[s] = hash;
        return true;
      }
      s = (s + 1) & this.#mask;
    }
    // Unknown: written either way; remembered while the bound allows.
    if (this.#count >= this.max) return true;
    ids[s] = id;
    this.#state[s] = state;
    this.#marks[s] = mark;
    this.#hashes[s] = hash;
    this.#count++;
    if (this.#count * 2 > ids.length) this.#grow();
    return true;
  }

  #remove(id: number): void {
    const ids = this.#ids;
    const mask = this.#mask;
    let s = mix32(id) & mask;
    for (;;) {
      const v = ids[s] as number;
      if (v === 0) return;
      if (v === id) break;
      s = (s + 1) & mask;
    }
    // Backward-shift deletion: the entries after it in the run move up, no tombstones.
    let hole = s;
    let j = s;
    for (;;) {
      j = (j + 1) & mask;
      const v = ids[j] as number;
      if (v === 0) break;
      const home = mix32(v) & mask;
      // Moves into the hole only if its home is not in (hole, j] cyclically.
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        ids[hole] = v;
        this.#state[hole] = this.#state[j] as number;
        this.#marks[hole] = this.#marks[j] as number;
        this.#hashes[hole] = this.#hashes[j] as number;
        hole = j;
      }
    }
    ids[hole] = 0;
    this.#count--;
  }

  #grow(): void {
    // Never more slots than twice the bound needs: the table stops growing with the kernel's.
    const limit = 2 ** Math.ceil(Math.log2(2 * this.max + 2));
    if (this.#ids.length >= limit) return;
    this.#resize(this.#ids.length * 2);
  }

  #resize(slots: number): void {
    const { ids, state, marks, hashes } = {
      ids: this.#ids,
      state: this.#state,
      marks: this.#marks,
      hashes: this.#hashes,
    };
    this.#ids = new Uint32Array(slots);
    this.#state = new Uint32Array(slots);
    this.#marks = new Uint32Array(slots);
    this.#hashes = new Uint32Array(slots);
    this.#mask = slots - 1;
    for (let s = 0; s < ids.length; s++) {
      const id = ids[s] as number;
      if (id === 0) continue;
      let t = mix32(id) & this.#mask;
      while (this.#ids[t] !== 0) t = (t + 1) & this.#mask;
      this.#ids[t] = id;
      this.#state[t] = state[s] as number;
      this.#marks[t] = marks[s] as number;
      this.#hashes[t] = hashes[s] as number;
    }
  }
}

/** murmur3's finaliser: conntrack ids are hashes already, but tests and old kernels count up. */
function mix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over family, proto and both tuples' words: tells a reused id's new connection apart. */
function tupleHash(w: Uint32Array, at: number): number {
  let h = Math.imul(0x811c9dc5 ^ ((w[at + W_HEAD] as number) & HEAD_KEPT), 0x01000193);
  const end = at + W_TUPLES + TUPLE_WORDS;
  for (let k = at + W_TUPLES; k < end; k++) h = Math.imul(h ^ (w[k] as number), 0x01000193);
  return h >>> 0;
}
