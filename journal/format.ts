// Formats 1 and 2 of the .mpk journal: constants, frame kinds and the header/trailer shapes (docs/journal-format.md).
import { Packr, Unpackr } from 'msgpackr';

/** PNG-style signature: a high byte, the name, CR LF, ^Z, LF — text-mode mangling breaks it. */
export const MAGIC: Uint8Array = Uint8Array.of(0x89, 0x43, 0x54, 0x4a, 0x0d, 0x0a, 0x1a, 0x0a);

/** The newest format: what a writer writes unless told otherwise. */
export const FORMAT_VERSION = 2;

// The format numbers and --format-version's parser live apart so a CLI's option parsing needs no msgpackr.
export {
  FORMAT_VERSIONS,
  type FormatVersion,
  isFormatVersion,
  parseFormatVersion,
} from './format-version.js';

/**
 * Frame envelope, little-endian, the same in every format version:
 * | offset | size | field                                   |
 * |      0 |    4 | payload length (u32le), ≤ MAX_FRAME      |
 * |      4 |    4 | crc32 (zlib) of kind byte + payload     |
 * |      8 |    1 | kind (FrameKind)                        |
 * |      9 |  len | payload (one msgpack value)             |
 */
export const FRAME_HEADER_SIZE = 9;

/** Largest payload a frame may declare: anything above is damage, never an allocation. */
export const MAX_FRAME = 16 * 1024 * 1024;

export const FrameKind = {
  HEADER: 1,
  EVENTS: 2,
  TRAILER: 3,
  /** Events were lost: a JournalGap map. */
  GAP: 4,
  /** The running digest and counts so far: a journal cut off later verifies up to here. */
  CHECKPOINT: 5,
} as const;
export type FrameKindCode = (typeof FrameKind)[keyof typeof FrameKind];

/**
 * Positions of an event array in an events frame (see docs/journal-format.md, "Events").
 * The header repeats this list so a file describes itself.
 */
export const EVENT_FIELDS: readonly string[] = Object.freeze([
  'type',
  'family',
  'proto',
  'status',
  'id',
  'dtime',
  'flags',
  'src',
  'dst',
  'sport',
  'dport',
  'tcpState',
  'reply',
  'icmp',
  'startAgo',
  'counters',
  'mark',
  'zone',
]);

export interface Sysctls {
  nf_conntrack_events: number | null;
  nf_conntrack_timestamp: number | null;
  nf_conntrack_acct: number | null;
  ip_local_port_range: [number, number] | null;
}

export interface JournalHeader {
  /** Format version; a reader refuses a larger one. */
  format: number;
  tool: { name: string; version: string };
  host: string;
  /** Kernel release (uname -r). */
  kernel: string;
  /** The recorded network namespace, e.g. 'net:[4026531840]'. */
  netns: string;
  /** Recording start, µs since the epoch. */
  start: number;
  /** The recorder options used (plain data). */
  options: Record<string, unknown>;
  sysctls: Sysctls;
  /** Names of the positional fields of an event array. */
  eventFields: string[];
  /**
   * The host's addresses when the recording started; undefined in journals that do not record
   * them (written before 0.2.0, or imported). Changes come in checkpoint frames.
   */
  addresses?: HostAddress[];
  /**
   * The host's routes when the recording started; undefined in journals that do not record them
   * (written before routes were recorded, or imported). Changes come in checkpoint frames.
   */
  routes?: HostRoute[];
  /** Where this journal sits in a run that ct-record --rotate split into several; else undefined. */
  chain?: JournalChain;
}

/**
 * A journal's place in a rotated run (docs/journal-format.md, "Chained journals"): the run it
 * belongs to, its position, and the whole-file digest of the journal before it.
 */
export interface JournalChain {
  /** RUN_ID_SIZE random bytes shared by every journal of one ct-record run. */
  run: Uint8Array;
  /** 1-based position in the run. */
  sequence: number;
  /** The journal before this one: null exactly when sequence is 1. */
  previous: ChainLink | null;
}

