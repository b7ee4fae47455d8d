// ct-analyze check: what a parsed ruleset does with a flow's first packet (ct state new), hook by hook.
import { CtError } from '../../common/errors.js';
import { type Collapse, type Flow, isLoopback } from '../core/flows.js';
import { addressNumber, cidrContains, type PortRange } from '../core/prefix.js';
import {
  type Chain,
  chainName,
  type Hook,
  type Match,
  type Rule,
  type Ruleset,
} from './ruleset.js';

/**
 * The first packet of a flow as a hook sees it. `sport` is the range the real source port lies
 * in: one port, or a range when the flow table collapsed it.
 */
export interface Packet {
  readonly family: 4 | 6;
  readonly proto: number;
  readonly saddr: bigint;
  /** After DNAT: the filter hooks come after the nat ones. */
  readonly daddr: bigint;
  readonly sport: PortRange;
  readonly dport: number;
  readonly icmpType: number;
  /** Arrived on lo (input of a flow the host sent itself). */
  readonly lo: boolean;
}

/** A match's answer: unknown when it depends on what the flow table does not keep (sport). */
export type Tri = boolean | 'unknown';

/** Where a packet was refused: a rule, or (rule undefined) the chain's policy. */
export interface Block {
  readonly verdict: 'drop' | 'reject';
  readonly chain: Chain;
  readonly rule?: Rule;
}

/**
 * accepted: every path accepts; blocked: every path refuses (`by` is the first refusal);
 * unknown: it depends on the real source port (`by` is a refusal some port would meet, `on`
 * the rules whose answer was unknown).
 */
export type Fate =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'blocked'; readonly hook: Hook; readonly by: Block }
  | {
      readonly kind: 'unknown';
      readonly hook: Hook;
      readonly by: Block;
      readonly on: readonly Rule[];
    };

/** The range of real source ports a collapsed one stands for (docs/rules.md, collapsing). */
export function realSourcePorts(collapse: Collapse, sport: number): PortRange {
  switch (collapse.kind) {
    case 'none':
      return { from: sport, to: sport };
    case '1024':
      return sport >= 1024 ? { from: 1024, to: 0xffff } : { from: sport, to: sport };
    case 'range':
      return sport === collapse.lo
        ? { from: collapse.lo, to: collapse.hi }
        : { from: sport, to: sport };
    case 'ephemeral':
      // Each journal collapses to its own recorded range's first port: any port from here up.
      return { from: sport, to: 0xffff };
  }
}

function inRanges(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}

/** Whether every, no, or some port of `span` lies in `ranges`. */
function spanIn(ranges: readonly PortRange[], span: PortRange): Tri {
  let covered = 0;
  for (const r of ranges) {
    const lo = Math.max(r.from, span.from);
    const hi = Math.min(r.to, span.to);
    if (lo <= hi) covered += hi - lo + 1;
  }
  // Ranges from a ruleset may overlap: count each port of the span once when it matters.
  if (covered === 0) return false;
  for (let p = span.from; p <= span.to; p++) if (!inRanges(ranges, p)) return 'unknown';
  return true;
}

function not(v: Tri, negate: boolean): Tri {
  return negate && v !== 'unknown' ? !v : v;
}

/** Whether the packet matches one condition. */
export function matchOne(m: Match, p: Packet): Tri {
  switch (m.kind) {
    case 'addr': {
      // `ip saddr` on an IPv6 packet does not match, `!=` included (nft adds a family check).
      if (m.family !== p.family) return false;
      const a = m.field === 'saddr' ? p.saddr : p.daddr;
      return not(
        m.cidrs.some((c) => cidrContains(c, p.family, a)),
        m.negate,
      );
    }
    case 'l4proto':
      return not(m.protos.includes(p.proto), m.negate);
    case 'port':
      if (p.proto !== m.proto) return false;
      if (m.field === 'dport') return not(inRanges(m.ranges, p.dport), m.negate);
      return not(spanIn(m.ranges, p.sport), m.negate);
    case 'ctstate':
      return not(m.states.includes('new'), m.negate);
    case 'icmp':
      if (m.family !== p.family || p.proto !== (p.family === 4 ? 1 : 58)) return false;
      return not(m.types.includes(p.icmpType), m.negate);
    case 'iif-lo':
      return not(p.lo, m.negate);
  }
}

