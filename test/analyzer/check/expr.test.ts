// ct-analyze check: each match of nft's JSON decided on hand-made packets: true, false, or unknown where the recording cannot tell.
import t from 'tap';
import { ct, decide, marks, meta, payload, pkt, port, rule, run } from './compile-helpers.js';

const ip = (f: string) => payload('ip', f);
const ip6 = (f: string) => payload('ip6', f);
const prefix = (addr: string, len: number) => ({ prefix: { addr, len } });
const set = (...elems: unknown[]) => ({ set: elems });

t.test('ip saddr/daddr: values, prefixes, ranges, sets, negation', async (t) => {
  const p = pkt({ saddr: '192.168.1.7', daddr: '10.0.0.2' });
  t.equal(decide(ip('saddr'), '192.168.1.7', p), 'accept');
  t.equal(decide(ip('saddr'), '192.168.1.8', p), 'no');
  t.equal(decide(ip('saddr'), prefix('192.168.0.0', 16), p), 'accept');
  t.equal(decide(ip('saddr'), prefix('192.168.0.0', 16), p, '!='), 'no');
  t.equal(decide(ip('saddr'), { range: ['192.168.1.1', '192.168.1.10'] }, p), 'accept');
  t.equal(decide(ip('daddr'), set('10.0.0.1', prefix('10.0.0.0', 31)), p), 'no');
  t.equal(decide(ip('daddr'), set('10.0.0.1', prefix('10.0.0.0', 30)), p), 'accept');
  t.equal(decide(ip('daddr'), set('10.0.0.1', '10.0.0.3'), p, '!='), 'accept');
});

t.test('a payload match on the other family is false, negated or not', async (t) => {
  const v6 = pkt({ family: 6 });
  t.equal(decide(ip('saddr'), '10.0.0.1', v6), 'no');
  t.equal(decide(ip('saddr'), '10.0.0.1', v6, '!='), 'no');
  t.equal(decide(ip6('saddr'), '2001:db8::1', v6), 'accept');
  t.equal(decide(ip6('saddr'), prefix('2001:db8::', 32), pkt()), 'no');
  t.equal(decide(ip6('saddr'), prefix('2001:db8::', 32), pkt(), '!='), 'no');
  t.equal(decide(payload('icmp', 'type'), 'echo-request', v6), 'no');
});

t.test('protocols: ip protocol, ip6 nexthdr, meta l4proto, nfproto, protocol', async (t) => {
  const udp = pkt({ proto: 17 });
  t.equal(decide(ip('protocol'), 'udp', udp), 'accept');
  t.equal(decide(ip('protocol'), 'tcp', udp), 'no');
  t.equal(decide(meta('l4proto'), set('tcp', 'udp'), udp), 'accept');
  t.equal(decide(meta('l4proto'), 17, udp), 'accept');
  t.equal(decide(ip6('nexthdr'), 'ipv6-icmp', pkt({ family: 6, proto: 58 })), 'accept');
  t.equal(decide(meta('nfproto'), 'ipv6', udp), 'no');
  t.equal(decide(meta('nfproto'), 'ipv4', udp), 'accept');
  t.equal(decide(meta('protocol'), 'ip6', pkt({ family: 6 })), 'accept');
});

t.test('ports: a value, a set, a range; the wrong protocol is false; th needs ports', async (t) => {
  const p = pkt({ dport: port(443) });
  t.equal(decide(payload('tcp', 'dport'), 443, p), 'accept');
  t.equal(decide(payload('tcp', 'dport'), set(22, 80, 443), p), 'accept');
  t.equal(decide(payload('tcp', 'dport'), set(22, { range: [1000, 2000] }), p), 'no');
  t.equal(decide(payload('udp', 'dport'), 443, p), 'no');
  t.equal(decide(payload('udp', 'dport'), 443, p, '!='), 'no');
  t.equal(decide(payload('th', 'dport'), 443, p), 'accept');
  t.equal(decide(payload('th', 'dport'), 443, pkt({ proto: 1 })), 'unknown: th dport 443');
  t.equal(decide(payload('tcp', 'sport'), { range: [1024, 65535] }, p), 'accept');
  t.equal(decide(payload('tcp', 'dport'), 1024, p, '<'), 'accept');
  t.equal(decide(payload('tcp', 'dport'), 1024, p, '>='), 'no');
});

