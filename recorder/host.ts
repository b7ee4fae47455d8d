// Facts about the recording host: what decides how complete a journal is, and its addresses.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname, type NetworkInterfaceInfo, networkInterfaces, release } from 'node:os';
import { parseAddress } from '../analyzer/core/address.js';
import type { HostAddress } from '../journal/format.js';
import { MAX_ADDRESSES } from '../journal/meta-codec.js';

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
 * The addresses of every interface of the recorder's network namespace, loopback included (a
 * flow to 127.0.0.1 is input too), sorted by interface, family, address and prefix so that an
 * unchanged host gives an equal list. Interfaces without an address (down, or not configured)
 * are not listed: they cannot be a flow's end.
 */
export function readHostAddresses(
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): HostAddress[] {
  const out: HostAddress[] = [];
  for (const [ifname, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      const family = info.family === 'IPv4' ? 4 : 6;
      const address = interfaceAddress(info.address, family);
      const prefix = prefixOf(info, family === 4 ? 32 : 128);
      if (address !== undefined && prefix !== undefined) {
        out.push({ ifname, family, address, prefix });
      }
    }
  }
  // A journal holds at most MAX_ADDRESSES per set: beyond that (never seen on a real host),
  // the first ones in this order.
  return out.sort(compareAddresses).slice(0, MAX_ADDRESSES);
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

/** From `cidr`; node leaves it null for a netmask that is not contiguous ones, then: the ones. */
function prefixOf(info: NetworkInterfaceInfo, max: number): number | undefined {
  const slash = info.cidr?.lastIndexOf('/') ?? -1;
  const text = slash < 0 ? undefined : info.cidr?.slice(slash + 1);
  const prefix = text === undefined ? countOnes(info.netmask) : Number(text);
  return prefix !== undefined && Number.isInteger(prefix) && prefix >= 0 && prefix <= max
    ? prefix
    : undefined;
}

function countOnes(netmask: string): number | undefined {
  const bytes = parseAddress(netmask);
  if (bytes === undefined) return undefined;
  let n = 0;
  for (const b of bytes) n += popcount(b);
  return n;
}

function popcount(b: number): number {
  let n = 0;
  for (let v = b; v !== 0; v >>= 1) n += v & 1;
  return n;
}

/**
 * An interface address's bytes when they are of its family. libuv prints no zone id, but a
 * link-local one may carry a `%scope` elsewhere: the address is the part before it.
 */
function interfaceAddress(text: string, family: 4 | 6): Uint8Array | undefined {
  const bytes = parseAddress(text.split('%')[0] as string);
  return bytes?.length === (family === 4 ? 4 : 16) ? bytes : undefined;
}
