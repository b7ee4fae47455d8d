// Facts about the recording host: what decides how complete a journal is, and its addresses.
import { readFileSync, readlinkSync } from 'node:fs';
import { endianness, hostname, release } from 'node:os';
import { type HostAddress, type HostRoute, TABLE_LOCAL, TABLE_MAIN } from '../journal/format.js';
import { MAX_ADDRESSES, MAX_ROUTES } from '../journal/meta-codec.js';
import { IFF_UP, type InterfaceAddress, interfaceAddresses } from '../native/index.js';

export interface HostFacts {
  host: string;
  kernel: string;
  /** The network namespace the recorder runs in, as the kernel names it: `net:[inode]`. */
  netns: string;
  sysctls: {
    nf_conntrack_events: number | null;
    nf_conntrack_timestamp: number | null;
    nf_conntrack_acct: number | null;
    ip_local_port_range: [number, number] | null;
  };
}

/** Reads a /proc/sys value as integers; null when absent (module not loaded) or unreadable. */
function readInts(path: string): number[] | null {
  try {
    const parts = readFileSync(path, 'latin1').trim().split(/\s+/).map(Number);
    return parts.every(Number.isInteger) ? parts : null;
  } catch {
    return null;
  }
}

function readInt(path: string): number | null {
  const v = readInts(path);
  return v?.length === 1 ? (v[0] as number) : null;
}

export function readHostFacts(proc = '/proc'): HostFacts {
  let netns = 'unknown';
  try {
    netns = readlinkSync(`${proc}/self/ns/net`);
  } catch {
    // Without /proc/self/ns (unusual containers) the journal says so rather than guessing.
  }
  const range = readInts(`${proc}/sys/net/ipv4/ip_local_port_range`);
  const nf = `${proc}/sys/net/netfilter`;
  return {
    host: hostname(),
    kernel: release(),
    netns,
    sysctls: {
      nf_conntrack_events: readInt(`${nf}/nf_conntrack_events`),
      nf_conntrack_timestamp: readInt(`${nf}/nf_conntrack_timestamp`),
      nf_conntrack_acct: readInt(`${nf}/nf_conntrack_acct`),
      ip_local_port_range: range?.length === 2 ? [range[0] as number, range[1] as number] : null,
    },
  };
}

/**
 * The addresses of the recorder's network namespace that are the host's own, loopback included
 * (a flow to 127.0.0.1 is input too), sorted by interface, family, address and prefix so that an
 * unchanged host gives an equal list. Read with getifaddrs (the addon), not
 * os.networkInterfaces, which leaves out every interface without carrier (not IFF_RUNNING).
 * The kernel's rule, checked in test/kernel/e2e/addresses.test.ts: an IPv4 address stays local
 * whatever its interface's state (its local route outlives `ip link set X down`: the host
 * answers to it, conntrack tracks it), so every IPv4 address is listed; an IPv6 address is
 * local only while its interface is up (the kernel removes its local route at down, even when
 * keep_addr_on_down keeps the address), so those of a down interface are not. IPv6 link-local
 * addresses are listed like any other, as their 16 bytes (getifaddrs carries no zone id).
 */
export function readHostAddresses(
  interfaces: readonly InterfaceAddress[] = interfaceAddresses(),
): HostAddress[] {
  const out: HostAddress[] = [];
  for (const a of interfaces) {
    if (a.family === 6 && (a.flags & IFF_UP) === 0) continue;
    const length = a.family === 4 ? 4 : 16;
    if (a.address.length !== length || a.name.length < 1 || a.name.length > 64) continue;
    const prefix = prefixOf(a.netmask, length);
    if (prefix === undefined) continue;
    out.push({ ifname: a.name, family: a.family, address: new Uint8Array(a.address), prefix });
  }
  // A journal holds at most MAX_ADDRESSES per set: beyond that (never seen on a real host),
  // the first ones in this order.
  return out.sort(compareAddresses).slice(0, MAX_ADDRESSES);
}

/**
 * A netmask's ones: glibc builds it from the kernel's prefix length, so they are contiguous.
 * None at all (never seen): the whole address, which is what decides a flow's direction; a
 * netmask of another length: not this address's, left out.
 */
