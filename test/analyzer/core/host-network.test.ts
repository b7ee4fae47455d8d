// A recorded host's network: the interface a packet leaves by and the type of its destination, from addresses and routes.
import fc from 'fast-check';
import t from 'tap';
import { parseAddress } from '../../../analyzer/core/address.js';
import {
  type AddressType,
  HostNetwork,
  type NetworkAddress,
  type NetworkRoute,
} from '../../../analyzer/core/host-network.js';
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

// The reference: what the lookups mean, said as plainly as possible — every address and route
// scanned for each question, sets of answers joined — to hold the fast tables to.
const covers = (dst: Uint8Array, prefix: number, a: Uint8Array): boolean => {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((dst[bit >> 3] as number) & mask) !== ((a[bit >> 3] as number) & mask)) return false;
  }
  return true;
};
const bitsOf = (family: 4 | 6) => (family === 4 ? 32 : 128);
const validRoute = (r: NetworkRoute) =>
  r.dst.length === bitsOf(r.family) / 8 && r.prefix <= bitsOf(r.family);
const validAddress = (a: NetworkAddress) => a.address.length === bitsOf(a.family) / 8;
const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

interface Answer {
  devs: Set<string | undefined>;
  types: Set<string>;
}

/** The longest prefix's routes at their lowest metric, as one answer; undefined when none covers. */
const best = (
  routes: { dst: Uint8Array; prefix: number; metric: number; dev?: string; type: string }[],
  a: Uint8Array,
): Answer | undefined => {
  const hits = routes.filter((r) => r.dst.length === a.length && covers(r.dst, r.prefix, a));
  if (hits.length === 0) return undefined;
  const longest = Math.max(...hits.map((r) => r.prefix));
  const atLongest = hits.filter((r) => r.prefix === longest);
  const metric = Math.min(...atLongest.map((r) => r.metric));
  const chosen = atLongest.filter((r) => r.metric === metric);
  return { devs: new Set(chosen.map((r) => r.dev)), types: new Set(chosen.map((r) => r.type)) };
};

const reference = (addresses: NetworkAddress[], sets: NetworkRoute[][]) => {
  const valid = addresses.filter(validAddress);
  const loopback = (a: Uint8Array) =>
    a.length === 4 ? a[0] === 127 : a.every((b, i) => b === (i === 15 ? 1 : 0));
  const local = (a: Uint8Array) => loopback(a) || valid.some((x) => sameBytes(x.address, a));
  const connected = valid
    .filter((x) => x.prefix <= bitsOf(x.family))
    .map((x) => ({ dst: x.address, prefix: x.prefix, metric: 0, dev: x.ifname, type: 'unicast' }));
  const route = (a: Uint8Array): Answer | undefined => {
    let joined: Answer | undefined;
    for (const set of sets) {
      const e = best(set.filter(validRoute), a);
      if (e === undefined) continue;
      joined ??= { devs: new Set(), types: new Set() };
      for (const d of e.devs) joined.devs.add(d);
      for (const t of e.types) joined.types.add(t);
    }
    return joined;
  };
  const broadcast = (a: Uint8Array) =>
    a.length === 4 &&
    (a.every((b) => b === 255) ||
      valid.some(
        (x) =>
          x.family === 4 &&
          x.prefix <= 30 &&
          covers(x.address, x.prefix, a) &&
          a.every((b, i) => {
            const host = 0xff >> Math.min(8, Math.max(0, x.prefix - 8 * i));
            return (b & host) === host;
          }),
      ));
  const answers = new Set<string>(['unicast', 'local', 'broadcast', 'anycast', 'multicast']);
  for (const t of ['blackhole', 'unreachable', 'prohibit']) answers.add(t);
  return {
    routeDevice(a: Uint8Array): string | undefined {
      if (a.length !== 4 && a.length !== 16) return undefined;
      if (local(a)) return 'lo';
      const e = route(a) ?? best(connected, a);
      if (e !== undefined && e.types.size === 1 && e.types.has('local')) return 'lo';
      return e !== undefined && e.devs.size === 1 ? [...e.devs][0] : undefined;
    },
    addressType(a: Uint8Array): AddressType {
      if (a.length !== 4 && a.length !== 16) return 'unknown';
      if (local(a)) return 'local';
      if (broadcast(a)) return 'broadcast';
      if (a.length === 4 ? (a[0] as number) >= 224 && (a[0] as number) < 240 : a[0] === 0xff)
        return 'multicast';
      const e = route(a);
      if (e !== undefined) {
        const type = [...e.types][0] as string;
        return e.types.size === 1 && answers.has(type) ? (type as AddressType) : 'unknown';
      }
      return best(connected, a) !== undefined ? 'unicast' : 'unknown';
    },
  };
};

