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
import { CtError, Exit, sysCode } from '../common/errors.js';
import type { CtEvent, Tuple } from '../journal/event.js';
import {
  type AddressSet,
  GapCause,
  type HostAddress,
  type JournalGap,
  type JournalHeader,
  type JournalHeaderInput,
} from '../journal/format.js';
import { openJournal } from '../journal/reader.js';
import { JournalWriter } from '../journal/writer.js';
import { printable } from './coverage.js';
import { AddressPseudonymizer, MIN_KEY_BYTES, REDACT_SCHEME } from './pseudonym.js';

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

export interface RedactIo {
  warn(message: string): void;
  note(message: string): void;
}

export interface RedactResult {
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
 */
export function redactJournal(cmd: RedactCommand, io: RedactIo): RedactResult {
  const key = readKey(cmd.keyFile, io.warn);
  const p = new AddressPseudonymizer(key);
  const reader = openJournal(cmd.input);
  try {
    const already = reader.header.options.redacted;
    if (already !== undefined) {
      throw new CtError(
        'EREDACTED',
        `${cmd.input} is redacted already (${describeMark(already)}): share it as it is; to redact with another key, start from the original journal`,
        { exit: Exit.USAGE },
      );
    }
    checkOutput(cmd, reader.fd);
    const scrub = new HeaderScrub(reader.header, p);
    const header = scrub.header();
    const temp = join(dirname(cmd.output), `.${basename(cmd.output)}.${process.pid}.redact`);
    const w = JournalWriter.create(temp, header, { force: true });
    let sets = reader.addressSets.length;
    const noteSets = () => {
      const all = reader.addressSets;
      for (; sets < all.length; sets++) {
        w.noteAddresses(scrub.addressSet(all[sets] as AddressSet));
      }
    };
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
        w.close({ stop: trailer.stop });
      } else {
        // Never launder an unfinished recording into a finished one: no trailer in, none out.
        w.closeAfterFailure();
      }
      publish(temp, cmd);
    } catch (err) {
      w.abandon();
      throw err;
    }
    const complete = reader.trailer !== undefined;
    if (!complete) {
      const torn =
        reader.tail === undefined
          ? ''
          : ` (${reader.tail.ignoredBytes} torn bytes at its end left out)`;
      io.warn(
        `${cmd.input} has no trailer (its recording did not end cleanly)${torn}: ${cmd.output} has none either, and ct-analyze verify calls it INCOMPLETE`,
      );
    }
    if (scrub.dropped.length > 0) {
      io.warn(
        `dropped header options this version does not know (they might identify the host): ${scrub.dropped.map(printable).join(', ')}`,
      );
    }
    const result: RedactResult = {
      output: cmd.output,
      keyId: p.keyId,
      events: w.events,
      gaps: w.gaps,
      addressSets: reader.addressSets.length,
      addresses: p.computed,
      exact: !p.evicted,
      interfaces: scrub.interfaces,
      scrubbed: scrub.scrubbed,
      dropped: scrub.dropped,
      complete,
    };
    io.note(summary(cmd, result));
    return result;
  } finally {
    reader.close();
  }
}

