// ct-analyze check: a flow's whole connection — which packets, on which hooks, with which addresses, interfaces and state.
import t from 'tap';
import { evaluateFlow, realSourcePorts } from '../../../analyzer/check/connection.js';
import type { Chain, HostView, Packet, Rule, Step } from '../../../analyzer/check/model.js';
import { formatAddress } from '../../../analyzer/core/address.js';
import { fateText } from './fate-text.js';
import {
  accept,
  base,
  chain,
  ctState,
  dport,
  drop,
  type FlowSpec,
  flow,
  iifname,
  match,
  rules,
  ruleset,
  unknown,
} from './hand-ruleset.js';

const OPTS = { collapse: { kind: 'none' } } as const;

function judge(chains: Chain[], spec: FlowSpec, opts: Parameters<typeof evaluateFlow>[2] = OPTS) {
  const hit = new Set<Rule>();
  return fateText(evaluateFlow(ruleset(chains), flow(spec), opts, hit));
}

/** A match that never matches and notes each packet it is shown, labelled by `show`. */
function recorder(show: (p: Packet) => string) {
  const seen: string[] = [];
  const step: Step = match('(recorder)', (p) => {
    seen.push(
      `${p.ct.direction === 'reply' ? 'R' : p.ct.state === 'new' ? 'F' : 'L'} ${p.hook} ${show(p)}`,
    );
    return false;
  });
  return { seen, step };
}

