// A recorded host's network: the interface a packet leaves by and the type of its destination, from addresses and routes.
import t from 'tap';
import { parseAddress } from '../../../analyzer/core/address.js';
import { HostNetwork } from '../../../analyzer/core/host-network.js';
import { type HostAddress, type HostRoute, TABLE_MAIN } from '../../../journal/format.js';

const ip = (text: string): Uint8Array => {
  const b = parseAddress(text);
  if (b === undefined) throw new Error(`bad address ${text}`);
  return b;
};

const addr = (ifname: string, cidr: string): HostAddress => {
  const [a, p] = cidr.split('/') as [string, string];
  const address = ip(a);
  return { ifname, family: address.length === 4 ? 4 : 6, address, prefix: Number(p) };
};

/** `type dst/prefix [via gw] [dev d] [metric m]`, as ip route prints it. */
const route = (text: string): HostRoute => {
  const w = text.split(' ');
  const type = w[0] as string;
  const [d, p] = (w[1] as string).split('/') as [string, string];
  const dst = ip(d);
  const opt = (k: string) => {
    const i = w.indexOf(k);
    return i < 0 ? undefined : w[i + 1];
  };
  const r: HostRoute = {
    family: dst.length === 4 ? 4 : 6,
    dst,
    prefix: Number(p),
    type,
    table: TABLE_MAIN,
    metric: Number(opt('metric') ?? 0),
  };
  const dev = opt('dev');
  if (dev !== undefined) r.dev = dev;
  const via = opt('via');
  if (via !== undefined) r.gateway = ip(via);
  return r;
};

// A realistic host: uplink on eth0 with the default route, a LAN on eth1 and a /16 behind a
// router on it, IPv6 global and link-local prefixes, a blackhole, loopback.
const ADDRESSES = [
  addr('lo', '127.0.0.1/8'),
  addr('lo', '::1/128'),
  addr('eth0', '192.0.2.2/24'),
  addr('eth0', '2001:db8:1::2/64'),
  addr('eth0', 'fe80::1/64'),
  addr('eth1', '10.1.0.5/24'),
];
const ROUTES = [
  route('unicast 0.0.0.0/0 via 192.0.2.1 dev eth0'),
  route('unicast 192.0.2.0/24 dev eth0'),
  route('unicast 10.1.0.0/24 dev eth1'),
  route('unicast 10.2.0.0/16 via 10.1.0.1 dev eth1'),
  route('blackhole 203.0.113.0/24'),
  route('unicast 2001:db8:1::/64 dev eth0 metric 256'),
  route('unicast fe80::/64 dev eth0 metric 256'),
  route('unicast ::/0 via fe80::ff dev eth0 metric 1024'),
];

t.test('host network: each destination leaves by the longest matching route’s device', (t) => {
  const net = new HostNetwork(ADDRESSES, ROUTES);
  const cases: Array<[string, string | undefined, string]> = [
    ['192.0.2.2', 'lo', 'a local address'],
    ['10.1.0.5', 'lo', 'a local address on another interface'],
    ['127.0.0.1', 'lo', 'loopback'],
    ['127.3.4.5', 'lo', 'all of 127/8'],
    ['::1', 'lo', 'IPv6 loopback'],
    ['fe80::1', 'lo', 'a local link-local address'],
    ['192.0.2.77', 'eth0', 'the uplink’s own prefix'],
    ['10.1.0.9', 'eth1', 'the LAN'],
    ['10.2.44.1', 'eth1', 'the /16 behind a router on eth1'],
    ['10.3.0.1', 'eth0', 'the rest of 10/8: default route'],
    ['8.8.8.8', 'eth0', 'default route'],
    ['203.0.113.9', undefined, 'a blackhole sends nowhere'],
    ['2001:db8:1::99', 'eth0', 'the IPv6 /64'],
    ['fe80::2', 'eth0', 'link-local'],
    ['2001:db8:9::1', 'eth0', 'IPv6 default route'],
  ];
  for (const [a, dev, why] of cases) t.equal(net.routeDevice(ip(a)), dev, `${a}: ${why}`);
  t.end();
});

