// `ct-analyze redact`: a journal rewritten with keyed, prefix-preserving pseudonyms, fit to share.
import { fstatSync } from 'node:fs';
import { CtError } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import { openJournal } from '../../journal/reader.js';
import {
  checkDirectory,
  checkOutput,
  publish,
  refuseRedacted,
  removeQuietly,
  tempPath,
} from './files.js';
import { readKey } from './key.js';
import { AddressPseudonymizer } from './pseudonym.js';
import { linkOf, planRun, type RunStep } from './run-plan.js';
import {
  hex,
  redactedChain,
  sameBytes,
  UNKNOWN_PREVIOUS,
  type Written,
  writeRedacted,
} from './write.js';

export { redactedName, UNKNOWN_PREVIOUS } from './write.js';

export interface RedactCommand {
  /** The journal to redact. */
  input: string;
  /** The redacted journal to write. */
  output: string;
  /** A file of at least MIN_KEY_BYTES secret bytes; undefined when none was given. */
  keyFile: string | undefined;
  force: boolean;
}

/** Journals of rotated runs, redacted together so that each run stays one verifiable chain. */
export interface RedactRunCommand {
  /** Journals of one or more runs, in any order; each must carry a chain. */
  inputs: readonly string[];
  /** An existing directory: each journal is written there as redactedName(run, sequence). */
  outputDir: string;
  keyFile: string | undefined;
  force: boolean;
}

export interface RedactIo {
  warn(message: string): void;
  note(message: string): void;
}

export interface RedactResult {
  input: string;
  output: string;
  keyId: string;
  events: number;
  gaps: number;
  /** Host address sets rewritten: the header's and each change. */
  addressSets: number;
  /** Addresses mapped (distinct unless the cache started over: `exact` false). */
  addresses: number;
  exact: boolean;
  /** Interface names pseudonymised (distinct, `lo` not counted). */
  interfaces: number;
  /** Header strings replaced by `redacted`. */
  scrubbed: number;
  /** Header option keys left out (dotted paths): this version does not know them. */
  dropped: string[];
  /** The input had its trailer, and so has the output. */
  complete: boolean;
  /** The output's place in its run (header `chain`), null when the input is not chained. */
  chain: RedactedPlace | null;
}

/** Where a redacted journal sits in its run, and what its link to the one before it says. */
export interface RedactedPlace {
  /** The run id (32 hex digits), kept: it is random and identifies nothing. */
  run: string;
  sequence: number;
  /**
   * `previous.sha256`: none (sequence 1), `linked` (the whole-file SHA-256 of the redacted
   * predecessor written by the same call), or `unknown` (UNKNOWN_PREVIOUS).
   */
  previous: 'none' | 'linked' | 'unknown';
  /** The trailer's `next`, as redactedName names it; null when the input's trailer has none. */
  next: string | null;
}

/**
 * Writes a copy of `input` in which every address (events, reply tuples and so NAT, the host's
 * addresses in the header and in checkpoints) is mapped by the key, host and interface names are
 * pseudonyms, identifying header text is scrubbed, and the header says so (options.redacted).
 * Gaps, ports, protocols, times and counts stay. The output appears only when all went well
 * (a temporary file beside it, then a link or rename); an input without trailer gives an output
 * without trailer. A redacted input is refused: mapping twice hides which key was used.
 * A journal of a rotated run keeps its run id and sequence, but its link to the journal before
 * it becomes UNKNOWN_PREVIOUS: redactRun redacts a run so that its chain still verifies.
 */
export function redactJournal(cmd: RedactCommand, io: RedactIo): RedactResult {
  const key = readKey(cmd.keyFile, io.warn);
  const p = new AddressPseudonymizer(key);
  const reader = openJournal(cmd.input);
  let result: RedactResult;
  let written: Written;
  try {
    refuseRedacted(reader.header, cmd.input);
    checkOutput(cmd.output, cmd.force, [fstatSync(reader.fd as number)]);
    const chain = reader.header.chain;
    const temp = tempPath(cmd.output);
    written = writeRedacted(reader, temp, p, chain && redactedChain(chain, undefined));
    try {
      publish(temp, cmd.output, cmd.force);
    } catch (err) {
      removeQuietly(temp);
      throw err;
    }
    result = resultOf(cmd.input, cmd.output, p, written);
  } finally {
    reader.close();
  }
  const alone =
    result.chain?.previous === 'unknown'
      ? `it was redacted alone, without journal ${result.chain.sequence - 1} of its run: to keep a run verifiable, redact its journals together (ct-analyze redact --key KEY -o DIR JOURNAL…)`
      : undefined;
  for (const m of warningsOf(result, written, alone)) io.warn(m);
  io.note(summary(result));
  return result;
}

