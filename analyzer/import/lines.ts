// A capture's bytes, arriving in chunks, cut into numbered lines of bounded length.
import { StringDecoder } from 'node:string_decoder';

/**
 * Longest line read whole (characters, a final \r included). conntrack prints a few hundred;
 * anything longer is not an entry, and cutting it keeps memory bounded on a file with no
 * newlines at all.
 */
export const MAX_LINE = 65_536;
/** What is kept of a longer line, for its warning. */
export const OVERLONG_KEPT = 1_000;

/**
 * Cuts UTF-8 text arriving in chunks of bytes into lines at \n, dropping a \r before it,
 * wherever the chunk borders fall (inside a line, between \r and \n, inside a character), and
 * numbers them from 1. A final line without a newline is a line; the empty piece after a final
 * newline is not. A line longer than MAX_LINE is handed on cut (`overlong`), the rest of it
 * skipped, so nothing held grows with the input.
 */
export class LineSplitter {
  readonly #onLine: (text: string, line: number, overlong: boolean) => void;
  readonly #decoder = new StringDecoder('utf8');
  /** The start of a line whose newline has not come yet. */
  #carry = '';
  #overlong = false;
  #line = 0;

  constructor(onLine: (text: string, line: number, overlong: boolean) => void) {
    this.#onLine = onLine;
  }

  /** Lines handed on so far. */
  get lines(): number {
    return this.#line;
  }

  push(chunk: Uint8Array): void {
    this.#take(this.#decoder.write(chunk));
  }

  /** The input ended: the last line, if it had no newline. */
  end(): void {
    this.#take(this.#decoder.end());
    if (this.#carry !== '' || this.#overlong) this.#emit('');
  }

  #take(text: string): void {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      this.#emit(text.slice(from, nl));
      from = nl + 1;
    }
    if (from < text.length && !this.#overlong) this.#hold(text.slice(from));
  }

  #emit(last: string): void {
    let overlong = this.#overlong;
    // An overlong line's carry is already its kept beginning; the rest is dropped.
    let text = overlong ? this.#carry : this.#carry + last;
    if (!overlong && text.length > MAX_LINE) {
      overlong = true;
      text = text.slice(0, OVERLONG_KEPT);
    }
    if (!overlong && text.endsWith('\r')) text = text.slice(0, -1);
    this.#carry = '';
    this.#overlong = false;
    this.#onLine(text, ++this.#line, overlong);
  }

  #hold(piece: string): void {
    this.#carry += piece;
    if (this.#carry.length > MAX_LINE) {
      this.#carry = this.#carry.slice(0, OVERLONG_KEPT);
      this.#overlong = true;
    }
  }
}