t.test('host network: address types from addresses, prefixes and route types', (t) => {
  const net = new HostNetwork(ADDRESSES, ROUTES);
  const cases: Array<[string, string, string]> = [
    ['192.0.2.2', 'local', 'the host’s address'],
    ['127.0.0.53', 'local', '127/8'],
    ['::1', 'local', '::1'],
    ['255.255.255.255', 'broadcast', 'limited broadcast'],
    ['192.0.2.255', 'broadcast', 'the uplink prefix’s broadcast'],
    ['10.1.0.255', 'broadcast', 'the LAN’s broadcast'],
    ['10.2.255.255', 'unicast', 'a routed /16 is no connected prefix: no broadcast known'],
    ['224.0.0.251', 'multicast', '224/4'],
    ['239.255.255.250', 'multicast', '224/4'],
    ['ff02::1', 'multicast', 'ff00::/8'],
    ['10.1.0.9', 'unicast', 'covered by a route'],
    ['8.8.8.8', 'unicast', 'covered by the default route'],
    ['203.0.113.9', 'blackhole', 'the blackhole route'],
    ['2001:db8:1::99', 'unicast', 'IPv6 /64'],
  ];
  for (const [a, type, why] of cases) t.equal(net.addressType(ip(a)), type, `${a}: ${why}`);
  t.end();
});

t.test('host network: without routes, connected prefixes decide; nothing else is guessed', (t) => {
  // A journal from before routes were recorded: addresses only.
  const net = new HostNetwork(ADDRESSES);
  t.notOk(net.hasRoutes);
  t.ok(net.hasAddresses);
  t.equal(net.routeDevice(ip('10.1.0.9')), 'eth1', 'the LAN, from eth1’s address');
  t.equal(net.routeDevice(ip('fe80::2')), 'eth0', 'link-local, from eth0’s address');
  t.equal(net.routeDevice(ip('8.8.8.8')), undefined, 'no default route recorded');
  t.equal(net.addressType(ip('10.1.0.9')), 'unicast');
  t.equal(net.addressType(ip('8.8.8.8')), 'unknown');
  t.equal(net.addressType(ip('10.1.0.255')), 'broadcast');

  const nothing = new HostNetwork();
  t.equal(nothing.routeDevice(ip('127.0.0.1')), 'lo', 'loopback needs no recording');
  t.equal(nothing.addressType(ip('224.0.0.1')), 'multicast');
  t.equal(nothing.addressType(ip('10.0.0.1')), 'unknown');
  t.equal(nothing.routeDevice(ip('10.0.0.1')), undefined);
  t.equal(nothing.addressType(Uint8Array.of(1, 2, 3)), 'unknown', 'not an address');
  t.end();
});

t.test('host network: /31 and /32 prefixes have no broadcast address', (t) => {
  const net = new HostNetwork([addr('p2p', '198.51.100.0/31'), addr('wg0', '198.51.100.9/32')]);
  t.equal(net.addressType(ip('198.51.100.1')), 'unicast', 'the /31’s peer');
  t.end();
});

t.test(
  'host network: within one set the lowest metric wins, equal ones leave the device open',
  (t) => {
    const net = new HostNetwork(
      [],
      [
        route('unicast 0.0.0.0/0 via 192.0.2.1 dev eth0 metric 100'),
        route('unicast 0.0.0.0/0 via 198.51.100.1 dev wlan0 metric 600'),
        route('unicast 10.0.0.0/8 via 192.0.2.1 dev eth0 metric 10'),
        route('unicast 10.0.0.0/8 via 192.0.2.9 dev eth1 metric 10'),
      ],
    );
    t.equal(net.routeDevice(ip('8.8.8.8')), 'eth0', 'metric 100 over 600');
    t.equal(net.routeDevice(ip('10.9.9.9')), undefined, 'two devices at one metric: not known');
    t.equal(net.addressType(ip('10.9.9.9')), 'unicast', 'either way a unicast route');
    t.end();
  },
);

