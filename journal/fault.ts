// A journal that cannot be trusted past a byte offset: damaged (ECORRUPT) or altered (EMODIFIED).
import { CtError } from '../common/errors.js';

export type FaultCode = 'ECORRUPT' | 'EMODIFIED';

/** A CtError that also names where and why, so `ct-analyze verify` can print it in one line. */
export class JournalFault extends CtError {
  constructor(
    code: FaultCode,
    readonly path: string,
    /** File offset of the frame (or byte) at fault. */
    readonly offset: number,
    /** What is wrong there, e.g. `checksum mismatch` or `digest mismatch at checkpoint 2`. */
    readonly why: string,
    /** Whether a frame starts at `offset` (else it is any byte, e.g. the first after a trailer). */
    readonly atFrame = true,
  ) {
    super(code, faultMessage(code, path, offset, why));
  }
}

function faultMessage(code: FaultCode, path: string, offset: number, why: string): string {
  if (code === 'EMODIFIED') {
    return `${path} was modified after it was recorded: ${why} (frame at byte ${offset}): frames were removed, reordered or replaced; ask for the original journal (ct-analyze verify checks one)`;
  }
  return `${path} is corrupt at byte ${offset}: ${why}. Everything before that byte is readable: restore the file from a copy, or keep that part with \`head -c ${offset}\``;
}