/** The journal a chained one continues: its whole-file SHA-256 (trailer included) and name. */
export interface ChainLink {
  /** What `sha256sum`, `ct-analyze verify` and ct-record print for that file. */
  sha256: Uint8Array;
  /** Its base name as written (no directory): what to look for when it is missing. */
  file: string;
}

/** Bytes of a run id. */
export const RUN_ID_SIZE = 16;

/** Digits of the sequence number in a rotated journal's name (more once a run passes 999999). */
export const SEQUENCE_DIGITS = 6;

/**
 * The name of journal `sequence` of a run recorded with `-o output --rotate`: the number goes
 * before the extension, zero-padded so that `ls` and shell globs list a run in order.
 * `fw1.mpk` → `fw1-000001.mpk`; `dir/fw1` → `dir/fw1-000001`.
 */
export function sequencePath(output: string, sequence: number): string {
  const { stem, ext } = splitOutput(output);
  return `${stem}-${String(sequence).padStart(SEQUENCE_DIGITS, '0')}${ext}`;
}

/** `dir/fw1.mpk` → stem `dir/fw1`, ext `.mpk`; a dot that starts the base name is no extension. */
export function splitOutput(output: string): { stem: string; ext: string } {
  const slash = output.lastIndexOf('/') + 1;
  const dot = output.lastIndexOf('.');
  const cut = dot > slash ? dot : output.length;
  return { stem: output.slice(0, cut), ext: output.slice(cut) };
}

/**
 * One address of the recording host (the recorded network namespace), as `ip -br addr` shows
 * it: what makes a flow input (to a local address), output (from one) or forward (neither).
 */
export interface HostAddress {
  /** Interface name, e.g. `eth0` (untrusted text when read from a file). */
  ifname: string;
  family: 4 | 6;
  /** Network byte order: 4 or 16 bytes. */
  address: Uint8Array;
  /** Prefix length: 0–32 (IPv4) or 0–128 (IPv6). */
  prefix: number;
}

/** The host's addresses from `time` on (µs since the epoch): at start, and after each change. */
export interface AddressSet {
  time: number;
  addresses: HostAddress[];
}

/** Route types a route map's `type` names (ip-route(8)); a reader keeps any other token as is. */
export const ROUTE_TYPES = [
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
  'throw',
] as const;

/** What a route's `type` may look like: a short lowercase token (a later writer may add some). */
export const ROUTE_TYPE = /^[a-z]{1,16}$/;

/** The main routing table's id (RT_TABLE_MAIN), and the local one's (RT_TABLE_LOCAL). */
export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;

/**
 * One route of the recording host (the recorded network namespace), as `ip route` shows it:
 * what says which interface a packet leaves by and whether its destination is reachable.
 */
export interface HostRoute {
  family: 4 | 6;
  /** Destination prefix, network byte order: 4 or 16 bytes, host bits zero. */
  dst: Uint8Array;
  /** Prefix length: 0–32 (IPv4) or 0–128 (IPv6); 0 with `dst` all zeros is the default route. */
  prefix: number;
  /** Output interface (untrusted text when read from a file); absent for blackhole and the like. */
  dev?: string;
  /** Next hop, when the route has one: 4 or 16 bytes of the route's family. */
  gateway?: Uint8Array;
  /** ROUTE_TYPES, or another ROUTE_TYPE token from a later writer. */
  type: string;
  /** Routing table id: TABLE_MAIN, or TABLE_LOCAL (docs/journal-format.md says which). */
  table: number;
  /** The route's metric (priority): lower wins among routes of the same prefix. */
  metric: number;
}

/** The host's routes from `time` on (µs since the epoch): at start, and after each change. */
export interface RouteSet {
  time: number;
  routes: HostRoute[];
}

/** What a writer needs: format and eventFields are the writer's own (given ones must match). */
export type JournalHeaderInput = Omit<JournalHeader, 'format' | 'eventFields'> &
  Partial<Pick<JournalHeader, 'format' | 'eventFields'>>;

export interface EventCounts {
  new: number;
  update: number;
  destroy: number;
  snapshot: number;
}

