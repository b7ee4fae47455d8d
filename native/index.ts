// The whole native surface, typed in one file: load the addon, start, dump and stop a capture.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CtError, Exit } from '../common/errors.js';

export { FIELDS, Flag, RECORD_SIZE, RecordType } from './layout.js';

/** What the addon's layout() reports: the C++ side of native/layout.ts. */
export interface NativeLayout {
  recordSize: number;
  batchRecords: number;
  batchMillis: number;
  maxInFlight: number;
  fields: Record<string, { offset: number; size: number }>;
  flags: Record<string, number>;
  eventTypes: Record<string, number>;
}

/** Loss counted since the previous batch; every count is a delta, reported once. */
export interface BatchInfo {
  /** ENOBUFS errors from recv: the kernel overran the socket buffer and dropped events. */
  enobufs: number;
  /**
   * Events the kernel dropped for the event socket: the rise of its drop counter (sk_drops, the
   * `Drops` column of /proc/net/netlink). ENOBUFS says loss happened; this says how much.
   */
  drops: number;
  /** Records dropped because JavaScript was more than maxInFlight batches behind. */
  dropped: number;
  /** Netlink messages skipped because they did not parse. */
  malformed: number;
}

/**
 * `records` holds `count` records of RECORD_SIZE bytes (see native/layout.ts); `count` may be 0
 * when a batch only carries counts.
 */
export type BatchCallback = (records: ArrayBuffer, count: number, info: BatchInfo) => void;

/** Options as the addon takes them, already validated. */
export interface NativeStartOptions {
  new: boolean;
  update: boolean;
  destroy: boolean;
  bufferSize: number;
  reliable: boolean;
  /** struct sock_filter[] for SO_ATTACH_FILTER on the event socket; absent: none. */
  filter?: Uint8Array;
}

export interface Capture {
  /** Receive buffer the kernel granted, in bytes (getsockopt SO_RCVBUF: twice what was asked). */
  readonly bufferSize: number;
  /** Whether NETLINK_BROADCAST_ERROR is set, as the kernel reports it back. */
  readonly reliable: boolean;
  /** Inode of the event socket: its row in /proc/net/netlink (of the capture's namespace). */
  readonly socketInode: number;
  /**
   * Why the kernel refused CaptureOptions.filter (`setsockopt(SO_ATTACH_FILTER): EINVAL (…)`):
   * the capture runs without it and receives every event. Absent when attached or not asked for.
   */
  readonly filterError?: string;
  /**
   * Stops the reader: drains what the socket already holds, then resolves once every batch has
   * been passed to onBatch. Idempotent. A capture keeps the process alive until stopped.
   */
  stop(): Promise<void>;
  /**
   * Dumps the conntrack table (both families) on a second socket while events keep flowing.
   * Each entry reaches onBatch as a SNAPSHOT record; resolves with the number of entries once
   * the last of them has been passed to onBatch. Calls are queued: a dump starts when the
   * previous one has settled. Rejects with a CtError whose `code` is the errno name (EPERM when
   * CAP_NET_ADMIN was dropped), or ECANCELED when the capture stops first.
   */
  dump(): Promise<number>;
  /** The event socket's kernel drop counter now (total since start; after stop, its last value). */
  drops(): number;
  /** Datagrams read from the event socket so far: one per event that passed the filter. */
  received(): number;
}

/** The addon's capture object; `dump()` there rejects a second concurrent call with EBUSY. */
export interface NativeCapture extends Omit<Capture, 'filterError'> {
  readonly filterError?: Error;
}

/** A passwd entry as getpwnam_r/getpwuid_r return it (NSS included). */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/** What the addon's dropPrivileges() reports. */
export interface NativeDropResult {
  /** Thread id of the keeper ("ct-netadmin"): the one thread left with CAP_NET_ADMIN. */
  keeperTid: number;
  /** no_new_privs reached every thread (through a seccomp TSYNC), not only main and keeper. */
  allNoNewPrivs: boolean;
}