/**
 * Redacts journals of rotated runs together into `outputDir`, each named redactedName(run,
 * sequence), so that every run stays one chain: sorted by run and sequence, each keeps its run
 * id and sequence, its `previous.sha256` is the whole-file SHA-256 of the redacted journal
 * before it (when the original link held and that journal was given), and `previous.file` and
 * `next` name the redacted journals. `ct-analyze verify DIR/*.mpk` then says of the redacted
 * runs what it says of the originals: a hole, a missing end or a broken link stays one
 * (UNKNOWN_PREVIOUS). All or nothing: every check before any work, every output written to a
 * temporary file first, and on a failure the outputs this call published are removed again.
 */
export function redactRun(cmd: RedactRunCommand, io: RedactIo): RedactResult[] {
  const key = readKey(cmd.keyFile, io.warn);
  checkDirectory(cmd.outputDir);
  const steps = planRun(cmd);
  const temps = new Set<string>();
  const published: string[] = [];
  const done: { result: RedactResult; written: Written; why: string | undefined }[] = [];
  try {
    let before: { step: RunStep; written: Written } | undefined;
    for (const step of steps) {
      const p = new AddressPseudonymizer(key);
      const reader = openJournal(step.input);
      try {
        const chain = reader.header.chain;
        if (
          chain === undefined ||
          hex(chain.run) !== step.run ||
          chain.sequence !== step.sequence ||
          reader.header.options.redacted !== undefined
        ) {
          throw new CtError(
            'ECHANGED',
            `${step.input} changed while the run was being redacted; run redact again`,
          );
        }
        const link = linkOf(before, step, chain);
        temps.add(step.temp);
        const written = writeRedacted(reader, step.temp, p, redactedChain(chain, link.digest));
        const result = resultOf(step.input, step.output, p, written);
        done.push({ result, written, why: link.why });
        before = { step, written };
      } finally {
        reader.close();
      }
    }
    for (const step of steps) {
      publish(step.temp, step.output, cmd.force);
      temps.delete(step.temp);
      published.push(step.output);
    }
  } catch (err) {
    for (const temp of temps) removeQuietly(temp);
    for (const output of published) removeQuietly(output);
    throw err;
  }
  for (const { result, written, why } of done) {
    for (const m of warningsOf(result, written, why)) io.warn(m);
    io.note(summary(result));
  }
  return done.map((d) => d.result);
}

function resultOf(
  input: string,
  output: string,
  p: AddressPseudonymizer,
  w: Written,
): RedactResult {
  const chain = w.chain;
  return {
    input,
    output,
    keyId: p.keyId,
    events: w.events,
    gaps: w.gaps,
    addressSets: w.addressSets,
    addresses: p.computed,
    exact: !p.evicted,
    interfaces: w.interfaces,
    scrubbed: w.scrubbed,
    dropped: w.dropped,
    complete: w.complete,
    chain:
      chain === undefined
        ? null
        : {
            run: hex(chain.run),
            sequence: chain.sequence,
            previous:
              chain.previous === null
                ? 'none'
                : sameBytes(chain.previous.sha256, UNKNOWN_PREVIOUS)
                  ? 'unknown'
                  : 'linked',
            next: w.next ?? null,
          },
  };
}

/** The warnings a finished journal calls for; `unlinked` says why its previous link is unknown. */
function warningsOf(r: RedactResult, w: Written, unlinked: string | undefined): string[] {
  const out: string[] = [];
  if (!r.complete) {
    const torn = w.torn === 0 ? '' : ` (${w.torn} torn bytes at its end left out)`;
    out.push(
      `${r.input} has no trailer (its recording did not end cleanly)${torn}: ${r.output} has none either, and ct-analyze verify calls it INCOMPLETE`,
    );
  }
  if (r.dropped.length > 0) {
    out.push(
      `dropped header options this version does not know (they might identify the host): ${r.dropped.map(printable).join(', ')}`,
    );
  }
  if (r.chain?.previous === 'unknown' && unlinked !== undefined) {
    out.push(
      `${r.output} is journal ${r.chain.sequence} of run ${r.chain.run.slice(0, 8)}, and its link to the journal before it cannot be recomputed: ${unlinked}`,
    );
  }
  return out;
}

function summary(r: RedactResult): string {
  const addresses = r.exact
    ? `${r.addresses} distinct addresses`
    : `${r.addresses} address mappings`;
  const place =
    r.chain === null ? '' : `, journal ${r.chain.sequence} of run ${r.chain.run.slice(0, 8)}`;
  return `redacted ${r.events} events, ${r.gaps} gaps and ${r.addressSets} host address sets from ${r.input} into ${r.output}: ${addresses} mapped, host name and ${r.interfaces} interface names pseudonymised, ${r.scrubbed} header strings scrubbed${place} (key id ${r.keyId})`;
}
