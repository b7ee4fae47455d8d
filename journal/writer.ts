// Appends whole frames to a new journal file: magic + header, events and gap frames, trailer.
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
import type { CtEvent } from './event.js';
import { encodeEvents } from './events-codec.js';
import {
  EVENT_FIELDS,
  type EventCounts,
  FORMAT_VERSION,
  FrameKind,
  type JournalGap,
  type JournalHeader,
  type JournalHeaderInput,
  type JournalTrailer,
  type JournalTrailerInput,
  MAGIC,
} from './format.js';
import { encodeFrame } from './frame.js';
import { decodeGap, decodeHeader, decodeTrailer, encodeMap } from './meta-codec.js';

const TYPE_KEYS = [undefined, 'new', 'update', 'destroy', 'snapshot'] as const;

export class JournalWriter {
  readonly path: string;
  #fd: number | undefined;
  #bytes = 0;
  #frames = 0;
  #events = 0;
  #gaps = 0;
  #lost = 0;
  readonly #byType: EventCounts = { new: 0, update: 0, destroy: 0, snapshot: 0 };

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /**
   * Creates the file O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, and writes magic + header frame.
   * With force an existing regular file is unlinked first (never truncated: a hard link to it
   * elsewhere keeps its content); a symbolic link is refused either way.
   */
  static create(
    path: string,
    header: JournalHeaderInput,
    opts: { force?: boolean } = {},
  ): JournalWriter {
    const full = completeHeader(header);
    if (opts.force === true) removeRegularFile(path);
    const fd = openNew(path);
    const w = new JournalWriter(path, fd);
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

  /** Events written so far. */
  get events(): number {
    return this.#events;
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

  /** One events frame, written with one write call; nothing for an empty batch. */
  append(events: readonly CtEvent[]): void {
    const fd = this.#open();
    if (events.length === 0) return;
    const frame = encodeFrame(FrameKind.EVENTS, encodeEvents(events));
    this.#write(frame, fd);
    this.#frames++;
    this.#events += events.length;
    for (const ev of events) this.#byType[TYPE_KEYS[ev.type] as keyof EventCounts]++;
  }

  /**
   * One gap frame: events were lost between gap.from and gap.to. Written where the recorder
   * noticed the loss, so readers meet it in stream order. TypeError for a gap the reader would
   * reject (e.g. to < from, a cause that is not a GAP_CAUSE token).
   */
  appendGap(gap: JournalGap): void {
    const fd = this.#open();
    // Only the known keys: a caller's extra properties must not leak into the file.
    const { from, to, lost, lostKnown, cause, resync } = gap;
    const payload = encodeMap({ from, to, lost, lostKnown, cause, resync });
    checkDecodes(() => decodeGap(payload), 'gap');
    this.#write(encodeFrame(FrameKind.GAP, payload), fd);
    this.#frames++;
    this.#gaps++;
    this.#lost += lost;
  }

  /**
   * Writes the trailer, fsyncs and closes. The counts are the writer's: given ones must agree.
   */
  close(trailer: JournalTrailerInput): void {
    const fd = this.#open();
    const full: JournalTrailer = {
      ...trailer,
      events: this.#events,
      byType: { ...this.#byType },
      frames: this.#frames,
      gaps: this.#gaps,
      lost: this.#lost,
    };
    for (const key of ['events', 'frames', 'gaps', 'lost'] as const) {
      if (trailer[key] !== undefined && trailer[key] !== full[key]) {
        throw new Error(`journal: trailer ${key} ${trailer[key]} ≠ ${full[key]} written`);
      }
    }
    if (trailer.byType !== undefined && !sameCounts(trailer.byType, full.byType)) {
      throw new Error('journal: trailer byType differs from the events written');
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
      fsyncSync(this.#fd);
    } catch {
      // Already failing; what reached the disk is still a readable journal.
    }
    this.#release();
  }

  /** Closes and deletes the file: for a recording that never started. Never throws. */
  abandon(): void {
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
  }
}

function completeHeader(input: JournalHeaderInput): JournalHeader {
  if (input.format !== undefined && input.format !== FORMAT_VERSION) {
    throw new Error(`journal: this writer writes format ${FORMAT_VERSION}, not ${input.format}`);
  }
  if (input.eventFields !== undefined && input.eventFields.join() !== EVENT_FIELDS.join()) {
    throw new Error('journal: header eventFields must be the writer’s own');
  }
  const full: JournalHeader = {
    ...input,
    format: FORMAT_VERSION,
    eventFields: [...EVENT_FIELDS],
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