/** One address of one interface, as getifaddrs(3) lists it: whatever the interface's state. */
export interface InterfaceAddress {
  /** The interface's name, or an IPv4 address's label (`eth0:1`). */
  name: string;
  family: 4 | 6;
  /** The interface's IFF_* flags (linux/if.h): IFF_UP, IFF_RUNNING (carrier)… */
  flags: number;
  /** Network byte order: 4 bytes for family 4, 16 for family 6. */
  address: Uint8Array;
  /** As long as `address`; null when getifaddrs gave none. */
  netmask: Uint8Array | null;
}

/** linux/if.h: the interface is administratively up (`ip link set X up`). */
export const IFF_UP = 0x1;

export interface NativeAddon {
  layout(): NativeLayout;
  /**
   * Every IPv4 and IPv6 address of every interface of the calling thread's network namespace,
   * up or down, with carrier or without (os.networkInterfaces leaves out those not running).
   * Needs no privilege. Throws an Error with `code` and `syscall` 'getifaddrs'.
   */
  interfaceAddresses(): InterfaceAddress[];
  /** null when there is no such user; throws an Error with `code` when the lookup fails. */
  getpwnam(name: string): PasswdEntry | null;
  getpwuid(uid: number): PasswdEntry | null;
  /**
   * Once, as root, after the sockets and files are open: every thread to uid/gid with no
   * supplementary group and no capability, except a new keeper thread with CAP_NET_ADMIN, which
   * from then on sends every dump request and setConntrackEvents(). Mechanism only: the policy
   * is recorder/privileges.ts. Throws an Error with `code` and `syscall` naming the failed call.
   */
  dropPrivileges(uid: number, gid: number): NativeDropResult;
  /**
   * Writes `value` into /proc/sys/net/netfilter/nf_conntrack_events from the keeper thread (the
   * calling thread before a drop): the one file the kept capability ever writes, its path fixed
   * in C++. A RangeError with `code` ERANGE for anything but 0, 1 or 2; else an Error with
   * `code` and `syscall` ('open', 'write').
   */
  setConntrackEvents(value: number): void;
  /**
   * The calling thread joins the network namespace of the nsfs file `path` (open + setns).
   * Throws an Error with `code` (ENOENT, EINVAL: not a network namespace, EPERM: no
   * CAP_SYS_ADMIN) and `syscall` ('open' or 'setns').
   */
  joinNetns(path: string): void;
  /**
   * Sends `message` as one datagram to the AF_UNIX datagram socket at `socketPath` (syslog's
   * /dev/log), without blocking. Throws an Error with `code` (ENOENT, ECONNREFUSED: nobody
   * listens, EAGAIN: its queue is full, EACCES) and `syscall`.
   */
  sendDatagram(socketPath: string, message: string): void;
  /** Throws an Error with `code` (EPERM, EPROTONOSUPPORT…) and `syscall` when the socket fails. */
  start(
    options: NativeStartOptions,
    onBatch: BatchCallback,
    onError: (err: Error & { code?: string }) => void,
  ): NativeCapture;
}

export interface CaptureOptions {
  /** Which conntrack multicast groups to join; default all three. */
  events?: { new: boolean; update: boolean; destroy: boolean };
  /** Socket receive buffer in bytes; default 8 MiB (the kernel doubles it). */
  bufferSize?: number;
  /**
   * NETLINK_BROADCAST_ERROR: the kernel learns when an event cannot be queued and conntrack
   * retries DESTROY events, at the price of stalling (even dropping packets) when the reader
   * stalls. Default false. See docs/native.md.
   */
  reliable?: boolean;
  /**
   * A classic BPF program (struct sock_filter[] in host byte order, recorder/bpf.ts's packBpf)
   * attached to the event socket before it subscribes: events it rejects never reach the
   * reader. When the kernel refuses it, the capture starts anyway (Capture.filterError).
   */
  filter?: Uint8Array;
}

export const DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024;
/** Tiny buffers are allowed so that an overrun can be provoked on purpose. */
const MIN_BUFFER_SIZE = 4 * 1024;
const MAX_BUFFER_SIZE = 1024 * 1024 * 1024;
/** sizeof(struct sock_filter), and the kernel's longest classic BPF program. */
const SOCK_FILTER_SIZE = 8;
const BPF_MAXINSNS = 4096;

/** The package root: the first directory upward holding package.json (source or dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above native/index');
    dir = up;
  }
  return dir;
}

/** Where the built addon lives. */
export function addonPath(): string {
  return join(packageRoot(), 'build', 'Release', 'ct_native.node');
}

