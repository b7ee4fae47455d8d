// ct-analyze check: nft's JSON (`nft -j list ruleset`) compiled into the evaluated ruleset of model.ts, chains of rules of steps.
import type { BaseChain, Hook, Rule, Ruleset, Step, TableFamily } from './model.js';
import type { NftJson, NftObject } from './nft-json.js';
import { renderRule } from './render.js';
import { type Dynamics, isObj, Table } from './sets.js';
import { compileStatement, pairs, type TableScope } from './statements.js';
import { isUnconditional, unrecordedReason } from './unrecorded.js';
import type { ValueKind } from './values.js';

export interface CompiledRuleset {
  readonly ruleset: Ruleset;
  /** What the evaluation assumes (limits not exceeded…) or cannot read; facts, never errors. */
  readonly notes: string[];
}

const FAMILIES = new Set<TableFamily>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const HOOKS = new Set([
  'prerouting',
  'input',
  'forward',
  'output',
  'postrouting',
  'ingress',
  'egress',
]);
/** nft's priority names (family ip, ip6, inet); bridge's differ but never see routed hooks. */
const PRIORITIES: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
  out: 100,
};

const key = (family: string, table: string, name: string) => `${family}\0${table}\0${name}`;

/** A chain while its rules are compiled. */
interface Building {
  readonly family: TableFamily;
  readonly table: string;
  readonly name: string;
  readonly base?: BaseChain;
  readonly rules: Rule[];
}

/** Every chain of `json` with its rules compiled; never throws on a listing nft made. */
export function compileRuleset(json: NftJson): CompiledRuleset {
  const chains: Building[] = [];
  const byKey = new Map<string, Building>();
  const scopes = new Map<string, Scope>();
  const scopeOf = (family: string, table: string): Scope => {
    const k = key(family, table, '');
    let s = scopes.get(k);
    if (s === undefined) {
      s = new Scope();
      scopes.set(k, s);
    }
    return s;
  };
  const chainOf = (
    family: TableFamily,
    table: string,
    name: string,
    base?: BaseChain,
  ): Building => {
    const k = key(family, table, name);
    let c = byKey.get(k);
    if (c === undefined) {
      c =
        base === undefined
          ? { family, table, name, rules: [] }
          : { family, table, name, base, rules: [] };
      byKey.set(k, c);
      chains.push(c);
    }
    return c;
  };

  const rules: Record<string, unknown>[] = [];
  // Index loops: this runs once per listing, mostly before the JIT, where for-of allocates per item.
  const items = json.nftables;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as NftObject;
    const kind = Object.keys(item)[0] ?? '';
    const body = item[kind];
    if (!isObj(body)) continue;
    const family = String(body.family) as TableFamily;
    if (!FAMILIES.has(family)) continue;
    const table = String(body.table ?? body.name);
    if (kind === 'chain') chainOf(family, table, String(body.name), baseOf(body));
    else if (kind === 'rule') rules.push(body);
    else if (kind === 'set' || kind === 'map')
      scopeOf(family, table).sets.set(String(body.name), body);
    else if (kind === 'quota' || kind === 'limit') {
      scopeOf(family, table).objects.set(`${kind}\0${body.name}`, body.inv === true);
    }
  }
  // Sets rules add to grow while packets pass: a miss on them is not sure.
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Record<string, unknown>;
    const expr = Array.isArray(r.expr) ? r.expr : [];
    for (let j = 0; j < expr.length; j++) {
      const s = expr[j];
      const upd = isObj(s) ? (s.set ?? s.map) : undefined;
      if (isObj(upd) && typeof upd.set === 'string' && upd.set.startsWith('@')) {
        scopeOf(String(r.family), String(r.table)).written.add(upd.set.slice(1));
      } else if (isObj(upd) && typeof upd.map === 'string' && upd.map.startsWith('@')) {
        scopeOf(String(r.family), String(r.table)).written.add(upd.map.slice(1));
      }
    }
  }

  const tally = { limited: 0, xt: 0, bindings: 0, rpf: 0 };
  let chain: Building | undefined;
  let scope: Scope | undefined;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Record<string, unknown>;
    const family = String(r.family) as TableFamily;
    const table = String(r.table);
    // A listing gives a chain's rules one after another: look the chain up once per run.
    let c = chain;
    if (c === undefined || c.name !== r.chain || c.table !== table || c.family !== family) {
      c = chainOf(family, table, String(r.chain));
      chain = c;
      scope = scopeOf(family, table);
    }
    const position = (c.rules[c.rules.length - 1]?.index ?? 0) + 1;
    const compiled = compileRule(r, position, scope as Scope);
    if (compiled[0]?.limited) tally.limited++;
    for (const s of Array.isArray(r.expr) ? r.expr : []) {
      if (typeof s === 'string') tally.bindings++;
      else if (isObj(s) && isObj(s.xt) && s.xt.name !== 'comment') tally.xt++;
      else if (isReversePath(s)) tally.rpf++;
    }
    c.rules.push(...compiled);
  }

  // Jump targets are found per packet: by family, table and name without building a key.
  const tree = new Map<string, Map<string, Map<string, Building>>>();
  for (const c of chains) {
    const tables = tree.get(c.family) ?? new Map<string, Map<string, Building>>();
    tree.set(c.family, tables);
    const names = tables.get(c.table) ?? new Map<string, Building>();
    tables.set(c.table, names);
    names.set(c.name, c);
  }
  const ruleset: Ruleset = {
    chains,
    chain: (family, table, name) => tree.get(family)?.get(table)?.get(name),
  };
  const notes = notesOf(tally);
  const orphans = unreachedChains(chains, json.nftables);
  if (orphans.length > 0) {
    const shown = orphans.slice(0, 6).join(', ');
    const more = orphans.length > 6 ? ` and ${orphans.length - 6} more` : '';
    // ct-analyze rules --format iptables writes its CT-* chains for --noflush, hooked in apart.
    const ours = orphans.some((o) => / CT-(INPUT|FORWARD|OUTPUT)$/.test(o))
      ? ": a file of ct-analyze rules --format iptables is checked as a host runs it once its header's hooks are added (-A INPUT -j CT-INPUT …), or from that host's iptables-save"
      : '';
    notes.push(
      `${orphans.length === 1 ? 'chain' : 'chains'} ${shown}${more} no rule jumps or goes to: never reached, so ${orphans.length === 1 ? 'its' : 'their'} rules are dead${ours}`,
    );
  }
  return { ruleset, notes };
}

