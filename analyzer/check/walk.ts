// ct-analyze check: one packet through the base chains of one hook, forking where a match cannot be decided.
import { CtError } from '../../common/errors.js';
import {
  type Block,
  type Chain,
  chainName,
  type Hook,
  type IndexField,
  type Marks,
  type Packet,
  packetKey,
  type Rule,
  type Ruleset,
} from './model.js';

/** The kernel's jump stack (NFT_JUMP_STACK_SIZE) is 16 deep; nft refuses deeper rulesets. */
const MAX_DEPTH = 16;
/** A goto loop never deepens the stack: hops end it (a loaded ruleset has none; hand-built JSON may). */
const MAX_HOPS = 1_000;
/** Undecidable matches fork the walk; past this many forks in one base chain a branch stops as undecided. */
export const MAX_FORKS = 10_000;
/** Chains shorter than this are walked rule by rule: the index would cost more than it saves. */
const INDEX_MIN_RULES = 8;
/** Merged candidate lists kept per chain; keys past this are merged on each lookup. */
const INDEX_CACHE = 4_096;

/** Where a walk met a match (or verdict-map key) it could not decide. */
export interface Undecidable {
  readonly chain: Chain;
  readonly rule: Rule;
  readonly match: string;
}

/** How one branch leaves a base chain: on to the next one, refused, or not known. */
export type ChainEnd =
  | { readonly kind: 'pass'; readonly marks: Marks }
  | { readonly kind: 'block'; readonly block: Block }
  | { readonly kind: 'unknown'; readonly at: Undecidable };

export interface WalkContext {
  readonly ruleset: Ruleset;
  /** Every rule that matched or may have matched. */
  readonly hit: Set<Rule>;
  /** Visit every rule, without the per-chain index (tests compare both walks). */
  readonly plain: boolean;
  /** Called at every undecidable match or verdict, in walk order. */
  undecided(at: Undecidable): void;
}

const hookChainCache = new WeakMap<Ruleset, Map<string, readonly Chain[]>>();

/**
 * The base chains a packet of `family` meets on `hook`, lowest priority first, ties in the
 * JSON's order (the sort is stable). arp, bridge and netdev chains are not crossed by a routed
 * IP packet's hooks: they are left out (netdev ingress could be judged later, by device).
 */
export function hookChains(ruleset: Ruleset, hook: Hook, family: 4 | 6): readonly Chain[] {
  let byHook = hookChainCache.get(ruleset);
  if (byHook === undefined) {
    byHook = new Map();
    hookChainCache.set(ruleset, byHook);
  }
  const key = `${hook}/${family}`;
  let chains = byHook.get(key);
  if (chains === undefined) {
    const fam = family === 4 ? 'ip' : 'ip6';
    chains = ruleset.chains
      .filter((c) => c.base?.hook === hook && (c.family === 'inet' || c.family === fam))
      .sort((a, b) => (a.base?.priority ?? 0) - (b.base?.priority ?? 0));
    byHook.set(key, chains);
  }
  return chains;
}

interface ChainIndex {
  readonly field: IndexField;
  /** Rule positions (0-based) whose first step is an indexed match holding the key. */
  readonly byKey: Map<string, number[]>;
  /** Rule positions whose first step is no index on `field`: visited for every key. */
  readonly unindexed: readonly number[];
  readonly merged: Map<string, readonly number[]>;
}

const indexCache = new WeakMap<Chain, ChainIndex | null>();