t.test('a collapsed port range: all inside true, none false, some unknown', async (t) => {
  const p = pkt({ dport: { from: 1024, to: 2047 } });
  t.equal(decide(payload('tcp', 'dport'), { range: [1000, 3000] }, p), 'accept');
  t.equal(decide(payload('tcp', 'dport'), set(22, 80), p), 'no');
  t.equal(decide(payload('tcp', 'dport'), 1500, p), 'unknown: tcp dport 1500');
  t.equal(decide(payload('tcp', 'dport'), 1500, p, '!='), 'unknown: tcp dport != 1500');
  t.equal(
    decide(payload('tcp', 'dport'), set({ range: [1024, 1500] }, { range: [1501, 2047] }), p),
    'accept',
  );
  t.equal(decide(payload('tcp', 'dport'), 1000, p, '>'), 'accept');
});

t.test('tcp flags: masks, the implicit any-bit op, unknown flags', async (t) => {
  const left = { '&': [payload('tcp', 'flags'), ['fin', 'syn', 'rst', 'ack']] };
  t.equal(decide(left, 'syn', pkt({ tcpFlags: 0x02 })), 'accept');
  t.equal(decide(left, 'syn', pkt({ tcpFlags: 0x12 })), 'no');
  t.equal(decide(payload('tcp', 'flags'), 'syn', pkt({ tcpFlags: 0x12 }), 'in'), 'accept');
  t.equal(decide(payload('tcp', 'flags'), ['fin', 'rst'], pkt({ tcpFlags: 0x12 }), 'in'), 'no');
  t.equal(
    decide(payload('tcp', 'flags'), ['syn', 'ack'], pkt({ tcpFlags: 0x12 })),
    'accept',
    '== all of them',
  );
  t.equal(decide(payload('tcp', 'flags'), ['syn', 'ack'], pkt({ tcpFlags: 0x02 })), 'no');
  t.equal(decide(payload('tcp', 'flags'), ['fin', 'rst'], pkt({ tcpFlags: 0x12 }), '!='), 'accept');
  t.equal(
    decide(payload('tcp', 'flags'), { set: ['syn', 'ack'] }, pkt({ tcpFlags: 0x10 }), 'in'),
    'accept',
  );
  t.equal(
    decide(left, 'syn', pkt({ tcpFlags: undefined })),
    'unknown: tcp flags & (fin | syn | rst | ack) == syn',
  );
  t.equal(decide(left, 'syn', pkt({ proto: 17, tcpFlags: undefined })), 'no');
});

t.test('icmp and icmpv6 type and code; a concatenation of both', async (t) => {
  const ping = pkt({ proto: 1, icmpType: 8, icmpCode: 0 });
  t.equal(decide(payload('icmp', 'type'), 'echo-request', ping), 'accept');
  t.equal(decide(payload('icmp', 'type'), set('echo-reply', 'time-exceeded'), ping), 'no');
  t.equal(
    decide(payload('icmp', 'type'), 'echo-request', pkt({ proto: 1 })),
    'unknown: icmp type echo-request',
  );
  const mld = pkt({ family: 6, proto: 58, icmpType: 130, icmpCode: 0 });
  const left = { concat: [payload('icmpv6', 'type'), payload('icmpv6', 'code')] };
  const right = set(
    { concat: ['mld-listener-query', 'no-route'] },
    { concat: ['nd-redirect', 'no-route'] },
  );
  t.equal(decide(left, right, mld), 'accept');
  t.equal(decide(left, right, pkt({ family: 6, proto: 58, icmpType: 130, icmpCode: 1 })), 'no');
});

t.test('ip frag-off: conntrack reassembles, so no packet is a fragment', async (t) => {
  const left = { '&': [ip('frag-off'), 0x1fff] };
  t.equal(decide(left, 0, pkt(), '!='), 'no');
  t.equal(decide(left, 0, pkt()), 'accept');
  t.equal(decide({ '&': [ip('frag-off'), 0x4000] }, 0, pkt()), 'unknown: ip frag-off & 16384 == 0');
  t.equal(decide(ip('ttl'), 64, pkt()), 'unknown: ip ttl 64');
});