const loaded = new Map<string, NativeAddon>();

/**
 * Loads the addon once; CtError('ENOADDON') with the reason and the fix when it cannot. Private:
 * everything else reaches the addon through the typed wrappers below, which turn its errors
 * into CtError (test/kernel/native may use rawAddonForTests).
 */
function loadNative(file: string = addonPath()): NativeAddon {
  const cached = loaded.get(file);
  if (cached) return cached;
  let addon: NativeAddon;
  try {
    if (!existsSync(file)) throw new Error(`${file} does not exist`);
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new CtError(
      'ENOADDON',
      `the conntrack addon is not built (${reason}): install g++, make, python3 and linux-libc-dev, then run \`npm rebuild conntracker\` (or \`npm ci\`)`,
      { cause: err },
    );
  }
  loaded.set(file, addon);
  return addon;
}

/** Loads the addon (ct-record --check's probe) and returns its path; CtError('ENOADDON') when it cannot. */
export function checkAddon(file: string = addonPath()): string {
  loadNative(file);
  return file;
}

/**
 * The addon object itself, for the addon's own tests only (test/kernel/native: its layout, its
 * exports, values no TypeScript caller can pass). Nothing in native/, recorder/ or analyzer/
 * may use it; the architecture of the one door is that every other caller goes through a
 * wrapper of this file.
 */
export function rawAddonForTests(file: string = addonPath()): NativeAddon {
  return loadNative(file);
}

/** The errno name a native error carries (`code`), or `fallback`. */
function nativeCode(err: unknown, fallback: string): string {
  return err instanceof Error && 'code' in err ? String(err.code) : fallback;
}

