// ct-analyze check: one packet through a hook's base chains — priority order, accept/drop/policy, jumps, forks, the index.
import fc from 'fast-check';
import t from 'tap';
import { evaluateFlow } from '../../../analyzer/check/connection.js';
import type { Chain, Rule, Step } from '../../../analyzer/check/model.js';
import { candidateRules, hookChains } from '../../../analyzer/check/walk.js';
import { CtError } from '../../../common/errors.js';
import { fateText } from './fate-text.js';
import {
  accept,
  base,
  chain,
  counter,
  ctMark,
  ctState,
  daddr,
  dport,
  drop,
  flow,
  goto,
  jump,
  match,
  metaMark,
  reject,
  ret,
  rules,
  ruleset,
  saddr,
  setCtMark,
  setMetaMark,
  sport,
  undecidedVmap,
  unknown,
} from './hand-ruleset.js';

const OPTS = { collapse: { kind: 'none' } } as const;
/** A server's view: an input flow to port 80, answered. */
const WEB = flow({ dport: 80, direction: ['input'] });

function judge(chains: Chain[], f = WEB, opts: Parameters<typeof evaluateFlow>[2] = OPTS) {
  const hit = new Set<Rule>();
  const fate = evaluateFlow(ruleset(chains), f, opts, hit);
  return { text: fateText(fate), fate, hit };
}

t.test('walk: base chains run lowest priority first across ip and inet tables', async (t) => {
  const late = chain('inet', 'f', 'in', base('input', 0), rules([dport(80), accept]));
  const early = chain('ip', 'g', 'in', base('input', -10), rules([dport(80), drop]));
  t.equal(judge([late, early]).text, 'blocked input: ip g in #1 drop');
  // ip6 chains do not see an IPv4 packet; inet ones see both.
  const v6 = chain('ip6', 'h', 'in', base('input', -20), rules([drop]));
  t.equal(judge([late, v6]).text, 'accepted');
  t.same(
    hookChains(ruleset([late, early, v6]), 'input', 6).map((c) => c.family),
    ['ip6', 'inet'],
  );
});

t.test('walk: chains of equal priority run in the JSON order', async (t) => {
  const a = chain('inet', 'a', 'in', base('input', 0), rules([dport(80), reject]));
  const b = chain('ip', 'b', 'in', base('input', 0), rules([dport(80), drop]));
  t.equal(judge([a, b]).text, 'blocked input: inet a in #1 reject');
  t.equal(judge([b, a]).text, 'blocked input: ip b in #1 drop');
});

t.test('walk: arp, bridge and netdev chains are not crossed by an IP packet', async (t) => {
  const chains = (['arp', 'bridge', 'netdev'] as const).map((fam) =>
    chain(fam, 'x', 'in', base('input', -300, 'drop'), rules([drop])),
  );
  t.equal(judge(chains).text, 'accepted');
});

t.test('walk: accept ends one base chain only; a drop in a later chain still drops', async (t) => {
  const first = chain('inet', 'a', 'in', base('input', 0), rules([accept]));
  const later = chain('inet', 'b', 'in', base('input', 10), rules([dport(80), drop]));
  t.equal(judge([first, later]).text, 'blocked input: inet b in #1 drop');
  // A drop ends the packet: the chains after it are not walked.
  const third = chain('inet', 'c', 'in', base('input', 20), rules([counter]));
  const { hit } = judge([first, later, third]);
  t.notOk(
    [...hit].some((r) => r.text === 'counter'),
    'no rule of the chain after a drop hit',
  );
});

t.test('walk: a drop policy refuses what no rule accepts; accept policy passes', async (t) => {
  const closed = chain('inet', 'f', 'in', base('input', 0, 'drop'), rules([dport(22), accept]));
  t.equal(judge([closed]).text, 'blocked input: inet f in policy drop');
  const open = chain('inet', 'f', 'in', base('input', 0, 'accept'), rules([dport(22), drop]));
  t.equal(judge([open]).text, 'accepted');
});

