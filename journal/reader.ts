// Streams a journal frame by frame in fixed-size reads, checking its digest chain as it goes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CtError, Exit, sysCode } from '../common/errors.js';
import { JournalDigest, sameDigest } from './digest.js';
import type { CtEvent } from './event.js';
import { EventColumns } from './event-columns.js';
import { decodeEvents } from './events-codec.js';
import { scanEvents } from './events-scan.js';
import { JournalFault } from './fault.js';
import {
  type AddressSet,
  type EventCounts,
  FRAME_HEADER_SIZE,
  FrameKind,
  type HostAddress,
  type JournalCheckpoint,
  type JournalGap,
  type JournalHeader,
  type JournalTrailer,
  MAGIC,
  MAX_FRAME,
} from './format.js';
import { checkFrame, knownKind, plausiblePayload } from './frame.js';
import {
  decodeCheckpoint,
  decodeGap,
  decodeHeader,
  decodeTrailer,
  NewerFormat,
} from './meta-codec.js';
import { Damage } from './validate.js';

/** One frame's worth of journal, in file order. */
export type JournalItem = { kind: 'events'; events: CtEvent[] } | { kind: 'gap'; gap: JournalGap };

/**
 * columns()'s items: an events frame as EventColumns, reused from frame to frame (read it
 * before the next item), or a gap.
 */
export type ColumnsItem =
  | { kind: 'events'; columns: EventColumns }
  | { kind: 'gap'; gap: JournalGap };

/** follow()'s item when it has read everything there is: ask again later for more. */
export type IdleItem = { kind: 'idle' };

/** What a reader has read so far: the trailer's counts, whether or not there is a trailer. */
export interface JournalCounts {
  events: number;
  byType: EventCounts;
  /** Frames read, the header and checkpoints included. */
  frames: number;
  gaps: number;
  /** Sum of the gaps' `lost`. */
  lost: number;
  /** Gaps whose `lost` is only a lower bound (lostKnown false). */
  gapsLostUnknown: number;
  /** The latest event time read (µs), undefined before any event. */
  lastEventTime: number | undefined;
  /** Checkpoint frames read; each one matched the digest and counts of what precedes it. */
  checkpoints: number;
  /** What the last checkpoint vouched for, and its file offset; undefined before the first. */
  verified: (Omit<JournalCheckpoint, 'digest'> & { offset: number }) | undefined;
}

export interface JournalReader {
  readonly path: string;
  readonly header: JournalHeader;
  /**
   * Event batches and gaps in file order, one item per frame. Throws JournalFault ECORRUPT when
   * a damaged frame is followed by a good one, EMODIFIED when a checkpoint's or the trailer's
   * digest or counts disagree with the frames before it; a damaged or short frame at the end is
   * the torn tail. Items before a fault have been yielded already: a caller that must not use
   * unverified data keeps its results until the generator ends. Events are read-only: a reply
   * tuple may share the original tuple's address arrays.
   */
  items(): Generator<JournalItem>;
  /** items() without the gaps (still counted in `counts`): for readers that only want events. */
  batches(): Generator<CtEvent[]>;
  /**
   * items() as columns, the replay hot path: the same frames, checks and counts, no object per
   * event. Each events item's columns are overwritten by the next item.
   */
  columns(opts?: ConstructorParameters<typeof EventColumns>[0]): Generator<ColumnsItem>;
  /**
   * columns() for a journal that is still being written: at the end of what is there (or at a
   * frame not yet wholly written) it yields `idle` instead of ending; the next call looks at
   * the file's size again. It ends at the trailer. A journal that shrinks is an error.
   */
  follow(): Generator<ColumnsItem | IdleItem>;
  /** File offset after the last whole frame read: the progress of a pass. */
  readonly offset: number;
  /** The open file descriptor, for readerOnFd in a decoding thread; undefined once closed. */
  readonly fd: number | undefined;
  /** Counts of what items() or batches() has read so far; final once it is exhausted. */
  readonly counts: JournalCounts;
  /**
   * The host's addresses as read so far, in file order: the header's (from its `start`) when it
   * has them, then each checkpoint's that carries a change. Empty for journals without them.
   * The reader's own array (do not change it); an address that several sets hold is one object,
   * so memory grows with the distinct addresses, not with the checkpoints that repeat them.
   */
  readonly addressSets: readonly AddressSet[];
  /** After items() is exhausted: the trailer, undefined when the recording did not end cleanly. */
  readonly trailer: JournalTrailer | undefined;
  /** After items() is exhausted: the ignored torn tail, if any. */
  readonly tail: { offset: number; ignoredBytes: number } | undefined;
  /** After items() is exhausted with a trailer: SHA-256 (hex) of the whole file, as sha256sum. */
  readonly sha256: string | undefined;
  /** File size when opened, or as last seen by follow(). */
  readonly size: number;
  close(): void;
}

