// The recorder's host routes, read from /proc/net/route and /proc/net/ipv6_route as this kernel prints them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { formatAddress } from '../../analyzer/core/address.js';
import { type HostRoute, TABLE_LOCAL, TABLE_MAIN } from '../../journal/format.js';
import { MAX_ROUTES } from '../../journal/meta-codec.js';
import { parseRoutes4, parseRoutes6, readHostRoutes, sameRoutes } from '../../recorder/host.js';
import { tempDir } from '../helpers/journals.js';

// Captured from a namespace on this machine (kernel 6.x, x86_64): a /24 on d0, a /16 via a
// gateway with metric 5, blackhole, unreachable, prohibit and throw routes (`ip route` lists
// them), with /proc's trailing padding.
const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       
d0\t0000090A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                                 
d0\t00000A0A\tFE00090A\t0003\t0\t0\t5\t0000FFFF\t0\t0\t0                                                                                 
*\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                                  
*\t006433C6\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                                  
*\t006533C6\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                                  
*\t007100CB\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                                  
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                                                                               
`;

const IPV6_ROUTE = `fd010000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001       d0
fd020000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00200200       lo
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001       d0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd010000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       d0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001       d0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

/** A route as `ip route` would say it, to compare whole lists readably. */
function show(r: HostRoute): string {
  const dst = `${formatAddress(r.dst)}/${r.prefix}`;
  const via = r.gateway === undefined ? '' : ` via ${formatAddress(r.gateway)}`;
  const dev = r.dev === undefined ? '' : ` dev ${r.dev}`;
  const table = r.table === TABLE_MAIN ? '' : ` table ${r.table}`;
  return `${r.type} ${dst}${via}${dev}${table} metric ${r.metric}`;
}

t.test('host: /proc/net/route becomes the main table, reject and device-less routes typed', (t) => {
  t.same(parseRoutes4(ROUTE, true).map(show), [
    'unicast 10.9.0.0/24 dev d0 metric 0',
    'unicast 10.10.0.0/16 via 10.9.0.254 dev d0 metric 5',
    // throw shows as blackhole does in /proc: recorded as blackhole (the format doc says so).
    'blackhole 192.0.2.0/24 metric 0',
    'unreachable 198.51.100.0/24 metric 0',
    // prohibit shows as unreachable does.
    'unreachable 198.51.101.0/24 metric 0',
    'blackhole 203.0.113.0/24 metric 0',
    'unicast 0.0.0.0/0 via 192.0.2.1 dev eth0 metric 0',
  ]);
  // The same words printed by a big-endian kernel: the address bytes are the same.
  const swapped = ROUTE.replace(
    /\b([0-9A-F]{2})([0-9A-F]{2})([0-9A-F]{2})([0-9A-F]{2})\b/g,
    '$4$3$2$1',
  );
  t.same(
    parseRoutes4(swapped, false).map(show),
    parseRoutes4(ROUTE, true).map(show),
    'big-endian /proc reads the same',
  );
  t.end();
});

t.test('host: /proc/net/ipv6_route leaves out the kernel’s null entries, types local ones', (t) => {
  t.same(parseRoutes6(IPV6_ROUTE).map(show), [
    'unicast fd01::/64 dev d0 metric 256',
    // a blackhole: IPv6 gives every reject route RTF_REJECT on lo.
    'unreachable fd02::/64 metric 1024',
    'unicast fe80::/64 dev d0 metric 256',
    'unicast ::/0 via fd00::1 dev eth0 metric 1024',
    `local ::1/128 dev lo table ${TABLE_LOCAL} metric 0`,
    `local fd01::1/128 dev d0 table ${TABLE_LOCAL} metric 0`,
    `multicast ff00::/8 dev d0 table ${TABLE_LOCAL} metric 256`,
  ]);
  t.end();
});

t.test('host: lines /proc never prints are skipped, not guessed', (t) => {
  const bad4 = [
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask',
    'eth0\t0000090A\t00000000\t0001\t0\t0\t0\t00FF00FF', // mask not contiguous
    'eth0\tXYZ\t00000000\t0001\t0\t0\t0\t00FFFFFF',
    `${'x'.repeat(65)}\t0000090A\t00000000\t0001\t0\t0\t0\t00FFFFFF`,
    'eth0\t0000090A',
    'eth0\t0000090A\t00000000\t0001\t0\t0\t-1\t00FFFFFF',
  ].join('\n');
  t.same(parseRoutes4(bad4, true), []);
  const bad6 = [
    'fd01 40 0 00 0 00000100 00000002 00000000 00000001 d0', // short address
    `fd010000000000000000000000000000 81 ${'0'.repeat(32)} 00 ${'0'.repeat(32)} 00000100 0 0 00000001 d0`,
    `fd010000000000000000000000000000 40 ${'0'.repeat(32)} 00 ${'0'.repeat(32)} 00000100 0 0 01000001 d0`, // a cached clone
  ].join('\n');
  t.same(parseRoutes6(bad6), []);
  t.end();
});

t.test('host: readHostRoutes sorts both families, without a file gives none of its family', (t) => {
  const dir = tempDir(t, 'routes');
  const proc = join(dir, 'proc');
  mkdirSync(join(proc, 'net'), { recursive: true });
  t.throws(
    () => readHostRoutes(proc),
    /neither .*net\/route nor .*ipv6_route exists/,
    'no /proc/net at all: an error (no routes recorded), not an empty table',
  );
  writeFileSync(join(proc, 'net', 'route'), ROUTE);
  const v4 = readHostRoutes(proc);
  t.same(
    v4.map((r) => `${r.prefix}`),
    ['0', '16', '24', '24', '24', '24', '24'],
    'no ipv6_route (IPv6 disabled): IPv4 only, shortest prefix first',
  );
  writeFileSync(join(proc, 'net', 'ipv6_route'), IPV6_ROUTE);
  const both = readHostRoutes(proc);
  t.equal(both.length, 14);
  t.same(
    both.map((r) => r.family),
    [...new Array(7).fill(4), ...new Array(7).fill(6)],
    'IPv4 first',
  );
  t.ok(sameRoutes(both, readHostRoutes(proc)), 'an unchanged host gives an equal list');
  const changed = ROUTE.replace('\t5\t', '\t6\t');
  writeFileSync(join(proc, 'net', 'route'), changed);
  t.notOk(sameRoutes(both, readHostRoutes(proc)), 'a changed metric is a change');
  t.end();
});

t.test(`host: more than ${MAX_ROUTES} routes keep the ${MAX_ROUTES} shortest prefixes`, (t) => {
  const dir = tempDir(t, 'many');
  const proc = join(dir, 'proc');
  mkdirSync(join(proc, 'net'), { recursive: true });
  const lines = ['Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask'];
  for (let i = 0; i < MAX_ROUTES + 10; i++) {
    // 10.x.y.z/32 host routes, then one default route last in the file.
    const hex = (0x0a000000 + i).toString(16).toUpperCase().padStart(8, '0');
    const le = hex.match(/../g)?.reverse().join('');
    lines.push(`eth0\t${le}\t00000000\t0005\t0\t0\t0\tFFFFFFFF`);
  }
  lines.push('eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000');
  writeFileSync(join(proc, 'net', 'route'), lines.join('\n'));
  const got = readHostRoutes(proc);
  t.equal(got.length, MAX_ROUTES);
  t.equal(got[0]?.prefix, 0, 'the default route is kept');
  t.end();
});
