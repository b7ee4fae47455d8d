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
  type Step,
  type Tri,
  type Undecided,
  type Verdict,
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
  /**
   * Every rule that matched or may have matched. Only added to: each chain remembers which of
   * its rules it added to the last set it was walked with (pass a new set, not a cleared one).
   */
  readonly hit: Set<Rule>;
  /** Visit every rule, without the per-chain index (tests compare both walks). */
  readonly plain: boolean;
  /**
   * Called at each undecidable match whose branches went different ways, and at each
   * undecidable verdict; `seq` orders them as the walk met them (a fork is reported after the
   * branch it opened, which may report others first). Forks are many: no object is made.
   */
  undecided(chain: Chain, rule: Rule, match: string, seq: number): void;
}

const hookChainCache = new WeakMap<Ruleset, (readonly Chain[] | undefined)[]>();
/**
 * A hook's slot in small tables, 0 to 4. A switch, not a keyed load by name: the walk's hot
 * functions were deoptimized each time such a load met a hook name it had not seen yet.
 */
export function hookSlot(hook: Hook): number {
  switch (hook) {
    case 'prerouting':
      return 0;
    case 'input':
      return 1;
    case 'forward':
      return 2;
    case 'output':
      return 3;
    default:
      return 4;
  }
}

/**
 * The base chains a packet of `family` meets on `hook`, lowest priority first (nat chains
 * where the kernel's NAT hook runs them: runsAt), ties in the JSON's order (the sort is
 * stable). arp, bridge and netdev chains are not crossed by a routed IP packet's hooks: they
 * are left out (netdev ingress could be judged later, by device).
 * `withNat` false leaves out nat chains (conntrack consults them for a first packet only).
 */
export function hookChains(
  ruleset: Ruleset,
  hook: Hook,
  family: 4 | 6,
  withNat = true,
): readonly Chain[] {
  let byHook = hookChainCache.get(ruleset);
  if (byHook === undefined) {
    byHook = [];
    hookChainCache.set(ruleset, byHook);
  }
  const key = hookSlot(hook) * 4 + (family === 6 ? 2 : 0) + (withNat ? 1 : 0);
  let chains = byHook[key];
  if (chains === undefined) {
    const fam = family === 4 ? 'ip' : 'ip6';
    chains = ruleset.chains
      .filter((c) => c.base?.hook === hook && (c.family === 'inet' || c.family === fam))
      .filter((c) => withNat || c.base?.type !== 'nat')
      .sort(
        (a, b) =>
          runsAt(a, hook) - runsAt(b, hook) ||
          (a.base?.type === 'nat' && b.base?.type === 'nat'
            ? (a.base.priority ?? 0) - (b.base.priority ?? 0)
            : 0),
      );
    byHook[key] = chains;
  }
  return chains;
}

/**
 * Where a base chain runs among the hook's others. The kernel calls every nat chain of a hook
 * from its one NAT hook, at -100 (prerouting, output) or 100 (input, postrouting), in their
 * own priority order there (nf_nat_register_fn); a nat chain's declared priority only orders
 * it among nat chains. A filter chain at exactly that priority is taken to run first when the
 * JSON lists it first (the order hooks are registered in), which is not certain.
 */
function runsAt(c: Chain, hook: Hook): number {
  if (c.base?.type !== 'nat') return c.base?.priority ?? 0;
  return hook === 'prerouting' || hook === 'output' ? -100 : 100;
}

interface ChainIndex {
  readonly field: IndexField;
  /** Rule positions (0-based) with a leading indexed match on `field` holding the key. */
  readonly byKey: Map<string, number[]>;
  /** Rule positions with no leading index on `field`: visited for every key. */
  readonly unindexed: readonly number[];
  readonly merged: Map<string, readonly number[]>;
}

/**
 * The index of the first of the matches a rule starts with (before any effect or verdict)
 * that is indexed on `field`, or -1. Any of them may be: where it fails, the rule fails, and
 * the matches before it change no marks, so an undecidable one among them decides nothing
 * (the walk's fork rejoins). kube-proxy's `fib daddr type local tcp dport N reject` is found
 * by its port.
 */
function leadingIndex(rule: Rule, field: IndexField): number {
  const steps = rule.steps;
  for (let j = 0; j < steps.length; j++) {
    const s = steps[j] as Step;
    if (s.kind !== 'match') return -1;
    if (s.index?.field === field) return j;
  }
  return -1;
}

