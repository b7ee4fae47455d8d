// Header, gap, checkpoint and trailer payloads: msgpack maps, readable by any msgpack tool, validated on the way in.
import { unsafeChar } from '../common/printable.js';
import {
  type AddressSet,
  type ChainLink,
  DIGEST_SIZE,
  EVENT_FIELDS,
  type EventCounts,
  FORMAT_VERSION,
  FORMAT_VERSIONS,
  GAP_CAUSE,
  type HostAddress,
  type HostRoute,
  type JournalChain,
  type JournalCheckpoint,
  type JournalGap,
  type JournalHeader,
  type JournalTrailer,
  packr,
  ROUTE_TYPE,
  type RouteSet,
  RUN_ID_SIZE,
  type Sysctls,
  unpackr,
} from './format.js';
import {
  array,
  bool,
  bytes,
  Damage,
  field,
  plainData,
  record,
  safeInt,
  str,
  uint,
} from './validate.js';

const MAX = Number.MAX_SAFE_INTEGER;

/** Most addresses one set may hold: far above any real host, far below a memory problem. */
export const MAX_ADDRESSES = 4096;

/**
 * Most routes one set may hold: far above a server's or a container host's table (tens), far
 * below a memory problem; a router with a full BGP table has more (ct-record keeps the first).
 */
export const MAX_ROUTES = 4096;

export function encodeMap(
  value: JournalHeader | JournalTrailer | JournalGap | JournalCheckpoint,
): Buffer {
  return Buffer.from(packr.pack(value));
}

function unpackMap(payload: Uint8Array, what: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = unpackr.unpack(payload);
  } catch (err) {
    throw new Damage(`${what} is not valid msgpack (${(err as Error).message})`);
  }
  return record(raw, what);
}

/** Thrown for a header whose `format` this reader does not know; everything else is Damage. */
export class NewerFormat extends Error {
  constructor(readonly format: number) {
    super(`format v${format}`);
  }
}

/**
 * Checks `format` first: a later version may change every other field, and must still be told
 * apart from damage. Unknown extra keys are ignored (additions that keep the format number).
 */
export function decodeHeader(payload: Uint8Array): JournalHeader {
  const m = unpackMap(payload, 'header');
  const format = uint(field(m, 'format'), MAX, 'header format');
  if (format > FORMAT_VERSION) throw new NewerFormat(format);
  if (format < 1) throw new Damage(`header format is 0, expected ${FORMAT_VERSIONS.join(' or ')}`);
  const tool = record(field(m, 'tool'), 'header tool');
  const eventFields = array(field(m, 'eventFields'), 1, 1000, 'header eventFields').map((f, i) =>
    str(f, `header eventFields[${i}]`),
  );
  // The v1 layout must be a prefix: a later writer may append optional fields this reader skips.
  for (let i = 0; i < EVENT_FIELDS.length; i++) {
    if (eventFields[i] !== EVENT_FIELDS[i]) {
      throw new Damage(`header eventFields[${i}] is not '${EVENT_FIELDS[i]}'`);
    }
  }
  const header: JournalHeader = {
    format,
    tool: {
      name: str(field(tool, 'name'), 'header tool.name'),
      version: str(field(tool, 'version'), 'header tool.version'),
    },
    host: str(field(m, 'host'), 'header host'),
    kernel: str(field(m, 'kernel'), 'header kernel'),
    netns: str(field(m, 'netns'), 'header netns'),
    start: uint(field(m, 'start'), MAX, 'header start'),
    options: plainData(record(field(m, 'options'), 'header options'), 'header options') as Record<
      string,
      unknown
    >,
    sysctls: decodeSysctls(record(field(m, 'sysctls'), 'header sysctls')),
    eventFields,
  };
  // Absent in journals written before addresses were recorded, and in imports: stays absent.
  const addresses = field(m, 'addresses');
  if (addresses !== undefined) header.addresses = decodeAddresses(addresses, 'header addresses');
  // Absent in journals written before routes were recorded, and in imports: stays absent.
  const routes = field(m, 'routes');
  if (routes !== undefined) header.routes = decodeRoutes(routes, 'header routes');
  // Only in journals of a rotated run.
  const chain = field(m, 'chain');
  if (chain !== undefined) header.chain = decodeChain(chain);
  return header;
}