t.test('interfaces: names, wildcards, no interface on the hook, not known', async (t) => {
  const p = pkt({ iifname: 'eth0', oifname: null });
  t.equal(decide(meta('iifname'), 'eth0', p), 'accept');
  t.equal(decide(meta('iifname'), 'eth*', p), 'accept');
  t.equal(decide(meta('iifname'), 'wlan*', p), 'no');
  t.equal(decide(meta('iifname'), set('lo', 'br*'), p, '!='), 'accept');
  t.equal(decide(meta('iif'), 'eth0', p), 'accept');
  // No oif on input: an empty name, as nft_meta_store_ifname loads it.
  t.equal(decide(meta('oifname'), 'eth0', p), 'no');
  t.equal(decide(meta('oifname'), 'eth0', p, '!='), 'accept');
  t.equal(decide(meta('oifname'), 'eth0', pkt({ oifname: undefined })), 'unknown: oifname "eth0"');
  t.equal(decide(meta('iiftype'), 'loopback', pkt({ iifname: 'lo' })), 'accept');
  t.equal(decide(meta('iiftype'), 'ether', p), 'unknown: meta iiftype ether');
  // A device not known by name but known not to be lo (the packet is no traffic of the host's).
  const notLo = pkt({ iifname: undefined, iifNotLo: true });
  t.equal(decide(meta('iifname'), 'lo', notLo), 'no');
  t.equal(decide(meta('iifname'), 'lo', notLo, '!='), 'accept');
  t.equal(decide(meta('iifname'), 'eth0', notLo), 'unknown: iifname "eth0"');
  t.equal(
    decide(meta('iifname'), { set: ['lo', 'eth0'] }, notLo),
    'unknown: iifname { "lo", "eth0" }',
  );
  t.equal(decide(meta('iiftype'), 'loopback', notLo), 'no');
});

t.test('meta pkttype from what the destination address is', async (t) => {
  t.equal(decide(meta('pkttype'), 'host', pkt()), 'accept');
  t.equal(decide(meta('pkttype'), 'broadcast', pkt({ daddrType: 'broadcast' })), 'accept');
  t.equal(
    decide(meta('pkttype'), set('broadcast', 'multicast'), pkt({ daddrType: 'multicast' })),
    'accept',
  );
  t.equal(
    decide(meta('pkttype'), 'host', pkt({ daddrType: 'unknown' })),
    'unknown: meta pkttype host',
  );
});

t.test(
  'meta mark and ct mark: known marks decide, unknown marks do not; others unknown',
  async (t) => {
    const r = rule([{ match: { op: '==', left: meta('mark'), right: 0x10 } }, { accept: null }]);
    t.equal(run(r, pkt(), marks(0x10)), 'accept');
    t.equal(run(r, pkt(), marks(0x11)), 'no');
    t.equal(run(r, pkt(), marks(undefined)), 'unknown: meta mark 16');
    const masked = rule([
      { match: { op: '==', left: { '&': [ct('mark'), 0xff00] }, right: 0x100 } },
      { drop: null },
    ]);
    t.equal(run(masked, pkt(), marks(0, 0x1ff)), 'drop');
    t.equal(decide(meta('skuid'), 1000, pkt({ hook: 'output' })), 'unknown: meta skuid 1000');
    t.equal(
      decide(meta('hour'), { range: ['21:00', '23:00'] }, pkt()),
      'unknown: meta hour 21:00-23:00',
    );
  },
);

t.test(
  'meta skuid / skgid: no match, negated or not, where the packet has no local socket; unknown where it may',
  async (t) => {
    const later = { state: 'established', direction: 'original' } as const;
    const reply = { state: 'established', direction: 'reply' } as const;
    for (const key of ['skuid', 'skgid']) {
      for (const op of ['==', '!='] as const) {
        const said = `meta ${key} ${op === '!=' ? '!= ' : ''}0`;
        // nft_meta.c ends the rule (NFT_BREAK) without a full skb->sk, whatever the comparison.
        t.equal(decide(meta(key), 0, pkt({ hook: 'prerouting' }), op), 'no', `${said}: prerouting`);
        t.equal(decide(meta(key), 0, pkt({ hook: 'forward' }), op), 'no', `${said}: forward`);
        t.equal(decide(meta(key), 0, pkt({ hook: 'forward', ct: later }), op), 'no');
        t.equal(decide(meta(key), 0, pkt(), op), 'no', `${said}: the first packet on input`);
        // Early demux gives later packets on input the established socket.
        t.equal(decide(meta(key), 0, pkt({ ct: later }), op), `unknown: ${said}`);
        t.equal(decide(meta(key), 0, pkt({ ct: reply }), op), `unknown: ${said}`);
        t.equal(decide(meta(key), 0, pkt({ hook: 'output' }), op), `unknown: ${said}`);
        t.equal(decide(meta(key), 0, pkt({ hook: 'postrouting' }), op), `unknown: ${said}`);
      }
    }
    t.equal(decide(meta('skuid'), set(0, 1000), pkt({ hook: 'forward' })), 'no', 'a set too');
  },
);

