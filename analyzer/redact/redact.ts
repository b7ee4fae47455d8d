// `ct-analyze redact`: a journal rewritten with keyed, prefix-preserving pseudonyms, fit to share.
import {
  closeSync,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CtError, Exit, sysCode } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import {
  type AddressSet,
  DIGEST_SIZE,
  type JournalChain,
  type JournalHeader,
  sequencePath,
} from '../../journal/format.js';
import { type JournalReader, openJournal } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import { AddressPseudonymizer, MIN_KEY_BYTES } from './pseudonym.js';
import { HeaderScrub, redactEvent } from './scrub.js';

/** A key file larger than this is not a key (a journal given by mistake, say). */
export const MAX_KEY_BYTES = 64 * 1024;
const MAKE_KEY = 'make one with: head -c 32 /dev/urandom > redact.key && chmod 600 redact.key';

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

/** The key's bytes; CtError (exit 2) saying how to make one when it is missing or too short. */
export function readKey(path: string | undefined, warn: (m: string) => void): Uint8Array {
  if (path === undefined) {
    throw new CtError(
      'ENOKEY',
      `redact needs --key FILE, a secret of at least ${MIN_KEY_BYTES} random bytes (the same key maps journals alike): ${MAKE_KEY}`,
      { exit: Exit.USAGE },
    );
  }
  const failed = (err: unknown) =>
    new CtError(
      sysCode(err) ?? 'EKEY',
      `cannot read the key file ${path}: ${(err as Error).message}; give the file of random bytes, or ${MAKE_KEY}`,
      { exit: Exit.USAGE, cause: err },
    );
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw failed(err);
  }
  try {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw failed(err);
    }
    if (!st.isFile()) {
      throw new CtError('EKEY', `the key file ${path} is not a regular file: ${MAKE_KEY}`, {
        exit: Exit.USAGE,
      });
    }
    if (st.size > MAX_KEY_BYTES) {
      throw new CtError(
        'EKEY',
        `the key file ${path} holds ${st.size} bytes, not a key (at most ${MAX_KEY_BYTES}): give the key file, or ${MAKE_KEY}`,
        { exit: Exit.USAGE },
      );
    }
    const buf = Buffer.alloc(st.size);
    let got = 0;
    try {
      for (let n = -1; n !== 0 && got < buf.length; got += n) {
        n = readSync(fd, buf, got, buf.length - got, got);
      }
    } catch (err) {
      throw failed(err);
    }
    if (got < MIN_KEY_BYTES) {
      throw new CtError(
        'EKEY',
        `the key file ${path} holds ${got} bytes; a key needs at least ${MIN_KEY_BYTES} random bytes: ${MAKE_KEY}`,
        { exit: Exit.USAGE },
      );
    }
    if ((st.mode & 0o044) !== 0) {
      warn(
        `the key file ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): whoever reads it can undo the redaction; chmod 600 ${path}`,
      );
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
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

/** What writeRedacted read and wrote. */
interface Written {
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
function writeRedacted(
  reader: JournalReader,
  temp: string,
  p: AddressPseudonymizer,
  chain: JournalChain | undefined,
): Written {
  const scrub = new HeaderScrub(reader.header, p);
  const header = { ...scrub.header(), ...(chain === undefined ? {} : { chain }) };
  const w = JournalWriter.create(temp, header, { force: true });
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
function redactedChain(chain: JournalChain, previous: Uint8Array | undefined): JournalChain {
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

/** One journal of a run to redact, checked and named before any work. */
interface RunStep {
  input: string;
  /** Run id, 32 hex digits. */
  run: string;
  sequence: number;
  output: string;
  temp: string;
}

/**
 * The redacted predecessor's digest when the step continues the one written just before it and
 * the original link held; else undefined, with why (for the warning).
 */
function linkOf(
  before: { step: RunStep; written: Written } | undefined,
  step: RunStep,
  chain: JournalChain,
): { digest: Uint8Array | undefined; why: string | undefined } {
  const prev = chain.previous;
  if (prev === null) return { digest: undefined, why: undefined };
  const want = chain.sequence - 1;
  if (before === undefined || before.step.run !== step.run || before.step.sequence !== want) {
    return {
      digest: undefined,
      why: `journal ${want} of its run (${printable(prev.file)}) was not given, and ct-analyze verify will say so`,
    };
  }
  const original = before.written.inputSha256;
  if (original === undefined) {
    return {
      digest: undefined,
      why: `${before.step.input} before it has no trailer, so the link cannot be checked, in the original as in the copy`,
    };
  }
  if (hex(prev.sha256) !== original) {
    return {
      digest: undefined,
      why: `it does not follow ${before.step.input} in the original either (its previous sha256 differs): the link stays broken`,
    };
  }
  return { digest: Buffer.from(before.written.sha256, 'hex'), why: undefined };
}

/**
 * Every input opened once for its header: each chained and not redacted, no journal given twice,
 * no two with one place in a run, every output free (or --force). Sorted by run (in the order
 * the runs first appear) and sequence.
 */
function planRun(cmd: RedactRunCommand): RunStep[] {
  const steps: (RunStep & { dev: number; ino: number })[] = [];
  for (const input of cmd.inputs) {
    const reader = openJournal(input);
    try {
      refuseRedacted(reader.header, input);
      const chain = reader.header.chain;
      if (chain === undefined) {
        throw new CtError(
          'ENOCHAIN',
          `${input} is not a journal of a rotated run (its header has no chain): redact it on its own, with -o FILE`,
          { exit: Exit.USAGE },
        );
      }
      const st = fstatSync(reader.fd as number);
      const run = hex(chain.run);
      const same = steps.find((s) => s.dev === st.dev && s.ino === st.ino);
      if (same !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${same.input} are one journal: give it once`,
          {
            exit: Exit.USAGE,
          },
        );
      }
      const twin = steps.find((s) => s.run === run && s.sequence === chain.sequence);
      if (twin !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${twin.input} are both journal ${chain.sequence} of run ${run.slice(0, 8)}: give only the one that belongs to the run (ct-analyze verify tells which)`,
          { exit: Exit.USAGE },
        );
      }
      const output = join(cmd.outputDir, redactedName(chain.run, chain.sequence));
      const clash = steps.find((s) => s.output === output);
      if (clash !== undefined) {
        throw new CtError(
          'EDUPLICATE',
          `${input} and ${clash.input} are of two runs whose ids start alike (${run.slice(0, 8)}): both would be ${output}; redact each run into its own directory`,
          { exit: Exit.USAGE },
        );
      }
      steps.push({
        input,
        run,
        sequence: chain.sequence,
        output,
        temp: tempPath(output),
        dev: st.dev,
        ino: st.ino,
      });
    } finally {
      reader.close();
    }
  }
  // After all inputs are known: an output must be none of them, whatever their names.
  for (const s of steps) checkOutput(s.output, cmd.force, steps);
  const runs = [...new Set(steps.map((s) => s.run))];
  return steps
    .map(({ dev: _d, ino: _i, ...s }) => s)
    .sort((a, b) => runs.indexOf(a.run) - runs.indexOf(b.run) || a.sequence - b.sequence);
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

function refuseRedacted(header: JournalHeader, input: string): void {
  const already = header.options.redacted;
  if (already !== undefined) {
    throw new CtError(
      'EREDACTED',
      `${input} is redacted already (${describeMark(already)}): share it as it is; to redact with another key, start from the original journal`,
      { exit: Exit.USAGE },
    );
  }
}

/** The temporary file an output is written to before it takes its name. */
function tempPath(output: string): string {
  return join(dirname(output), `.${basename(output)}.${process.pid}.redact`);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or never made: nothing to clean up.
  }
}

const hex = (a: Uint8Array) => Buffer.from(a).toString('hex');

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

function describeMark(mark: unknown): string {
  if (mark !== null && typeof mark === 'object' && !Array.isArray(mark)) {
    const m = mark as Record<string, unknown>;
    if (typeof m.scheme === 'string' && typeof m.keyId === 'string') {
      return printable(`scheme ${m.scheme}, key id ${m.keyId}`);
    }
  }
  return 'its header says so';
}

/**
 * Refuses before any work: an existing output without --force (as import does), a symbolic
 * link or a directory in its place, and an input (by device and inode) as the output.
 */
function checkOutput(
  output: string,
  force: boolean,
  inputs: readonly { dev: number; ino: number }[],
): void {
  let st: Stats;
  try {
    st = lstatSync(output);
  } catch (err) {
    if (sysCode(err) === 'ENOENT') return;
    throw new CtError(
      sysCode(err) ?? 'EIO',
      `cannot check ${output}: ${(err as Error).message}; choose another path`,
      { cause: err },
    );
  }
  if (st.isSymbolicLink()) {
    throw new CtError('ELOOP', `${output} is a symbolic link; refusing to write through it`);
  }
  if (st.isDirectory()) {
    throw new CtError('EISDIR', `${output} is a directory; choose a file path for the journal`);
  }
  if (inputs.some((i) => i.dev === st.dev && i.ino === st.ino)) {
    throw new CtError(
      'ESAMEFILE',
      `${output} is a journal being redacted; write the redacted copy to another path`,
      { exit: Exit.USAGE },
    );
  }
  if (!force) {
    throw new CtError(
      'EEXIST',
      `${output} exists; choose another path or pass --force to overwrite`,
    );
  }
}

/** Where redactRun writes: an existing directory (it creates none: a typo would go unnoticed). */
function checkDirectory(dir: string): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory() !== true) {
    throw new CtError(
      'ENOTDIR',
      `${dir} is not a directory: a run is written into an existing directory (mkdir it first)`,
      { exit: Exit.USAGE },
    );
  }
}

/**
 * The finished temporary file takes the output's name. Without --force a hard link, which
 * fails if the name was taken meanwhile; with it a rename, which replaces a file or link
 * itself and never writes through one.
 */
function publish(temp: string, output: string, force: boolean): void {
  const exists = () =>
    new CtError('EEXIST', `${output} exists; choose another path or pass --force to overwrite`);
  try {
    if (force) {
      renameSync(temp, output);
      return;
    }
    try {
      linkSync(temp, output);
      unlinkSync(temp);
    } catch (err) {
      const code = sysCode(err);
      if (code === 'EEXIST') throw exists();
      // A filesystem without hard links: the name was free a moment ago (checkOutput).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      if (statSync(output, { throwIfNoEntry: false }) !== undefined) throw exists();
      renameSync(temp, output);
    }
  } catch (err) {
    if (err instanceof CtError) throw err;
    const code = sysCode(err) ?? 'EIO';
    throw new CtError(
      code,
      `cannot write ${output}: ${(err as Error).message}; check the path and the filesystem`,
      { cause: err },
    );
  }
}