export interface JournalTrailer {
  /** Recording stop, µs since the epoch. */
  stop: number;
  /** Events in the journal. */
  events: number;
  byType: EventCounts;
  /** Frames before the trailer, the header and gap frames included. */
  frames: number;
  /** Gap frames in the journal (0 for journals written before gaps existed). */
  gaps: number;
  /** Sum of the gaps' `lost` counts. */
  lost: number;
  /** SHA-256 of every byte of the file before the trailer frame, magic included. */
  digest: Uint8Array;
  /**
   * A chained journal closed by a rotation: the base name of the journal its run goes on in.
   * Absent on the last journal of a run, and on journals that are not chained.
   */
  next?: string;
}

type TrailerCounts = 'events' | 'byType' | 'frames' | 'gaps' | 'lost' | 'digest';

/** What a writer needs: the counts are the writer's own (given ones must match). */
export type JournalTrailerInput = Omit<JournalTrailer, TrailerCounts> &
  Partial<Pick<JournalTrailer, TrailerCounts>>;

/** Bytes of a SHA-256 digest, as checkpoints and the trailer store it. */
export const DIGEST_SIZE = 32;

/**
 * A checkpoint frame: what the journal held when it was written. Everything before it can be
 * verified even if the recording never reaches its trailer.
 */
export interface JournalCheckpoint {
  /** Frames before this one, the header and earlier checkpoints included. */
  frames: number;
  /** Events in the events frames before this one. */
  events: number;
  /** Gap frames before this one, and the sum of their `lost`. */
  gaps: number;
  lost: number;
  /** SHA-256 of every byte of the file before this frame, magic included. */
  digest: Uint8Array;
  /** The host's addresses, when they changed since the header or the last checkpoint that had them. */
  addresses?: AddressSet;
  /** The host's routes, when they changed since the header or the last checkpoint that had them. */
  routes?: RouteSet;
}

/**
 * Checkpoint defaults. 256 frames are at most 256 Ki events (~8 MiB) under load: a checkpoint
 * costs ~100 bytes and one digest copy, so this is noise, and a crash leaves at most that much
 * unverified. 60 s bounds the unverified tail of a quiet recording, where frames are small.
 */
export const CHECKPOINT_FRAMES = 256;
export const CHECKPOINT_MS = 60_000;

/** Causes a recorder names today; a gap may carry any other token (see GAP_CAUSE). */
export const GapCause = {
  /** The kernel dropped events: the netlink socket's receive buffer overran. */
  ENOBUFS: 'ENOBUFS',
  /** The recorder's bounded queue between its reader thread and JavaScript was full. */
  QUEUE: 'QUEUE',
} as const;

/** What a gap's cause may look like: a short token that is safe to print in a report line. */
export const GAP_CAUSE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A gap frame: events of the window [from, to] may be missing from the journal. */
export interface JournalGap {
  /** Window start, µs since the epoch: the last moment the recorder knows it missed nothing. */
  from: number;
  /** Window end, µs since the epoch (≥ from): when the recorder was caught up again. */
  to: number;
  /** Events lost: exact when lostKnown, else a lower bound (0 when nothing is known). */
  lost: number;
  lostKnown: boolean;
  /** Why: GapCause.ENOBUFS, GapCause.QUEUE or another token matching GAP_CAUSE. */
  cause: string;
  /** Entries of the table dump that resynchronised after the loss, or -1 when none was made. */
  resync: number;
  /**
   * Of those entries, how many the recorder left out because the journal already held their
   * conntrack id and state (≤ resync). Optional: absent in journals from before it, and when
   * no dump was made.
   */
  skipped?: number;
}

/** Positional arrays, no msgpackr records: any msgpack tool can read the file. */
export const packr = new Packr({ useRecords: false });

/**
 * copyBuffers: decoded addresses must not alias the reader's reusable chunk buffer.
 * int64AsType 'auto': u64/i64 beyond 2^53 stay BigInt, which validation then rejects.
 */
export const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: true,
  // msgpackr 2.1 implements 'auto' but its typings do not list it yet.
  int64AsType: 'auto' as 'number',
});
