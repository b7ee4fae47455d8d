// ct-analyze check: rules only packets no recording holds can match (ct state invalid, ICMP errors, neighbour discovery, MLD) are listed apart, never dead.
import t from 'tap';
import { compileRuleset } from '../../../analyzer/check/compile.js';
import { parseNftJson } from '../../../analyzer/check/nft-json.js';
import { unrecordedReason } from '../../../analyzer/check/unrecorded.js';
import { FlowTable } from '../../../analyzer/core/flows.js';
import { judgeFlows } from '../../helpers/nft.js';
import { ev } from '../fixtures.js';

const icmpType = (protocol: string, right: unknown, op = '==') => ({
  match: { op, left: { payload: { protocol, field: 'type' } }, right },
});
const ctState = (right: unknown, op = 'in') => ({
  match: { op, left: { ct: { key: 'state' } }, right },
});
const verdict = (v: string) => ({ [v]: null });

/** `inet f input`, a base chain on input with `policy`, holding rules of `exprs`, compiled. */
function inputChain(policy: 'accept' | 'drop', exprs: readonly unknown[][]) {
  const json = {
    nftables: [
      { table: { family: 'inet', name: 'f', handle: 1 } },
      {
        chain: {
          family: 'inet',
          table: 'f',
          name: 'input',
          handle: 1,
          type: 'filter',
          hook: 'input',
          prio: 0,
          policy,
        },
      },
      ...exprs.map((expr, i) => ({
        rule: { family: 'inet', table: 'f', chain: 'input', handle: i + 2, expr },
      })),
    ],
  };
  return compileRuleset(parseNftJson(JSON.stringify(json), 'test.json')).ruleset;
}

/** The verdicts for one web connection that completed. */
function judgeWeb(ruleset: ReturnType<typeof inputChain>) {
  const table = new FlowTable();
  table.add(ev(6, '10.0.0.1', '10.0.0.2', 40000, 80, 0x0e));
  return judgeFlows(ruleset, table.flows(), { kind: '1024' });
}

t.test('unrecordedReason: what conntrack never records, and only that', async (t) => {
  const nd = icmpType('icmpv6', {
    set: ['nd-router-solicit', 'nd-neighbor-solicit', 'mld-listener-query', 143],
  });
  t.match(unrecordedReason([nd, verdict('accept')]), /never connections/);
  t.match(
    unrecordedReason([icmpType('icmp', { set: ['destination-unreachable', 'time-exceeded'] })]),
    /icmp type/,
  );
  t.match(unrecordedReason([ctState('invalid'), verdict('drop')]), /ct state invalid/);
  t.match(
    unrecordedReason([ctState({ set: ['invalid', 'untracked'] }, '==')]),
    /conntrack records no such packet/,
  );
  // Echo is a connection: a set holding it can be hit by a recorded flow.
  t.equal(
    unrecordedReason([icmpType('icmpv6', { set: ['packet-too-big', 'echo-request'] })]),
    undefined,
  );
  t.equal(unrecordedReason([icmpType('icmp', 'echo-reply')]), undefined);
  t.equal(unrecordedReason([icmpType('icmpv6', 129)]), undefined);
  t.equal(unrecordedReason([ctState({ set: ['established', 'invalid'] })]), undefined);
  // A negation matches recordable packets too.
  t.equal(unrecordedReason([icmpType('icmpv6', 'nd-neighbor-solicit', '!=')]), undefined);
  t.equal(unrecordedReason([ctState('invalid', '!=')]), undefined);
  t.equal(
    unrecordedReason([
      { match: { op: '==', left: { ct: { key: 'state' } }, right: { prefix: 1 } } },
    ]),
    undefined,
  );
});

t.test(
  'check: the baseline rules a recording cannot exercise are listed apart, not dead',
  async (t) => {
    const chainRules = [
      [ctState({ set: ['established', 'related'] }), verdict('accept')],
      [ctState('invalid'), verdict('drop')],
      [
        icmpType('icmpv6', { set: ['nd-neighbor-solicit', 'nd-neighbor-advert'] }),
        verdict('accept'),
      ],
      [icmpType('icmp', { set: ['destination-unreachable', 'time-exceeded'] }), verdict('accept')],
      [
        {
          match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8080 },
        },
        verdict('accept'),
      ],
      [
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 80 } },
        verdict('accept'),
      ],
      // The closing verdicts: every recorded flow got an earlier verdict.
      [{ limit: { rate: 10, per: 'minute', burst: 5 } }, { log: { prefix: 'refused: ' } }],
      [{ counter: null }, { reject: null }],
    ];
    const r = judgeWeb(inputChain('drop', chainRules));
    t.equal(r.accepted, 1);
    t.same(
      r.dead.map((d) => d.rule.index),
      [5],
      'only the port nobody used is dead',
    );
    t.same(
      r.unrecorded.map((d) => d.rule.index),
      [2, 3, 4, 7, 8],
      'ct state invalid, neighbour discovery, ICMP errors and the closing verdicts are listed apart',
    );
    t.match(r.unrecorded[4]?.reason, /closing verdict/);
    t.match(r.unrecorded[0]?.reason, /ct state invalid/);
  },
);

t.test(
  'check: an unconditional rule some rule follows is dead when no flow reaches it',
  async (t) => {
    const dport = (port: number) => ({
      match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: port },
    });
    const r = judgeWeb(
      inputChain('accept', [
        [dport(80), verdict('accept')],
        [{ counter: null }, verdict('drop')],
        [dport(22), verdict('accept')],
      ]),
    );
    t.same(
      r.dead.map((d) => d.rule.index),
      [2, 3],
      'the drop shadows port 22: both are dead',
    );
    t.same(r.unrecorded, []);
  },
);