export interface ReadOptions {
  /** Bytes per read; default 1 MiB. A frame larger than this is read whole anyway. */
  chunkSize?: number;
}

const TYPE_KEYS = [undefined, 'new', 'update', 'destroy', 'snapshot'] as const;
const IDLE: IdleItem = Object.freeze({ kind: 'idle' });

/**
 * The resync scan's budget (docs/journal-format.md, reading rule 3), so any file is judged in
 * time linear in its size: bytes of CRC per byte of the window the scan covers, what each
 * candidate costs beyond its CRC, and how many candidates it checks at most. Random bytes cost
 * ~45 CRC bytes per byte covered at worst (~90 candidates per 16 MiB, 8 MiB each on average):
 * they never reach it; 16 MiB of candidates crafted to look like 16 MiB frames would otherwise
 * cost 2^22 CRCs of 16 MiB, hours.
 */
const SCAN_CRC_BYTES_PER_BYTE = 128;
const SCAN_CALL_BYTES = 64;
const SCAN_MAX_CANDIDATES = 65_536;
/** The scan spent its budget on candidates that all failed their CRC. */
const GAVE_UP = Symbol('gave up');

/** Opens a journal and reads its magic and header; CtError when it is not a readable v1 journal. */
export function openJournal(path: string, opts: ReadOptions = {}): JournalReader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw openError(path, err);
  }
  try {
    return new FileReader(path, fd, opts.chunkSize ?? 1024 * 1024);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * A reader over a journal another reader already opened (its fd, shared by threads of one
 * process): the decoding thread of a parallel replay. It reads the header again and never
 * closes the fd; the opener does.
 */
export function readerOnFd(path: string, fd: number, opts: ReadOptions = {}): JournalReader {
  return new FileReader(path, fd, opts.chunkSize ?? 1024 * 1024);
}

type Frame =
  | { ok: true; kind: number; at: number; payload: Uint8Array; bytes: Uint8Array }
  | { ok: false; why: string };

class FileReader implements JournalReader {
  readonly path: string;
  readonly header: JournalHeader;
  #fd: number | undefined;
  #size: number;
  #offset = 0;
  readonly #chunk: number;
  #buf: Buffer;
  #bufStart = 0;
  #bufLen = 0;
  #bodyStart: number;
  #trailer: JournalTrailer | undefined;
  #tail: { offset: number; ignoredBytes: number } | undefined;
  #sha256: string | undefined;
  #counts: JournalCounts = emptyCounts();
  #addressSets: AddressSet[];
  /** The digest of the magic and the header frame: where every pass of items() starts. */
  readonly #headDigest = new JournalDigest();

  constructor(path: string, fd: number, chunk: number) {
    this.path = path;
    this.#fd = fd;
    this.#chunk = Math.max(FRAME_HEADER_SIZE, chunk);
    this.#buf = Buffer.alloc(this.#chunk);
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      throw new CtError('EISDIR', `${path} is a directory; pass a journal file (.mpk)`);
    }
    if (!st.isFile()) {
      throw new CtError('ENOTFILE', `${path} is not a regular file; pass a journal file (.mpk)`);
    }
    this.#size = st.size;
    this.#fill(0, Math.min(this.#size, MAGIC.length));
    this.#checkMagic();
    const head = this.#frameAt(MAGIC.length);
    if (!head.ok) {
      const next = this.#scan(MAGIC.length + 1);
      if (next !== undefined) {
        throw this.#corrupt(MAGIC.length, `header frame: ${afterBadFrame(head.why, next)}`);
      }
      if (head.why === 'short') {
        throw new CtError(
          'ETRUNCATED',
          `${path} ends inside its header (${this.#size} bytes): the recording never really started; record again`,
        );
      }
      throw this.#corrupt(MAGIC.length, `header frame: ${head.why}`);
    }
    if (head.kind !== FrameKind.HEADER) {
      throw this.#corrupt(MAGIC.length, `the first frame is kind ${head.kind}, not a header`);
    }
    try {
      this.header = decodeHeader(head.payload);
    } catch (err) {
      if (err instanceof NewerFormat) {
        throw new CtError(
          'EVERSION',
          `${path} was written by format v${err.format}; this ct-analyze reads v1: upgrade conntracker`,
          { exit: Exit.VERSION },
        );
      }
      throw this.#damage(MAGIC.length, err);
    }
    this.#headDigest.update(MAGIC);
    this.#headDigest.update(head.bytes);
    this.#bodyStart = MAGIC.length + head.bytes.length;
    this.#addressSets = this.#headerAddresses();
  }

  #headerAddresses(): AddressSet[] {
    const { addresses, start } = this.header;
    return addresses === undefined ? [] : [{ time: start, addresses }];
  }

  get size(): number {
    return this.#size;
  }

  get offset(): number {
    return this.#offset;
  }

  get fd(): number | undefined {
    return this.#fd;
  }

  get sha256(): string | undefined {
    return this.#sha256;
  }

  get trailer(): JournalTrailer | undefined {
    return this.#trailer;
  }

  get tail(): { offset: number; ignoredBytes: number } | undefined {
    return this.#tail;
  }

  get counts(): JournalCounts {
    return { ...this.#counts, byType: { ...this.#counts.byType } };
  }

  get addressSets(): readonly AddressSet[] {
    return this.#addressSets;
  }

  *batches(): Generator<CtEvent[]> {
    for (const item of this.items()) if (item.kind === 'events') yield item.events;
  }

  *items(): Generator<JournalItem> {
    for (const item of this.#walk(true)) {
      if (item.kind === 'gap') yield item;
      else if (item.kind === 'events') yield { kind: 'events', events: item.events as CtEvent[] };
    }
  }

  *columns(opts: ConstructorParameters<typeof EventColumns>[0] = {}): Generator<ColumnsItem> {
    const columns = new EventColumns(opts);
    for (const item of this.#walk(false, columns)) {
      if (item.kind === 'gap') yield item;
      else if (item.kind === 'events') yield { kind: 'events', columns };
    }
  }

  *follow(): Generator<ColumnsItem | IdleItem> {
    const columns = new EventColumns();
    for (const item of this.#walk(false, columns, true)) {
      if (item.kind === 'events') yield { kind: 'events', columns };
      else yield item;
    }
  }

  /**
   * The one pass over the frames: checks, digest, counts. Events frames are decoded into
   * CtEvent objects (`objects`) or scanned into `cols`, with decodeEvents as the fallback that
   * has the last word on anything the scanner does not handle.
   */
  *#walk(
    objects: boolean,
    cols = new EventColumns(),
    follow = false,
  ): Generator<
    { kind: 'events'; events: CtEvent[] | undefined } | { kind: 'gap'; gap: JournalGap } | IdleItem
  > {
    this.#trailer = undefined;
    this.#tail = undefined;
    this.#sha256 = undefined;
    const c = emptyCounts();
    this.#counts = c;
    const sets = this.#headerAddresses();
    this.#addressSets = sets;
    const interned = new AddressInterning();
    const digest = this.#headDigest.copy();
    const fields = this.header.eventFields.length;
    let pos = this.#bodyStart;
    for (;;) {
      this.#offset = pos;
      if (pos >= this.#size) {
        if (!follow) return;
        this.#tail = undefined;
        yield IDLE;
        this.#restat();
        continue;
      }
      const f = this.#frameAt(pos);
      if (!f.ok) {
        // A frame being written is short; damage is only damage once a valid frame follows it.
        const next = f.why === 'short' && follow ? undefined : this.#scan(pos + 1);
        if (next !== undefined) throw this.#corrupt(pos, afterBadFrame(f.why, next));
        this.#tail = { offset: pos, ignoredBytes: this.#size - pos };
        if (!follow) return;
        yield IDLE;
        this.#restat();
        continue;
      }
      const end = pos + f.bytes.length;
      if (f.kind === FrameKind.EVENTS) {
        let batch: CtEvent[] | undefined;
        try {
          if (objects || !scanEvents(f.payload, fields, cols)) {
            batch = decodeEvents(f.payload, fields);
            cols.fill(batch);
          }
        } catch (err) {
          throw this.#damage(pos, err);
        }
        digest.update(f.bytes);
        c.frames++;
        const n = cols.n;
        c.events += n;
        let last = c.lastEventTime ?? 0;
        const { type, time } = cols;
        const perType = [0, 0, 0, 0, 0];
        for (let i = 0; i < n; i++) {
          perType[type[i] as number] = (perType[type[i] as number] as number) + 1;
          if ((time[i] as number) > last) last = time[i] as number;
        }
        for (let t = 1; t < perType.length; t++) {
          c.byType[TYPE_KEYS[t] as keyof EventCounts] += perType[t] as number;
        }
        if (n > 0) c.lastEventTime = last;
        pos = end;
        if (n > 0) yield { kind: 'events', events: batch };
      } else if (f.kind === FrameKind.GAP) {
        let gap: JournalGap;
        try {
          gap = decodeGap(f.payload);
        } catch (err) {
          throw this.#damage(pos, err);
        }
        digest.update(f.bytes);
        c.frames++;
        c.gaps++;
        c.lost += gap.lost;
        if (!gap.lostKnown) c.gapsLostUnknown++;
        pos = end;
        yield { kind: 'gap', gap };
      } else if (f.kind === FrameKind.CHECKPOINT) {
        let cp: JournalCheckpoint;
        try {
          cp = decodeCheckpoint(f.payload);
        } catch (err) {
          throw this.#damage(pos, err);
        }
        const n = c.checkpoints + 1;
        if (!sameDigest(cp.digest, digest.value())) {
          throw this.#modified(pos, `digest mismatch at checkpoint ${n}`);
        }
        const counted = checkpointCounts(c);
        if (counted !== checkpointCounts(cp)) {
          throw this.#modified(
            pos,
            `checkpoint ${n} counts ${checkpointCounts(cp)} but the journal holds ${counted}`,
          );
        }
        digest.update(f.bytes);
        c.checkpoints = n;
        c.verified = {
          frames: cp.frames,
          events: cp.events,
          gaps: cp.gaps,
          lost: cp.lost,
          offset: pos,
        };
        if (cp.addresses !== undefined) {
          try {
            sets.push(interned.set(cp.addresses));
          } catch (err) {
            throw this.#damage(pos, err);
          }
        }
        c.frames++;
        pos = end;
      } else if (f.kind === FrameKind.TRAILER) {
        let trailer: JournalTrailer;
        try {
          trailer = decodeTrailer(f.payload);
        } catch (err) {
          throw this.#damage(pos, err);
        }
        // The digest first: frames removed or swapped are "modified", whatever the counts say.
        if (!sameDigest(trailer.digest, digest.value())) {
          throw this.#modified(pos, 'digest mismatch at the trailer');
        }
        const counted = describeCounts(c);
        const claimed = describeCounts(trailer);
        if (counted !== claimed) {
          throw this.#modified(
            pos,
            `the trailer counts ${claimed} but the journal holds ${counted}`,
          );
        }
        if (end !== this.#size) {
          throw new JournalFault(
            'ECORRUPT',
            this.path,
            end,
            `${this.#size - end} bytes follow the trailer`,
            false,
          );
        }
        digest.update(f.bytes);
        this.#trailer = trailer;
        this.#sha256 = digest.value().toString('hex');
        return;
      } else {
        throw this.#corrupt(pos, `a frame of kind ${f.kind} has no place in a v1 journal here`);
      }
    }
  }

  /** Takes the file's current size (follow); a file that shrank was truncated or replaced. */
  #restat(): void {
    if (this.#fd === undefined) throw new Error('journal: reader is closed');
    const size = fstatSync(this.#fd).size;
    if (size < this.#size) {
      throw new CtError(
        'ETRUNCATED',
        `${this.path} shrank from ${this.#size} to ${size} bytes while being followed: it was truncated or rewritten; follow it again`,
      );
    }
    this.#size = size;
  }

  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }

  #checkMagic(): void {
    const n = Math.min(this.#size, MAGIC.length);
    for (let i = 0; i < n; i++) {
      if (this.#buf[i] !== MAGIC[i]) {
        throw new CtError(
          'ENOTJOURNAL',
          `${this.path} is not a conntracker journal (bad magic): pass a .mpk file written by ct-record`,
        );
      }
    }
    if (n < MAGIC.length) {
      throw new CtError(
        'ETRUNCATED',
        `${this.path} ends inside its magic (${this.#size} bytes): the recording never really started; record again`,
      );
    }
  }

  /** The frame at file offset `at`, reading more as needed; 'short' when the file ends first. */
  #frameAt(at: number): Frame {
    for (;;) {
      const off = at - this.#bufStart;
      const inBuf = off >= 0 && off <= this.#bufLen ? this.#bufLen - off : 0;
      const c =
        inBuf > 0
          ? checkFrame(this.#buf, off, inBuf)
          : { ok: false as const, need: FRAME_HEADER_SIZE };
      if (c.ok) {
        const start = off + FRAME_HEADER_SIZE;
        const end = start + c.length;
        return {
          ok: true,
          kind: c.kind,
          at,
          payload: this.#buf.subarray(start, end),
          bytes: this.#buf.subarray(off, end),
        };
      }
      if (c.need === 0) return { ok: false, why: 'reason' in c ? c.reason : 'bad frame' };
      if (at + c.need > this.#size) return { ok: false, why: 'short' };
      this.#fill(at, c.need);
    }
  }

  /** Loads the buffer from file offset `at` with at least `need` bytes (bounded by MAX_FRAME). */
  #fill(at: number, need: number): void {
    if (need > this.#buf.length) this.#buf = Buffer.alloc(Math.max(need, this.#chunk));
    const want = Math.min(this.#buf.length, this.#size - at);
    let got = 0;
    while (got < want) {
      const n = this.#read(this.#buf, got, want - got, at + got);
      if (n === 0) break; // the file shrank under us: what we have decides
      got += n;
    }
    this.#bufStart = at;
    this.#bufLen = got;
  }

  #read(buf: Uint8Array, off: number, len: number, pos: number): number {
    if (this.#fd === undefined) throw new Error('journal: reader is closed');
    try {
      return readSync(this.#fd, buf, off, len, pos);
    } catch (err) {
      const code = sysCode(err) ?? 'EIO';
      throw new CtError(
        code,
        `cannot read ${this.path}: ${(err as Error).message}: check the file and the device (${code})`,
        { cause: err },
      );
    }
  }

  /**
   * First offset ≥ from holding a whole frame of a v1 kind whose payload starts as that kind's
   * does, with a good CRC; undefined when there is none; GAVE_UP when the candidates failing
   * their CRC exhaust the scan's budget (SCAN_CRC_BYTES_PER_BYTE, SCAN_MAX_CANDIDATES). The
   * damaged frame was at most MAX_FRAME long, so the next real one starts within that window.
   * The payload test keeps the CRCs computed over random bytes (each candidate up to 16 MiB) to
   * a few per megabyte; the budget bounds what bytes crafted to pass it can cost.
   */
  #scan(from: number): number | undefined | typeof GAVE_UP {
    const MIN = FRAME_HEADER_SIZE + 1; // a payload is one msgpack value: at least one byte
    const last = Math.min(this.#size - MIN, from - 1 + FRAME_HEADER_SIZE + MAX_FRAME);
    let budget = SCAN_CRC_BYTES_PER_BYTE * Math.max(0, last + MIN - from);
    let checked = 0;
    const win = Buffer.allocUnsafe(Math.max(this.#chunk, 2 * MIN));
    let whole: Buffer | undefined;
    let winStart = 0;
    let winLen = 0;
    for (let p = from; p <= last; p++) {
      if (p + MIN > winStart + winLen) {
        winStart = p;
        winLen = this.#read(win, 0, Math.min(win.length, this.#size - p), p);
        if (winLen < MIN) return undefined;
      }
      const o = p - winStart;
      const kind = win[o + 8] as number;
      if (!knownKind(kind) || !plausiblePayload(kind, win[o + FRAME_HEADER_SIZE] as number)) {
        continue;
      }
      const length = win.readUInt32LE(o);
      if (length === 0 || length > MAX_FRAME || p + FRAME_HEADER_SIZE + length > this.#size) {
        continue;
      }
      const total = FRAME_HEADER_SIZE + length;
      // Each candidate costs its CRC and a call, so a run of tiny ones counts too.
      budget -= total + SCAN_CALL_BYTES;
      if (budget < 0 || ++checked > SCAN_MAX_CANDIDATES) return GAVE_UP;
      if (o + total <= winLen) {
        if (checkFrame(win, o, total).ok) return p;
        continue;
      }
      if (whole === undefined || whole.length < total) whole = Buffer.allocUnsafe(total);
      if (this.#read(whole, 0, total, p) === total && checkFrame(whole, 0, total).ok) return p;
    }
    return undefined;
  }

  #corrupt(offset: number, why: string): JournalFault {
    return new JournalFault('ECORRUPT', this.path, offset, why);
  }

  #modified(offset: number, why: string): JournalFault {
    return new JournalFault('EMODIFIED', this.path, offset, why);
  }

  #damage(offset: number, err: unknown): JournalFault {
    if (err instanceof Damage) return this.#corrupt(offset, err.message);
    throw err;
  }
}

/**
 * Distinct host addresses one journal's checkpoints may bring: 16 sets of the most a set may
 * hold (MAX_ADDRESSES). No host has that many; past it the journal is damaged or forged, and
 * the addresses would cost memory with no bound but the file's size (~0.3 KB each).
 */
export const MAX_DISTINCT_ADDRESSES = 65_536;

/**
 * One object per distinct host address (interface, family, prefix, bytes), their bytes packed
 * in shared slabs: a journal may repeat a set of 4,096 addresses in every checkpoint, and each
 * decoded copy (an object, its own 16-byte buffer, its interface name) costs ~0.4 KB.
 */
class AddressInterning {
  /**
   * Per interface: its name (one string, not one per address) and each key (prefix, then the
   * address bytes) to the one object.
   */
  readonly #byName = new Map<string, { ifname: string; byKey: Map<string, HostAddress> }>();
  #count = 0;
  #slab = new Uint8Array(0);
  #used = 0;

  set(s: AddressSet): AddressSet {
    return { time: s.time, addresses: s.addresses.map((a) => this.#address(a)) };
  }

  #address(a: HostAddress): HostAddress {
    const bytes = a.address;
    // The length of the bytes is the family's.
    const key = String.fromCharCode(a.prefix, ...bytes);
    let iface = this.#byName.get(a.ifname);
    if (iface === undefined) {
      iface = { ifname: a.ifname, byKey: new Map() };
      this.#byName.set(a.ifname, iface);
    }
    const same = iface.byKey.get(key);
    if (same !== undefined) return same;
    if (++this.#count > MAX_DISTINCT_ADDRESSES) {
      throw new Damage(
        `checkpoint addresses bring the host's distinct addresses past ${MAX_DISTINCT_ADDRESSES}, more than any host has`,
      );
    }
    if (this.#used + bytes.length > this.#slab.length) {
      this.#slab = new Uint8Array(64 * 1024);
      this.#used = 0;
    }
    const address = this.#slab.subarray(this.#used, this.#used + bytes.length);
    address.set(bytes);
    this.#used += bytes.length;
    const one: HostAddress = { ifname: iface.ifname, family: a.family, address, prefix: a.prefix };
    iface.byKey.set(key, one);
    return one;
  }
}

function emptyCounts(): JournalCounts {
  return {
    events: 0,
    byType: { new: 0, update: 0, destroy: 0, snapshot: 0 },
    frames: 1,
    gaps: 0,
    lost: 0,
    gapsLostUnknown: 0,
    lastEventTime: undefined,
    checkpoints: 0,
    verified: undefined,
  };
}

/** A frame that did not read, in words: 'short' is the file ending inside it. */
function whyNot(why: string): string {
  return why === 'short' ? 'frame cut short' : why;
}

/**
 * Why a bad frame is corruption, not a torn tail: a valid frame follows it, or (GAVE_UP) more
 * bytes shaped like frames follow it than a crash leaves, and the scan stopped checking them.
 */
function afterBadFrame(why: string, next: number | typeof GAVE_UP): string {
  if (next !== GAVE_UP) return `${whyNot(why)}, yet a valid frame follows at byte ${next}`;
  return `${whyNot(why)}, and so many bytes after it look like frames with bad checksums that the search for a next one gave up: damaged or forged, not a torn tail`;
}

/** The counts a checkpoint must agree with, comparable and printable. */
function checkpointCounts(c: Omit<JournalCheckpoint, 'digest'>): string {
  return `${c.events} events in ${c.frames} frames, ${c.gaps} gaps losing ${c.lost} events`;
}

/** The counts a trailer must agree with, as one comparable (and printable) string. */
function describeCounts(c: Pick<JournalTrailer, 'events' | 'frames' | 'byType' | 'gaps' | 'lost'>) {
  const b = c.byType;
  const types = `new ${b.new}, update ${b.update}, destroy ${b.destroy}, snapshot ${b.snapshot}`;
  return `${c.events} events (${types}) in ${c.frames} frames, ${c.gaps} gaps losing ${c.lost} events`;
}

function openError(path: string, err: unknown): CtError {
  const code = sysCode(err) ?? 'EIO';
  const what: Record<string, string> = {
    ENOENT: 'no such file: check the path',
    EACCES: 'permission denied: check the file permissions',
    ELOOP: 'too many symbolic links: check the path',
  };
  const advice = what[code] ?? `${(err as Error).message}: check the path`;
  return new CtError(code, `cannot open ${path}: ${advice}`, { cause: err });
}
