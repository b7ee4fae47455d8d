// A namespace's interface addresses as `ip -j addr` lists them, comparable with a journal's.
import { addressBytes as parseAddress } from '../../analyzer/core/address.js';
import type { HostAddress } from '../../journal/format.js';
import { run } from './netns.js';

/** One address as comparable text: the bytes, not a text form, are what the journal holds. */
export function addressLine(a: HostAddress): string {
  return `${a.ifname} v${a.family} ${Buffer.from(a.address).toString('hex')}/${a.prefix}`;
}

/** Addresses as sorted lines. */
export const addressLines = (list: readonly HostAddress[]): string[] =>
  list.map(addressLine).sort();

interface IpAddr {
  ifname: string;
  operstate: string;
  flags: string[];
  addr_info: Array<{ family: string; local: string; prefixlen: number }>;
}

/**
 * `ip -j addr show` of `ns` (this namespace when undefined): the addresses as sorted lines;
 * `local`, those the kernel treats as the host's (every IPv4 address, IPv6 ones only on an
 * interface that is up: recorder/host.ts); and whether every link is running (has carrier).
 */
export async function ipAddresses(
  ns?: string,
): Promise<{ lines: string[]; local: string[]; running: boolean }> {
  const argv =
    ns === undefined ? ['ip', '-j', 'addr', 'show'] : ['ip', '-n', ns, '-j', 'addr', 'show'];
  const links = JSON.parse((await run(argv)).stdout) as IpAddr[];
  const entries = links.flatMap((l) =>
    l.addr_info
      .filter((a) => a.family === 'inet' || a.family === 'inet6')
      .map((a) => ({
        local: a.family === 'inet' || l.flags.includes('UP'),
        line: addressLine({
          ifname: l.ifname,
          family: a.family === 'inet' ? 4 : 6,
          address: parseAddress(a.local),
          prefix: a.prefixlen,
        }),
      })),
  );
  const lines = entries.map((e) => e.line).sort();
  const local = entries
    .filter((e) => e.local)
    .map((e) => e.line)
    .sort();
  const running = links.every((l) => l.operstate === 'UP' || l.operstate === 'UNKNOWN');
  return { lines, local, running };
}
