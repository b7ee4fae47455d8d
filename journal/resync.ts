// After a bad frame, the search for the next good one: bounded, so any journal is judged in time linear in its size.
import { FRAME_HEADER_SIZE, MAX_FRAME } from './format.js';
import { checkFrame, knownKind, plausiblePayload } from './frame.js';

/**
 * The resync scan's budget (docs/journal-format.md, reading rule 3), so any file is judged in
 * time linear in its size: bytes of CRC per byte of the window the scan covers, what each
 * candidate costs beyond its CRC, and how many candidates it checks at most. Random bytes cost
 * ~45 CRC bytes per byte covered at worst (~90 candidates per 16 MiB, 8 MiB each on average):
 * they never reach it; 16 MiB of candidates crafted to look like 16 MiB frames would otherwise
 * cost 2^22 CRCs of 16 MiB, hours.
 */
const SCAN_CRC_BYTES_PER_BYTE = 128;
const SCAN_CALL_BYTES = 64;
const SCAN_MAX_CANDIDATES = 65_536;
/** The scan spent its budget on candidates that all failed their CRC. */
export const GAVE_UP = Symbol('gave up');

/**
 * First offset ≥ from holding a whole frame of a v1 kind whose payload starts as that kind's
 * does, with a good CRC; undefined when there is none; GAVE_UP when the candidates failing
 * their CRC exhaust the scan's budget (SCAN_CRC_BYTES_PER_BYTE, SCAN_MAX_CANDIDATES). The
 * damaged frame was at most MAX_FRAME long, so the next real one starts within that window.
 * The payload test keeps the CRCs computed over random bytes (each candidate up to 16 MiB) to
 * a few per megabyte; the budget bounds what bytes crafted to pass it can cost.
 */
export function scanForFrame(
  from: number,
  size: number,
  chunk: number,
  read: (buf: Buffer, off: number, len: number, pos: number) => number,
): number | undefined | typeof GAVE_UP {
  const MIN = FRAME_HEADER_SIZE + 1; // a payload is one msgpack value: at least one byte
  const last = Math.min(size - MIN, from - 1 + FRAME_HEADER_SIZE + MAX_FRAME);
  let budget = SCAN_CRC_BYTES_PER_BYTE * Math.max(0, last + MIN - from);
  let checked = 0;
  const win = Buffer.allocUnsafe(Math.max(chunk, 2 * MIN));
  let whole: Buffer | undefined;
  let winStart = 0;
  let winLen = 0;
  for (let p = from; p <= last; p++) {
    if (p + MIN > winStart + winLen) {
      winStart = p;
      winLen = read(win, 0, Math.min(win.length, size - p), p);
      if (winLen < MIN) return undefined;
    }
    const o = p - winStart;
    const kind = win[o + 8] as number;
    if (!knownKind(kind) || !plausiblePayload(kind, win[o + FRAME_HEADER_SIZE] as number)) {
      continue;
    }
    const length = win.readUInt32LE(o);
    if (length === 0 || length > MAX_FRAME || p + FRAME_HEADER_SIZE + length > size) {
      continue;
    }
    const total = FRAME_HEADER_SIZE + length;
    // Each candidate costs its CRC and a call, so a run of tiny ones counts too.
    budget -= total + SCAN_CALL_BYTES;
    if (budget < 0 || ++checked > SCAN_MAX_CANDIDATES) return GAVE_UP;
    if (o + total <= winLen) {
      if (checkFrame(win, o, total).ok) return p;
      continue;
    }
    if (whole === undefined || whole.length < total) whole = Buffer.allocUnsafe(total);
    if (read(whole, 0, total, p) === total && checkFrame(whole, 0, total).ok) return p;
  }
  return undefined;
}

/** A frame that did not read, in words: 'short' is the file ending inside it. */
export function whyNot(why: string): string {
  return why === 'short' ? 'frame cut short' : why;
}

/**
 * Why a bad frame is corruption, not a torn tail: a valid frame follows it, or (GAVE_UP) more
 * bytes shaped like frames follow it than a crash leaves, and the scan stopped checking them.
 */
export function afterBadFrame(why: string, next: number | typeof GAVE_UP): string {
  if (next !== GAVE_UP) return `${whyNot(why)}, yet a valid frame follows at byte ${next}`;
  return `${whyNot(why)}, and so many bytes after it look like frames with bad checksums that the search for a next one gave up: damaged or forged, not a torn tail`;
}