/** Most a chain's sequence number may be: far beyond any run, within a msgpack uint32. */
export const MAX_SEQUENCE = 0xffffffff;

function decodeChain(v: unknown): JournalChain {
  const m = record(v, 'header chain');
  const run = bytes(field(m, 'run'), RUN_ID_SIZE, 'header chain.run');
  const sequence = uint(field(m, 'sequence'), MAX_SEQUENCE, 'header chain.sequence');
  if (sequence < 1) throw new Damage('header chain.sequence is 0, expected 1 or more');
  const prev = field(m, 'previous');
  if (prev === undefined)
    throw new Damage('header chain.previous is missing, expected nil or a map');
  // The first journal of a run continues nothing; every later one names the one before it.
  if (sequence === 1) {
    if (prev !== null) throw new Damage('header chain.previous is set for sequence 1');
    return { run, sequence, previous: null };
  }
  if (prev === null) {
    throw new Damage(`header chain.previous is nil for sequence ${sequence}, expected a map`);
  }
  const p = record(prev, 'header chain.previous');
  const previous: ChainLink = {
    sha256: bytes(field(p, 'sha256'), DIGEST_SIZE, 'header chain.previous.sha256'),
    file: chainFile(field(p, 'file'), 'header chain.previous.file'),
  };
  return { run, sequence, previous };
}

/**
 * A journal's base name as a chain names it: a reader joins it to a directory and prints it, so
 * no path separator, no NUL, not `.` or `..`, at most 255 characters, and nothing a terminal
 * acts on or draws invisibly (controls, bidi and other format characters: common/printable.ts).
 * ct-record names journals NAME-NNNNNN.EXT; a name with ESC in it is a forgery, not a name.
 */
function chainFile(v: unknown, what: string): string {
  const file = str(v, what);
  if (file.length < 1 || file.length > 255) {
    throw new Damage(`${what} is a string of ${file.length}, expected 1–255 characters`);
  }
  if (file.includes('/') || file.includes('\0') || file === '.' || file === '..') {
    throw new Damage(`${what} is not a file name (no '/', NUL, '.' or '..')`);
  }
  const bad = unsafeChar(file);
  if (bad !== undefined) {
    // The name is not quoted: it is what must not reach a terminal.
    throw new Damage(
      `${what} holds the control or invisible character U+${bad.toString(16).toUpperCase().padStart(4, '0')}, which no journal name has`,
    );
  }
  return file;
}

/** Only the known keys, so a caller's extra properties never reach the file. */
export function chainToWrite(chain: JournalChain): JournalChain {
  const { run, sequence, previous } = chain;
  return {
    run,
    sequence,
    previous: previous === null ? null : { sha256: previous.sha256, file: previous.file },
  };
}

/** An address list; `array` reports a missing one as damage. */
function decodeAddresses(v: unknown, what: string): HostAddress[] {
  return array(v, 0, MAX_ADDRESSES, what).map((a, i) => decodeAddress(a, `${what}[${i}]`));
}

function decodeAddress(v: unknown, what: string): HostAddress {
  const m = record(v, what);
  const ifname = str(field(m, 'ifname'), `${what}.ifname`);
  if (ifname.length < 1 || ifname.length > 64) {
    throw new Damage(`${what}.ifname is a string of ${ifname.length}, expected 1–64 characters`);
  }
  const family = uint(field(m, 'family'), 6, `${what}.family`);
  if (family !== 4 && family !== 6)
    throw new Damage(`${what}.family is ${family}, expected 4 or 6`);
  return {
    ifname,
    family,
    address: bytes(field(m, 'address'), family === 4 ? 4 : 16, `${what}.address`),
    prefix: uint(field(m, 'prefix'), family === 4 ? 32 : 128, `${what}.prefix`),
  };
}

function decodeAddressSet(v: unknown, what: string): AddressSet {
  const m = record(v, what);
  return {
    time: uint(field(m, 'time'), MAX, `${what}.time`),
    addresses: decodeAddresses(field(m, 'addresses'), `${what}.addresses`),
  };
}