/**
 * `ip filter CT-INPUT`: the regular chains nothing names as a jump or goto target, in a rule or
 * in a verdict map's elements.
 */
function unreachedChains(chains: readonly Building[], items: readonly NftObject[]): string[] {
  const targets = new Set<string>();
  const visit = (v: unknown, family: string, table: string): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, family, table);
    } else if (isObj(v)) {
      for (const verb of ['jump', 'goto']) {
        const t = v[verb];
        if (isObj(t) && typeof t.target === 'string') targets.add(key(family, table, t.target));
      }
      for (const x of Object.values(v)) visit(x, family, table);
    }
  };
  for (const item of items) {
    const kind = Object.keys(item)[0] ?? '';
    const body = item[kind];
    if (kind === 'chain' || !isObj(body)) continue;
    visit(body, String(body.family), String(body.table ?? body.name));
  }
  return chains
    .filter((c) => c.base === undefined && !targets.has(key(c.family, c.table, c.name)))
    .filter((c) => !c.name.startsWith('ct-analyze-anon-'))
    .map((c) => `${c.family} ${c.table} ${c.name}`);
}

/** `fib saddr . iif oif`: reverse-path filtering, decided on the walk's routing. */
function isReversePath(s: unknown): boolean {
  const left = isObj(s) && isObj(s.match) ? s.match.left : undefined;
  const fib = isObj(left) && isObj(left.fib) ? left.fib : undefined;
  const flags = Array.isArray(fib?.flags) ? fib.flags : [];
  return fib?.result === 'oif' && flags.includes('saddr') && flags.includes('iif');
}

function notesOf(t: { limited: number; xt: number; bindings: number; rpf: number }): string[] {
  const notes: string[] = [];
  const n = (k: number, one: string) => `${k} ${one}${k === 1 ? '' : 's'}`;
  if (t.limited > 0) {
    notes.push(`${n(t.limited, 'rule')} with limit or quota: assumed never exceeded`);
  }
  if (t.rpf > 0) {
    notes.push(
      `${n(t.rpf, 'reverse-path check')} (fib saddr . iif oif): taken to pass, as routing is assumed symmetric`,
    );
  }
  if (t.xt > 0) {
    notes.push(`${n(t.xt, 'iptables extension')} (xt) that nft cannot list: not evaluated`);
  }
  if (t.bindings > 0) {
    notes.push(
      `${n(t.bindings, 'anonymous chain')} (jump { … }) that nft 1.0.6 lists as text: not evaluated`,
    );
  }
  return notes;
}

/**
 * A rule's statements as steps: one Rule, or one per way a verdict map on a random key can go
 * (same position, handle and text: they are the one rule nft holds).
 */