/** All conditions of a rule: false wins over unknown, unknown over true. */
export function matchRule(rule: Rule, p: Packet): Tri {
  let out: Tri = true;
  for (const m of rule.matches) {
    const v = matchOne(m, p);
    if (v === false) return false;
    if (v === 'unknown') out = 'unknown';
  }
  return out;
}

/** The base chains a packet of this family meets on the hook, lowest priority number first. */
export function baseChains(ruleset: Ruleset, hook: Hook, family: 4 | 6): Chain[] {
  const fam = family === 4 ? 'ip' : 'ip6';
  return ruleset.chains
    .filter((c) => c.base?.hook === hook && (c.family === 'inet' || c.family === fam))
    .sort((a, b) => (a.base?.priority ?? 0) - (b.base?.priority ?? 0));
}

/** nft refuses deeper jumps too; a loop would otherwise never end. */
const MAX_DEPTH = 16;
const MAX_HOPS = 1_000;
/** Unknown matches fork the walk; a bound keeps many of them from taking forever. */
const MAX_PATHS = 100_000;

type ChainEnd = { kind: 'accept' } | { kind: 'block'; block: Block };

interface Walk {
  ends: ChainEnd[];
  /** Rules whose answer was unknown on some path. */
  unknown: Set<Rule>;
}

/**
 * Every verdict one base chain can give the packet: one, or several when a rule's match is
 * unknown (both answers are followed). `hit` collects the rules that matched (or may have).
 */
function walkBase(ruleset: Ruleset, base: Chain, p: Packet, hit: Set<Rule>): Walk {
  const ends: ChainEnd[] = [];
  const unknown = new Set<Rule>();
  let calls = 0;
  const find = (from: Chain, name: string): Chain => {
    const c = ruleset.chains.find(
      (x) => x.family === from.family && x.table === from.table && x.name === name,
    );
    if (c === undefined)
      throw new CtError('ERULESET', `no chain ${name} in ${from.table}: fix the ruleset`);
    return c;
  };
  const policy = (): ChainEnd => {
    const b = base.base;
    return b?.policy === 'drop'
      ? { kind: 'block', block: { verdict: 'drop', chain: base } }
      : { kind: 'accept' };
  };
  /**
   * Runs `chain` from rule `at`; `stack` holds where each jump returns to, `hops` counts the
   * jumps and gotos taken on this path, so a goto loop ends too.
   */
  const run = (
    chain: Chain,
    at: number,
    stack: readonly (readonly [Chain, number])[],
    hops = 0,
  ): void => {
    if (++calls > MAX_PATHS) {
      throw new CtError(
        'ERULESET',
        `more than ${MAX_PATHS} paths through ${chainName(base)} for one flow: too many rules whose answer depends on the collapsed source port; analyze with --collapse none`,
      );
    }
    if (hops > MAX_HOPS) {
      throw new CtError(
        'ERULESET',
        `line ${chain.line}: more than ${MAX_HOPS} jumps and gotos for one packet (a goto loop through ${chain.name}?): fix the ruleset`,
      );
    }
    if (stack.length > MAX_DEPTH) {
      throw new CtError(
        'ERULESET',
        `line ${chain.line}: jumps nest deeper than ${MAX_DEPTH} chains (a loop through ${chain.name}?): fix the ruleset`,
      );
    }
    for (let i = at; i < chain.rules.length; i++) {
      const rule = chain.rules[i] as Rule;
      const m = matchRule(rule, p);
      if (m === false) continue;
      hit.add(rule);
      if (m === 'unknown') {
        unknown.add(rule);
        // The rule may not match: go on after it on one path, take its verdict on this one.
        if (rule.verdict.kind !== 'continue') run(chain, i + 1, stack, hops);
      }
      const v = rule.verdict;
      switch (v.kind) {
        case 'continue':
          continue;
        case 'accept':
          ends.push({ kind: 'accept' });
          return;
        case 'drop':
        case 'reject':
          ends.push({ kind: 'block', block: { verdict: v.kind, chain, rule } });
          return;
        case 'return':
          back(stack, hops);
          return;
        case 'jump':
          run(find(chain, v.target), 0, [...stack, [chain, i + 1]], hops + 1);
          return;
        case 'goto':
          run(find(chain, v.target), 0, stack, hops + 1);
          return;
      }
    }
    back(stack, hops);
  };
  const back = (stack: readonly (readonly [Chain, number])[], hops: number): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) ends.push(policy());
    else run(top[0], top[1], stack.slice(0, -1), hops);
  };
  run(base, 0, []);
  return { ends, unknown };
}