t.test('host network: sets recorded at different times are a union of their answers', (t) => {
  // eth0 went down during the recording and the default route moved to wlan0 (metric 600).
  const net = new HostNetwork(ADDRESSES, ROUTES);
  net.addRoutes([
    route('unicast 0.0.0.0/0 via 198.51.100.1 dev wlan0 metric 600'),
    route('unicast 10.1.0.0/24 dev eth1'),
    route('unicast 10.2.0.0/16 via 10.1.0.1 dev eth1'),
    route('unreachable 203.0.113.0/24'),
  ]);
  net.addAddresses([addr('wlan0', '198.51.100.7/24')]);
  t.ok(net.hasRoutes);
  t.equal(net.routeDevice(ip('8.8.8.8')), undefined, 'eth0 then wlan0: not one device');
  t.equal(net.routeDevice(ip('10.2.0.1')), 'eth1', 'the sets agree');
  t.equal(net.addressType(ip('8.8.8.8')), 'unicast', 'unicast in both sets');
  t.equal(net.addressType(ip('203.0.113.1')), 'unknown', 'blackhole, then unreachable');
  t.equal(net.addressType(ip('198.51.100.7')), 'local', 'an address the host had at some time');
  t.equal(
    net.routeDevice(ip('192.0.2.9')),
    undefined,
    'eth0’s prefix, then the default route via wlan0: not one device',
  );
  t.equal(
    net.routeDevice(ip('2001:db8:1::99')),
    'eth0',
    'only the first set has IPv6 routes: its answer',
  );
  // A set the host had before is no new set: the same routes, as a reader hands them again.
  const again = new HostNetwork(ADDRESSES, ROUTES);
  again.addRoutes(ROUTES);
  t.equal(again.routeDevice(ip('8.8.8.8')), 'eth0', 'the same set twice changes nothing');
  t.end();
});

t.test('host network: a local route (AnyIP) delivers to the host: lo, local', (t) => {
  const net = new HostNetwork([], [route('local 198.51.100.0/24 dev lo'), ...ROUTES]);
  t.equal(net.routeDevice(ip('198.51.100.200')), 'lo');
  t.equal(net.addressType(ip('198.51.100.200')), 'local');
  t.end();
});

t.test('host network: a route type a later writer invents is unknown, not a guess', (t) => {
  const net = new HostNetwork([], [route('nat 192.0.2.0/24 dev eth0'), route('throw 10.0.0.0/8')]);
  t.equal(net.addressType(ip('192.0.2.1')), 'unknown');
  t.equal(net.addressType(ip('10.0.0.1')), 'unknown', 'throw: the lookup goes on elsewhere');
  t.equal(net.routeDevice(ip('192.0.2.1')), 'eth0');
  t.end();
});

t.test('host network: lookups over a 4,096-route table take time linear in the lookups', (t) => {
  // 4,096 /24s under 10/8 and a default: a lookup costs one map probe per distinct prefix
  // length, so 20,000 lookups stay far below the budget a check of 100k flows has.
  const routes = Array.from({ length: 4095 }, (_, i) =>
    route(`unicast 10.${i >> 8}.${i & 0xff}.0/24 dev eth${i % 4}`),
  );
  routes.push(route('unicast 0.0.0.0/0 via 192.0.2.1 dev eth0'));
  const net = new HostNetwork([], routes);
  const time = (n: number) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) net.routeDevice(Uint8Array.of(10, (i >> 8) & 15, i & 0xff, 9));
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  time(2000);
  const small = time(5000);
  const big = time(20_000);
  t.equal(net.routeDevice(ip('10.1.2.3')), `eth${(256 + 2) % 4}`);
  t.ok(
    big < 2 * 4 * small + 20,
    `4× the lookups took ${big.toFixed(1)} ms vs ${small.toFixed(1)} ms`,
  );
  t.end();
});