function compileRule(r: Record<string, unknown>, index: number, scope: TableScope): Rule[] {
  const expr = Array.isArray(r.expr) ? r.expr : [];
  const steps: Step[] = [];
  let limited = false;
  let ways: Step[][] | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = compileStatement(expr[i], scope);
    steps.push(...c.steps);
    if (c.limited) limited = true;
    if (c.ways !== undefined) {
      ways = c.ways;
      break;
    }
  }
  const handle = typeof r.handle === 'number' ? r.handle : undefined;
  if (ways === undefined) return [new CompiledRule(index, handle, steps, limited, expr, r.comment)];
  return ways.map(
    (w) => new CompiledRule(index, handle, [...steps, ...w], limited, expr, r.comment),
  );
}

/** A compiled rule: one class (one shape for every rule), its text rendered when first read. */
class CompiledRule implements Rule {
  readonly #expr: unknown[];
  readonly #comment: unknown;
  #text: string | undefined;

  constructor(
    readonly index: number,
    readonly handle: number | undefined,
    readonly steps: readonly Step[],
    readonly limited: boolean,
    expr: unknown[],
    comment: unknown,
  ) {
    this.#expr = expr;
    this.#comment = comment;
  }

  /** The text is for reports, which name few rules. */
  get text(): string {
    this.#text ??= renderRule(this.#expr, this.#comment) || '(empty rule)';
    return this.#text;
  }

  /** Read only for the rules no flow hit. */
  get unrecorded(): string | undefined {
    return unrecordedReason(this.#expr);
  }

  /** Read only for the rules no flow hit. */
  get unconditional(): boolean {
    return isUnconditional(this.#expr);
  }
}

function baseOf(c: Record<string, unknown>): BaseChain | undefined {
  if (typeof c.hook !== 'string' || !HOOKS.has(c.hook)) return undefined;
  const type = c.type === 'nat' || c.type === 'route' ? c.type : 'filter';
  const prio = c.prio;
  const priority =
    typeof prio === 'number' ? prio : typeof prio === 'string' ? namedPriority(prio) : 0;
  const base: BaseChain = {
    type,
    hook: c.hook as Hook | 'ingress' | 'egress',
    priority,
    policy: c.policy === 'drop' ? 'drop' : 'accept',
  };
  const dev = c.dev;
  const devices =
    typeof dev === 'string' ? [dev] : Array.isArray(dev) ? dev.map(String) : undefined;
  return devices === undefined ? base : { ...base, devices };
}

/** `filter`, `mangle - 5`, `dstnat + 10` as numbers. */
function namedPriority(text: string): number {
  const m = /^\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*$/.exec(text);
  if (m === null) return Number(text) || 0;
  const base = PRIORITIES[m[1] as string] ?? 0;
  const off = m[3] === undefined ? 0 : Number(m[3]);
  return m[2] === '-' ? base - off : base + off;
}

/** One table's named sets, maps, limits and quotas, each set compiled once per key shape. */
class Scope implements TableScope {
  readonly sets = new Map<string, Record<string, unknown>>();
  /** Named limits and quotas (`limit\0name`): whether each counts `over`. */
  readonly objects = new Map<string, boolean>();
  readonly written = new Set<string>();
  private readonly tables = new Map<string, Table<unknown>>();

  table(name: string, kinds: readonly ValueKind[]): Table<unknown> | undefined {
    const k = `${name}\0${kinds.join(',')}`;
    let t = this.tables.get(k);
    if (t === undefined) {
      const obj = this.sets.get(name);
      if (obj === undefined) return undefined;
      const elem = Array.isArray(obj.elem) ? obj.elem : [];
      const isMap = typeof obj.map === 'string';
      const entries = isMap ? pairs(elem) : elem.map((e) => ({ key: e, data: true as unknown }));
      t = new Table<unknown>(kinds, entries, this.dynamics(name, obj));
      this.tables.set(k, t);
    }
    return t;
  }

  mapData(name: string): unknown[] {
    const obj = this.sets.get(name);
    return obj !== undefined && Array.isArray(obj.elem) ? pairs(obj.elem).map((e) => e.data) : [];
  }

  inverted(kind: string, name: string): boolean | undefined {
    return this.objects.get(`${kind}\0${name}`);
  }

  private dynamics(name: string, obj: Record<string, unknown>): Dynamics {
    const flags = Array.isArray(obj.flags) ? obj.flags.map(String) : [];
    // Elements that time out may be gone by the time a packet passes.
    const elems = Array.isArray(obj.elem) ? obj.elem : [];
    const expiring = (e: unknown) => isObj(e) && isObj(e.elem) && e.elem.timeout !== undefined;
    const firstKey = (e: unknown) => (Array.isArray(e) ? e[0] : e);
    if (obj.timeout !== undefined || elems.some((e) => expiring(firstKey(e)))) return 'volatile';
    return flags.includes('dynamic') || this.written.has(name) ? 'grows' : 'static';
  }
}