function summary(cmd: RedactCommand, r: RedactResult): string {
  const addresses = r.exact
    ? `${r.addresses} distinct addresses`
    : `${r.addresses} address mappings`;
  return `redacted ${r.events} events, ${r.gaps} gaps and ${r.addressSets} host address sets from ${cmd.input} into ${cmd.output}: ${addresses} mapped, host name and ${r.interfaces} interface names pseudonymised, ${r.scrubbed} header strings scrubbed (key id ${r.keyId})`;
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

export function redactEvent(ev: CtEvent, p: AddressPseudonymizer): CtEvent {
  const tuple = (t: Tuple): Tuple => ({ ...t, src: p.map(t.src), dst: p.map(t.dst) });
  return { ...ev, orig: tuple(ev.orig), reply: tuple(ev.reply) };
}

/** The header option keys ct-record and import write: any other key is dropped with its value. */
const OPTION_KEYS: ReadonlySet<string> = new Set([
  'events',
  'new',
  'update',
  'destroy',
  'bufferSize',
  'reliable',
  'duration',
  'flushInterval',
  'table',
  'collapse',
  'snapshot',
  'enableEvents',
  'user',
  'filter',
  'protos',
  'mark',
  'value',
  'mask',
  'noLoopback',
  'force',
  'maxSize',
  'rotate',
  'enableTracking',
  'netns',
  'importedFrom',
  'tool',
  'file',
  'lines',
  'unreadable',
  'unstamped',
]);

/** Strings that say nothing about the host, by the key they sit under. */
const SAFE_STRINGS: Readonly<Record<string, RegExp>> = {
  collapse: /^(1024|none|ephemeral|\d{1,5}-\d{1,5})$/,
  tool: /^conntrack -(E|L|E and -L)$/,
  events: /^(new|update|destroy|snapshot)$/,
};

/** What replaces a string that might identify the host. */
export const SCRUBBED = 'redacted';

/** The header of the redacted journal, and the same scrubbing for what follows it. */
class HeaderScrub {
  readonly #in: JournalHeader;
  readonly #p: AddressPseudonymizer;
  /** The host name and its labels (2+ characters), lowercase: no kept string may hold one. */
  readonly #secrets: string[];
  readonly #ifnames = new Set<string>();
  scrubbed = 0;
  readonly dropped: string[] = [];

  constructor(header: JournalHeader, p: AddressPseudonymizer) {
    this.#in = header;
    this.#p = p;
    const host = header.host.toLowerCase();
    this.#secrets = [host, ...host.split('.')].filter((s) => s.length >= 2);
  }

  get interfaces(): number {
    return this.#ifnames.size;
  }

  header(): JournalHeaderInput {
    const h = this.#in;
    const options = this.#options(h.options, '') as Record<string, unknown>;
    options.redacted = { scheme: REDACT_SCHEME, keyId: this.#p.keyId };
    const out: JournalHeaderInput = {
      tool: {
        name: this.#keep(h.tool.name, /^conntracker$/),
        version: this.#keep(
          h.tool.version,
          /^\d{1,4}\.\d{1,4}\.\d{1,4}([-+][0-9A-Za-z.-]{1,32})?$/,
        ),
      },
      host: this.#p.hostName(h.host),
      // A release such as 6.8.0-45-generic; a custom one may name the host or its owner.
      kernel: this.#keep(
        h.kernel,
        /^(\d{1,4}\.\d{1,4}(\.\d{1,6})?([-+.~_][0-9A-Za-z.+~_-]{1,60})?|unknown)$/,
      ),
      netns: this.#keep(h.netns, /^(net:\[\d{1,20}\]|unknown)$/),
      start: h.start,
      options,
      sysctls: { ...h.sysctls },
    };
    if (h.addresses !== undefined) out.addresses = this.#addresses(h.addresses);
    return out;
  }

  addressSet(set: AddressSet): AddressSet {
    return { time: set.time, addresses: this.#addresses(set.addresses) };
  }

  /** Gaps stay, with their counts; a cause other than an errno-like word becomes REDACTED. */
  gap(g: JournalGap): JournalGap {
    const known = Object.values(GapCause) as string[];
    const word = /^[A-Z][A-Z0-9_]{0,31}$/.test(g.cause) && !this.#mentionsHost(g.cause);
    return { ...g, cause: known.includes(g.cause) || word ? g.cause : 'REDACTED' };
  }

  #addresses(list: readonly HostAddress[]): HostAddress[] {
    return list.map((a) => {
      if (a.ifname !== 'lo') this.#ifnames.add(a.ifname);
      return {
        ifname: this.#p.interfaceName(a.ifname),
        family: a.family,
        address: this.#p.map(a.address),
        prefix: a.prefix,
      };
    });
  }

  /** Holds the host name, one of its labels, or an IPv4 address in text. */
  #mentionsHost(s: string): boolean {
    const low = s.toLowerCase();
    return this.#secrets.some((w) => low.includes(w)) || /\d{1,3}(\.\d{1,3}){3}/.test(s);
  }

  #keep(s: string, safe: RegExp): string {
    if (safe.test(s) && !this.#mentionsHost(s)) return s;
    this.scrubbed++;
    return SCRUBBED;
  }

  /** Numbers, booleans and nil stay; strings only where SAFE_STRINGS allows; unknown keys go. */
  #options(v: unknown, key: string): unknown {
    if (typeof v === 'string') return this.#keep(v, SAFE_STRINGS[key] ?? /(?!)/);
    if (Array.isArray(v)) return v.map((x) => this.#options(x, key));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (OPTION_KEYS.has(k)) out[k] = this.#options(x, k);
        else this.dropped.push(key === '' ? k : `${key}.${k}`);
      }
      return out;
    }
    return v;
  }
}

/**
 * Refuses before any work: an existing output without --force (as import does), a symbolic
 * link or a directory in its place, and the input itself as the output.
 */
function checkOutput(cmd: RedactCommand, inputFd: number | undefined): void {
  let st: Stats;
  try {
    st = lstatSync(cmd.output);
  } catch (err) {
    if (sysCode(err) === 'ENOENT') return;
    throw new CtError(
      sysCode(err) ?? 'EIO',
      `cannot check ${cmd.output}: ${(err as Error).message}; choose another path`,
      { cause: err },
    );
  }
  if (st.isSymbolicLink()) {
    throw new CtError('ELOOP', `${cmd.output} is a symbolic link; refusing to write through it`);
  }
  if (st.isDirectory()) {
    throw new CtError('EISDIR', `${cmd.output} is a directory; choose a file path for the journal`);
  }
  if (inputFd !== undefined) {
    const input = fstatSync(inputFd);
    if (input.dev === st.dev && input.ino === st.ino) {
      throw new CtError(
        'ESAMEFILE',
        `${cmd.output} is the journal being redacted; write the redacted copy to another path`,
        { exit: Exit.USAGE },
      );
    }
  }
  if (!cmd.force) {
    throw new CtError(
      'EEXIST',
      `${cmd.output} exists; choose another path or pass --force to overwrite`,
    );
  }
}

/**
 * The finished temporary file takes the output's name. Without --force a hard link, which
 * fails if the name was taken meanwhile; with it a rename, which replaces a file or link
 * itself and never writes through one.
 */
function publish(temp: string, cmd: RedactCommand): void {
  const exists = () =>
    new CtError('EEXIST', `${cmd.output} exists; choose another path or pass --force to overwrite`);
  try {
    if (cmd.force) {
      renameSync(temp, cmd.output);
      return;
    }
    try {
      linkSync(temp, cmd.output);
      unlinkSync(temp);
    } catch (err) {
      const code = sysCode(err);
      if (code === 'EEXIST') throw exists();
      // A filesystem without hard links: the name was free a moment ago (checkOutput).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      if (statSync(cmd.output, { throwIfNoEntry: false }) !== undefined) throw exists();
      renameSync(temp, cmd.output);
    }
  } catch (err) {
    if (err instanceof CtError) throw err;
    const code = sysCode(err) ?? 'EIO';
    throw new CtError(
      code,
      `cannot write ${cmd.output}: ${(err as Error).message}; check the path and the filesystem`,
      { cause: err },
    );
  }
}