t.test('fib type from the address types; interface-bound lookups unknown', async (t) => {
  const fib = (flags: string[], result: string) => ({ fib: { flags, result } });
  t.equal(decide(fib(['daddr'], 'type'), 'local', pkt()), 'accept');
  t.equal(decide(fib(['daddr'], 'type'), 'local', pkt({ daddrType: 'unicast' })), 'no');
  t.equal(decide(fib(['saddr'], 'type'), set('broadcast', 'multicast'), pkt()), 'no');
  t.equal(
    decide(fib(['daddr'], 'type'), 'local', pkt({ daddrType: 'unknown' })),
    'unknown: fib daddr type local',
  );
  t.equal(
    decide(fib(['daddr', 'iif'], 'type'), 'local', pkt()),
    'unknown: fib daddr . iif type local',
  );
});

t.test(
  'fib oif: reverse path found by iif (the walk routes symmetrically), daddr by oif',
  async (t) => {
    const fib = (flags: string[], result: string) => ({ fib: { flags, result } });
    const rpf = fib(['saddr', 'mark', 'iif'], 'oif');
    t.equal(decide(rpf, false, pkt()), 'no', 'oif missing: never for a packet with a known iif');
    t.equal(decide(rpf, true, pkt()), 'accept');
    t.equal(
      decide(rpf, false, pkt({ iifname: undefined })),
      'unknown: fib saddr . mark . iif oif missing',
    );
    const out = pkt({ hook: 'forward', oifname: 'eth1' });
    t.equal(decide(fib(['daddr'], 'oif'), 'eth1', out), 'accept');
    t.equal(
      decide(fib(['daddr'], 'oif'), 'eth1', pkt({ hook: 'prerouting' })),
      'unknown: fib daddr oif "eth1"',
    );
    t.equal(
      decide(fib(['daddr', 'iif'], 'oif'), false, out),
      'unknown: fib daddr . iif oif missing',
    );
  },
);

t.test(
  'IPv6 extension headers: none (as ip6 nexthdr assumes): a field is no match, negated or not; exists false, missing true',
  async (t) => {
    const rt0 = { exthdr: { name: 'rt', field: 'type' } };
    const rt = { exthdr: { name: 'rt' } };
    for (const p of [pkt(), pkt({ family: 6 })]) {
      t.equal(decide(rt0, 0, p), 'no');
      t.equal(decide(rt0, 0, p, '!='), 'no');
      t.equal(decide(rt, true, p), 'no');
      t.equal(decide(rt, false, p), 'accept');
    }
  },
);

t.test('ct state (set or flag list), direction, status bits known or not', async (t) => {
  const est = pkt({ ct: { state: 'established' } });
  t.equal(decide(ct('state'), set('established', 'related'), est), 'accept');
  t.equal(decide(ct('state'), ['established', 'related'], est, 'in'), 'accept');
  t.equal(decide(ct('state'), 'invalid', est, 'in'), 'no');
  t.equal(decide(ct('state'), 'new', est, '!='), 'accept');
  t.equal(decide(ct('direction'), 'reply', pkt({ ct: { direction: 'reply' } })), 'accept');
  t.equal(decide(ct('status'), 'dnat', pkt({ ct: { status: 0x20 } }), 'in'), 'accept');
  t.equal(decide(ct('status'), 'dnat', pkt({ ct: { status: 0 } }), 'in'), 'no');
  t.equal(
    decide(ct('status'), 'dnat', pkt({ ct: { status: 0, statusKnown: 0x2 } }), 'in'),
    'unknown: ct status dnat',
  );
  t.equal(decide(ct('l3proto'), 'ipv4', pkt()), 'accept');
  t.equal(decide(ct('protocol'), 'udp', pkt()), 'no');
  t.equal(decide(ct('helper'), 'ftp', pkt()), 'unknown: ct helper "ftp"');
  t.equal(decide(ct('zone'), 1, pkt()), 'unknown: ct zone 1');
});

