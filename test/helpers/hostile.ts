// Crafted worst-case journals of a chosen size, and a peak-RSS probe for the CLIs that judge them.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../common/package.js';
import type { CtEvent } from '../../journal/event.js';
import {
  FRAME_HEADER_SIZE,
  type HostAddress,
  type HostRoute,
  MAGIC,
  MAX_FRAME,
} from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { JournalWriter } from '../../journal/writer.js';
import { HEADER, writeJournal } from './journals.js';

/** A real journal's magic and header frame, with no frame after it (`scratch` is overwritten). */
export function journalHead(scratch: string): Buffer {
  writeJournal(scratch, [], false);
  const bytes = readFileSync(scratch);
  rmSync(scratch);
  return bytes.subarray(0, MAGIC.length + FRAME_HEADER_SIZE + bytes.readUInt32LE(MAGIC.length));
}

/** Writes `head`, then `fill` repeated (the last copy cut) until the file is `size` bytes. */
function writeRepeated(path: string, head: Uint8Array, fill: Uint8Array, size: number): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = fill[i % fill.length] as number;
    for (let left = size - head.length; left > 0; left -= chunk.length) {
      writeSync(fd, chunk, 0, Math.min(left, chunk.length));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The resync scan's worst case: after the header, the word `02 90 xx 00` over and over. Every
 * 4th offset then reads as an events frame (kind 2, a payload opening with an empty array)
 * whose length, `xx` × 64 KiB + 0x9002, is as large as still fits in the file from the first
 * half of it (16 MiB at most); every checksum fails, so a reader that checks every candidate
 * computes CRCs over a quarter of the file times half its size. `size` is the file's size.
 */
export function writeResyncBomb(path: string, size: number): void {
  const head = journalHead(path);
  const fits = Math.min(MAX_FRAME, Math.floor((size - head.length) / 2));
  const xx = Math.max(0, Math.min(0xff, Math.floor((fits - 0x9002) / 0x10000)));
  writeRepeated(path, head, Uint8Array.of(0x02, 0x90, xx, 0x00), size);
}

/** 4,096 IPv6 addresses on interfaces with 64-character names: the largest set format v1 allows. */
export function bigAddressSet(variant: number): HostAddress[] {
  return Array.from({ length: 4096 }, (_, i) => {
    const address = new Uint8Array(16);
    address[0] = 0x20;
    address[1] = 0x01;
    address[12] = variant & 0xff;
    address[13] = (variant >> 8) & 0xff;
    address[14] = i >> 8;
    address[15] = i & 0xff;
    return {
      ifname: `${'e'.repeat(56)}${String(i % 64).padStart(8, '0')}`,
      family: 6,
      address,
      prefix: 64,
    };
  });
}

/** One TCP event, so the journal holds one flow whose direction the addresses decide. */
const ONE_EVENT: CtEvent = {
  type: 1,
  family: 6,
  proto: 6,
  status: 0x8,
  id: 1,
  time: HEADER.start + 1,
  timeKernel: false,
  orig: {
    src: bigAddressSet(0)[0]?.address as Uint8Array,
    dst: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Uint8Array(11), 1),
    sport: 40000,
    dport: 443,
    icmpType: 0,
    icmpCode: 0,
    icmpId: 0,
  },
  reply: {
    src: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Uint8Array(11), 1),
    dst: bigAddressSet(0)[0]?.address as Uint8Array,
    sport: 443,
    dport: 40000,
    icmpType: 0,
    icmpCode: 0,
    icmpId: 0,
  },
  tcpState: 1,
};

/**
 * The address-change worst case: one event, then `checkpoints` address-change checkpoints of
 * 4,096 addresses each (~480 KB apiece). `distinct` gives every set new addresses (memory
 * O(addresses) is then the floor); otherwise the sets flap between two lists, as an interface
 * going up and down would.
 */
export function writeAddressBomb(path: string, checkpoints: number, distinct: boolean): void {
  const w = JournalWriter.create(path, HEADER);
  w.append([ONE_EVENT]);
  const flap = [bigAddressSet(0), bigAddressSet(1)];
  for (let i = 0; i < checkpoints; i++) {
    const addresses = distinct ? bigAddressSet(i) : (flap[i % 2] as HostAddress[]);
    w.noteAddresses({ time: HEADER.start + 2 + i, addresses });
  }
  w.close({ stop: HEADER.start + 60_000_000 });
}

