// NDJSON's `,"id":…` through `"reply_dport":…` of an event, cached: every event of a connection repeats those bytes.
import type { ExportBatch } from './batch.js';
import { ascii, ByteWriter } from './ndjson-bytes.js';
import type { AddressCache, AddressValue } from './values.js';

/** The keys of one direction's columns: the original's, or the reply's (`reply_` before each). */
function sideKeys(prefix: string) {
  return {
    src: ascii(`,"${prefix}src":"`),
    dst: ascii(`","${prefix}dst":"`),
    srcBin: ascii(`","${prefix}src_bin":"`),
    dstBin: ascii(`","${prefix}dst_bin":"`),
    sport: ascii(`","${prefix}sport":`),
    dport: ascii(`,"${prefix}dport":`),
  };
}
type SideKeys = ReturnType<typeof sideKeys>;
const ORIG = sideKeys('');
const REPLY = sideKeys('reply_');
const ID = ascii(',"id":');
const ICMP_TYPE = ascii(',"icmp_type":');
const ICMP_CODE = ascii(',"icmp_code":');
const ICMP_ID = ascii(',"icmp_id":');

/** One direction's addresses (text, then hex of the 16-byte form) and ports. */
function side(
  w: ByteWriter,
  k: SideKeys,
  src: AddressValue,
  dst: AddressValue,
  sport: number,
  dport: number,
): void {
  w.raw(k.src);
  w.raw(src.textBytes);
  w.raw(k.dst);
  w.raw(dst.textBytes);
  w.raw(k.srcBin);
  w.raw(src.hexBytes);
  w.raw(k.dstBin);
  w.raw(dst.hexBytes);
  w.raw(k.sport);
  w.uint(sport);
  w.raw(k.dport);
  w.uint(dport);
}

/**
 * Words of one key: the id, three words of ports and ICMP fields, the address length, then the
 * four addresses (IPv4: one word each; IPv6: four each).
 */
const STRIDE = 21;
/** Blocks kept before the cache starts over: a connection's 4 to 40 events share one. */
export const TUPLE_BLOCKS = 1 << 14;
/** Arena bytes: room for TUPLE_BLOCKS IPv4 blocks (~250 bytes; IPv6 ~450). */
export const TUPLE_ARENA = 4 << 20;
/** More than the longest block (two IPv6 sides, ~520 bytes): a block always fits once the arena is empty. */
const BLOCK_MAX = 1024;

/**
 * The tuple block of events by value, in an open-addressing table like AddressCache's: the
 * block is made once per connection and copied once per event instead of ~30 pieces. The
 * blocks live in an arena at the end of the line buffer itself, so a copy is one copyWithin
 * (no view, no allocation per block). Bounded: the cache starts over when it holds
 * `maxBlocks` blocks or its arena is full.
 */
export class NdjsonTuples {
  readonly #addrs: AddressCache;
  readonly #maxBlocks: number;
  readonly #mask: number;
  /** Slot → block number, -1 when empty. */
  readonly #index: Int32Array;
  /** Block number → its key, STRIDE words each. */
  readonly #keys: Uint32Array;
  /** Block number → its offset in the arena, and its length. */
  readonly #at: Int32Array;
  readonly #len: Int32Array;
  #blocks = 0;
  /** The batch whose numbered connections #connBlock maps to blocks, valid where #connStamp is #stamp. */
  #batch: ExportBatch | undefined;
  #generation = 0;
  #stamp = 0;
  #connStamp = new Int32Array(0);
  #connBlock = new Int32Array(0);
  /** Writes blocks into the arena: buf is the line buffer, pos runs from `#from` to `#end`. */
  readonly #w: ByteWriter;
  readonly #from: number;
  readonly #end: number;

  /** The arena is buf[from, buf.length): the caller's buffer, which copy() writes lines into. */
  constructor(addrs: AddressCache, buf: Uint8Array, from: number, maxBlocks = TUPLE_BLOCKS) {
    this.#addrs = addrs;
    this.#maxBlocks = maxBlocks;
    let slots = 2;
    while (slots < 2 * maxBlocks) slots *= 2;
    this.#mask = slots - 1;
    this.#index = new Int32Array(slots).fill(-1);
    this.#keys = new Uint32Array(maxBlocks * STRIDE);
    this.#at = new Int32Array(maxBlocks);
    this.#len = new Int32Array(maxBlocks);
    this.#w = new ByteWriter(0);
    this.#w.buf = buf;
    this.#w.pos = from;
    this.#from = from;
    this.#end = buf.length;
  }