t.test(
  'walk: jump returns to the rule after it; goto does not; return in a base chain is the policy',
  async (t) => {
    const sub = chain('inet', 'f', 'sub', undefined, rules([dport(22), accept], [ret], [drop]));
    const viaJump = chain(
      'inet',
      'f',
      'in',
      base('input', 0, 'accept'),
      rules([jump('sub')], [dport(80), reject]),
    );
    t.equal(judge([viaJump, sub]).text, 'blocked input: inet f in #2 reject');
    // goto: the end of the target (or its return) goes back to the base chain's caller: the policy.
    const end = chain('inet', 'f', 'end', undefined, rules([counter]));
    const viaGoto = chain(
      'inet',
      'f',
      'in',
      base('input', 0, 'drop'),
      rules([goto('end')], [dport(80), accept]),
    );
    t.equal(judge([viaGoto, end]).text, 'blocked input: inet f in policy drop');
    const returns = chain('inet', 'f', 'in', base('input', 0, 'drop'), rules([ret], [accept]));
    t.equal(judge([returns]).text, 'blocked input: inet f in policy drop');
    // A drop inside a jumped-to chain names that chain and rule.
    const deny = chain('inet', 'f', 'deny', undefined, rules([dport(80), drop]));
    const toDeny = chain('inet', 'f', 'in', base('input', 0), rules([jump('deny')], [accept]));
    t.equal(judge([toDeny, deny]).text, 'blocked input: inet f deny #1 drop');
  },
);

t.test('walk: an accept inside a jumped-to chain accepts for the whole base chain', async (t) => {
  const sub = chain('inet', 'f', 'sub', undefined, rules([accept]));
  const main = chain('inet', 'f', 'in', base('input', 0), rules([jump('sub')], [drop]));
  t.equal(judge([main, sub]).text, 'accepted');
});

t.test(
  'walk: an anonymous chain (jump { … }) found by the ruleset, not in the hook list',
  async (t) => {
    const anon = chain('inet', 'f', '__chain0', undefined, rules([dport(80), drop]));
    const main = chain('inet', 'f', 'in', base('input', 0), rules([jump('__chain0')]));
    const rs = ruleset([main, anon]);
    t.same(
      hookChains(rs, 'input', 4).map((c) => c.name),
      ['in'],
      'only base chains are walked from the hook',
    );
    t.equal(judge([main, anon]).text, 'blocked input: inet f __chain0 #1 drop');
  },
);

t.test('walk: a jump to a chain the ruleset lacks, or a loop, is an ERULESET error', async (t) => {
  const main = chain('inet', 'f', 'in', base('input', 0), rules([jump('nowhere')]));
  t.throws(() => judge([main]), { code: 'ERULESET', message: /jumps to nowhere/ });
  const loop = chain('inet', 'f', 'in', base('input', 0), rules([jump('in')]));
  t.throws(() => judge([loop]), { code: 'ERULESET', message: /nest deeper than 16 chains/ });
  const a = chain('inet', 'f', 'a', undefined, rules([goto('b')]));
  const b = chain('inet', 'f', 'b', undefined, rules([goto('a')]));
  const viaGoto = chain('inet', 'f', 'in', base('input', 0), rules([goto('a')]));
  const err = (() => {
    try {
      judge([viaGoto, a, b]);
    } catch (e) {
      return e;
    }
  })();
  t.ok(err instanceof CtError, 'a CtError, not a stack overflow');
  t.match(err, { code: 'ERULESET', message: /more than 1000 jumps and gotos/ });
});

t.test(
  'walk: a match that cannot be decided forks; branches that disagree leave the flow undetermined',
  async (t) => {
    const c = chain(
      'inet',
      'f',
      'in',
      base('input', 0, 'accept'),
      rules([unknown('meta length > 1000'), drop]),
    );
    const r = judge([c]);
    t.equal(r.text, 'undetermined first input: inet f in #1 (meta length > 1000)');
    t.equal(
      r.fate.kind === 'undetermined' && r.fate.by?.rule?.index,
      1,
      'by: the refusal one branch meets',
    );
    // Both branches agree: the fork does not matter.
    const agree = chain(
      'inet',
      'f',
      'in',
      base('input', 0, 'drop'),
      rules([unknown('meta length > 1000'), counter], [dport(80), accept]),
    );
    t.equal(judge([agree]).text, 'accepted');
  },
);

t.test('walk: a collapsed source port forks sport matches', async (t) => {
  const c = chain('inet', 'f', 'in', base('input', 0), rules([sport(50000), drop]));
  const collapsed = flow({ sport: 1024, direction: ['input'] });
  t.equal(
    judge([c], collapsed, { collapse: { kind: '1024' } }).text,
    'undetermined first input: inet f in #1 (th sport 50000)',
  );
  t.equal(judge([c], collapsed, { collapse: { kind: 'none' } }).text, 'accepted');
});