/** Only the known keys, so a caller's extra properties never reach the file. */
export function addressesToWrite(addresses: readonly HostAddress[]): HostAddress[] {
  return addresses.map(({ ifname, family, address, prefix }) => ({
    ifname,
    family,
    address,
    prefix,
  }));
}

/**
 * The route a reader already decoded from exactly these fields (a msgpack map as unpacked), or
 * undefined: a checkpoint repeats up to 4,096 routes, and decoding each again would cost
 * allocations, not safety (the same fields passed every check the first time).
 */
export type KnownRoute = (raw: unknown) => HostRoute | undefined;

/** A route list; `array` reports a missing one as damage. */
function decodeRoutes(v: unknown, what: string, known?: KnownRoute): HostRoute[] {
  return array(v, 0, MAX_ROUTES, what).map((r, i) => known?.(r) ?? decodeRoute(r, `${what}[${i}]`));
}

function decodeRoute(v: unknown, what: string): HostRoute {
  const m = record(v, what);
  const family = uint(field(m, 'family'), 6, `${what}.family`);
  if (family !== 4 && family !== 6)
    throw new Damage(`${what}.family is ${family}, expected 4 or 6`);
  const len = family === 4 ? 4 : 16;
  const dst = bytes(field(m, 'dst'), len, `${what}.dst`);
  const prefix = uint(field(m, 'prefix'), len * 8, `${what}.prefix`);
  if (!hostBitsZero(dst, prefix)) {
    throw new Damage(`${what}.dst has bits set beyond its /${prefix} prefix`);
  }
  const type = str(field(m, 'type'), `${what}.type`);
  if (!ROUTE_TYPE.test(type)) {
    throw new Damage(`${what}.type is not a token of 1–16 lowercase letters`);
  }
  const route: HostRoute = {
    family,
    dst,
    prefix,
    type,
    table: uint(field(m, 'table'), 0xffffffff, `${what}.table`),
    metric: uint(field(m, 'metric'), 0xffffffff, `${what}.metric`),
  };
  // Both optional: a blackhole route has no device, a connected one no gateway.
  const dev = field(m, 'dev');
  if (dev !== undefined) route.dev = interfaceName(dev, `${what}.dev`);
  const gateway = field(m, 'gateway');
  if (gateway !== undefined) route.gateway = bytes(gateway, len, `${what}.gateway`);
  return route;
}

/** Whether every bit of `dst` after the first `prefix` is 0, as the kernel keeps a route's. */
function hostBitsZero(dst: Uint8Array, prefix: number): boolean {
  for (let i = 0; i < dst.length; i++) {
    const keep = Math.min(8, Math.max(0, prefix - 8 * i));
    if (((dst[i] as number) & (0xff >> keep)) !== 0) return false;
  }
  return true;
}

function interfaceName(v: unknown, what: string): string {
  const name = str(v, what);
  if (name.length < 1 || name.length > 64) {
    throw new Damage(`${what} is a string of ${name.length}, expected 1–64 characters`);
  }
  return name;
}

function decodeRouteSet(v: unknown, what: string, known?: KnownRoute): RouteSet {
  const m = record(v, what);
  return {
    time: uint(field(m, 'time'), MAX, `${what}.time`),
    routes: decodeRoutes(field(m, 'routes'), `${what}.routes`, known),
  };
}

/** Only the known keys (optional ones only when set), so a caller's extras never reach the file. */
export function routesToWrite(routes: readonly HostRoute[]): HostRoute[] {
  return routes.map(({ family, dst, prefix, dev, gateway, type, table, metric }) => ({
    family,
    dst,
    prefix,
    ...(dev === undefined ? {} : { dev }),
    ...(gateway === undefined ? {} : { gateway }),
    type,
    table,
    metric,
  }));
}

function decodeSysctls(s: Record<string, unknown>): Sysctls {
  const optInt = (key: string): number | null => {
    const v = field(s, key);
    return v === null ? null : uint(v, 0xffffffff, `header sysctls.${key}`);
  };
  const range = field(s, 'ip_local_port_range');
  let portRange: [number, number] | null = null;
  if (range !== null) {
    const r = array(range, 2, 2, 'header sysctls.ip_local_port_range');
    portRange = [
      uint(r[0], 0xffff, 'header sysctls.ip_local_port_range'),
      uint(r[1], 0xffff, 'header sysctls.ip_local_port_range'),
    ];
  }
  return {
    nf_conntrack_events: optInt('nf_conntrack_events'),
    nf_conntrack_timestamp: optInt('nf_conntrack_timestamp'),
    nf_conntrack_acct: optInt('nf_conntrack_acct'),
    ip_local_port_range: portRange,
  };
}

