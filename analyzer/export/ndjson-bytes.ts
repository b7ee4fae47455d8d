// Bytes written in place for NDJSON: ASCII constants, copies and decimal digits, no string per value.

/** Plain Uint8Arrays (not Buffers): every array raw() copies has one shape, which keeps it fast. */
export const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** UTF-8 bytes of a string, as a plain Uint8Array. */
export const utf8 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf8'));

/** The two digits of 0…99: two digits per division halves the divisions of a long number. */
const TENS = Uint8Array.from({ length: 100 }, (_, n) => 48 + Math.floor(n / 10));
const ONES = Uint8Array.from({ length: 100 }, (_, n) => 48 + (n % 10));

/** A growable-once byte buffer with a write position: what lines and cached pieces are built in. */
export class ByteWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  raw(b: Uint8Array): void {
    // A native copy: faster than a byte loop even for a 10-byte key, measured.
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A non-negative integer up to 2^53 in decimal. */
  uint(n: number): void {
    const buf = this.buf;
    if (n < 10) {
      buf[this.pos++] = 48 + n;
      return;
    }
    // NaN, fractions and the unsafe: digit by digit as it always was (a journal holds none).
    if (!(n <= Number.MAX_SAFE_INTEGER) || n !== Math.floor(n)) {
      this.#uintSlow(n);
      return;
    }
    if (n < 100) {
      const p = this.pos;
      buf[p] = TENS[n] as number;
      buf[p + 1] = ONES[n] as number;
      this.pos = p + 2;
      return;
    }
    let len = 3;
    for (let t = 1000; t <= n; t *= 10) len++;
    let p = this.pos + len;
    this.pos = p;
    while (n >= 100) {
      const q = Math.floor(n / 100);
      const r = n - q * 100;
      buf[--p] = ONES[r] as number;
      buf[--p] = TENS[r] as number;
      n = q;
    }
    if (n >= 10) {
      buf[--p] = ONES[n] as number;
      buf[--p] = TENS[n] as number;
    } else buf[--p] = 48 + n;
  }

  /** A value and the constant text after it (NDJSON's pieces between values). */
  uintThen(n: number, after: Uint8Array): void {
    this.uint(n);
    this.raw(after);
  }

  #uintSlow(n: number): void {
    const d: number[] = [];
    while (n >= 10) {
      const q = Math.floor(n / 10);
      d.push(48 + (n - q * 10));
      n = q;
    }
    d.push(48 + n);
    const buf = this.buf;
    let p = this.pos;
    for (let k = d.length - 1; k >= 0; k--) buf[p++] = d[k] as number;
    this.pos = p;
  }

  /** Exactly six digits (a time's fraction). */
  six(n: number): void {
    const buf = this.buf;
    const p = this.pos;
    for (let i = 5; i >= 0; i--) {
      const q = Math.floor(n / 10);
      buf[p + i] = 48 + (n - q * 10);
      n = q;
    }
    this.pos = p + 6;
  }

  /** six() of an integer 0…999999 (a time's fraction), two digits per division. */
  sixInt(n: number): void {
    const buf = this.buf;
    const p = this.pos;
    const hi = Math.floor(n / 10000);
    const rest = n - hi * 10000;
    const mid = Math.floor(rest / 100);
    const lo = rest - mid * 100;
    buf[p] = TENS[hi] as number;
    buf[p + 1] = ONES[hi] as number;
    buf[p + 2] = TENS[mid] as number;
    buf[p + 3] = ONES[mid] as number;
    buf[p + 4] = TENS[lo] as number;
    buf[p + 5] = ONES[lo] as number;
    this.pos = p + 6;
  }

  /** The bytes written so far, copied out; the writer starts over. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }
}