/**
 * The packet through every base chain of the hook: an accept ends a chain, a drop or reject
 * (or a drop policy) ends it all. Unknown matches fork the walk; the fate says whether all
 * paths agree.
 */
export function evalHook(ruleset: Ruleset, hook: Hook, p: Packet, hit: Set<Rule>): Fate {
  const unknown = new Set<Rule>();
  /** A refusal some paths met so far (the rest went on). */
  let some: Block | undefined;
  for (const base of baseChains(ruleset, hook, p.family)) {
    const w = walkBase(ruleset, base, p, hit);
    for (const r of w.unknown) unknown.add(r);
    const blocks = w.ends.flatMap((e) => (e.kind === 'block' ? [e.block] : []));
    const first = blocks[0];
    if (first === undefined) continue;
    if (blocks.length === w.ends.length) return { kind: 'blocked', hook, by: some ?? first };
    some ??= first;
  }
  if (some === undefined) return { kind: 'accepted' };
  return { kind: 'unknown', hook, by: some, on: [...unknown] };
}

/** The hooks a flow's first packet passes, per direction: local traffic leaves, then enters. */
function paths(flow: Flow): Hook[][] {
  const dirs =
    flow.direction === undefined || flow.direction.length === 0 ? ['input'] : flow.direction;
  return dirs.map((d) =>
    d === 'local'
      ? ['output', 'input']
      : d === 'output'
        ? ['output']
        : d === 'forward'
          ? ['forward']
          : ['input'],
  );
}

/**
 * What the ruleset does with the flow's first packet in every direction it was seen: blocked
 * when some direction is refused on every path, unknown when some may be.
 */
export function evalFlow(ruleset: Ruleset, flow: Flow, collapse: Collapse, hit: Set<Rule>): Fate {
  const dst = flow.nat?.dst;
  const saddr = addressNumber(flow.src);
  const base = {
    family: flow.family,
    proto: flow.proto,
    saddr,
    daddr: addressNumber(dst?.address ?? flow.dst),
    sport: realSourcePorts(collapse, flow.sport),
    dport: dst?.port ?? flow.dport,
    icmpType: flow.icmpType,
  };
  const isIcmp = flow.proto === 1 || flow.proto === 58;
  const packet = (hook: Hook, local: boolean): Packet => ({
    ...base,
    ...(isIcmp ? { sport: { from: 0, to: 0 }, dport: 0 } : {}),
    lo: hook === 'input' && (local || isLoopback(flow.src)),
  });
  let unknown: Fate | undefined;
  for (const hooks of paths(flow)) {
    const local = hooks.length > 1;
    for (const hook of hooks) {
      const fate = evalHook(ruleset, hook, packet(hook, local), hit);
      if (fate.kind === 'blocked') return fate;
      if (fate.kind === 'unknown') unknown ??= fate;
    }
  }
  return unknown ?? { kind: 'accepted' };
}
