// The text forms the export writes per event, cached: addresses (text and 16-byte form), times, dates.
import { formatAddress } from '../core/address.js';

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
/** The 12 bytes that make an IPv4 address IPv4-mapped IPv6 (::ffff:a.b.c.d), as hex. */
const MAPPED_HEX = '00000000000000000000ffff';

/** An address as the export writes it: inet_ntop text, and 16 bytes (IPv4 as ::ffff:a.b.c.d). */
export interface AddressValue {
  readonly text: string;
  /** 32 lowercase hex digits of `bin`: NDJSON's form of the binary columns. */
  readonly hex: string;
  readonly bin: Uint8Array;
  /** Its index in the current Parquet row group's dictionary; -1 when not in it. */
  slot: number;
}

/** Entries kept before the cache starts over: bounded memory for a journal of many addresses. */
const CACHE_MAX = 1 << 16;

/**
 * Addresses seen recently, by value: a journal names few distinct addresses many times, so the
 * text and hex forms are made once each. The reader gives a fresh array per event, so the key is
 * the value (IPv4: its 32-bit number; IPv6: its hex).
 */
export class AddressCache {
  readonly #v4 = new Map<number, AddressValue>();
  readonly #v6 = new Map<string, AddressValue>();

  get(a: Uint8Array): AddressValue {
    if (a.length === 4) {
      const key =
        (((a[0] as number) << 24) |
          ((a[1] as number) << 16) |
          ((a[2] as number) << 8) |
          (a[3] as number)) >>>
        0;
      let v = this.#v4.get(key);
      if (v === undefined) {
        if (this.#v4.size >= CACHE_MAX) this.#v4.clear();
        const bin = new Uint8Array(16);
        bin[10] = 0xff;
        bin[11] = 0xff;
        bin.set(a, 12);
        const hex =
          MAPPED_HEX +
          HEX[a[0] as number] +
          HEX[a[1] as number] +
          HEX[a[2] as number] +
          HEX[a[3] as number];
        v = { text: formatAddress(a), hex, bin, slot: -1 };
        this.#v4.set(key, v);
      }
      return v;
    }
    let hex = '';
    for (let i = 0; i < a.length; i++) hex += HEX[a[i] as number];
    let v = this.#v6.get(hex);
    if (v === undefined) {
      if (this.#v6.size >= CACHE_MAX) this.#v6.clear();
      v = { text: formatAddress(a), hex, bin: Uint8Array.from(a), slot: -1 };
      this.#v6.set(hex, v);
    }
    return v;
  }

  /** Forgets every entry's dictionary slot (a new row group's dictionary starts empty). */
  clearSlots(): void {
    for (const v of this.#v4.values()) v.slot = -1;
    for (const v of this.#v6.values()) v.slot = -1;
  }
}

const US_PER_DAY = 86_400_000_000;

/** RFC 3339 text of µs since the epoch with 6 fraction digits and Z; the second's text is reused. */
export class TimeText {
  #sec = Number.NaN;
  #prefix = '';
  #day = Number.NaN;
  #date = '';

  text(us: number): string {
    const sec = Math.floor(us / 1e6);
    if (sec !== this.#sec) {
      this.#sec = sec;
      this.#prefix = `${new Date(sec * 1000).toISOString().slice(0, 19)}.`;
    }
    const frac = us - sec * 1e6;
    return `${this.#prefix}${frac < 100000 ? String(frac).padStart(6, '0') : frac}Z`;
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