t.test('walk: a verdict map on an unknown key stops its branch as undetermined', async (t) => {
  const c = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'accept'),
    rules([dport(80), undecidedVmap('meta mark')]),
  );
  t.equal(judge([c]).text, 'undetermined first input: inet f in #1 (meta mark)');
  // A verdict map without the packet's key ends the rule: the walk goes on with the next.
  const miss: Step = { kind: 'verdict', text: 'vmap', verdict: () => undefined };
  const c2 = chain('inet', 'f', 'in', base('input', 0), rules([miss], [drop]));
  t.equal(judge([c2]).text, 'blocked input: inet f in #2 drop');
});

t.test('walk: marks set on one branch stay on that branch', async (t) => {
  // Where length > 1000 the packet is marked 1, and the mark 1 drops; elsewhere it is accepted.
  const c = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'accept'),
    rules([unknown('meta length > 1000'), setMetaMark(1)], [metaMark(1), drop], [accept]),
  );
  const r = judge([c]);
  t.equal(r.text, 'undetermined first input: inet f in #1 (meta length > 1000)');
  // An effect before a failing match still applies (nft runs statements in order).
  const c2 = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'accept'),
    rules([setMetaMark(7), dport(22), accept], [metaMark(7), drop]),
  );
  t.equal(judge([c2]).text, 'blocked input: inet f in #2 drop');
});

t.test('walk: hit holds every rule that matched or may have, and no other', async (t) => {
  const c = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'accept'),
    rules(
      [dport(22), accept],
      [unknown('meta length > 1000'), counter],
      [dport(80), accept],
      [drop],
    ),
  );
  const { hit } = judge([c]);
  t.same(
    [...hit].map((r) => r.index).sort(),
    [2, 3],
    'not 1 (no match) nor 4 (after the accept); reply and later packets hit rule 2 too',
  );
});

t.test('walk: ct mark set on the first packet carries to the reply and later ones', async (t) => {
  const c = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'drop'),
    rules([dport(80), setCtMark(5), accept], [ctMark(5), accept]),
  );
  const out = chain('inet', 'f', 'out', base('output', 0, 'drop'), rules([ctMark(5), accept]));
  t.equal(judge([c, out]).text, 'accepted');
  // The packet mark does not carry: it starts at 0 on every packet.
  const m = chain(
    'inet',
    'f',
    'in',
    base('input', 0, 'drop'),
    rules([ctState('new'), dport(80), setMetaMark(5), accept], [metaMark(5), accept]),
  );
  t.match(judge([m]).text, /^breaks later input: inet f in policy drop/);
});

/**
 * A chain of indexed rules (daddr, dport) mixed with unindexed ones and effects, on few values;
 * some rules start with another match or an effect before that (the index may read a match
 * after undecidable ones, never one after an effect).
 */
const arbRules = (jumps: boolean) =>
  fc
    .array(
      fc.tuple(
        fc.option(
          fc.oneof(
            fc.constant(unknown('fib daddr type local')),
            fc.constantFrom('198.51.100.7', '10.0.0.1').map((a): Step => saddr(a)),
            fc.constant(ctMark(3)),
            fc.constant(setCtMark(3)),
          ),
          { freq: 3 },
        ),
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc
              .constantFrom('10.0.0.1', '10.0.0.2', '203.0.113.1')
              .map((a): Step => daddr(a)),
          },
          {
            weight: 2,
            arbitrary: fc
              .array(fc.constantFrom(22, 80, 443), { minLength: 1, maxLength: 3 })
              .map((ps) => dport(...ps)),
          },
          fc.constantFrom('198.51.100.7', '192.0.2.1').map((a): Step => saddr(a)),
          fc.constant(unknown('meta length > 100')),
          fc.constant(setCtMark(3)),
          fc.constant(ctMark(3)),
          fc.constant(counter),
        ),
        fc.constantFrom<Step[]>(
          [accept],
          [drop],
          [reject],
          [],
          [ret],
          ...(jumps ? [[jump('sub')]] : []),
        ),
      ),
      { maxLength: 40, size: 'max' },
    )
    .map((list) => rules(...list.map(([pre, m, v]) => [...(pre === null ? [] : [pre]), m, ...v])));

