// ct-analyze check: every recorded flow's connection judged, gathered into what the report tells: refusals, breaks, what stays open and why.
import type { Flow } from '../core/flows.js';
import type { Chain, Fate, Rule, Ruleset } from './model.js';

/** A flow the ruleset refuses, breaks, or leaves undetermined. */
export type Finding<K extends Fate['kind'] = Exclude<Fate['kind'], 'accepted'>> = K extends unknown
  ? { readonly flow: Flow; readonly fate: Extract<Fate, { kind: K }> }
  : never;

/** One construct the recording could not decide, once, with how many flows it left open. */
export interface Undecidable {
  readonly match: string;
  readonly chain: Chain;
  readonly rule: Rule;
  readonly flows: number;
}

export interface CheckResult {
  readonly flows: number;
  readonly accepted: number;
  /** Each in the flow table's order. */
  readonly blocked: readonly Finding<'blocked'>[];
  readonly breaks: readonly Finding<'breaks'>[];
  readonly undetermined: readonly Finding<'undetermined'>[];
  /** The undecidable constructs, most flows first. */
  readonly undecidable: readonly Undecidable[];
  /** Rules no recorded packet matched (nor may have matched), in chain order. */
  readonly dead: readonly { chain: Chain; rule: Rule }[];
  /**
   * Rules no recorded packet matched that say nothing about the recording: they only match
   * packets a recording never holds (Rule.unrecorded), or they close a base chain (every flow
   * got an earlier verdict). Not dead, not judged; `reason` says which.
   */
  readonly unrecorded: readonly { chain: Chain; rule: Rule; reason: string }[];
  /** Rules with a limit or quota some packet met: assumed not exceeded. */
  readonly limited: number;
  /** Families with recorded flows that no ip, ip6 or inet base chain sees (they all pass). */
  readonly unfiltered: readonly (4 | 6)[];
}

/** Judges every flow with `judge` (the evaluator, bound to its options) and gathers the result. */
export function checkFlows(
  ruleset: Ruleset,
  flows: Iterable<Flow>,
  judge: (flow: Flow, hit: Set<Rule>) => Fate,
): CheckResult {
  const hit = new Set<Rule>();
  const blocked: Finding<'blocked'>[] = [];
  const breaks: Finding<'breaks'>[] = [];
  const undetermined: Finding<'undetermined'>[] = [];
  const open = new Map<string, Undecidable>();
  const families = new Set<4 | 6>();
  let count = 0;
  let accepted = 0;
  for (const flow of flows) {
    count++;
    families.add(flow.family);
    const fate = judge(flow, hit);
    switch (fate.kind) {
      case 'accepted':
        accepted++;
        break;
      case 'blocked':
        blocked.push({ flow, fate });
        break;
      case 'breaks':
        breaks.push({ flow, fate });
        break;
      case 'undetermined': {
        undetermined.push({ flow, fate });
        const key = `${fate.match}\0${chainKey(fate.chain)}\0${fate.rule.index}`;
        const seen = open.get(key);
        open.set(key, {
          match: fate.match,
          chain: fate.chain,
          rule: fate.rule,
          flows: (seen?.flows ?? 0) + 1,
        });
        break;
      }
    }
  }
  // A rule compiled into several (one per way of a random-number verdict map) shares its
  // position: it is dead only when no way was taken, and listed once.
  const unhit = ruleset.chains.flatMap((chain) => {
    const taken = new Set(chain.rules.filter((r) => hit.has(r)).map((r) => r.index));
    const listed = new Set<number>();
    return chain.rules
      .filter((r) => !taken.has(r.index) && !listed.has(r.index) && listed.add(r.index))
      .map((rule) => ({ chain, rule }));
  });
  const closing = new Set(unhit.filter((d) => closes(d.chain, d.rule)).map((d) => d.rule));
  const why = (d: { rule: Rule }) =>
    d.rule.unrecorded ??
    (closing.has(d.rule)
      ? "the chain's closing verdict: every recorded flow got an earlier one"
      : undefined);
  const dead = unhit.filter((d) => why(d) === undefined);
  const unrecorded = unhit
    .filter((d) => why(d) !== undefined)
    .map((d) => ({ ...d, reason: why(d) as string }));
  const ipChains = ruleset.chains.filter((c) => c.base !== undefined);
  return {
    flows: count,
    accepted,
    blocked,
    breaks,
    undetermined,
    undecidable: [...open.values()].sort((a, b) => b.flows - a.flows),
    dead,
    unrecorded,
    limited: [...hit].filter((r) => r.limited).length,
    unfiltered: [...families]
      .sort()
      .filter(
        (f) => !ipChains.some((c) => c.family === 'inet' || c.family === (f === 4 ? 'ip' : 'ip6')),
      ),
  };
}

function chainKey(c: Chain): string {
  return `${c.family} ${c.table} ${c.name}`;
}

/** Whether `rule` is one of the unconditional rules that end a base chain. */
function closes(chain: Chain, rule: Rule): boolean {
  if (chain.base === undefined) return false;
  const rules = chain.rules;
  for (let i = rules.length - 1; i >= 0; i--) {
    const r = rules[i] as Rule;
    if (r.unconditional !== true) return false;
    if (r.index === rule.index) return true;
  }
  return false;
}
