// Address text forms: IPv4 dotted quad, IPv6 exactly as inet_ntop (RFC 5952) prints it.
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { formatAddress, formatIPv4, formatIPv6 } from '../../../analyzer/core/address.js';
import { arbIPv4, arbIPv6, checkProperty } from '../../helpers/arbitraries.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** The uncompressed form, which every parser reads: 2001:0db8:0000:… */
const full = (b: Uint8Array) => hex(b).match(/.{4}/g)?.join(':') ?? '';
const ntop = (b: Uint8Array) => new SocketAddress({ address: full(b), family: 'ipv6' }).address;
const embedsV4 = (b: Uint8Array) => /^0{20}(ffff|0000)/.test(hex(b)) && !/^0{28}/.test(hex(b));

t.test(
  'address: IPv6 text equals libuv inet_ntop (node SocketAddress) on any address',
  async (t) => {
    checkProperty(
      t,
      fc.property(arbIPv6(), (b) => assert.equal(formatIPv6(b), ntop(b))),
      { numRuns: 20000 },
    );
  },
);

t.test('address: IPv6 text equals WHATWG URL canonicalisation unless it embeds IPv4', async (t) => {
  checkProperty(
    t,
    fc.property(arbIPv6(), (b) => {
      const url = new URL(`http://[${full(b)}]/`).hostname.slice(1, -1);
      const mine = formatIPv6(b);
      if (embedsV4(b)) {
        // Mixed notation; URL prints hex groups: the same address, read back through URL.
        assert.match(mine, /\d+\.\d+\.\d+\.\d+$/);
        assert.equal(new URL(`http://[${mine}]/`).hostname.slice(1, -1), url);
      } else {
        assert.equal(mine, url);
      }
    }),
    { numRuns: 20000 },
  );
});

t.test('address: RFC 5952 examples and IPv4-mapped forms', async (t) => {
  const cases: [string, string][] = [
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['20010db8aaaabbbbccccddddeeeeffff', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'],
    ['00010000000000000000000000000000', '1::'],
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
    ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'],
    ['000000000000000000000000c0000201', '::192.0.2.1'],
    ['0000000000000000ffff0000c0000201', '::ffff:0:c000:201'],
    ['fe800000000000000000000000000001', 'fe80::1'],
  ];
  for (const [h, text] of cases) t.equal(formatIPv6(Buffer.from(h, 'hex')), text, text);
});

t.test('address: IPv4 is a dotted quad of the bytes in network order', async (t) => {
  t.equal(formatIPv4(Uint8Array.of(192, 168, 100, 9)), '192.168.100.9');
  t.equal(formatAddress(Uint8Array.of(0, 0, 0, 0)), '0.0.0.0');
  checkProperty(
    t,
    fc.property(arbIPv4(), (b) => {
      assert.equal(formatAddress(b), new URL(`http://${b.join('.')}/`).hostname);
    }),
  );
});
