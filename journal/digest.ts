// The whole-journal digest: SHA-256 over the file's bytes in order, readable at any frame boundary.
import { createHash, type Hash } from 'node:crypto';

export class JournalDigest {
  readonly #hash: Hash;

  constructor(hash: Hash = createHash('sha256')) {
    this.#hash = hash;
  }

  update(bytes: Uint8Array): void {
    this.#hash.update(bytes);
  }

  /** The digest of everything so far; the running hash goes on (a copy is finalised). */
  value(): Buffer {
    return this.#hash.copy().digest();
  }

  copy(): JournalDigest {
    return new JournalDigest(this.#hash.copy());
  }
}

/** Constant-time is not needed (nothing secret); equal lengths and bytes are. */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
