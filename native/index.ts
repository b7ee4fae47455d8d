// The whole native surface, typed in one file: load the addon, start and stop a capture, layout.
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
  /** Records dropped because JavaScript was more than maxInFlight batches behind. */
  dropped: number;
  /** Netlink messages skipped because they did not parse. */
  malformed: number;
}

/** `records` holds `count` records of RECORD_SIZE bytes (see native/layout.ts). */
export type BatchCallback = (records: ArrayBuffer, count: number, info: BatchInfo) => void;

/** Options as the addon takes them, already validated. */
export interface NativeStartOptions {
  new: boolean;
  update: boolean;
  destroy: boolean;
  bufferSize: number;
}

export interface Capture {
  /** Receive buffer the kernel granted, in bytes (getsockopt SO_RCVBUF: twice what was asked). */
  readonly bufferSize: number;
  /**
   * Stops the reader: drains what the socket already holds, then resolves once every batch has
   * been passed to onBatch. Idempotent. A capture keeps the process alive until stopped.
   */
  stop(): Promise<void>;
}

export interface NativeAddon {
  layout(): NativeLayout;
  /** Throws an Error with `code` (EPERM, EPROTONOSUPPORT…) and `syscall` when the socket fails. */
  start(
    options: NativeStartOptions,
    onBatch: BatchCallback,
    onError: (err: Error & { code?: string }) => void,
  ): Capture;
}

export interface CaptureOptions {
  /** Which conntrack multicast groups to join; default all three. */
  events?: { new: boolean; update: boolean; destroy: boolean };
  /** Socket receive buffer in bytes; default 8 MiB (the kernel doubles it). */
  bufferSize?: number;
}

export const DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024;
const MIN_BUFFER_SIZE = 64 * 1024;
const MAX_BUFFER_SIZE = 1024 * 1024 * 1024;

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

/** Loads the addon once; CtError('ENOADDON') with the reason and the fix when it cannot. */
export function loadNative(file: string = addonPath()): NativeAddon {
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
  return { ...events, bufferSize };
}

function openError(err: unknown): CtError {
  const code = err instanceof Error && 'code' in err ? String(err.code) : 'ENETLINK';
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
    return addon.start(native, onBatch, (err) => {
      onError(
        new CtError(
          err.code ?? 'ENETLINK',
          `conntrack reader stopped: ${err.message} — events after this point were not recorded; restart the recording`,
          { cause: err },
        ),
      );
    });
  } catch (err) {
    throw openError(err);
  }
}