function nativeDetail(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The passwd entry of a user name (NSS included): null when there is no such user; CtError
 * ('EUSER') when the lookup itself fails.
 */
export function getpwnam(name: string): PasswdEntry | null {
  return lookup(name, (addon) => addon.getpwnam(name));
}

/** getpwnam by uid. */
export function getpwuid(uid: number): PasswdEntry | null {
  return lookup(String(uid), (addon) => addon.getpwuid(uid));
}

function lookup(user: string, find: (addon: NativeAddon) => PasswdEntry | null) {
  const addon = loadNative();
  try {
    return find(addon);
  } catch (err) {
    throw new CtError(
      'EUSER',
      `cannot look up user '${user}': ${nativeDetail(err)} — check /etc/nsswitch.conf`,
      { cause: err },
    );
  }
}

/**
 * Once, as root, after the sockets and files are open: every thread becomes `user` (its uid and
 * gid, no supplementary group, no capability) except the keeper thread, which keeps
 * CAP_NET_ADMIN for dumps and setConntrackEvents(). The policy (who, when) is
 * recorder/privileges.ts. CtError('EPRIVDROP') naming the failed call when it cannot.
 */
export function dropPrivileges(user: PasswdEntry): NativeDropResult {
  const addon = loadNative();
  try {
    return addon.dropPrivileges(user.uid, user.gid);
  } catch (err) {
    throw new CtError(
      'EPRIVDROP',
      `cannot drop privileges to user ${user.name}: ${nativeDetail(err)} — run ct-record as root, or keep root with --user root`,
      { cause: err },
    );
  }
}

/**
 * One datagram to the AF_UNIX datagram socket at `socketPath` (syslog's /dev/log), without
 * blocking. CtError with the errno name as its code (ENOENT, ECONNREFUSED: nobody listens,
 * EAGAIN: its queue is full, ENAMETOOLONG) and the addon's `syscall: ERRNO (text)` as its
 * message: the syslog logger quotes it after the socket's path, and says what to do.
 */
export function sendDatagram(socketPath: string, message: string): void {
  const addon = loadNative();
  try {
    addon.sendDatagram(socketPath, message);
  } catch (err) {
    throw new CtError(nativeCode(err, 'ESEND'), nativeDetail(err), { cause: err });
  }
}

/**
 * Every address of every interface of the (main thread's) network namespace, as the addon's
 * interfaceAddresses() lists them: which are the host's is recorder/host.ts's rule. CtError
 * with the errno name as its code when getifaddrs fails (ENOMEM, EMFILE…).
 */
export function interfaceAddresses(): InterfaceAddress[] {
  const addon = loadNative();
  try {
    return addon.interfaceAddresses();
  } catch (err) {
    throw new CtError(
      nativeCode(err, 'EIFADDRS'),
      `cannot list the interface addresses: ${nativeDetail(err)} — check the process's limits (open files, memory), then retry`,
      { cause: err },
    );
  }
}

function usage(message: string): CtError {
  return new CtError('EUSAGE', message, { exit: Exit.USAGE });
}

function validate(opts: CaptureOptions): NativeStartOptions {
  const events = opts.events ?? { new: true, update: true, destroy: true };
  for (const key of ['new', 'update', 'destroy'] as const) {
    if (typeof events[key] !== 'boolean') {
      throw usage(`capture option events.${key} must be true or false`);
    }
  }
  if (!events.new && !events.update && !events.destroy) {
    throw usage('capture needs at least one of the new, update and destroy events: enable one');
  }
  const bufferSize = opts.bufferSize ?? DEFAULT_BUFFER_SIZE;
  if (
    !Number.isInteger(bufferSize) ||
    bufferSize < MIN_BUFFER_SIZE ||
    bufferSize > MAX_BUFFER_SIZE
  ) {
    throw usage(
      `capture buffer size ${bufferSize} is out of range: give a whole number of bytes from ${MIN_BUFFER_SIZE} to ${MAX_BUFFER_SIZE}`,
    );
  }
  const reliable = opts.reliable ?? false;
  if (typeof reliable !== 'boolean') throw usage('capture option reliable must be true or false');
  const filter = opts.filter;
  if (filter === undefined) return { ...events, bufferSize, reliable };
  if (
    !(filter instanceof Uint8Array) ||
    filter.length === 0 ||
    filter.length % SOCK_FILTER_SIZE !== 0 ||
    filter.length > BPF_MAXINSNS * SOCK_FILTER_SIZE
  ) {
    throw usage(
      `capture filter must be 1 to ${BPF_MAXINSNS} struct sock_filter (${SOCK_FILTER_SIZE} bytes each)`,
    );
  }
  return { ...events, bufferSize, reliable, filter };
}

/** net.netfilter.nf_conntrack_events: 0 off, 1 on, 2 only for flows created while a listener exists. */
export type ConntrackEventsValue = 0 | 1 | 2;

export function isConntrackEventsValue(value: unknown): value is ConntrackEventsValue {
  return value === 0 || value === 1 || value === 2;
}

/**
 * Sets net.netfilter.nf_conntrack_events in this process's network namespace with the kept
 * CAP_NET_ADMIN (after dropPrivileges(), only the keeper thread may). The addon writes no other
 * file and no other value; CtError when the value is not 0, 1 or 2 or the write fails.
 */
export function setConntrackEvents(value: ConntrackEventsValue): void {
  if (!isConntrackEventsValue(value)) {
    throw usage(`nf_conntrack_events cannot be set to ${String(value)}: give 0, 1 or 2`);
  }
  const addon = loadNative();
  try {
    addon.setConntrackEvents(value);
  } catch (err) {
    const code = nativeCode(err, 'ESYSCTL');
    const detail = nativeDetail(err);
    throw new CtError(
      code,
      `cannot set net.netfilter.nf_conntrack_events=${value}: ${detail} — set it by hand (sysctl -w net.netfilter.nf_conntrack_events=${value})`,
      { cause: err },
    );
  }
}

/** Where `ip netns` keeps its namespaces, one bind-mounted nsfs file per name. */
export const NETNS_DIR = '/run/netns';

/** `--netns` NAME (no slash) is an `ip netns` name, anything else a path (/proc/PID/ns/net). */
export function netnsPath(spec: string): string {
  return spec.includes('/') ? spec : `${NETNS_DIR}/${spec}`;
}

function netnsError(spec: string, path: string, err: unknown): CtError {
  const code = nativeCode(err, 'ENETNS');
  const named = !spec.includes('/');
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new CtError(
      'ENONETNS',
      named
        ? `no network namespace ${spec} (ip netns list shows the names): give one of those names, or a path such as /proc/PID/ns/net`
        : `no network namespace at ${path}: it does not exist; give a name from ip netns list, or /proc/PID/ns/net of a process in the namespace`,
      { exit: Exit.USAGE, cause: err },
    );
  }
  if (code === 'EINVAL') {
    return new CtError(
      'ENOTNETNS',
      `${path} is not a network namespace: give a name from ip netns list, /proc/PID/ns/net of a process in the namespace, or a bind mount of one`,
      { exit: Exit.USAGE, cause: err },
    );
  }
  if (code === 'EPERM' || code === 'EACCES') {
    return new CtError(
      'EPERM',
      `cannot join network namespace ${spec}: ${code} — entering another namespace needs CAP_SYS_ADMIN: run ct-record as root`,
      { cause: err },
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new CtError(code, `cannot join network namespace ${spec} (${path}): ${detail}`, {
    cause: err,
  });
}

/**
 * Moves the calling (main) thread into the network namespace `spec` names: an `ip netns` name or
 * a path to an nsfs file. Threads created afterwards (the reader, the privilege keeper), child
 * processes and the main thread's own sockets, /proc/self/net, /proc/sys/net and
 * interfaceAddresses() then belong to it; threads that already exist (libuv's pool, V8's)
 * stay where they were (docs/native.md, "Network namespace"). Call it before anything is
 * opened, as root. Returns the path joined; CtError when the namespace cannot be joined.
 */
export function joinNetns(spec: string): string {
  if (spec === '' || spec.includes('\0')) {
    throw usage(
      `${JSON.stringify(spec)} is not a network namespace: give a name from ip netns list or a path`,
    );
  }
  const path = netnsPath(spec);
  const addon = loadNative();
  try {
    addon.joinNetns(path);
  } catch (err) {
    throw netnsError(spec, path, err);
  }
  return path;
}

function openError(err: unknown): CtError {
  const code = nativeCode(err, 'ENETLINK');
  if (code === 'EPERM' || code === 'EACCES') {
    return new CtError(
      'EPERM',
      `cannot open conntrack netlink socket: ${code} — run as root or grant CAP_NET_ADMIN`,
      { cause: err },
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new CtError(
    code,
    `cannot open conntrack netlink socket: ${detail} — check that the kernel has conntrack netlink support (modprobe nf_conntrack_netlink)`,
    { cause: err },
  );
}

function dumpError(err: unknown): CtError {
  const code = nativeCode(err, 'ENETLINK');
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'EPERM' || code === 'EACCES') {
    return new CtError(
      code,
      `cannot dump the conntrack table: ${code} — the dump needs CAP_NET_ADMIN at the time of the dump: keep it when dropping privileges`,
      { cause: err },
    );
  }
  if (code === 'ECANCELED') {
    return new CtError(code, `conntrack table dump cancelled: ${detail}`, { cause: err });
  }
  return new CtError(
    code,
    `conntrack table dump failed: ${detail} — the snapshot is incomplete: dump again`,
    { cause: err },
  );
}

/** The addon's capture with dump() calls queued and its errors as CtError. */
function wrap(native: NativeCapture): Capture {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    bufferSize: native.bufferSize,
    reliable: native.reliable,
    socketInode: native.socketInode,
    ...(native.filterError === undefined ? {} : { filterError: native.filterError.message }),
    stop: () => native.stop(),
    drops: () => native.drops(),
    received: () => native.received(),
    dump: () => {
      const run = queue.then(() => native.dump());
      queue = run.catch(() => {});
      return run.catch((err: unknown) => {
        throw dumpError(err);
      });
    },
  };
}

/**
 * Subscribes to conntrack events in the caller's network namespace. Batches arrive on the main
 * thread; onError reports a fatal reader error (the capture has then ended on its own).
 */
export function startCapture(
  opts: CaptureOptions,
  onBatch: BatchCallback,
  onError: (err: CtError) => void,
): Capture {
  const native = validate(opts);
  const addon = loadNative();
  try {
    const capture = addon.start(native, onBatch, (err) => {
      onError(
        new CtError(
          err.code ?? 'ENETLINK',
          `conntrack reader stopped: ${err.message} — events after this point were not recorded; restart the recording`,
          { cause: err },
        ),
      );
    });
    return wrap(capture);
  } catch (err) {
    throw openError(err);
  }
}
