// Appends whole frames to a new journal file: magic + header, events, gaps, checkpoints, trailer.
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  openSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { CtError, sysCode } from '../common/errors.js';
import { JournalDigest, sameDigest } from './digest.js';
import type { CtEvent } from './event.js';
import { encodeEvents } from './events-codec.js';
import { encodeEventsV2 } from './events-v2.js';
import {
  type AddressSet,
  CHECKPOINT_FRAMES,
  CHECKPOINT_MS,
  EVENT_FIELDS,
  type EventCounts,
  FORMAT_VERSION,
  type FormatVersion,
  FrameKind,
  isFormatVersion,
  type JournalGap,
  type JournalHeader,
  type JournalHeaderInput,
  type JournalTrailer,
  type JournalTrailerInput,
  MAGIC,
  type RouteSet,
} from './format.js';
import { encodeFrame } from './frame.js';
import {
  addressesToWrite,
  chainToWrite,
  decodeCheckpoint,
  decodeGap,
  decodeHeader,
  decodeTrailer,
  encodeMap,
  routesToWrite,
} from './meta-codec.js';

const TYPE_KEYS = [undefined, 'new', 'update', 'destroy', 'snapshot'] as const;

export interface WriterOptions {
  /** Unlink an existing regular file at the path first (never a symbolic link). */
  force?: boolean;
  /** A checkpoint frame goes before the next frame once this many frames followed the last one. */
  checkpointFrames?: number;
  /** …or once this many milliseconds passed since the last one (or the header). */
  checkpointMs?: number;
  /** Milliseconds for checkpointMs; default Date.now (tests pass their own). */
  clock?: () => number;
  /**
   * The format to write: FORMAT_VERSION (2, compressed events frames) unless given, or the
   * header's `format` when that is given; 1 for readers older than format 2.
   */
  formatVersion?: FormatVersion;
  /**
   * Hold appended events and write them as one events frame once this many are held, or before
   * any other frame (gap, checkpoint, trailer) or flush: fewer, larger frames compress better.
   * append() then keeps the event objects, so a caller that reuses them must not set this.
   */
  holdEvents?: number;
  /**
   * Told of the events of each events frame once it is in the file, in stream order: what a
   * caller must see only when it reached the journal (the recorder's live table).
   */
  written?: (events: readonly CtEvent[]) => void;
}

export class JournalWriter {
  readonly path: string;
  /** The header's `format`: which codec the events frames are written with. */
  readonly formatVersion: FormatVersion;
  readonly #encodeEvents: (events: readonly CtEvent[]) => Buffer;
  #fd: number | undefined;
  #bytes = 0;
  #frames = 0;
  #events = 0;
  #gaps = 0;
  #lost = 0;
  readonly #byType: EventCounts = { new: 0, update: 0, destroy: 0, snapshot: 0 };
  /** SHA-256 of every byte written so far. */
  readonly #digest = new JournalDigest();
  #checkpoints = 0;
  /** Frames written since the last checkpoint (or the header). */
  #sinceCheckpoint = 0;
  #checkpointAt: number;
  readonly #everyFrames: number;
  readonly #everyMs: number;
  readonly #clock: () => number;
  readonly #holdEvents: number;
  readonly #written: ((events: readonly CtEvent[]) => void) | undefined;
  /** Appended, not yet written (holdEvents): not counted anywhere until they are. */
  #held: CtEvent[] = [];

  private constructor(path: string, fd: number, version: FormatVersion, opts: WriterOptions) {
    this.path = path;
    this.formatVersion = version;
    this.#encodeEvents = version === 1 ? encodeEvents : encodeEventsV2;
    this.#fd = fd;
    this.#everyFrames = opts.checkpointFrames ?? CHECKPOINT_FRAMES;
    this.#everyMs = opts.checkpointMs ?? CHECKPOINT_MS;
    this.#clock = opts.clock ?? Date.now;
    this.#checkpointAt = this.#clock();
    this.#holdEvents = opts.holdEvents ?? 0;
    this.#written = opts.written;
  }

