// Facts about the recording host that decide how complete a journal is, read once at start.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname, release } from 'node:os';

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
