// The journal format numbers this version reads and writes, and --format-version's one parser (no msgpackr: CLIs parse options with it).
import { CtError, Exit } from '../common/errors.js';

/**
 * The formats this version reads and writes. They differ only in the events frames' payload
 * (format 2 compresses it); every other frame, the digest chain and the torn-tail rules are one.
 */
export const FORMAT_VERSIONS: readonly FormatVersion[] = Object.freeze([1, 2] as const);
export type FormatVersion = 1 | 2;

/** Whether `v` is a format this version reads and writes. */
export function isFormatVersion(v: unknown): v is FormatVersion {
  return v === 1 || v === 2;
}

/**
 * `--format-version` of ct-record and ct-analyze import: the one rule, the one message
 * (a CtError: the CLIs' optionParser turns it into commander's usage error).
 */
export function parseFormatVersion(value: string): FormatVersion {
  const v = /^\d$/.test(value) ? Number(value) : Number.NaN;
  if (!isFormatVersion(v)) {
    throw new CtError(
      'EUSAGE',
      'give 2 (compressed events, the default) or 1 (for readers older than format 2).',
      { exit: Exit.USAGE },
    );
  }
  return v;
}