/** The chain's index on the field most of its rules start with a test of, or null when too few do. */
function chainIndex(chain: Chain): ChainIndex | null {
  let index: ChainIndex | null = null;
  if (chain.rules.length >= INDEX_MIN_RULES) {
    const counts = new Map<IndexField, number>();
    const seen = new Set<IndexField>();
    for (const r of chain.rules) {
      seen.clear();
      for (const s of r.steps) {
        if (s.kind !== 'match') break;
        if (s.index !== undefined && !seen.has(s.index.field)) {
          seen.add(s.index.field);
          counts.set(s.index.field, (counts.get(s.index.field) ?? 0) + 1);
        }
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
        const j = leadingIndex(r, field);
        const at = r.steps[j];
        if (j < 0 || at?.kind !== 'match' || at.index === undefined) {
          unindexed.push(i);
          return;
        }
        // A rule listing one key twice is still visited once.
        for (const k of new Set(at.index.keys)) {
          const list = byKey.get(k);
          if (list === undefined) byKey.set(k, [i]);
          else list.push(i);
        }
      });
      index = { field, byKey, unindexed, merged: new Map() };
    }
  }
  return index;
}

/**
 * packetKey of an address, for the last few address arrays seen (by identity): a connection's
 * packets share a handful, and hex-encoding one per chain and packet showed in profiles.
 */