export function decodeTrailer(payload: Uint8Array): JournalTrailer {
  const m = unpackMap(payload, 'trailer');
  const by = record(field(m, 'byType'), 'trailer byType');
  const byType: EventCounts = {
    new: uint(field(by, 'new'), MAX, 'trailer byType.new'),
    update: uint(field(by, 'update'), MAX, 'trailer byType.update'),
    destroy: uint(field(by, 'destroy'), MAX, 'trailer byType.destroy'),
    snapshot: uint(field(by, 'snapshot'), MAX, 'trailer byType.snapshot'),
  };
  return {
    stop: uint(field(m, 'stop'), MAX, 'trailer stop'),
    events: uint(field(m, 'events'), MAX, 'trailer events'),
    byType,
    frames: uint(field(m, 'frames'), MAX, 'trailer frames'),
    gaps: uint(field(m, 'gaps'), MAX, 'trailer gaps'),
    lost: uint(field(m, 'lost'), MAX, 'trailer lost'),
    digest: bytes(field(m, 'digest'), DIGEST_SIZE, 'trailer digest'),
    // Only on a chained journal that a rotation closed.
    ...(field(m, 'next') === undefined
      ? {}
      : { next: chainFile(field(m, 'next'), 'trailer next') }),
  };
}

/** `known`: routes decoded before (RouteInterning.known), taken as they are. */
export function decodeCheckpoint(payload: Uint8Array, known?: KnownRoute): JournalCheckpoint {
  const m = unpackMap(payload, 'checkpoint');
  const cp: JournalCheckpoint = {
    frames: uint(field(m, 'frames'), MAX, 'checkpoint frames'),
    events: uint(field(m, 'events'), MAX, 'checkpoint events'),
    gaps: uint(field(m, 'gaps'), MAX, 'checkpoint gaps'),
    lost: uint(field(m, 'lost'), MAX, 'checkpoint lost'),
    digest: bytes(field(m, 'digest'), DIGEST_SIZE, 'checkpoint digest'),
  };
  // Only the checkpoints written when the host's addresses changed carry them.
  const addresses = field(m, 'addresses');
  if (addresses !== undefined) cp.addresses = decodeAddressSet(addresses, 'checkpoint addresses');
  // …and those written when its routes changed carry them (one or both).
  const routes = field(m, 'routes');
  if (routes !== undefined) cp.routes = decodeRouteSet(routes, 'checkpoint routes', known);
  return cp;
}

/** A gap as strict as an event: a stranger's file must not put anything odd into a report. */
export function decodeGap(payload: Uint8Array): JournalGap {
  const m = unpackMap(payload, 'gap');
  const from = uint(field(m, 'from'), MAX, 'gap from');
  const to = uint(field(m, 'to'), MAX, 'gap to');
  if (to < from) throw new Damage(`gap to (${to}) is before gap from (${from})`);
  const cause = str(field(m, 'cause'), 'gap cause');
  if (!GAP_CAUSE.test(cause)) {
    throw new Damage(`gap cause is not a token of 1–64 letters, digits or _.:- characters`);
  }
  const resync = safeInt(field(m, 'resync'), 'gap resync');
  if (resync < -1) throw new Damage(`gap resync is ${resync}, expected -1 or a count`);
  const gap: JournalGap = {
    from,
    to,
    lost: uint(field(m, 'lost'), MAX, 'gap lost'),
    lostKnown: bool(field(m, 'lostKnown'), 'gap lostKnown'),
    cause,
    resync,
  };
  // Optional: the dump's entries left out because the journal held them; only with a dump.
  const skipped = field(m, 'skipped');
  if (skipped !== undefined) {
    gap.skipped = uint(skipped, MAX, 'gap skipped');
    if (gap.skipped > resync) {
      throw new Damage(`gap skipped (${gap.skipped}) is more than its dump's entries (${resync})`);
    }
  }
  return gap;
}