function prefixOf(netmask: Uint8Array | null, length: number): number | undefined {
  if (netmask === null) return 8 * length;
  if (netmask.length !== length) return undefined;
  let n = 0;
  for (const b of netmask) for (let v = b; v !== 0; v >>= 1) n += v & 1;
  return n;
}

/** Whether two sorted lists (as readHostAddresses returns them) hold the same addresses. */
export function sameAddresses(a: readonly HostAddress[], b: readonly HostAddress[]): boolean {
  return a.length === b.length && a.every((x, i) => compareAddresses(x, b[i] as HostAddress) === 0);
}

function compareAddresses(a: HostAddress, b: HostAddress): number {
  if (a.ifname !== b.ifname) return a.ifname < b.ifname ? -1 : 1;
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.address.length; i++) {
    const d = (a.address[i] as number) - (b.address[i] as number);
    if (d !== 0) return d;
  }
  return a.prefix - b.prefix;
}

// Route flags of /proc/net/route and /proc/net/ipv6_route (linux/route.h, linux/ipv6_route.h).
const RTF_GATEWAY = 0x2;
const RTF_REJECT = 0x200;
const RTF_CACHE = 0x01000000;
const RTF_ANYCAST = 0x00100000;
const RTF_LOCAL = 0x80000000;

/**
 * The routes of the recorder's network namespace, read from /proc without root, iproute2 or
 * the addon, sorted by family, prefix (shortest first), destination, metric, table, type,
 * device and gateway so that an unchanged host gives an equal list; at most MAX_ROUTES (the
 * shortest prefixes: a full BGP table keeps its defaults and aggregates). What /proc tells
 * (docs/journal-format.md, "Host routes"): IPv4, the main table only; IPv6, every table, the
 * local ones (type local, anycast, multicast) as TABLE_LOCAL and the others as TABLE_MAIN.
 * Either file may be missing (IPv6 disabled): its family then has no routes. Both missing
 * (no /proc/net) is an error, not an empty table: the journal then records no routes at all.
 */
export function readHostRoutes(proc = '/proc'): HostRoute[] {
  const v4 = readOptional(`${proc}/net/route`);
  const v6 = readOptional(`${proc}/net/ipv6_route`);
  if (v4 === undefined && v6 === undefined) {
    throw new Error(`neither ${proc}/net/route nor ${proc}/net/ipv6_route exists`);
  }
  const out = [...parseRoutes4(v4 ?? ''), ...parseRoutes6(v6 ?? '')];
  return out.sort(compareRoutes).slice(0, MAX_ROUTES);
}