const endpoints = (p: Packet) => {
  const port = (r: { from: number; to: number }) =>
    r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`;
  return `${formatAddress(p.saddr)}:${port(p.sport)}>${formatAddress(p.daddr)}:${port(p.dport)}`;
};

const SERVER_IN = (policy: 'accept' | 'drop', ...rs: Step[][]) =>
  chain('inet', 'f', 'in', base('input', 0, policy), rules(...rs));
const SERVER_OUT = (policy: 'accept' | 'drop', ...rs: Step[][]) =>
  chain('inet', 'f', 'out', base('output', 0, policy), rules(...rs));

t.test(
  'connection: accepting ct state new on 80 without an established rule breaks after the first packet',
  async (t) => {
    const newOnly = [
      SERVER_IN('drop', [ctState('new'), dport(80), accept]),
      SERVER_OUT('drop', [ctState('new'), accept]),
    ];
    t.equal(
      judge(newOnly, { direction: ['input'] }),
      'breaks reply output: inet f out policy drop',
      'the answer leaves by output and is refused there',
    );
    // With output open, the client's next packet (established, original) is refused on input.
    t.equal(
      judge([SERVER_IN('drop', [ctState('new'), dport(80), accept])], { direction: ['input'] }),
      'breaks later input: inet f in policy drop',
    );
    const withEstablished = [
      SERVER_IN(
        'drop',
        [ctState('established', 'related'), accept],
        [ctState('new'), dport(80), accept],
      ),
      SERVER_OUT('drop', [ctState('established'), accept]),
    ];
    t.equal(judge(withEstablished, { direction: ['input'] }), 'accepted');
  },
);

t.test('connection: an unanswered flow is judged on its first packet only', async (t) => {
  const newOnly = [SERVER_IN('drop', [ctState('new'), dport(80), accept])];
  t.equal(judge(newOnly, { direction: ['input'], confirmed: false }), 'accepted');
  t.equal(
    judge(newOnly, { direction: ['input'], confirmed: true }),
    'breaks later input: inet f in policy drop',
  );
  t.equal(
    judge(newOnly, { direction: ['input'], confirmed: false, dport: 22 }),
    'blocked input: inet f in policy drop',
  );
});

t.test('connection: no recorded direction is judged as input', async (t) => {
  const closedOut = SERVER_OUT('drop');
  t.equal(judge([closedOut], {}), 'breaks reply output: inet f out policy drop');
  t.equal(
    judge([closedOut], { direction: ['forward'] }),
    'accepted',
    'a forwarded flow never meets output',
  );
});

t.test('connection: a nat chain judges the first packet only; its drop drops it', async (t) => {
  const natDrop = (...rs: Step[][]) =>
    chain('ip', 'nat', 'pre', base('prerouting', -100, 'accept', 'nat'), rules(...rs));
  t.equal(
    judge([natDrop([ctState('established'), drop])], { direction: ['input'] }),
    'accepted',
    'conntrack never shows an established packet to a nat chain',
  );
  t.equal(
    judge([natDrop([dport(80), drop])], { direction: ['input'] }),
    'blocked prerouting: ip nat pre #1 drop',
  );
  const natPolicyDrop = chain(
    'ip',
    'nat',
    'post',
    base('postrouting', 100, 'drop', 'nat'),
    rules(),
  );
  t.equal(
    judge([natPolicyDrop], { direction: ['output'] }),
    'blocked postrouting: ip nat post policy drop',
  );
  // A filter chain drops every packet, established ones too.
  const filterDrop = chain(
    'ip',
    'mangle',
    'pre',
    base('prerouting', -150),
    rules([ctState('established'), drop]),
  );
  t.equal(
    judge([filterDrop], { direction: ['input'] }),
    'breaks later prerouting: ip mangle pre #1 drop',
  );
});

t.test(
  'connection: DNAT shows the original destination before priority -100 and the translated one after; SNAT after 100',
  async (t) => {
    const rec = recorder(endpoints);
    const at = (
      hook: Parameters<typeof base>[0],
      prio: number,
      type: 'filter' | 'nat' = 'filter',
    ) =>
      chain(
        'ip',
        't',
        `${hook}${prio}${type}`,
        base(hook, prio, 'accept', type),
        rules([rec.step]),
      );
    const chains = [
      at('prerouting', -150),
      at('prerouting', -100, 'nat'),
      at('prerouting', -100),
      at('forward', 0),
      at('postrouting', 0),
      at('postrouting', 100, 'nat'),
      at('postrouting', 200),
    ];
    const fate = judge(chains, {
      src: '198.51.100.7',
      sport: 40000,
      dst: '203.0.113.1',
      dport: 80,
      direction: ['forward'],
      nat: { dst: ['10.0.0.5', 8080], src: ['192.0.2.254', 61000] },
    });
    t.equal(fate, 'accepted');
    t.same(rec.seen, [
      'F prerouting 198.51.100.7:40000>203.0.113.1:80',
      'F prerouting 198.51.100.7:40000>203.0.113.1:80',
      'F prerouting 198.51.100.7:40000>10.0.0.5:8080',
      'F forward 198.51.100.7:40000>10.0.0.5:8080',
      'F postrouting 198.51.100.7:40000>10.0.0.5:8080',
      'F postrouting 198.51.100.7:40000>10.0.0.5:8080',
      'F postrouting 192.0.2.254:61000>10.0.0.5:8080',
      // The reply: from the real server to the SNAT address, restored at the same points.
      'R prerouting 10.0.0.5:8080>192.0.2.254:61000',
      'R prerouting 10.0.0.5:8080>198.51.100.7:40000',
      'R forward 10.0.0.5:8080>198.51.100.7:40000',
      'R postrouting 10.0.0.5:8080>198.51.100.7:40000',
      'R postrouting 203.0.113.1:80>198.51.100.7:40000',
      // Later packets are translated as the first was, without the nat chains.
      'L prerouting 198.51.100.7:40000>203.0.113.1:80',
      'L prerouting 198.51.100.7:40000>10.0.0.5:8080',
      'L forward 198.51.100.7:40000>10.0.0.5:8080',
      'L postrouting 198.51.100.7:40000>10.0.0.5:8080',
      'L postrouting 192.0.2.254:61000>10.0.0.5:8080',
    ]);
  },
);

t.test(
  'connection: a DNAT-ed destination decides filter rules by where the chain sits',
  async (t) => {
    const spec: FlowSpec = {
      dst: '203.0.113.1',
      direction: ['input'],
      nat: { dst: ['203.0.113.1', 8080] },
    };
    const early = chain('ip', 'f', 'pre', base('prerouting', -150), rules([dport(80), drop]));
    const late = chain('ip', 'f', 'pre', base('prerouting', 0), rules([dport(80), drop]));
    t.equal(judge([early], spec), 'blocked prerouting: ip f pre #1 drop');
    t.equal(judge([late], spec), 'accepted');
    const input = chain('ip', 'f', 'in', base('input', 0, 'drop'), rules([dport(8080), accept]));
    t.equal(
      judge([input], spec),
      'accepted',
      'input sees the redirected port on every original packet',
    );
  },
);

t.test('connection: the hooks each direction crosses, in order', async (t) => {
  const rec = recorder(() => '');
  const chains = (['prerouting', 'input', 'forward', 'output', 'postrouting'] as const).map((h) =>
    chain('inet', 'f', h, base(h, 0), rules([rec.step])),
  );
  const hooks = (direction: FlowSpec['direction']) => {
    rec.seen.length = 0;
    judge(chains, { direction });
    return rec.seen.map((s) => s.trim()).join(', ');
  };
  t.equal(
    hooks(['input']),
    'F prerouting, F input, R output, R postrouting, L prerouting, L input',
  );
  t.equal(
    hooks(['output']),
    'F output, F postrouting, R prerouting, R input, L output, L postrouting',
  );
  t.equal(
    hooks(['forward']),
    'F prerouting, F forward, F postrouting, R prerouting, R forward, R postrouting, L prerouting, L forward, L postrouting',
  );
  t.equal(
    hooks(['local']),
    'F output, F postrouting, F prerouting, F input, R output, R postrouting, R prerouting, R input, L output, L postrouting, L prerouting, L input',
  );
});

t.test('connection: every recorded direction must work; the worst decided fate wins', async (t) => {
  const closedOut = SERVER_OUT('drop', [ctState('established'), accept]);
  t.equal(judge([closedOut], { direction: ['input'] }), 'accepted');
  t.equal(
    judge([closedOut], { direction: ['input', 'output'] }),
    'blocked output: inet f out policy drop',
  );
  const maybe = SERVER_OUT('accept', [ctState('new'), unknown('meta length > 100'), drop]);
  t.equal(
    judge([maybe], { direction: ['input', 'output'] }),
    'undetermined first output: inet f out #1 (meta length > 100)',
    'accepted as input, undetermined as output',
  );
  t.equal(
    judge([maybe, SERVER_IN('drop')], { direction: ['input', 'output'] }),
    'blocked input: inet f in policy drop',
    'blocked as input outweighs undetermined as output',
  );
});

/** 192.0.2.0/24 on eth0, 10.0.0.0/8 on eth1, 203.0.113.1 the host's own; nothing else recorded. */
const HOST: HostView = {
  routeDevice: (a) =>
    a[0] === 192 && a[1] === 0 && a[2] === 2
      ? 'eth0'
      : a[0] === 10
        ? 'eth1'
        : formatAddress(a) === '203.0.113.1'
          ? 'lo'
          : undefined,
  addressType: (a) =>
    formatAddress(a) === '203.0.113.1'
      ? 'local'
      : a[0] === 10 || a[0] === 192
        ? 'unicast'
        : 'unknown',
};

t.test(
  'connection: interfaces come from the host view, by route (symmetric routing assumed)',
  async (t) => {
    const onlyEth0 = [SERVER_IN('drop', [iifname('eth0'), accept])];
    const opts = { ...OPTS, host: HOST };
    t.equal(judge(onlyEth0, { src: '192.0.2.7', direction: ['input'] }, opts), 'accepted');
    t.equal(
      judge(onlyEth0, { src: '10.1.1.1', direction: ['input'] }, opts),
      'blocked input: inet f in policy drop',
    );
    t.equal(
      judge(onlyEth0, { src: '198.51.100.7', direction: ['input'] }, opts),
      'undetermined first input: inet f in #1 (iifname "eth0")',
      'no route recorded for the source',
    );
    t.equal(
      judge(onlyEth0, { src: '192.0.2.7', direction: ['input'] }),
      'undetermined first input: inet f in #1 (iifname "eth0")',
      'no host view: interfaces unknown',
    );
    const onlyLo = [SERVER_IN('drop', [iifname('lo'), accept])];
    t.equal(
      judge(onlyLo, { src: '127.0.0.1', dst: '127.0.0.1', direction: ['local'] }),
      'accepted',
      'loopback without a host view',
    );
    t.equal(
      judge(onlyLo, { src: '203.0.113.1', dst: '203.0.113.1', direction: ['local'] }),
      'accepted',
      'local to local is lo',
    );

    const rec = recorder((p) => `${p.iifname}/${p.oifname}`);
    const chains = (['prerouting', 'forward', 'postrouting'] as const).map((h) =>
      chain('inet', 'f', h, base(h, 0), rules([rec.step])),
    );
    judge(
      chains,
      { src: '192.0.2.7', dst: '10.2.2.2', direction: ['forward'], confirmed: false },
      opts,
    );
    t.same(rec.seen, ['F prerouting eth0/null', 'F forward eth0/eth1', 'F postrouting null/eth1']);
    rec.seen.length = 0;
    judge(chains, { src: '192.0.2.7', dst: '10.2.2.2', direction: ['forward'] }, opts);
    t.same(rec.seen.slice(3, 6), [
      'R prerouting eth1/null',
      'R forward eth1/eth0',
      'R postrouting null/eth0',
    ]);
    // A DNAT-ed flow leaves by the route to where DNAT sent it.
    rec.seen.length = 0;
    judge(
      chains,
      {
        src: '192.0.2.7',
        dst: '198.51.100.9',
        direction: ['forward'],
        confirmed: false,
        nat: { dst: ['10.0.0.5', 80] },
      },
      opts,
    );
    t.same(rec.seen, ['F prerouting eth0/null', 'F forward eth0/eth1', 'F postrouting null/eth1']);
  },
);

t.test('connection: address types from the host view, or from the address alone', async (t) => {
  const rec = recorder((p) => `${p.saddrType}>${p.daddrType}`);
  const pre = [chain('inet', 'f', 'pre', base('prerouting', -150), rules([rec.step]))];
  const types = (spec: FlowSpec, host?: HostView) => {
    rec.seen.length = 0;
    judge(pre, { confirmed: false, ...spec }, host ? { ...OPTS, host } : OPTS);
    return rec.seen[0];
  };
  t.equal(
    types({ src: '198.51.100.7', dst: '224.0.0.251', proto: 17, direction: ['forward'] }),
    'F prerouting unknown>multicast',
  );
  t.equal(
    types({ src: '198.51.100.7', dst: '255.255.255.255', proto: 17, direction: ['forward'] }),
    'F prerouting unknown>broadcast',
  );
  t.equal(
    types({ src: 'fe80::1', dst: 'ff02::1', proto: 17, direction: ['forward'] }),
    'F prerouting unknown>multicast',
  );
  t.equal(
    types({ src: '10.1.1.1', dst: '203.0.113.1', direction: ['forward'] }, HOST),
    'F prerouting unicast>local',
  );
  t.equal(
    types({ src: '198.51.100.7', dst: '203.0.113.9', direction: ['input'] }),
    'F prerouting unknown>local',
    'an input flow goes to a local address even without a host view',
  );
  t.equal(
    types({
      src: '198.51.100.7',
      dst: '203.0.113.9',
      direction: ['input'],
      nat: { dst: ['10.9.9.9', 80] },
    }),
    'F prerouting unknown>unknown',
    'before DNAT the destination is not the local one',
  );
});

t.test(
  'connection: each packet carries its ct state, direction, status and TCP flags',
  async (t) => {
    const rec = recorder(
      (p) =>
        `${p.ct.state} ${p.ct.direction} ${p.ct.status.toString(16)}/${p.ct.statusKnown.toString(16)} ${p.tcpFlags?.toString(16)}`,
    );
    const pre = [chain('inet', 'f', 'pre', base('prerouting', -150), rules([rec.step]))];
    pre.push(chain('inet', 'f', 'pre2', base('prerouting', 0), rules([rec.step])));
    judge(pre, { direction: ['forward'], nat: { dst: ['10.0.0.5', 80] } });
    t.same(rec.seen, [
      'F prerouting new original 0/3e 2',
      'F prerouting new original 20/3e 2',
      'R prerouting established reply 2a/3a 12',
      'R prerouting established reply 2a/3a 12',
      'L prerouting established original 2a/3a 10',
      'L prerouting established original 2a/3a 10',
    ]);
  },
);

t.test('connection: an ICMP echo request is answered by an echo reply', async (t) => {
  const icmpType = (...types: number[]) =>
    match(
      `icmp type { ${types.join(', ')} }`,
      (p) => p.icmpType !== undefined && types.includes(p.icmpType),
    );
  const inOnly = SERVER_IN('drop', [icmpType(8), accept]);
  const outReply = SERVER_OUT('drop', [icmpType(0), accept]);
  t.equal(judge([inOnly, outReply], { proto: 1, icmpType: 8, direction: ['input'] }), 'accepted');
  t.equal(
    judge([inOnly, SERVER_OUT('drop')], { proto: 1, icmpType: 8, direction: ['input'] }),
    'breaks reply output: inet f out policy drop',
  );
  const v6 = SERVER_OUT('drop', [icmpType(129), accept]);
  const v6in = SERVER_IN('drop', [icmpType(128), accept]);
  t.equal(
    judge([v6in, v6], {
      src: '2001:db8::7',
      dst: '2001:db8::1',
      proto: 58,
      icmpType: 128,
      direction: ['input'],
    }),
    'accepted',
  );
  const rec = recorder(endpoints);
  judge([chain('inet', 'f', 'in', base('input', 0), rules([rec.step]))], {
    proto: 1,
    confirmed: false,
  });
  t.same(rec.seen, ['F input 198.51.100.7:0>203.0.113.1:0'], 'ICMP has no ports');
});

t.test(
  'connection: a reply refused on some branches only is undetermined, naming the first undecidable match',
  async (t) => {
    const inOk = SERVER_IN('accept');
    const out = SERVER_OUT('accept', [unknown('meta length > 1000'), drop]);
    const fate = evaluateFlow(
      ruleset([inOk, out]),
      flow({ direction: ['input'] }),
      OPTS,
      new Set(),
    );
    t.equal(fateText(fate), 'undetermined reply output: inet f out #1 (meta length > 1000)');
    t.equal(
      fate.kind === 'undetermined' && fate.by?.verdict,
      'drop',
      'by: the drop some branches meet',
    );
  },
);

t.test(
  'connection: collapsed source ports stand for the range they were collapsed from',
  async (t) => {
    t.same(realSourcePorts({ kind: '1024' }, 1024), { from: 1024, to: 65535 });
    t.same(realSourcePorts({ kind: '1024' }, 123), { from: 123, to: 123 });
    t.same(realSourcePorts({ kind: 'range', lo: 32768, hi: 60999 }, 32768), {
      from: 32768,
      to: 60999,
    });
    t.same(realSourcePorts({ kind: 'ephemeral', lo: 32768, hi: 60999 }, 32768), {
      from: 32768,
      to: 65535,
    });
    // The reply's destination port is the collapsed range.
    const rec = recorder(endpoints);
    judge(
      [SERVER_OUT('accept', [rec.step])],
      { sport: 1024, direction: ['input'] },
      { collapse: { kind: '1024' } },
    );
    t.same(rec.seen, ['R output 203.0.113.1:80>198.51.100.7:1024-65535']);
  },
);

t.test(
  "connection: nat chains run where the kernel's NAT hook is (-100, 100), whatever priority they declare",
  async (t) => {
    // The nat chain declares 50 but runs at -100: its drop comes before the filter chain's at 0.
    const nat = chain(
      'ip',
      'nat',
      'pre',
      base('prerouting', 50, 'accept', 'nat'),
      rules([dport(80), drop]),
    );
    const filter = chain('ip', 'f', 'pre', base('prerouting', 0), rules([dport(80), drop]));
    t.equal(
      judge([filter, nat], { direction: ['input'] }),
      'blocked prerouting: ip nat pre #1 drop',
    );
    // A mangle chain at -150 still runs before it.
    const mangle = chain('ip', 'm', 'pre', base('prerouting', -150), rules([dport(80), drop]));
    t.equal(
      judge([filter, nat, mangle], { direction: ['input'] }),
      'blocked prerouting: ip m pre #1 drop',
    );
    // A srcnat chain declared at -200 on postrouting still runs at 100, after a filter at 0.
    const snat = chain('ip', 'nat', 'post', base('postrouting', -200, 'drop', 'nat'), rules());
    const post = chain('ip', 'f', 'post', base('postrouting', 0), rules([dport(80), drop]));
    t.equal(
      judge([snat, post], { direction: ['output'] }),
      'blocked postrouting: ip f post #1 drop',
    );
  },
);