t.test(
  'ct original/reply tuple from the packet, unknown where NAT may have moved it',
  async (t) => {
    const orig = ct('saddr', { dir: 'original', family: 'ip' });
    const reply = pkt({ saddr: '10.0.0.2', daddr: '10.0.0.1', ct: { direction: 'reply' } });
    t.equal(decide(orig, '10.0.0.1', pkt()), 'accept');
    t.equal(decide(orig, '10.0.0.1', reply), 'accept');
    t.equal(decide(ct('proto-dst', { dir: 'original' }), 22, pkt()), 'accept');
    t.equal(decide(ct('daddr', { dir: 'reply', family: 'ip' }), '10.0.0.1', pkt()), 'accept');
    t.equal(
      decide(orig, '10.0.0.1', pkt({ ct: { status: 0x20 } })),
      'unknown: ct original ip saddr 10.0.0.1',
    );
    t.equal(decide(orig, '10.0.0.1', pkt({ family: 6 })), 'no');
    t.equal(
      decide(ct('proto-dst', { dir: 'original' }), 8, pkt({ proto: 1 })),
      'unknown: ct original proto-dst 8',
    );
  },
);

t.test('named sets: prefixes, concatenations, negation, sets rules add to', async (t) => {
  const addrs = {
    set: {
      name: 'allow',
      type: 'ipv4_addr',
      flags: ['interval'],
      elem: [prefix('10.0.0.0', 8), '192.0.2.1'],
    },
  };
  t.equal(decide(ip('saddr'), '@allow', pkt({ saddr: '10.9.9.9' }), '==', [addrs]), 'accept');
  t.equal(decide(ip('saddr'), '@allow', pkt({ saddr: '192.0.2.2' }), '==', [addrs]), 'no');
  t.equal(decide(ip('saddr'), '@allow', pkt({ saddr: '192.0.2.2' }), '!=', [addrs]), 'accept');
  const svc = {
    set: { name: 'svc', type: ['ipv4_addr', 'inet_service'], elem: [{ concat: ['10.0.0.2', 22] }] },
  };
  const left = { concat: [ip('daddr'), payload('tcp', 'dport')] };
  t.equal(decide(left, '@svc', pkt(), '==', [svc]), 'accept');
  t.equal(decide(left, '@svc', pkt({ dport: port(23) }), '==', [svc]), 'no');
  t.equal(
    decide(left, '@svc', pkt({ dport: { from: 20, to: 30 } }), '==', [svc]),
    'unknown: ip daddr . tcp dport @svc',
  );
  const dyn = { set: { name: 'seen', type: 'ipv4_addr', flags: ['dynamic'] } };
  t.equal(decide(ip('saddr'), '@seen', pkt(), '==', [dyn]), 'unknown: ip saddr @seen');
  t.equal(decide(ip('saddr'), '@missing', pkt()), 'unknown: ip saddr @missing');
});

t.test('an element the evaluator cannot read makes a miss unknown, not false', async (t) => {
  const right = set('10.0.0.9', 'not-an-address');
  t.equal(decide(ip('saddr'), right, pkt({ saddr: '10.0.0.9' })), 'accept');
  t.equal(decide(ip('saddr'), right, pkt()), 'unknown: ip saddr { 10.0.0.9, not-an-address }');
});

t.test('index keys: only for exact field-in-values matches', async (t) => {
  const idx = (left: unknown, right: unknown, op = '==') => {
    const s = rule([{ match: { op, left, right } }]).steps[0];
    return s?.kind === 'match' ? s.index : undefined;
  };
  t.same(idx(ip('daddr'), set('10.0.0.1', '10.0.0.2')), {
    field: 'daddr',
    keys: ['0a000001', '0a000002'],
  });
  t.same(idx(ip6('saddr'), '2001:db8::1'), {
    field: 'saddr',
    keys: ['20010db8000000000000000000000001'],
  });
  t.same(idx(payload('tcp', 'dport'), set(22, 80)), { field: 'dport', keys: ['22', '80'] });
  t.same(idx(meta('l4proto'), 'udp'), { field: 'proto', keys: ['17'] });
  t.equal(idx(payload('th', 'dport'), 53), undefined);
  t.equal(idx(ip('daddr'), prefix('10.0.0.0', 8)), undefined);
  t.equal(idx(payload('tcp', 'dport'), 22, '!='), undefined);
  t.equal(idx(payload('tcp', 'dport'), set({ range: [1, 5] })), undefined);
});