  /** Writes `,"id":…,"src":"…` up to the reply_dport value of event i at w.pos (w.buf is the arena's buffer). */
  copy(w: ByteWriter, b: ExportBatch, i: number): void {
    // A connection the reader numbered (format 2) finds its block in this batch's table.
    const cn = b.conn[i] as number;
    let v: number;
    if (cn >= 0) {
      if (b !== this.#batch || b.generation !== this.#generation) this.#newBatch(b);
      v = this.#connStamp[cn] === this.#stamp ? (this.#connBlock[cn] as number) : -1;
      if (v < 0) {
        v = this.#find(b, i);
        this.#connStamp[cn] = this.#stamp;
        this.#connBlock[cn] = v;
      }
    } else v = this.#find(b, i);
    const at = this.#at[v] as number;
    const len = this.#len[v] as number;
    w.buf.copyWithin(w.pos, at, at + len);
    w.pos += len;
  }

  #newBatch(b: ExportBatch): void {
    this.#batch = b;
    this.#generation = b.generation;
    this.#stamp++;
    if (this.#connStamp.length < b.n) {
      this.#connStamp = new Int32Array(b.capacity);
      this.#connBlock = new Int32Array(b.capacity);
    }
  }

  #find(b: ExportBatch, i: number): number {
    const addr = b.addr;
    const at = 16 * i;
    const len = b.family[i] === 4 ? 4 : 16;
    const id = b.id[i] as number;
    const p0 = (((b.sport[i] as number) << 16) | (b.dport[i] as number)) >>> 0;
    const p1 = (((b.replySport[i] as number) << 16) | (b.replyDport[i] as number)) >>> 0;
    const p2 =
      (((b.icmpType[i] as number) << 24) |
        ((b.icmpCode[i] as number) << 16) |
        (b.icmpId[i] as number)) >>>
      0;
    // IPv4 addresses are the first word of each of the four (batch.ts).
    const step = len === 4 ? 4 : 1;
    let h = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(p0 ^ len, 0xc2b2ae35);
    h = Math.imul(h ^ p1, 0x27d4eb2f) ^ Math.imul(p2, 0x165667b1);
    for (let k = 0; k < 16; k += step) {
      h = Math.imul(h ^ (addr[at + k] as number), 0x9e3779b1);
      h ^= h >>> 15;
    }
    const keys = this.#keys;
    const index = this.#index;
    const mask = this.#mask;
    probe: for (let s = h & mask; ; s = (s + 1) & mask) {
      const v = index[s] as number;
      if (v < 0) return this.#add(s, h, b, i, len, id, p0, p1, p2);
      const o = v * STRIDE;
      if (
        keys[o] !== id ||
        keys[o + 1] !== p0 ||
        keys[o + 2] !== p1 ||
        keys[o + 3] !== p2 ||
        keys[o + 4] !== len
      ) {
        continue;
      }
      for (let k = 0, q = o + 5; k < 16; k += step, q++) {
        if (keys[q] !== addr[at + k]) continue probe;
      }
      return v;
    }
  }

  #add(
    s: number,
    h: number,
    b: ExportBatch,
    i: number,
    len: 4 | 16,
    id: number,
    p0: number,
    p1: number,
    p2: number,
  ): number {
    const w = this.#w;
    if (this.#blocks >= this.#maxBlocks || w.pos + BLOCK_MAX > this.#end) {
      this.#index.fill(-1);
      this.#blocks = 0;
      // Block numbers the batch's table holds are no longer these blocks.
      this.#stamp++;
      w.pos = this.#from;
      s = h & this.#mask;
    }
    const v = this.#blocks++;
    const from = w.pos;
    this.#make(b, i, len);
    this.#at[v] = from;
    this.#len[v] = w.pos - from;
    const keys = this.#keys;
    const o = v * STRIDE;
    keys[o] = id;
    keys[o + 1] = p0;
    keys[o + 2] = p1;
    keys[o + 3] = p2;
    keys[o + 4] = len;
    const addr = b.addr;
    const at = 16 * i;
    const step = len === 4 ? 4 : 1;
    for (let k = 0, q = o + 5; k < 16; k += step, q++) keys[q] = addr[at + k] as number;
    this.#index[s] = v;
    return v;
  }

  /** The block's bytes at the arena's end, written as the columns are listed in schema.ts. */
  #make(b: ExportBatch, i: number, len: 4 | 16): void {
    const a = this.#addrs;
    const at = 16 * i;
    const w = this.#w;
    w.raw(ID);
    w.uint(b.id[i] as number);
    side(
      w,
      ORIG,
      a.words(b.addr, at, len),
      a.words(b.addr, at + 4, len),
      b.sport[i] as number,
      b.dport[i] as number,
    );
    w.raw(ICMP_TYPE);
    w.uint(b.icmpType[i] as number);
    w.raw(ICMP_CODE);
    w.uint(b.icmpCode[i] as number);
    w.raw(ICMP_ID);
    w.uint(b.icmpId[i] as number);
    side(
      w,
      REPLY,
      a.words(b.addr, at + 8, len),
      a.words(b.addr, at + 12, len),
      b.replySport[i] as number,
      b.replyDport[i] as number,
    );
  }
}