const KEY_RING = 8;
const keyRingArrays: (Uint8Array | undefined)[] = new Array(KEY_RING).fill(undefined);
const keyRingKeys: string[] = new Array(KEY_RING).fill('');
let keyRingNext = 0;
/** Each byte's two hex digits, as packetKey writes them (a Buffer per address cost more). */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
function addressIndexKey(a: Uint8Array): string {
  for (let i = 0; i < KEY_RING; i++) if (keyRingArrays[i] === a) return keyRingKeys[i] as string;
  let key = '';
  for (let i = 0; i < a.length; i++) key += HEX[a[i] as number];
  keyRingArrays[keyRingNext] = a;
  keyRingKeys[keyRingNext] = key;
  keyRingNext = (keyRingNext + 1) % KEY_RING;
  return key;
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
 * out starts with matches of which an indexed one lacks the packet's key, so it answers false
 * (model.ts).
 */
export function candidateRules(chain: Chain, p: Packet): readonly number[] | undefined {
  return candidates(planOf(chain), p);
}

function candidates(plan: Plan, p: Packet): readonly number[] | undefined {
  if (plan.rules.length < INDEX_MIN_RULES) return undefined;
  let index = plan.index;
  if (index === undefined) {
    index = chainIndex(plan.chain);
    plan.index = index;
  }
  if (index === null) return undefined;
  const key =
    index.field === 'saddr' || index.field === 'daddr'
      ? addressIndexKey(p[index.field])
      : packetKey(p, index.field);
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

/** The jump stack as a linked list: a jump adds one frame, a return shares the rest (no copies). */
interface Frame {
  readonly plan: Plan;
  readonly at: number;
  readonly up: Frame | undefined;
  readonly depth: number;
}

type StepCall = (p: Packet, marks: Marks) => unknown;
const MATCH = 0;
const EFFECT = 1;
const VERDICT = 2;

/**
 * A chain as the walk reads it: its rules' step kinds and calls in two flat arrays of one
 * shape, rule i's from starts[i] to starts[i + 1]. Compiled steps come in many object shapes,
 * so reading `kind` and `test` off each step on every visit was a megamorphic lookup; an
 * array per rule cost a load (and often a cache miss) more per visit.
 */
interface Plan {
  readonly chain: Chain;
  readonly rules: readonly Rule[];
  readonly starts: readonly number[];
  readonly kinds: readonly number[];
  /** Each step's test, apply or verdict, bound to its step. */
  readonly calls: readonly StepCall[];
  /** Jump and goto targets by name, resolved once. */
  readonly targets: Map<string, Plan>;
  /** The target each rule last jumped to, by position: most rules always jump to one chain. */
  readonly jumpTo: (Plan | undefined)[];
  /** The key index: undefined until first needed, null when the chain has none. */
  index: ChainIndex | null | undefined;
  /** The hit set the walk last added this chain's rules to, and which it added (by position). */
  hitSet: Set<Rule> | undefined;
  readonly hitSeen: Uint8Array;
}

const planCache = new WeakMap<Chain, Plan>();

function planOf(chain: Chain): Plan {
  let plan = planCache.get(chain);
  if (plan === undefined) {
    const starts: number[] = [];
    const kinds: number[] = [];
    const calls: StepCall[] = [];
    for (const rule of chain.rules) {
      starts.push(kinds.length);
      for (const step of rule.steps) {
        if (step.kind === 'match') {
          kinds.push(MATCH);
          calls.push(step.test.bind(step));
        } else if (step.kind === 'effect') {
          kinds.push(EFFECT);
          calls.push(step.apply.bind(step));
        } else {
          kinds.push(VERDICT);
          calls.push(step.verdict.bind(step));
        }
      }
    }
    starts.push(kinds.length);
    plan = {
      chain,
      rules: chain.rules,
      starts,
      kinds,
      calls,
      targets: new Map(),
      jumpTo: new Array(chain.rules.length).fill(undefined),
      index: undefined,
      hitSet: undefined,
      hitSeen: new Uint8Array(chain.rules.length),
    };
    planCache.set(chain, plan);
  }
  return plan;
}

/**
 * Walks packets through base chains. One walker serves a whole flow (its state is the chain
 * being walked), so a walk allocates no closures per chain.
 */
export class Walker {
  readonly #ctx: WalkContext;
  #base!: Chain;
  #p!: Packet;
  /**
   * Where the branches of the chain being walked end, by kind (no object per end). Passing
   * ones: the first alone, the rest (rare: only forks make them) in an array, so that a branch
   * passing a chain as it came allocates nothing.
   */
  #passedOne: Marks | undefined;
  #passedMore: Marks[] | undefined;
  #blocked: Block[] = NONE;
  #unknownAt: Undecidable[] = NONE;
  readonly #result: { passed: Marks[]; blocked: Block[]; unknown: Undecidable[] } = {
    passed: NONE,
    blocked: NONE,
    unknown: NONE,
  };
  #forks = 0;
  /** Undecidable matches met so far, in walk order, across the chains of one walker. */
  #seq = 0;

  constructor(ctx: WalkContext) {
    this.#ctx = ctx;
  }

  /**
   * Every way the base chain `base` can end for packet `p` arriving with `marks`: one end, or
   * several where a match answers unknown (both answers are followed, each with its own copy
   * of the marks). accept ends the chain only (the next base chain still runs); drop and
   * reject end the packet; return from the base chain, or its end, is the policy.
   */
  walkChain(base: Chain, p: Packet, marks: Marks): ChainEnd[] {
    this.#passedOne = undefined;
    this.#passedMore = undefined;
    this.#blocked = [];
    this.#unknownAt = [];
    this.#walk(base, p, marks);
    return [
      ...this.#passedList().map((m) => ({ kind: 'pass' as const, marks: m })),
      ...this.#blocked.map((block) => ({ kind: 'block' as const, block })),
      ...this.#unknownAt.map((at) => ({ kind: 'unknown' as const, at })),
    ];
  }

  #pass(m: Marks): void {
    if (this.#passedOne === undefined) this.#passedOne = m;
    else if (this.#passedMore === undefined) this.#passedMore = [m];
    else this.#passedMore.push(m);
  }

  #passedList(): Marks[] {
    const one = this.#passedOne;
    if (one === undefined) return [];
    return this.#passedMore === undefined ? [one] : [one, ...this.#passedMore];
  }

  #walk(base: Chain, p: Packet, marks: Marks): void {
    this.#base = base;
    this.#p = p;
    this.#forks = 0;
    this.#rules(planOf(base), 0, undefined, 0, marks);
  }

  /**
   * Runs each branch (its marks) through `chains` in order; `source` gives the packet as
   * each chain sees it (NAT rewrites it between priorities). Branches that pass a chain with
   * equal marks are one branch from there on: the packet is the same, so their walks would be.
   * The result's `passed` may be `branches` itself (one branch that passed every chain). The
   * result is the walker's own, valid until its next walkHook (one object per walker: most
   * hooks pass, and an object and two arrays per hook showed among the allocations).
   */
  walkHook(chains: readonly Chain[], source: PacketSource, branches: readonly Marks[]): HookResult {
    let live = branches as Marks[];
    this.#blocked = NONE;
    this.#unknownAt = NONE;
    const result = this.#result;
    for (let c = 0; c < chains.length; c++) {
      const chain = chains[c] as Chain;
      const p = source.packetAt(chain);
      this.#passedOne = undefined;
      this.#passedMore = undefined;
      for (let i = 0; i < live.length; i++) this.#walk(chain, p, live[i] as Marks);
      const one = this.#passedOne as Marks | undefined;
      if (one === undefined) {
        live = NONE;
        break;
      }
      // The common walk: one branch in, the same one out (its marks changed in place, if at all).
      if (this.#passedMore === undefined) {
        if (live.length !== 1 || live[0] !== one) live = [one];
      } else live = dedupeMarks(this.#passedList());
    }
    result.passed = live;
    result.blocked = this.#blocked;
    result.unknown = this.#unknownAt;
    return result;
  }

  #block(b: Block): void {
    if (this.#blocked === NONE) this.#blocked = [];
    this.#blocked.push(b);
  }

  #stopUndecided(u: Undecidable): void {
    if (this.#unknownAt === NONE) this.#unknownAt = [];
    this.#unknownAt.push(u);
  }

  /** The plan rule i of `fromPlan` jumps (or goes) to by `name`. */
  #targetAt(fromPlan: Plan, i: number, name: string): Plan {
    const last = fromPlan.jumpTo[i];
    if (last !== undefined && last.chain.name === name) return last;
    const target = this.#target(fromPlan, name);
    fromPlan.jumpTo[i] = target;
    return target;
  }

  #target(fromPlan: Plan, name: string): Plan {
    let target = fromPlan.targets.get(name);
    if (target === undefined) {
      const from = fromPlan.chain;
      const c = this.#ctx.ruleset.chain(from.family, from.table, name);
      if (c === undefined) {
        throw new CtError(
          'ERULESET',
          `${chainName(from)} jumps to ${name}, which the ruleset does not hold: pass the ruleset as nft lists it`,
        );
      }
      target = planOf(c);
      fromPlan.targets.set(name, target);
    }
    return target;
  }

  #back(stack: Frame | undefined, hops: number, m: Marks): void {
    if (stack !== undefined) {
      this.#rules(stack.plan, stack.at, stack.up, hops, m);
    } else if (this.#base.base?.policy === 'drop') {
      this.#block({ verdict: 'drop', chain: this.#base });
    } else this.#pass(m);
  }

  /** Runs `chain` from rule position `at` on one branch. */
  #rules(plan: Plan, at: number, stack: Frame | undefined, hops: number, m: Marks): void {
    const chain = plan.chain;
    if (stack !== undefined && stack.depth > MAX_DEPTH) {
      throw new CtError(
        'ERULESET',
        `jumps from ${chainName(this.#base)} nest deeper than ${MAX_DEPTH} chains (a loop through ${chain.name}?): fix the ruleset`,
      );
    }
    if (hops > MAX_HOPS) {
      throw new CtError(
        'ERULESET',
        `more than ${MAX_HOPS} jumps and gotos for one packet from ${chainName(this.#base)} (a goto loop through ${chain.name}?): fix the ruleset`,
      );
    }
    const order = this.#ctx.plain ? undefined : candidates(plan, this.#p);
    if (order === undefined) {
      for (let i = at; i < plan.rules.length; i++) {
        if (this.#steps(plan, i, 0, stack, hops, m) === DONE) return;
      }
    } else {
      for (let k = lowerBound(order, at); k < order.length; k++) {
        if (this.#steps(plan, order[k] as number, 0, stack, hops, m) === DONE) return;
      }
    }
    this.#back(stack, hops, m);
  }

  #unknown(chain: Chain, rule: Rule, match: string): Undecidable {
    this.#ctx.undecided(chain, rule, match, this.#seq++);
    return { chain, rule, match };
  }

  /**
   * Runs rule `i` of `chain` from step `s`: NEXT when this branch goes on with the next rule
   * (a match failed, a `continue`, a verdict map without the key), DONE when the branch was
   * carried on elsewhere (a verdict, a jump) or ended.
   */
  #steps(
    plan: Plan,
    i: number,
    s: number,
    stack: Frame | undefined,
    hops: number,
    m: Marks,
  ): typeof NEXT | typeof DONE {
    const chain = plan.chain;
    const rule = plan.rules[i] as Rule;
    const p = this.#p;
    const kinds = plan.kinds;
    const calls = plan.calls;
    const first = plan.starts[i] as number;
    const end = plan.starts[i + 1] as number;
    for (let at = first + s; at < end; at++) {
      const kind = kinds[at];
      if (kind === MATCH) {
        const v = (calls[at] as StepCall)(p, m) as Tri;
        if (v === false) return NEXT;
        if (v === true) continue;
        s = at - first;
        const step = rule.steps[s] as Step;
        if (++this.#forks > MAX_FORKS) {
          this.#stopUndecided(this.#unknown(chain, rule, step.text));
          return DONE;
        }
        // The branch where it matches goes on in this rule with its own marks; this one, where
        // it does not, goes on with the next rule. Where the matching branch leaves the rule
        // too (a later match fails: `fib daddr type local tcp dport 3001 drop`) with the same
        // marks, both go on alike: one walk serves both (else forks would double per rule), and
        // the match decided nothing, so it is not reported.
        const seq = this.#seq++;
        const copy = { meta: m.meta, ct: m.ct };
        if (this.#steps(plan, i, s + 1, stack, hops, copy) === NEXT) {
          if (copy.meta === m.meta && copy.ct === m.ct) return NEXT;
          this.#ctx.undecided(chain, rule, step.text, seq);
          this.#rules(plan, i + 1, stack, hops, copy);
        } else this.#ctx.undecided(chain, rule, step.text, seq);
        return NEXT;
      }
      if (kind === EFFECT) {
        (calls[at] as StepCall)(p, m);
        continue;
      }
      this.#hit(plan, i);
      const v = (calls[at] as StepCall)(p, m) as Verdict | Undecided | undefined;
      // A verdict map without the key breaks the rule, as nft's lookup does.
      if (v === undefined) return NEXT;
      if ('unknown' in v) {
        this.#stopUndecided(this.#unknown(chain, rule, v.unknown));
        return DONE;
      }
      switch (v.kind) {
        case 'continue':
          return NEXT;
        case 'accept':
          this.#pass(m);
          return DONE;
        case 'drop':
        case 'reject':
          this.#block({ verdict: v.kind, chain, rule });
          return DONE;
        case 'queue':
          // A userspace program decides (and the kernel drops when none listens): not known here.
          this.#stopUndecided(this.#unknown(chain, rule, (rule.steps[at - first] as Step).text));
          return DONE;
        case 'return':
          this.#back(stack, hops, m);
          return DONE;
        case 'jump':
          this.#rules(
            this.#targetAt(plan, i, v.target),
            0,
            { plan, at: i + 1, up: stack, depth: (stack?.depth ?? 0) + 1 },
            hops + 1,
            m,
          );
          return DONE;
        case 'goto':
          this.#rules(this.#targetAt(plan, i, v.target), 0, stack, hops + 1, m);
          return DONE;
      }
    }
    this.#hit(plan, i);
    return NEXT;
  }

  /** Adds rule i of the plan's chain to the hit set, once (a Set lookup per visit showed). */
  #hit(plan: Plan, i: number): void {
    const hit = this.#ctx.hit;
    if (plan.hitSet !== hit) {
      plan.hitSet = hit;
      plan.hitSeen.fill(0);
    }
    if (plan.hitSeen[i] === 0) {
      plan.hitSeen[i] = 1;
      hit.add(plan.rules[i] as Rule);
    }
  }
}

const NEXT = 0;
const DONE = 1;
/** No ends of a kind: shared, never pushed to (the walk replaces it by an array first). */
const NONE: never[] = [];

/** One branch per distinct marks. */
export function dedupeMarks(branches: readonly Marks[]): Marks[] {
  const out: Marks[] = [];
  for (let i = 0; i < branches.length; i++) {
    const m = branches[i] as Marks;
    if (!out.some((o) => o.meta === m.meta && o.ct === m.ct)) out.push(m);
  }
  return out;
}

/** The packet as each base chain of a hook sees it (NAT rewrites it between priorities). */
export interface PacketSource {
  packetAt(chain: Chain): Packet;
}

/** What the base chains of one hook do with a packet's branches. */
export interface HookResult {
  /** The marks of each branch that passed every chain, one per distinct marks (not to be changed). */
  readonly passed: readonly Marks[];
  readonly blocked: readonly Block[];
  readonly unknown: readonly Undecidable[];
}
