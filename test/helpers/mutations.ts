// Byte-level mutations of a file (flip, overwrite, cut, insert) for fuzzing the journal reader.
import fc from 'fast-check';

export const arbByteMutation = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
);
export type ByteMutation = typeof arbByteMutation extends fc.Arbitrary<infer M> ? M : never;

/** The mutated copy (positions wrap around the buffer's length; the input is never changed). */
export function applyByteMutation(buf: Buffer, m: ByteMutation): Buffer {
  const at = m.at % (buf.length + 1);
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(buf);
      if (at < out.length) out[at] = (out[at] as number) ^ m.xor;
      return out;
    }
    case 'set': {
      const out = Buffer.from(buf);
      out.set(m.bytes.subarray(0, Math.max(0, out.length - at)), Math.min(at, out.length));
      return out;
    }
    case 'cut':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
  }
}
