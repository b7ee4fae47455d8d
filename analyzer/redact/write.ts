// One journal rewritten with pseudonyms into a temporary file, and the names and links a redacted run carries.
import {
  type AddressSet,
  DIGEST_SIZE,
  isFormatVersion,
  type JournalChain,
  sequencePath,
} from '../../journal/format.js';
import type { JournalReader } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import type { AddressPseudonymizer } from './pseudonym.js';
import { HeaderScrub, redactEvent } from './scrub.js';

/**
 * `previous.sha256` of a redacted journal whose redacted predecessor's digest is not known (it
 * was redacted alone, its predecessor was not given, or the original link did not hold): no
 * file has this digest, so `ct-analyze verify` calls that link broken, as it is.
 */
export const UNKNOWN_PREVIOUS: Uint8Array = new Uint8Array(DIGEST_SIZE);

/**
 * The name of journal `sequence` of a redacted run, in its output directory and in its
 * neighbours' `previous.file` and `next`: `run-` + the run id's first 8 hex digits, numbered as
 * ct-record numbers a run (`run-1a2b3c4d-000002.mpk`). The original names are not kept: a name
 * such as `fw1-000002.mpk` says which host recorded it.
 */
export function redactedName(run: Uint8Array, sequence: number): string {
  return sequencePath(`run-${Buffer.from(run).toString('hex').slice(0, 8)}.mpk`, sequence);
}

/** What writeRedacted read and wrote. */
export interface Written {
  events: number;
  gaps: number;
  addressSets: number;
  interfaces: number;
  scrubbed: number;
  dropped: string[];
  complete: boolean;
  /** Torn bytes at the input's end, left out. */
  torn: number;
  /** The chain written, if any, and the next journal the trailer names. */
  chain: JournalChain | undefined;
  next: string | undefined;
  /** SHA-256 (hex) of the whole redacted file. */
  sha256: string;
  /** SHA-256 (hex) of the whole input when it has its trailer (else the link cannot be checked). */
  inputSha256: string | undefined;
}

/**
 * Writes the redacted copy of the journal `reader` has open to `temp`, with `chain` (already
 * redacted) in its header; on failure `temp` is gone. The caller publishes `temp`.
 */
export function writeRedacted(
  reader: JournalReader,
  temp: string,
  p: AddressPseudonymizer,
  chain: JournalChain | undefined,
): Written {
  const scrub = new HeaderScrub(reader.header, p);
  const header = { ...scrub.header(), ...(chain === undefined ? {} : { chain }) };
  // The input's format, whatever the newest is: a redacted copy must open where its original did.
  const formatVersion = reader.header.format;
  if (!isFormatVersion(formatVersion)) throw new Error(`redact: format ${formatVersion} read`);
  const w = JournalWriter.create(temp, header, { force: true, formatVersion });
  let sets = reader.addressSets.length;
  const noteSets = () => {
    const all = reader.addressSets;
    for (; sets < all.length; sets++) {
      w.noteAddresses(scrub.addressSet(all[sets] as AddressSet));
    }
  };
  let next: string | undefined;
  try {
    for (const item of reader.items()) {
      // A checkpoint that changed the addresses was read before this item's frame.
      noteSets();
      if (item.kind === 'events') w.append(item.events.map((ev) => redactEvent(ev, p)));
      else w.appendGap(scrub.gap(item.gap));
    }
    noteSets();
    const trailer = reader.trailer;
    if (trailer !== undefined) {
      // The run goes on in the next journal: named as this run's redacted journals are.
      if (trailer.next !== undefined && chain !== undefined) {
        next = redactedName(chain.run, chain.sequence + 1);
      }
      w.close({ stop: trailer.stop, ...(next === undefined ? {} : { next }) });
    } else {
      // Never launder an unfinished recording into a finished one: no trailer in, none out.
      w.closeAfterFailure();
    }
  } catch (err) {
    w.abandon();
    throw err;
  }
  return {
    events: w.events,
    gaps: w.gaps,
    addressSets: reader.addressSets.length,
    interfaces: scrub.interfaces,
    scrubbed: scrub.scrubbed,
    dropped: scrub.dropped,
    complete: reader.trailer !== undefined,
    torn: reader.tail?.ignoredBytes ?? 0,
    chain,
    next,
    sha256: w.sha256,
    inputSha256: reader.sha256,
  };
}

/** The input's chain as the redacted journal carries it; `previous` undefined: UNKNOWN_PREVIOUS. */
export function redactedChain(chain: JournalChain, previous: Uint8Array | undefined): JournalChain {
  return {
    run: chain.run,
    sequence: chain.sequence,
    previous:
      chain.previous === null
        ? null
        : {
            sha256: previous ?? UNKNOWN_PREVIOUS,
            file: redactedName(chain.run, chain.sequence - 1),
          },
  };
}

export const hex = (a: Uint8Array) => Buffer.from(a).toString('hex');

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
