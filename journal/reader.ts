// Streams a journal frame by frame in fixed-size reads, checking its digest chain as it goes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CtError, Exit, sysCode } from '../common/errors.js';
import { AddressInterning } from './address-interning.js';
import { JournalDigest, sameDigest } from './digest.js';
import type { CtEvent } from './event.js';
import { EventColumns } from './event-columns.js';
import { decodeEvents } from './events-codec.js';
import { scanEvents } from './events-scan.js';
import { decodeEventsV2, scanEventsV2 } from './events-v2.js';
import { JournalFault } from './fault.js';
import {
  type AddressSet,
  type EventCounts,
  FRAME_HEADER_SIZE,
  FrameKind,
  type JournalCheckpoint,
  type JournalGap,
  type JournalHeader,
  type JournalTrailer,
  MAGIC,
  type RouteSet,
} from './format.js';
import { checkFrame } from './frame.js';
import {
  decodeCheckpoint,
  decodeGap,
  decodeHeader,
  decodeTrailer,
  NewerFormat,
} from './meta-codec.js';
import type {
  ColumnsItem,
  IdleItem,
  JournalCounts,
  JournalItem,
  JournalReader,
  ReadOptions,
  ScanBatch,
  ScanInto,
  ScansByFormat,
} from './reader-types.js';
import { afterBadFrame, type GAVE_UP, scanForFrame } from './resync.js';
import { RouteInterning } from './route-interning.js';
import { Damage } from './validate.js';

export { MAX_DISTINCT_ADDRESSES } from './address-interning.js';
export type * from './reader-types.js';
export { MAX_DISTINCT_ROUTES } from './route-interning.js';

const TYPE_KEYS = [undefined, 'new', 'update', 'destroy', 'snapshot'] as const;
const IDLE: IdleItem = Object.freeze({ kind: 'idle' });

/**
 * The events payload codec of each format: decode is the definition, scan the fast path into
 * columns that returns false for anything decode must judge.
 */
const EVENT_CODECS = {
  1: { decode: decodeEvents, scan: scanEvents },
  2: { decode: decodeEventsV2, scan: scanEventsV2 },
} as const;

/** Opens a journal and reads its magic and header; CtError when it is not a readable v1 or v2 journal. */
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
  #routeSets: RouteSet[];
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
          `${path} was written by format v${err.format}; this ct-analyze reads v1 and v2: upgrade conntracker`,
          { exit: Exit.VERSION },
        );
      }
      throw this.#damage(MAGIC.length, err);
    }
    this.#headDigest.update(MAGIC);
    this.#headDigest.update(head.bytes);
    this.#bodyStart = MAGIC.length + head.bytes.length;
    this.#addressSets = this.#headerAddresses();
    this.#routeSets = this.#headerRoutes();
  }

  #headerRoutes(): RouteSet[] {
    const { routes, start } = this.header;
    return routes === undefined ? [] : [{ time: start, routes }];
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

  get routeSets(): readonly RouteSet[] {
    return this.#routeSets;
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

  *scannedInto<B extends ScanBatch>(batch: B, scans: ScansByFormat<B>): Generator<B> {
    const scan = scans[this.header.format as keyof ScansByFormat<B>] as ScanInto<ScanBatch>;
    for (const item of this.#walk(false, batch, false, scan)) {
      if (item.kind === 'events') yield batch;
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
    cols: ScanBatch = new EventColumns(),
    follow = false,
    scanWith?: ScanInto<ScanBatch>,
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
    const routeSets = this.#headerRoutes();
    this.#routeSets = routeSets;
    const internedRoutes = new RouteInterning();
    const digest = this.#headDigest.copy();
    const fields = this.header.eventFields.length;
    const codec = EVENT_CODECS[this.header.format as keyof typeof EVENT_CODECS];
    const decode = codec.decode;
    const scan = scanWith ?? (codec.scan as ScanInto<ScanBatch>);
    let pos = this.#bodyStart;
    /** The last gap's dump (`to resync skipped`), so one dump's skipped count is summed once. */
    let lastDump = '';
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
          if (objects || !scan(f.payload, fields, cols)) {
            batch = decode(f.payload, fields);
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
        if (gap.skipped !== undefined) {
          // One dump resynchronising two causes wrote two gaps with the same counts: once.
          const dump = `${gap.to} ${gap.resync} ${gap.skipped}`;
          if (dump !== lastDump) c.resyncSkipped = (c.resyncSkipped ?? 0) + gap.skipped;
          lastDump = dump;
        } else lastDump = '';
        pos = end;
        yield { kind: 'gap', gap };
      } else if (f.kind === FrameKind.CHECKPOINT) {
        let cp: JournalCheckpoint;
        try {
          cp = decodeCheckpoint(f.payload, internedRoutes.known);
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
        if (cp.routes !== undefined) {
          try {
            routeSets.push(internedRoutes.set(cp.routes));
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
        throw this.#corrupt(
          pos,
          `a frame of kind ${f.kind} has no place in a v${this.header.format} journal here`,
        );
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

  /** The next valid frame after `from` (journal/resync.ts: bounded, linear in the file's size). */
  #scan(from: number): number | undefined | typeof GAVE_UP {
    return scanForFrame(from, this.#size, this.#chunk, (buf, off, len, pos) =>
      this.#read(buf, off, len, pos),
    );
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