/** The chain's index on the field most of its rules test first, or null when too few do. */
function chainIndex(chain: Chain): ChainIndex | null {
  const cached = indexCache.get(chain);
  if (cached !== undefined) return cached;
  let index: ChainIndex | null = null;
  if (chain.rules.length >= INDEX_MIN_RULES) {
    const counts = new Map<IndexField, number>();
    for (const r of chain.rules) {
      const s = r.steps[0];
      if (s?.kind === 'match' && s.index) {
        counts.set(s.index.field, (counts.get(s.index.field) ?? 0) + 1);
      }
    }
    let field: IndexField | undefined;
    let best = 0;
    for (const [f, n] of counts)
      if (n > best) {
        field = f;
        best = n;
      }
    if (field !== undefined && best >= INDEX_MIN_RULES) {
      const byKey = new Map<string, number[]>();
      const unindexed: number[] = [];
      chain.rules.forEach((r, i) => {
        const s = r.steps[0];
        if (s?.kind !== 'match' || s.index?.field !== field) {
          unindexed.push(i);
          return;
        }
        // A rule listing one key twice is still visited once.
        for (const k of new Set(s.index.keys)) {
          const list = byKey.get(k);
          if (list === undefined) byKey.set(k, [i]);
          else list.push(i);
        }
      });
      index = { field, byKey, unindexed, merged: new Map() };
    }
  }
  indexCache.set(chain, index);
  return index;
}

/** Two ascending position lists as one. */
function merge(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i] ?? Number.POSITIVE_INFINITY;
    const y = b[j] ?? Number.POSITIVE_INFINITY;
    if (x <= y) {
      out.push(x);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}

/**
 * The positions of the rules that can match `p`, ascending; undefined: every rule. A rule left
 * out starts with an indexed match that lacks the packet's key, so it answers false (model.ts).
 */
export function candidateRules(chain: Chain, p: Packet): readonly number[] | undefined {
  const index = chainIndex(chain);
  if (index === null) return undefined;
  const key = packetKey(p, index.field);
  if (key === undefined) return undefined;
  const keyed = index.byKey.get(key);
  if (keyed === undefined) return index.unindexed;
  let list = index.merged.get(key);
  if (list === undefined) {
    list = merge(keyed, index.unindexed);
    if (index.merged.size < INDEX_CACHE) index.merged.set(key, list);
  }
  return list;
}

