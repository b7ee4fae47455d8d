// Address text forms: IPv4 dotted quad, IPv6 exactly as inet_ntop (RFC 5952) prints it, and the one strict parser.
import assert from 'node:assert/strict';
import { isIP, SocketAddress } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import {
  addressBytes,
  formatAddress,
  formatIPv4,
  formatIPv6,
  parseAddress,
} from '../../../analyzer/core/address.js';
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

// --- the parser ----------------------------------------------------------------------------

/** Text forms of an address's groups: any case, leading zeros, any zero run as `::`, a v4 tail. */
const arbV6Text = fc
  .record({
    b: arbIPv6(),
    upper: fc.boolean(),
    pad: fc.array(fc.nat(3), { minLength: 8, maxLength: 8 }),
    cut: fc.tuple(fc.nat(8), fc.nat(8)),
    v4Tail: fc.boolean(),
  })
  .map(({ b, upper, pad, cut, v4Tail }) => {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) {
      const g = (((b[i] as number) << 8) | (b[i + 1] as number)).toString(16);
      groups.push(g.padStart(Math.min(4, g.length + (pad[i / 2] as number)), '0'));
    }
    if (v4Tail) groups.splice(6, 2, formatIPv4(b, 12));
    const n = groups.length;
    // Compress groups [from, to) to `::` when they are all zero (any run, not only the longest).
    const [from, to] = [Math.min(cut[0], n), Math.min(n, Math.min(cut[0], n) + cut[1])];
    const zero = to - from >= 1 && groups.slice(from, to).every((g) => /^0+$/.test(g));
    const text = zero
      ? `${groups.slice(0, from).join(':')}::${groups.slice(to).join(':')}`
      : groups.join(':');
    return upper ? text.toUpperCase() : text;
  });

const arbV4Text = fc
  .tuple(arbIPv4(), fc.array(fc.nat(2), { minLength: 4, maxLength: 4 }))
  .map(([b, pad]) => [...b].map((o, i) => `${'0'.repeat(pad[i] as number)}${o}`).join('.'));

/** Near misses: a valid form with a zone, prefix, space, or one character added or removed. */
const arbAddressText = fc
  .tuple(
    fc.oneof(arbV6Text, arbV4Text, fc.stringMatching(/^[0-9a-fA-F:.%/ x-]{0,45}$/)),
    fc.constantFrom('', '', '', '%eth0', '%1', '/64', '/32', ' ', '\t', '\n', ':', '.', '::'),
    fc.nat(50),
    fc.constantFrom('', '', ':', '.', '0', 'f', 'g', ' ', '%'),
    fc.boolean(),
  )
  .map(([text, suffix, at, ch, drop]) => {
    const s = `${text}${suffix}`;
    const i = at % (s.length + 1);
    return drop ? s.slice(0, i) + s.slice(i + 1) : s.slice(0, i) + ch + s.slice(i);
  });

t.test(
  'address: parseAddress accepts exactly what net.isIP accepts, less zone ids, with its family',
  async (t) => {
    checkProperty(
      t,
      fc.property(fc.oneof(arbAddressText, arbV6Text, arbV4Text), (text) => {
        const want = text.includes('%') ? 0 : isIP(text);
        const got = parseAddress(text);
        assert.equal(got === undefined ? 0 : got.length === 4 ? 4 : 6, want, text);
      }),
      { numRuns: 20000 },
    );
  },
);

t.test(
  'address: formatAddress(parseAddress(text)) is the canonical text node prints for any accepted text',
  async (t) => {
    checkProperty(
      t,
      fc.property(fc.oneof(arbV6Text, arbV4Text, arbAddressText), (text) => {
        const b = parseAddress(text);
        if (b === undefined) return;
        const family = b.length === 4 ? 'ipv4' : 'ipv6';
        assert.equal(formatAddress(b), new SocketAddress({ address: text, family }).address);
      }),
      { numRuns: 20000 },
    );
  },
);

t.test('address: parseAddress reads back every address formatAddress prints', async (t) => {
  checkProperty(
    t,
    fc.property(fc.oneof(arbIPv4(), arbIPv6()), (b) => {
      assert.deepEqual(parseAddress(formatAddress(b)), b);
    }),
    { numRuns: 20000 },
  );
});

t.test('address: zone ids, prefixes, whitespace and near misses are not addresses', async (t) => {
  const good: [string, string][] = [
    ['192.0.2.1', 'c0000201'],
    ['0.0.0.0', '00000000'],
    ['::', '0'.repeat(32)],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['::FFFF:C000:201', '00000000000000000000ffffc0000201'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
  ];
  for (const [text, hex] of good) {
    t.equal(Buffer.from(parseAddress(text) ?? []).toString('hex'), hex, text);
  }
  const bad = [
    'fe80::1%eth0',
    '::1%25',
    '10.0.0.0/8',
    '2001:db8::/32',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '::1\n',
    '010.0.0.1',
    '1.2.3',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '::ffff:256.0.0.1',
    '',
    'localhost',
  ];
  for (const text of bad) t.equal(parseAddress(text), undefined, JSON.stringify(text));
});

t.test('address: addressBytes names the text and the accepted forms, exit 2', async (t) => {
  t.same(addressBytes('10.0.0.1'), Uint8Array.of(10, 0, 0, 1));
  t.throws(() => addressBytes('fe80::1%eth0', 'peer'), {
    name: 'CtError',
    code: 'EUSAGE',
    exit: 2,
    message:
      'peer "fe80::1%eth0" is not an IPv4 or IPv6 address: write one address such as 192.0.2.1 or 2001:db8::1, without a /prefix, %zone or spaces',
  });
});
