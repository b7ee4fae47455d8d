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
  /** A whole frame with a good CRC; payload is buf[payloadStart, payloadStart + length). */
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
  const kind = buf[at + 8] as number;
  if (kind < FrameKind.HEADER || kind > FrameKind.CHECKPOINT) {
    return { ok: false, need: 0, reason: `unknown frame kind ${kind}` };
  }
  if (avail < FRAME_HEADER_SIZE + length) return { ok: false, need: FRAME_HEADER_SIZE + length };
  const crc = crc32(buf.subarray(at + 8, at + FRAME_HEADER_SIZE + length));
  if (crc !== readU32(buf, at + 4)) return { ok: false, need: 0, reason: 'CRC mismatch' };
  return { ok: true, kind, length };
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