/** 4,096 IPv6 routes via a gateway on devices with 64-character names: the largest set a checkpoint holds. */
export function bigRouteSet(variant: number): HostRoute[] {
  return Array.from({ length: 4096 }, (_, i) => {
    const dst = new Uint8Array(16);
    dst[0] = 0x20;
    dst[1] = 0x01;
    dst[4] = variant & 0xff;
    dst[6] = i >> 8;
    dst[7] = i & 0xff;
    const gateway = new Uint8Array(16);
    gateway[0] = 0xfe;
    gateway[1] = 0x80;
    gateway[15] = (i % 250) + 1;
    return {
      family: 6,
      dst,
      prefix: 64,
      dev: `${'r'.repeat(56)}${String(i % 64).padStart(8, '0')}`,
      gateway,
      type: 'unicast',
      table: 254,
      metric: 1024,
    };
  });
}

/**
 * The route-change worst case: one event, then `checkpoints` route checkpoints of 4,096 routes
 * each (~0.5 MB apiece), flapping between two lists as a routing daemon losing a peer would.
 */
export function writeRouteBomb(path: string, checkpoints: number): void {
  const w = JournalWriter.create(path, HEADER);
  w.append([ONE_EVENT]);
  const flap = [bigRouteSet(0), bigRouteSet(1)];
  for (let i = 0; i < checkpoints; i++) {
    w.noteNetwork({ routes: { time: HEADER.start + 2 + i, routes: flap[i % 2] as HostRoute[] } });
  }
  w.close({ stop: HEADER.start + 60_000_000 });
}

/** `n` gap frames, each with its own 64-character cause (one line per cause in a warning). */
export function writeGapBomb(path: string, n: number): void {
  const w = JournalWriter.create(path, HEADER);
  for (let i = 0; i < n; i++) {
    const cause = `C${String(i).padStart(63, '0')}`;
    const time = HEADER.start + i;
    w.appendGap({ from: time, to: time, lost: 1, lostKnown: true, cause, resync: -1 });
  }
  w.close({ stop: HEADER.start + 60_000_000 });
}

/** A header whose host, kernel and netns strings fill `size` bytes between them. */
export function writeHugeHeader(path: string, size: number): void {
  const each = Math.floor(Math.min(size, MAX_FRAME - 4096) / 3);
  const text = (c: string) => c.repeat(each);
  const w = JournalWriter.create(path, {
    ...HEADER,
    host: text('h'),
    kernel: text('k'),
    netns: text('n'),
  });
  w.append([ONE_EVENT]);
  w.close({ stop: HEADER.start + 60_000_000 });
}

/** `n` events frames of one event each (each its own flow), a checkpoint after every frame. */
export function writeTinyFrames(path: string, n: number): void {
  const w = JournalWriter.create(path, HEADER, { checkpointFrames: 1 });
  const ev = { ...ONE_EVENT, orig: { ...ONE_EVENT.orig }, reply: { ...ONE_EVENT.reply } };
  for (let i = 0; i < n; i++) {
    ev.orig.sport = 1024 + (i % 60000);
    ev.orig.dport = 1 + Math.floor(i / 60000);
    ev.time = HEADER.start + i;
    w.append([ev]);
  }
  w.close({ stop: HEADER.start + 60_000_000 });
}

/** `n` frames of unknown kind 6 with good CRCs after a header: `encodeFrame` only, no writer. */
export function tinyUnknownFrames(head: Uint8Array, n: number): Buffer {
  return Buffer.concat([head, ...Array(n).fill(encodeFrame(6, Buffer.of(0x90)))]);
}

export interface CliRun {
  status: number | null;
  /** Wall time of the whole child, node's start-up (~0.1 s) included. */
  ms: number;
  /** The child's peak RSS (VmHWM, read as it exits), MB. */
  rssMB: number;
  stdout: string;
  stderr: string;
  /** The child was killed at the timeout. */
  timedOut: boolean;
}

/**
 * Runs dist/analyzer/cli.js with `args` (build first) and measures it. The peak RSS is the
 * child's VmHWM, read by a preloaded hook as it exits: getrusage's maxrss would also count the
 * parent's pages from before exec.
 */
export function runCli(args: readonly string[], scratch: string, timeoutMs = 120_000): CliRun {
  const out = join(scratch, `hwm-${process.pid}-${Date.now()}.txt`);
  const began = performance.now();
  const r = spawnSync(
    process.execPath,
    ['-r', join(PACKAGE_ROOT, 'test', 'helpers', 'peak-rss.cjs'), 'dist/analyzer/cli.js', ...args],
    {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 256 << 20,
      env: { ...process.env, CT_PEAK_RSS_FILE: out, NO_COLOR: '1' },
    },
  );
  const ms = performance.now() - began;
  let rssMB = Number.NaN;
  try {
    rssMB = Number(readFileSync(out, 'utf8')) / 1024;
    rmSync(out);
  } catch {
    // Killed before it could write: the time says why.
  }
  const timedOut = r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
  return { status: r.status, ms, rssMB, stdout: r.stdout, stderr: r.stderr, timedOut };
}