t.test("walk: the indexed walk gives the plain walk's fate and hit set (fast-check)", async (t) => {
  let indexed = 0;
  fc.assert(
    fc.property(
      arbRules(true),
      arbRules(false),
      fc.constantFrom<'accept' | 'drop'>('accept', 'drop'),
      fc.constantFrom('10.0.0.1', '203.0.113.1', '10.0.0.9'),
      fc.constantFrom(22, 80, 8080),
      (main, sub, policy, dst, port) => {
        const chains = [
          chain('inet', 'f', 'in', base('input', 0, policy), main),
          chain('inet', 'f', 'sub', undefined, sub),
          chain('inet', 'f', 'out', base('output', 0, policy), sub),
        ];
        const f = flow({ dst, dport: port, direction: ['input'] });
        const plain = judge(chains, f, { ...OPTS, plain: true });
        const fast = judge(chains, f, OPTS);
        if (candidateRules(chains[0] as Chain, probe(f)) !== undefined) indexed++;
        return plain.text === fast.text && sameSet(plain.hit, fast.hit);
      },
    ),
    { numRuns: 500 },
  );
  t.ok(indexed > 0, `some generated chains were searched by index (${indexed})`);
});

/** The first packet's fields an index looks at, for counting indexed chains. */
function probe(f: ReturnType<typeof flow>) {
  return {
    hook: 'input',
    family: 4,
    proto: 6,
    saddr: f.src,
    daddr: f.dst,
    sport: { from: f.sport, to: f.sport },
    dport: { from: f.dport, to: f.dport },
    ct: { state: 'new', direction: 'original', status: 0, statusKnown: 0 },
    iifname: undefined,
    oifname: undefined,
    saddrType: 'unknown',
    daddrType: 'unknown',
  } as const;
}

function sameSet<T>(a: Set<T>, b: Set<T>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

t.test(
  'walk: a chain of many keyed rules visits only the candidates and the unindexed ones',
  async (t) => {
    const keyed = Array.from({ length: 50 }, (_, i) => [dport(1000 + i), accept]);
    const c = chain(
      'inet',
      'f',
      'in',
      base('input', 0, 'drop'),
      rules([counter], ...keyed, [match('meta l4proto udp', (p) => p.proto === 17), accept]),
    );
    const p = probe(flow({ dport: 1010 }));
    t.same(candidateRules(c, p), [0, 11, 51], 'rule 1 (unindexed), the one for 1010, the last');
    t.same(
      candidateRules(c, probe(flow({ dport: 9 }))),
      [0, 51],
      'an absent key: the unindexed only',
    );
    const ranged = { ...p, dport: { from: 1024, to: 65535 } };
    t.equal(candidateRules(c, ranged), undefined, 'a port range has no key: every rule');
    const small = chain('inet', 'f', 'in', base('input', 0), rules([dport(1), accept]));
    t.equal(candidateRules(small, p), undefined, 'a short chain is not indexed');
    t.equal(judge([c], flow({ dport: 1010, direction: ['input'] })).text, 'accepted');
    t.equal(
      judge([c], flow({ dport: 9, direction: ['input'] })).text,
      'blocked input: inet f in policy drop',
    );
  },
);

t.test(
  'walk: undecidable matches in rules that fail later do not double the walk per rule',
  async (t) => {
    // kube-proxy's `-m addrtype --dst-type LOCAL -p tcp --dport N -j DROP`, forty times: without
    // merging the branches that leave such a rule alike, 2^40 paths (the fork bound: undetermined).
    const many = Array.from({ length: 40 }, (_, i) => [
      unknown('fib daddr type local'),
      dport(3000 + i),
      drop,
    ]);
    const c = chain('ip', 'filter', 'ext', base('forward', 0), rules(...many));
    const started = performance.now();
    t.equal(judge([c], flow({ dport: 80, direction: ['forward'] })).text, 'accepted');
    t.equal(
      judge([c], flow({ dport: 3007, direction: ['forward'] })).text,
      'undetermined first forward: ip filter ext #8 (fib daddr type local)',
      'the match named is the one that decides (rule 8), not an earlier one that decided nothing',
    );
    t.ok(performance.now() - started < 5_000, 'linear, not exponential');
    t.same(
      candidateRules(c, probe(flow({ dport: 3007 }))),
      [7],
      'the index reads the port after the undecidable match: one rule visited',
    );
    t.same(candidateRules(c, probe(flow({ dport: 80 }))), [], 'no rule holds port 80');
  },
);
