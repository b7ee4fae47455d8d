// The values the export writes per event, cached: addresses (text, hex, 16 bytes), times, dates, partition names.
import { addressWords, wordsAddress } from '../../journal/event-columns.js';
import { formatAddress } from '../core/address.js';

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** An address as the export writes it: inet_ntop text, and 16 bytes (IPv4 as ::ffff:a.b.c.d). */
export interface AddressValue {
  readonly text: string;
  /** `text` as ASCII bytes. */
  readonly textBytes: Uint8Array;
  /** 32 lowercase hex digits of `bin` as ASCII bytes: NDJSON's form of the binary columns. */
  readonly hexBytes: Uint8Array;
  readonly bin: Uint8Array;
  /**
   * Its index in the current Parquet dictionary of each address column (src, dst, reply src,
   * reply dst): slots[c] is valid while dicts[c] is that dictionary's generation.
   */
  readonly slots: Int32Array;
  readonly dicts: Int32Array;
}

/** Entries kept before the cache starts over: bounded memory for a journal of many addresses. */
const CACHE_MAX = 1 << 16;
const SLOTS = CACHE_MAX * 2;

/**
 * Addresses seen recently, by value: a journal names few distinct addresses many times, so the
 * text and hex forms are made once each. The reader gives a fresh array per event, so the key
 * is the value: the 4 big-endian words of the 16-byte form and the length, in an
 * open-addressing table.
 */
export class AddressCache {
  readonly #keys = new Uint32Array(SLOTS * 4);
  /** 4 or 16 per slot: ::ffff:10.0.0.1 and 10.0.0.1 share a 16-byte form but not a text. */
  readonly #lengths = new Uint8Array(SLOTS);
  readonly #index = new Int32Array(SLOTS).fill(-1);
  #values: AddressValue[] = [];

  readonly #scratch = new Uint32Array(4);

  /** The value of a 4- or 16-byte address. */
  get(a: Uint8Array): AddressValue {
    addressWords(a, this.#scratch, 0);
    return this.words(this.#scratch, 0, a.length === 4 ? 4 : 16);
  }

  /** The value of the address in words[at …] (journal/event-columns.ts' words), 4 or 16 bytes. */
  words(words: Uint32Array, at: number, length: 4 | 16): AddressValue {
    let w0 = 0;
    let w1 = 0;
    let w2 = 0xffff;
    let w3: number;
    if (length === 4) {
      w3 = words[at] as number;
    } else {
      w0 = words[at] as number;
      w1 = words[at + 1] as number;
      w2 = words[at + 2] as number;
      w3 = words[at + 3] as number;
    }
    let h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1), 0x85ebca6b) ^ Math.imul(w2 ^ w3, 0xc2b2ae35);
    h ^= h >>> 15;
    h = Math.imul(h ^ w3, 0x27d4eb2f);
    h ^= h >>> 13;
    const keys = this.#keys;
    const index = this.#index;
    for (let s = h & (SLOTS - 1); ; s = (s + 1) & (SLOTS - 1)) {
      const v = index[s] as number;
      if (v < 0) return this.#add(s, wordsAddress(words, at, length), w0, w1, w2, w3);
      const k = s * 4;
      if (
        keys[k + 3] === w3 &&
        keys[k] === w0 &&
        keys[k + 1] === w1 &&
        keys[k + 2] === w2 &&
        this.#lengths[s] === length
      ) {
        return this.#values[v] as AddressValue;
      }
    }
  }

  #add(s: number, a: Uint8Array, w0: number, w1: number, w2: number, w3: number): AddressValue {
    if (this.#values.length >= CACHE_MAX) {
      this.#index.fill(-1);
      this.#values = [];
      return this.get(a);
    }
    const bin = new Uint8Array(16);
    if (a.length === 4) {
      bin[10] = 0xff;
      bin[11] = 0xff;
      bin.set(a, 12);
    } else bin.set(a);
    let hex = '';
    for (let i = 0; i < 16; i++) hex += HEX[bin[i] as number];
    const text = formatAddress(a);
    const v: AddressValue = {
      text,
      textBytes: Uint8Array.from(Buffer.from(text, 'latin1')),
      hexBytes: Uint8Array.from(Buffer.from(hex, 'latin1')),
      bin,
      slots: new Int32Array(4),
      dicts: new Int32Array(4),
    };
    const k = s * 4;
    this.#keys[k] = w0;
    this.#keys[k + 1] = w1;
    this.#keys[k + 2] = w2;
    this.#keys[k + 3] = w3;
    this.#lengths[s] = a.length;
    this.#index[s] = this.#values.length;
    this.#values.push(v);
    return v;
  }
}

/** Microseconds in a UTC day. */
export const US_PER_DAY = 86_400_000_000;

/** RFC 3339 text of µs since the epoch with 6 fraction digits and Z; the second's text is reused. */
export class TimeText {
  #sec = Number.NaN;
  #prefix = '';
  #prefixBytes = new Uint8Array(0);
  #day = Number.NaN;
  #date = '';

  text(us: number): string {
    const sec = this.#second(us);
    const frac = us - sec * 1e6;
    return `${this.#prefix}${String(frac).padStart(6, '0')}Z`;
  }

  /** `YYYY-MM-DDTHH:MM:SS.` of the time's second, as bytes; the fraction is us - second × 10⁶. */
  prefixBytes(us: number): Uint8Array {
    this.#second(us);
    return this.#prefixBytes;
  }

  #second(us: number): number {
    const sec = Math.floor(us / 1e6);
    if (sec !== this.#sec) {
      this.#sec = sec;
      this.#prefix = `${new Date(sec * 1000).toISOString().slice(0, 19)}.`;
      this.#prefixBytes = Uint8Array.from(Buffer.from(this.#prefix, 'latin1'));
    }
    return sec;
  }

  /** The UTC day number of a time (the `date=` partition). */
  static day(us: number): number {
    return Math.floor(us / US_PER_DAY);
  }

  /** YYYY-MM-DD of a UTC day number. */
  date(day: number): string {
    if (day !== this.#day) {
      this.#day = day;
      this.#date = new Date(day * 86_400_000).toISOString().slice(0, 10);
    }
    return this.#date;
  }
}

const HIVE_ESCAPED = '"#%\'*/:=?\\{[]^';

/**
 * A partition value as Hive writes it into a path (FileUtils.escapePathName): control
 * characters, DEL and the characters of HIVE_ESCAPED percent-encoded (/ as %2F); empty is
 * Hive's default partition. So `host=` names one directory whatever the host name holds.
 */
export function hiveEscape(value: string): string {
  if (value === '') return '__HIVE_DEFAULT_PARTITION__';
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x20 || c === 0x7f || HIVE_ESCAPED.includes(ch)) {
      out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    } else out += ch;
  }
  return out;
}