/** Whether two sorted lists (as readHostRoutes returns them) hold the same routes. */
export function sameRoutes(a: readonly HostRoute[], b: readonly HostRoute[]): boolean {
  return a.length === b.length && a.every((x, i) => compareRoutes(x, b[i] as HostRoute) === 0);
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * /proc/net/route: `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, addresses as the
 * kernel's __be32 printed with %08X, so in this machine's byte order. `*` is a route without a
 * device: unreachable and prohibit carry RTF_REJECT (recorded as unreachable: /proc does not
 * tell them apart), blackhole (and throw, which /proc shows the same) does not.
 */
export function parseRoutes4(text: string, littleEndian = endianness() === 'LE'): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dstHex, gwHex, flagsHex, , , metricText, maskHex] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const dst = word(dstHex, littleEndian);
    const gateway = word(gwHex, littleEndian);
    const mask = word(maskHex, littleEndian);
    const flags = Number.parseInt(flagsHex, 16);
    const metric = Number(metricText);
    const prefix = mask === undefined ? undefined : contiguousOnes(mask);
    if (dst === undefined || gateway === undefined || prefix === undefined) continue;
    if (!Number.isInteger(flags) || !Number.isInteger(metric) || metric < 0) continue;
    if (metric > 0xffffffff || !validName(iface)) continue;
    const reject = (flags & RTF_REJECT) !== 0;
    const route: HostRoute = {
      family: 4,
      dst: maskTo(dst, prefix),
      prefix,
      type: iface === '*' ? (reject ? 'unreachable' : 'blackhole') : 'unicast',
      table: TABLE_MAIN,
      metric,
    };
    if (iface !== '*') route.dev = iface;
    if ((flags & RTF_GATEWAY) !== 0) route.gateway = gateway;
    out.push(route);
  }
  return out;
}

/**
 * /proc/net/ipv6_route: `dst plen src plen gateway metric refcnt use flags dev`, hex in network
 * order. Reject routes (blackhole, unreachable, prohibit alike: the kernel gives them all
 * RTF_REJECT on lo) are recorded as unreachable without a device; the kernel's "no route" entry
 * at the root of each table (::/0, metric 0xffffffff, reject) and cached clones are left out.
 */
export function parseRoutes6(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dstHex, plenHex, , , gwHex, metricHex, , , flagsHex, dev] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const dst = hexBytes(dstHex, 16);
    const gateway = hexBytes(gwHex, 16);
    const prefix = Number.parseInt(plenHex, 16);
    const metric = Number.parseInt(metricHex, 16);
    const flags = Number.parseInt(flagsHex, 16);
    if (dst === undefined || gateway === undefined || !validName(dev)) continue;
    if (!(prefix >= 0 && prefix <= 128) || !Number.isInteger(metric) || !Number.isInteger(flags)) {
      continue;
    }
    if ((flags & RTF_CACHE) !== 0) continue;
    const reject = (flags & RTF_REJECT) !== 0;
    if (reject && prefix === 0 && metric === 0xffffffff) continue;
    const type = reject
      ? 'unreachable'
      : (flags & RTF_LOCAL) !== 0
        ? 'local'
        : (flags & RTF_ANYCAST) !== 0
          ? 'anycast'
          : dst[0] === 0xff && prefix >= 8
            ? 'multicast'
            : 'unicast';
    const route: HostRoute = {
      family: 6,
      dst: maskTo(dst, prefix),
      prefix,
      type,
      table: type === 'unicast' || type === 'unreachable' ? TABLE_MAIN : TABLE_LOCAL,
      metric,
    };
    if (!reject) route.dev = dev;
    if ((flags & RTF_GATEWAY) !== 0) route.gateway = gateway;
    out.push(route);
  }
  return out;
}

/** What a journal accepts as an interface name (`*` is checked by the caller). */
function validName(name: string | undefined): name is string {
  return name !== undefined && name.length >= 1 && name.length <= 64;
}

/** 8 hex digits of a u32 printed in this machine's byte order, as the 4 address bytes. */
function word(hex: string, littleEndian: boolean): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const b = Buffer.alloc(4);
  const v = Number.parseInt(hex, 16);
  if (littleEndian) b.writeUInt32LE(v);
  else b.writeUInt32BE(v);
  return new Uint8Array(b);
}

function hexBytes(hex: string, length: number): Uint8Array | undefined {
  if (hex.length !== 2 * length || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The prefix length of a netmask, or undefined when its ones are not contiguous. */
function contiguousOnes(mask: Uint8Array): number | undefined {
  let n = 0;
  let ended = false;
  for (const b of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = ((b >> bit) & 1) === 1;
      if (one && ended) return undefined;
      if (one) n++;
      else ended = true;
    }
  }
  return n;
}

/** The address with every bit after `prefix` cleared, as the kernel keeps a route's. */
function maskTo(address: Uint8Array, prefix: number): Uint8Array {
  return address.map((x, i) => x & ((0xff00 >> Math.min(8, Math.max(0, prefix - 8 * i))) & 0xff));
}

function compareRoutes(a: HostRoute, b: HostRoute): number {
  return (
    a.family - b.family ||
    a.prefix - b.prefix ||
    compareBytes(a.dst, b.dst) ||
    a.metric - b.metric ||
    a.table - b.table ||
    compareText(a.type, b.type) ||
    compareText(a.dev ?? '', b.dev ?? '') ||
    compareBytes(a.gateway ?? new Uint8Array(0), b.gateway ?? new Uint8Array(0))
  );
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