  /**
   * Creates the file O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, and writes magic + header frame.
   * With force an existing regular file is unlinked first (never truncated: a hard link to it
   * elsewhere keeps its content); a symbolic link is refused either way. Checkpoints: every
   * CHECKPOINT_FRAMES frames or CHECKPOINT_MS, whichever comes first, unless opts say otherwise.
   */
  static create(path: string, header: JournalHeaderInput, opts: WriterOptions = {}): JournalWriter {
    const version = formatOf(header, opts);
    const full = completeHeader(header, version);
    for (const key of ['checkpointFrames', 'checkpointMs', 'holdEvents'] as const) {
      const v = opts[key];
      if (v !== undefined && !(v >= 1)) throw new RangeError(`journal: ${key} must be ≥ 1`);
    }
    if (opts.force === true) removeRegularFile(path);
    const fd = openNew(path);
    const w = new JournalWriter(path, fd, version, opts);
    try {
      fchmodSync(fd, 0o600); // umask may have taken bits away; the mode is a promise
      const head = encodeFrame(FrameKind.HEADER, encodeMap(full));
      w.#write(Buffer.concat([MAGIC, head]));
      w.#frames = 1;
    } catch (err) {
      w.abandon();
      throw err;
    }
    return w;
  }

  /** Bytes in the file so far, magic included. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /** Frames written so far, the header included (what the trailer's `frames` must say). */
  get frames(): number {
    return this.#frames;
  }

  /** Events written so far (held ones are not, until they are). */
  get events(): number {
    return this.#events;
  }

  /** Events appended and held, not yet in the file (always 0 without holdEvents). */
  get held(): number {
    return this.#held.length;
  }

