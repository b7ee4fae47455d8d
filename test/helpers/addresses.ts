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
  addr_info: Array<{ family: string; local: string; prefixlen: number }>;
}

/**
 * `ip -j addr show` of `ns` (this namespace when undefined): the addresses as sorted lines, and
 * whether every link is running (libuv's interface list skips one that is not yet).
 */
export async function ipAddresses(ns?: string): Promise<{ lines: string[]; running: boolean }> {
  const argv =
    ns === undefined ? ['ip', '-j', 'addr', 'show'] : ['ip', '-n', ns, '-j', 'addr', 'show'];
  const links = JSON.parse((await run(argv)).stdout) as IpAddr[];
  const lines = links
    .flatMap((l) =>
      l.addr_info
        .filter((a) => a.family === 'inet' || a.family === 'inet6')
        .map((a) =>
          addressLine({
            ifname: l.ifname,
            family: a.family === 'inet' ? 4 : 6,
            address: parseAddress(a.local),
            prefix: a.prefixlen,
          }),
        ),
    )
    .sort();
  const running = links.every((l) => l.operstate === 'UP' || l.operstate === 'UNKNOWN');
  return { lines, running };
}