/** The first k with order[k] >= at. */
function lowerBound(order: readonly number[], at: number): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((order[mid] as number) < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

type Frame = readonly [Chain, number];

/**
 * Every way the base chain `base` can end for packet `p` arriving with `marks`: one end, or
 * several where a match answers unknown (both answers are followed, each with its own copy of
 * the marks). accept ends the chain only (the next base chain still runs); drop and reject end
 * the packet; return from the base chain, or its end, is the policy.
 */
export function walkChain(ctx: WalkContext, base: Chain, p: Packet, marks: Marks): ChainEnd[] {
  const ends: ChainEnd[] = [];
  let forks = 0;
  const policy = base.base?.policy ?? 'accept';

  const target = (from: Chain, name: string): Chain => {
    const c = ctx.ruleset.chain(from.family, from.table, name);
    if (c === undefined) {
      throw new CtError(
        'ERULESET',
        `${chainName(from)} jumps to ${name}, which the ruleset does not hold: pass the ruleset as nft lists it`,
      );
    }
    return c;
  };

  const back = (stack: readonly Frame[], hops: number, m: Marks): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      ends.push(
        policy === 'drop'
          ? { kind: 'block', block: { verdict: 'drop', chain: base } }
          : { kind: 'pass', marks: m },
      );
    } else rules(top[0], top[1], stack.slice(0, -1), hops, m);
  };

  /** Runs `chain` from rule position `at` on one branch. */
  const rules = (chain: Chain, at: number, stack: readonly Frame[], hops: number, m: Marks) => {
    if (stack.length > MAX_DEPTH) {
      throw new CtError(
        'ERULESET',
        `jumps from ${chainName(base)} nest deeper than ${MAX_DEPTH} chains (a loop through ${chain.name}?): fix the ruleset`,
      );
    }
    if (hops > MAX_HOPS) {
      throw new CtError(
        'ERULESET',
        `more than ${MAX_HOPS} jumps and gotos for one packet from ${chainName(base)} (a goto loop through ${chain.name}?): fix the ruleset`,
      );
    }
    const order = ctx.plain ? undefined : candidateRules(chain, p);
    const n = order === undefined ? chain.rules.length : order.length;
    for (let k = order === undefined ? at : lowerBound(order, at); k < n; k++) {
      const i = order === undefined ? k : (order[k] as number);
      if (steps(chain, i, 0, stack, hops, m) === 'done') return;
    }
    back(stack, hops, m);
  };

  /**
   * Runs rule `i` of `chain` from step `s`: 'next' when this branch goes on with the next rule
   * (a match failed, a `continue`, a verdict map without the key), 'done' when the branch was
   * carried on elsewhere (a verdict, a jump) or ended.
   */
  const steps = (
    chain: Chain,
    i: number,
    s: number,
    stack: readonly Frame[],
    hops: number,
    m: Marks,
  ): 'next' | 'done' => {
    const rule = chain.rules[i] as Rule;
    for (; s < rule.steps.length; s++) {
      const step = rule.steps[s];
      if (step === undefined) break;
      if (step.kind === 'match') {
        const v = step.test(p, m);
        if (v === false) return 'next';
        if (v === true) continue;
        const at = { chain, rule, match: step.text };
        ctx.undecided(at);
        if (++forks > MAX_FORKS) {
          ends.push({ kind: 'unknown', at });
          return 'done';
        }
        // The branch where it matches goes on in this rule with its own marks; this one, where
        // it does not, goes on with the next rule.
        const copy = { meta: m.meta, ct: m.ct };
        if (steps(chain, i, s + 1, stack, hops, copy) === 'next') {
          rules(chain, i + 1, stack, hops, copy);
        }
        return 'next';
      }
      if (step.kind === 'effect') {
        step.apply(p, m);
        continue;
      }
      ctx.hit.add(rule);
      const v = step.verdict(p, m);
      // A verdict map without the key breaks the rule, as nft's lookup does.
      if (v === undefined) return 'next';
      if ('unknown' in v) {
        const at = { chain, rule, match: v.unknown };
        ctx.undecided(at);
        ends.push({ kind: 'unknown', at });
        return 'done';
      }
      switch (v.kind) {
        case 'continue':
          return 'next';
        case 'accept':
          ends.push({ kind: 'pass', marks: m });
          return 'done';
        case 'drop':
        case 'reject':
          ends.push({ kind: 'block', block: { verdict: v.kind, chain, rule } });
          return 'done';
        case 'queue': {
          // A userspace program decides (and the kernel drops when none listens): not known here.
          const at = { chain, rule, match: step.text };
          ctx.undecided(at);
          ends.push({ kind: 'unknown', at });
          return 'done';
        }
        case 'return':
          back(stack, hops, m);
          return 'done';
        case 'jump':
          rules(target(chain, v.target), 0, [...stack, [chain, i + 1]], hops + 1, m);
          return 'done';
        case 'goto':
          rules(target(chain, v.target), 0, stack, hops + 1, m);
          return 'done';
      }
    }
    ctx.hit.add(rule);
    return 'next';
  };

  rules(base, 0, [], 0, marks);
  return ends;
}

/** What the base chains of one hook do with a packet's branches. */
export interface HookResult {
  /** The marks of each branch that passed every chain, one per distinct marks. */
  readonly passed: Marks[];
  readonly blocked: Block[];
  readonly unknown: Undecidable[];
}

/**
 * Runs each branch (its marks) through `chains` in order; `packetAt` gives the packet as each
 * chain sees it (NAT rewrites it between priorities). Branches that pass a chain with equal
 * marks are one branch from there on: the packet is the same, so their walks would be too.
 */
export function walkHook(
  ctx: WalkContext,
  chains: readonly Chain[],
  packetAt: (chain: Chain) => Packet,
  branches: readonly Marks[],
): HookResult {
  let live = [...branches];
  const blocked: Block[] = [];
  const unknown: Undecidable[] = [];
  for (const chain of chains) {
    const p = packetAt(chain);
    const next = new Map<string, Marks>();
    for (const m of live) {
      for (const end of walkChain(ctx, chain, p, m)) {
        if (end.kind === 'pass') next.set(`${end.marks.meta}/${end.marks.ct}`, end.marks);
        else if (end.kind === 'block') blocked.push(end.block);
        else unknown.push(end.at);
      }
    }
    live = [...next.values()];
    if (live.length === 0) break;
  }
  return { passed: live, blocked, unknown };
}