  /** Events written so far, by type (what the trailer's `byType` will say). */
  get byType(): EventCounts {
    return { ...this.#byType };
  }

  /** Gap frames written so far (what the trailer's `gaps` will say). */
  get gaps(): number {
    return this.#gaps;
  }

  /** Events the gaps written so far say were lost (what the trailer's `lost` will say). */
  get lost(): number {
    return this.#lost;
  }

  /** Checkpoint frames written so far. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /**
   * SHA-256 (hex) of every byte written so far: after close, of the whole file, as `sha256sum`
   * and `ct-analyze verify` print it.
   */
  get sha256(): string {
    return this.#digest.value().toString('hex');
  }

  /**
   * One events frame, written with one write call (with the checkpoint due before it, if any);
   * nothing for an empty batch. When it throws, neither frame is in the file. With holdEvents
   * the events are kept (the array is copied, not the events) and written as one frame with
   * those held before them once holdEvents are held; a failed write then loses them all.
   */
  append(events: readonly CtEvent[]): void {
    const fd = this.#open();
    if (events.length === 0) return;
    if (this.#holdEvents === 0) {
      this.#writeEvents(events, fd);
      return;
    }
    for (const ev of events) this.#held.push(ev);
    if (this.#held.length >= this.#holdEvents) this.#writeHeld(fd);
  }

  /**
   * One gap frame: events were lost between gap.from and gap.to. Written where the recorder
   * noticed the loss, so readers meet it in stream order. TypeError for a gap the reader would
   * reject (e.g. to < from, a cause that is not a GAP_CAUSE token).
   */
  appendGap(gap: JournalGap): void {
    const fd = this.#open();
    // Only the known keys: a caller's extra properties must not leak into the file.
    const { from, to, lost, lostKnown, cause, resync, skipped } = gap;
    const payload = encodeMap({
      from,
      to,
      lost,
      lostKnown,
      cause,
      resync,
      // Optional: older readers ignore the key; journals without it stay byte for byte the same.
      ...(skipped === undefined ? {} : { skipped }),
    });
    checkDecodes(() => decodeGap(payload), 'gap');
    // The events held came before the loss: they stay before it in the stream.
    this.#writeHeld(fd);
    this.#writeFrame(encodeFrame(FrameKind.GAP, payload), fd);
    this.#gaps++;
    this.#lost += lost;
  }

  /**
   * A checkpoint frame now, if any frame followed the last one: for a recorder's flush timer, so
   * a quiet recording that crashes still verifies up to its last flush. Returns whether it wrote.
   */
  checkpoint(): boolean {
    const fd = this.#open();
    this.#writeHeld(fd);
    if (this.#sinceCheckpoint === 0) return false;
    this.#write(this.#checkpointFrame(), fd);
    this.#countCheckpoint();
    return true;
  }

  /**
   * The host's addresses changed: a checkpoint frame carrying the new set, written now even if no
   * frame followed the last checkpoint, so a reader meets the change in stream order. TypeError
   * for a set the reader would reject (nothing is written then).
   */
  noteAddresses(set: AddressSet): void {
    this.noteNetwork({ addresses: set });
  }

  /**
   * The host's addresses, routes or both changed: one checkpoint frame carrying each set given
   * (the whole new list of each), as noteAddresses. Nothing given writes nothing.
   */
  noteNetwork(change: { addresses?: AddressSet; routes?: RouteSet }): void {
    const { addresses, routes } = change;
    if (addresses === undefined && routes === undefined) return;
    const fd = this.#open();
    const network = {
      ...(addresses === undefined
        ? {}
        : {
            addresses: { time: addresses.time, addresses: addressesToWrite(addresses.addresses) },
          }),
      ...(routes === undefined
        ? {}
        : { routes: { time: routes.time, routes: routesToWrite(routes.routes) } }),
    };
    if (this.#held.length > 0) {
      // Built once to be checked: a set the reader would reject writes nothing, held events
      // included; the frame written must carry the counts and digest after them.
      this.#checkpointFrame(network);
      this.#writeHeld(fd);
    }
    this.#write(this.#checkpointFrame(network), fd);
    this.#countCheckpoint();
  }

  /**
   * The recorder's periodic flush: the held events, a checkpoint if anything was written since
   * the last one, then fsync, so a crash or a power loss costs at most what came after it. Other
   * frames are written as they come; this is about the disk, not the page cache.
   */
  flush(): void {
    this.checkpoint();
    const fd = this.#open();
    try {
      fsyncSync(fd);
    } catch (err) {
      throw ioError(this.path, 'flush', err);
    }
  }

  /**
   * Writes the trailer, fsyncs and closes. The counts and digest are the writer's: given counts
   * must agree.
   */
  close(trailer: JournalTrailerInput): void {
    const fd = this.#open();
    this.#writeHeld(fd);
    const { next, ...given } = trailer;
    const full: JournalTrailer = {
      ...given,
      events: this.#events,
      byType: { ...this.#byType },
      frames: this.#frames,
      gaps: this.#gaps,
      lost: this.#lost,
      digest: this.#digest.value(),
      // Absent stays absent: only a journal a rotation closed names the next one.
      ...(next === undefined ? {} : { next }),
    };
    for (const key of ['events', 'frames', 'gaps', 'lost'] as const) {
      if (trailer[key] !== undefined && trailer[key] !== full[key]) {
        throw new Error(`journal: trailer ${key} ${trailer[key]} ≠ ${full[key]} written`);
      }
    }
    if (trailer.byType !== undefined && !sameCounts(trailer.byType, full.byType)) {
      throw new Error('journal: trailer byType differs from the events written');
    }
    if (trailer.digest !== undefined && !sameDigest(trailer.digest, full.digest)) {
      throw new Error('journal: trailer digest differs from the bytes written');
    }
    const payload = encodeMap(full);
    checkDecodes(() => decodeTrailer(payload), 'trailer');
    this.#write(encodeFrame(FrameKind.TRAILER, payload), fd);
    try {
      fsyncSync(fd);
    } catch (err) {
      throw ioError(this.path, 'sync', err);
    } finally {
      this.#release();
    }
  }

  /** Ends without a trailer (the reader will say so); never throws: for error paths. */
  closeAfterFailure(): void {
    if (this.#fd === undefined) return;
    try {
      // What was appended reaches the file if it still can (a capture that failed, not a disk).
      this.#writeHeld(this.#fd);
    } catch {
      // Already failing: the file still ends on a frame boundary (or, when the torn frame could
      // not be cut off, #write closed it already and what follows does nothing).
    }
    try {
      fsyncSync(this.#fd);
    } catch {
      // Already failing; what reached the disk is still a readable journal.
    }
    this.#release();
  }

  /** Closes and deletes the file: for a recording that never started. Never throws. */
  abandon(): void {
    this.#held = [];
    this.#release();
    try {
      unlinkSync(this.path);
    } catch {
      // Nothing to clean up.
    }
  }

  #open(): number {
    if (this.#fd === undefined) throw new Error('journal: writer is closed');
    return this.#fd;
  }

  /** The held events as one frame now, if any: every other frame and close come after them. */
  #writeHeld(fd: number): void {
    if (this.#held.length === 0) return;
    // Taken before writing: a failed write neither keeps them for a retry that would fail the
    // same way nor lets closeAfterFailure (which #write may call) write them a second time.
    const events = this.#held;
    this.#held = [];
    this.#writeEvents(events, fd);
  }

  /** One events frame, counted once it is in the file, then told to `written`. */
  #writeEvents(events: readonly CtEvent[], fd: number): void {
    const frame = encodeFrame(FrameKind.EVENTS, this.#encodeEvents(events));
    this.#writeFrame(frame, fd);
    this.#events += events.length;
    for (const ev of events) this.#byType[TYPE_KEYS[ev.type] as keyof EventCounts]++;
    this.#written?.(events);
  }

  /** One frame, preceded in the same write by the checkpoint that is due, if one is. */
  #writeFrame(frame: Buffer, fd: number): void {
    const due =
      this.#sinceCheckpoint >= this.#everyFrames ||
      (this.#sinceCheckpoint > 0 && this.#clock() - this.#checkpointAt >= this.#everyMs);
    if (due) {
      this.#write(Buffer.concat([this.#checkpointFrame(), frame]), fd);
      this.#countCheckpoint();
    } else {
      this.#write(frame, fd);
    }
    this.#frames++;
    this.#sinceCheckpoint++;
  }

  /** The checkpoint for the bytes written so far (the digest covers every one of them). */
  #checkpointFrame(network: { addresses?: AddressSet; routes?: RouteSet } = {}): Buffer {
    const payload = encodeMap({
      frames: this.#frames,
      events: this.#events,
      gaps: this.#gaps,
      lost: this.#lost,
      digest: this.#digest.value(),
      ...network,
    });
    checkDecodes(() => decodeCheckpoint(payload), 'checkpoint');
    return encodeFrame(FrameKind.CHECKPOINT, payload);
  }

  #countCheckpoint(): void {
    this.#frames++;
    this.#checkpoints++;
    this.#sinceCheckpoint = 0;
    this.#checkpointAt = this.#clock();
  }

  #release(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // A close error after fsync loses nothing we could still save.
    }
  }

  /**
   * Positional writes: after a failure the partial frame is cut off again so the file still
   * ends on a frame boundary, and a later append cannot land after a torn frame (corruption).
   */
  #write(buf: Uint8Array, fd = this.#open()): void {
    let done = 0;
    try {
      while (done < buf.length) {
        done += writeSync(fd, buf, done, buf.length - done, this.#bytes + done);
      }
    } catch (err) {
      let cut = true;
      try {
        ftruncateSync(fd, this.#bytes);
      } catch {
        cut = false;
      }
      if (!cut) this.closeAfterFailure();
      throw ioError(this.path, 'write', err);
    }
    this.#bytes += buf.length;
    this.#digest.update(buf);
  }
}

/** The format to write: opts.formatVersion, else the header's, else the newest; they must agree. */
function formatOf(header: JournalHeaderInput, opts: WriterOptions): FormatVersion {
  const given = opts.formatVersion ?? header.format ?? FORMAT_VERSION;
  if (!isFormatVersion(given)) {
    throw new RangeError(`journal: this writer writes format 1 or 2, not ${given}`);
  }
  if (header.format !== undefined && header.format !== given) {
    throw new Error(`journal: header format ${header.format} ≠ formatVersion ${given}`);
  }
  return given;
}

function completeHeader(input: JournalHeaderInput, format: FormatVersion): JournalHeader {
  if (input.eventFields !== undefined && input.eventFields.join() !== EVENT_FIELDS.join()) {
    throw new Error('journal: header eventFields must be the writer’s own');
  }
  const { addresses, routes, chain, ...rest } = input;
  const full: JournalHeader = {
    ...rest,
    format,
    eventFields: [...EVENT_FIELDS],
    // Absent stays absent (no nil key): a journal without addresses reads as one.
    ...(addresses === undefined ? {} : { addresses: addressesToWrite(addresses) }),
    ...(routes === undefined ? {} : { routes: routesToWrite(routes) }),
    ...(chain === undefined ? {} : { chain: chainToWrite(chain) }),
  };
  checkDecodes(() => decodeHeader(encodeMap(full)), 'header');
  return full;
}

/** A header or trailer the reader would reject is a caller bug: refuse before touching disk. */
function checkDecodes(decode: () => unknown, what: string): void {
  try {
    decode();
  } catch (err) {
    throw new TypeError(`journal: invalid ${what}: ${(err as Error).message}`);
  }
}

function sameCounts(a: EventCounts, b: EventCounts): boolean {
  return (
    a.new === b.new && a.update === b.update && a.destroy === b.destroy && a.snapshot === b.snapshot
  );
}

function removeRegularFile(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if (sysCode(err) === 'ENOENT') return;
    throw ioError(path, 'create', err);
  }
  if (st.isSymbolicLink()) throw symlinkError(path);
  if (st.isDirectory()) {
    throw new CtError('EISDIR', `${path} is a directory; choose a file path for the journal`);
  }
  if (!st.isFile()) {
    throw new CtError(
      'EEXIST',
      `${path} exists and is not a regular file; refusing to replace it: choose another path`,
    );
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if (sysCode(err) !== 'ENOENT') throw ioError(path, 'replace', err);
  }
}

function openNew(path: string): number {
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  try {
    return openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = sysCode(err);
    if (code === 'EEXIST' || code === 'ELOOP') {
      let link = code === 'ELOOP';
      try {
        link ||= lstatSync(path).isSymbolicLink();
      } catch {
        // Gone again: report what open saw.
      }
      if (link) throw symlinkError(path);
      throw new CtError(
        'EEXIST',
        `${path} exists; choose another path or pass --force to overwrite`,
      );
    }
    throw ioError(path, 'create', err);
  }
}

function symlinkError(path: string): CtError {
  return new CtError('ELOOP', `${path} is a symbolic link; refusing to write through it`);
}

const ADVICE: Record<string, string> = {
  ENOSPC: 'no space left on device: free some space or record to another filesystem',
  EDQUOT: 'disk quota exceeded: free some space or record to another filesystem',
  EACCES: 'permission denied: choose a directory you can write to',
  EPERM: 'operation not permitted: choose a directory you can write to',
  ENOENT: 'no such directory: create it first or choose another path',
  ENOTDIR: 'a parent of the path is not a directory: check the path',
  EISDIR: 'it is a directory: choose a file path for the journal',
  EROFS: 'read-only filesystem: record to a writable filesystem',
  EIO: 'I/O error: check the device (dmesg) and record elsewhere',
};

function ioError(path: string, action: string, err: unknown): CtError {
  const code = sysCode(err) ?? 'EIO';
  const advice = ADVICE[code] ?? `${(err as Error).message}: check the path and the filesystem`;
  return new CtError(code, `cannot ${action} ${path}: ${advice} (${code})`, { cause: err });
}
