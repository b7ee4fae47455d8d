// The recorder's host addresses, read from node's interface list by the one address parser.
import type { NetworkInterfaceInfo } from 'node:os';
import t from 'tap';
import { readHostAddresses } from '../../recorder/host.js';

const info = (over: Partial<NetworkInterfaceInfo>): NetworkInterfaceInfo =>
  ({ internal: false, mac: '00:00:00:00:00:00', ...over }) as NetworkInterfaceInfo;

t.test(
  'host: interface addresses become bytes of their family, sorted, zone ids dropped',
  async (t) => {
    const got = readHostAddresses({
      eth0: [
        info({
          family: 'IPv6',
          address: 'fe80::1%eth0',
          netmask: 'ffff:ffff:ffff:ffff::',
          cidr: null,
          scopeid: 2,
        }),
        info({
          family: 'IPv4',
          address: '192.0.2.10',
          netmask: '255.255.255.0',
          cidr: '192.0.2.10/24',
        }),
        info({
          family: 'IPv6',
          address: '::ffff:192.0.2.7',
          netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
          cidr: '::ffff:192.0.2.7/128',
          scopeid: 0,
        }),
      ],
      lo: [
        info({
          family: 'IPv4',
          address: '127.0.0.1',
          netmask: '255.0.0.0',
          cidr: '127.0.0.1/8',
          internal: true,
        }),
      ],
    });
    const lines = got.map(
      (a) => `${a.ifname} v${a.family} ${Buffer.from(a.address).toString('hex')}/${a.prefix}`,
    );
    t.strictSame(lines, [
      'eth0 v4 c000020a/24',
      'eth0 v6 00000000000000000000ffffc0000207/128',
      'eth0 v6 fe800000000000000000000000000001/64',
      'lo v4 7f000001/8',
    ]);
  },
);

t.test('host: an address that is not one of its family is left out, not guessed', async (t) => {
  const got = readHostAddresses({
    eth0: [
      info({ family: 'IPv4', address: '2001:db8::1', netmask: '255.255.255.0', cidr: null }),
      info({ family: 'IPv6', address: '192.0.2.1', netmask: 'ffff::', cidr: null, scopeid: 0 }),
      info({ family: 'IPv4', address: '192.0.2.300', netmask: '255.255.255.0', cidr: null }),
    ],
  });
  t.strictSame(got, []);
});
