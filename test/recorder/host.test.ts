// The recorder's host addresses: getifaddrs' list (the addon) shaped by the kernel's rule of which are local.
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { parseAddress } from '../../analyzer/core/address.js';
import type { HostAddress } from '../../journal/format.js';
import { IFF_UP, type InterfaceAddress } from '../../native/index.js';
import { readHostAddresses } from '../../recorder/host.js';

const addressLine = (a: HostAddress) =>
  `${a.ifname} v${a.family} ${Buffer.from(a.address).toString('hex')}/${a.prefix}`;

const IFF_RUNNING = 0x40;

/** One getifaddrs entry from text; the netmask from a prefix, or null. */
function entry(name: string, text: string, prefix: number | null, flags: number): InterfaceAddress {
  const address = parseAddress(text) as Uint8Array;
  const family = address.length === 4 ? 4 : 6;
  let netmask: Uint8Array | null = null;
  if (prefix !== null) {
    netmask = new Uint8Array(address.length);
    for (let i = 0; i < prefix; i++)
      netmask[i >> 3] = (netmask[i >> 3] as number) | (0x80 >> (i % 8));
  }
  return { name, family, flags, address, netmask };
}

const UP_RUNNING = IFF_UP | IFF_RUNNING;

t.test(
  'host: interface addresses become bytes of their family, sorted, link-local kept',
  async (t) => {
    const got = readHostAddresses([
      entry('eth0', 'fe80::1', 64, UP_RUNNING),
      entry('eth0', '192.0.2.10', 24, UP_RUNNING),
      entry('eth0', '::ffff:192.0.2.7', 128, UP_RUNNING),
      entry('lo', '127.0.0.1', 8, UP_RUNNING),
    ]);
    t.strictSame(got.map(addressLine), [
      'eth0 v4 c000020a/24',
      'eth0 v6 00000000000000000000ffffc0000207/128',
      'eth0 v6 fe800000000000000000000000000001/64',
      'lo v4 7f000001/8',
    ]);
  },
);

t.test(
  'host: without carrier every address is listed; on a down interface IPv4 is, IPv6 is not',
  async (t) => {
    const got = readHostAddresses([
      // up, peer down: no IFF_RUNNING (os.networkInterfaces left these out)
      entry('veth0', '10.0.0.1', 24, IFF_UP),
      entry('veth0', 'fd00::1', 64, IFF_UP),
      // `ip link set off0 down`: IPv4's local route stays, IPv6's goes (keep_addr_on_down=1)
      entry('off0', '10.0.1.1', 24, 0),
      entry('off0', 'fd00:1::1', 64, 0),
    ]);
    t.strictSame(got.map(addressLine), [
      'off0 v4 0a000101/24',
      'veth0 v4 0a000001/24',
      'veth0 v6 fd000000000000000000000000000001/64',
    ]);
  },
);

t.test(
  'host: an address not of its family or with a netmask of another length is left out; no netmask is the whole address',
  async (t) => {
    const v4 = entry('eth0', '192.0.2.1', 24, UP_RUNNING);
    const got = readHostAddresses([
      { ...v4, family: 6 },
      { ...v4, netmask: new Uint8Array(16) },
      { ...v4, name: '' },
      { ...entry('eth1', '2001:db8::1', 64, UP_RUNNING), family: 4 },
      entry('eth2', '192.0.2.2', null, UP_RUNNING),
    ]);
    t.strictSame(got.map(addressLine), ['eth2 v4 c0000202/32']);
  },
);

t.test(
  'host: on this machine every address os.networkInterfaces lists is read, with its prefix',
  async (t) => {
    const ours = new Set(readHostAddresses().map(addressLine));
    t.ok(ours.has('lo v4 7f000001/8'), 'loopback is there');
    // libuv lists a subset (interfaces up and running), the same bytes and prefix.
    for (const [ifname, infos] of Object.entries(networkInterfaces())) {
      for (const info of infos ?? []) {
        const address = parseAddress(info.address.split('%')[0] as string) as Uint8Array;
        const prefix = Number(info.cidr?.split('/')[1]);
        const line = addressLine({ ifname, family: address.length === 4 ? 4 : 6, address, prefix });
        t.ok(ours.has(line), `${line} (os.networkInterfaces) is read`);
      }
    }
  },
);