// Addresses near a few bases (the base's first `keep` bits, random after): routes and lookups
// share prefixes of every length, so lookups land on overlapping routes, not on nothing.
const BASES = {
  4: ['10.0.0.0', '10.1.2.3', '127.0.0.1', '192.168.1.255', '224.0.0.1', '255.255.255.255'],
  6: ['::', '::1', '2001:db8::', '2001:db8:0:1::5', 'fe80::1', 'ff02::1'],
};
const arbAddress = (family: 4 | 6) =>
  fc
    .record({
      base: fc.constantFrom(...BASES[family]),
      keep: fc.oneof(fc.integer({ min: 0, max: bitsOf(family) }), fc.constant(bitsOf(family))),
      noise: fc.uint8Array({ minLength: bitsOf(family) / 8, maxLength: bitsOf(family) / 8 }),
    })
    .map(({ base, keep, noise }) => {
      const b = ip(base);
      return b.map((x, i) => {
        const m = (0xff00 >> Math.min(8, Math.max(0, keep - 8 * i))) & 0xff;
        return (x & m) | ((noise[i] as number) & ~m);
      });
    });
const arbFamily = fc.constantFrom<4 | 6>(4, 6);
const arbPrefix = (family: 4 | 6) =>
  fc.oneof(
    fc.integer({ min: 0, max: bitsOf(family) }),
    fc.constantFrom(0, 8, 16, 24, 30, 31, 32, 64, 128).filter((p) => p <= bitsOf(family)),
  );
const arbRoute: fc.Arbitrary<NetworkRoute> = arbFamily.chain((family) =>
  fc
    .record({
      dst: arbAddress(family),
      prefix: fc.oneof(arbPrefix(family), fc.constant(bitsOf(family) + 1)),
      metric: fc.constantFrom(0, 100, 600),
      dev: fc.constantFrom(undefined, 'eth0', 'eth1', 'lo'),
      type: fc.constantFrom(
        'unicast',
        'unicast',
        'local',
        'blackhole',
        'unreachable',
        'prohibit',
        'broadcast',
        'multicast',
        'anycast',
        'throw',
        'nat',
      ),
    })
    .map(({ dev, ...r }) => ({ family, ...r, ...(dev === undefined ? {} : { dev }) })),
);
const arbNetworkAddress: fc.Arbitrary<NetworkAddress> = arbFamily.chain((family) =>
  fc.record({
    ifname: fc.constantFrom('eth0', 'eth1', 'wlan0'),
    family: fc.constant(family),
    address: fc.oneof(
      { weight: 9, arbitrary: arbAddress(family) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 3, maxLength: 3 }) },
    ),
    prefix: fc.oneof(arbPrefix(family), fc.constant(bitsOf(family) + 1)),
  }),
);

t.test('host network: the route tables answer as a linear scan of every address and route', (t) => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(
      fc.array(arbNetworkAddress, { maxLength: 8 }),
      fc.array(fc.array(arbRoute, { maxLength: 12 }), { maxLength: 3 }),
      fc.boolean(),
      fc.array(fc.oneof(arbAddress(4), arbAddress(6), fc.uint8Array({ maxLength: 5 })), {
        minLength: 1,
        maxLength: 24,
      }),
      (addresses, sets, again, probes) => {
        // Built piecewise, as the reader does: addresses in two batches, one set at a time
        // (the first through the constructor), a set handed again by identity.
        const half = addresses.length >> 1;
        const net = new HostNetwork(addresses.slice(0, half), sets[0]);
        net.addAddresses(addresses.slice(half));
        for (const set of sets.slice(1)) net.addRoutes(set);
        if (again && sets[0] !== undefined) net.addRoutes(sets[0]);
        const ref = reference(addresses, sets);
        // The tables' own destinations and addresses, and their neighbours, besides the probes.
        const all = [
          ...probes,
          ...addresses.map((a) => a.address),
          ...sets.flat().map((r) => r.dst),
        ];
        for (const a of all) {
          const dev = net.routeDevice(a);
          const type = net.addressType(a);
          const want = { dev: ref.routeDevice(a), type: ref.addressType(a) };
          if (dev !== want.dev || type !== want.type) {
            throw new Error(
              `${[...a].join('.')}: routeDevice ${dev} addressType ${type}, reference ${want.dev} ${want.type}`,
            );
          }
          seen.set(`dev ${dev}`, (seen.get(`dev ${dev}`) ?? 0) + 1);
          seen.set(`type ${type}`, (seen.get(`type ${type}`) ?? 0) + 1);
        }
      },
    ),
    { numRuns: 500 },
  );
  // Not vacuous: every kind of answer came up.
  const kinds = ['dev lo', 'dev eth0', 'dev eth1', 'dev wlan0', 'dev undefined'];
  kinds.push(
    ...['local', 'unicast', 'broadcast', 'multicast', 'blackhole', 'unknown'].map(
      (k) => `type ${k}`,
    ),
  );
  for (const k of kinds) t.ok((seen.get(k) ?? 0) > 0, `${k}: ${seen.get(k) ?? 0} lookups`);
  t.end();
});
