// The self-checking frame envelope: length | crc32 | kind | payload.
import { crc32 } from 'node:zlib';
import { FRAME_HEADER_SIZE, FrameKind, MAX_FRAME } from './format.js';

/** One whole frame in a single buffer, so a writer can emit it with one write. */
export function encodeFrame(kind: number, payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME) {
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds MAX_FRAME`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  frame[8] = kind;
  frame.set(payload, FRAME_HEADER_SIZE);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

export type FrameCheck =
  /**
   * A whole frame with a good CRC; payload is buf[at + 9, at + 9 + length). Its kind may be one
   * this version does not know: the CRC says it was written so, and the reader decides.
   */
  | { ok: true; kind: number; length: number }
  /** Not enough bytes in buf to decide: `need` bytes from the frame start would. */
  | { ok: false; need: number }
  /** Damaged: the reason, for messages. */
  | { ok: false; need: 0; reason: string };

/** Checks the frame starting at buf[at]; `avail` bytes from `at` are valid in buf. */
export function checkFrame(buf: Uint8Array, at: number, avail: number): FrameCheck {
  if (avail < FRAME_HEADER_SIZE) return { ok: false, need: FRAME_HEADER_SIZE };
  const length = readU32(buf, at);
  if (length > MAX_FRAME) return { ok: false, need: 0, reason: `frame length ${length} > max` };
  if (avail < FRAME_HEADER_SIZE + length) return { ok: false, need: FRAME_HEADER_SIZE + length };
  const crc = crc32(buf.subarray(at + 8, at + FRAME_HEADER_SIZE + length));
  if (crc !== readU32(buf, at + 4)) return { ok: false, need: 0, reason: 'checksum mismatch' };
  return { ok: true, kind: buf[at + 8] as number, length };
}

function readU32(buf: Uint8Array, at: number): number {
  return (
    ((buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)) >>>
    0
  );
}

/** Kinds format v1 defines; the forward scan for a next frame looks for these only. */
export function knownKind(kind: number): boolean {
  return kind >= FrameKind.HEADER && kind <= FrameKind.CHECKPOINT;
}

/**
 * Whether a payload of this kind may start with this byte: events frames hold one msgpack
 * array, every other kind one map (fixarray/array16/array32, fixmap/map16/map32).
 */
export function plausiblePayload(kind: number, first: number): boolean {
  if (kind === FrameKind.EVENTS)
    return (first >= 0x90 && first <= 0x9f) || first === 0xdc || first === 0xdd;
  return (first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf;
}
