// ct-analyze check: a rule's statements (verdicts, verdict maps, nat, marks, limits, iptables-nft's xt) as the Steps a walk runs.
import { compileMatch, decide, type SetSource } from './expr.js';
import { type Field, field } from './fields.js';
import type { Marks, Packet, Step, Undecided, Verdict } from './model.js';
import { renderExpr, renderStatement } from './render.js';
import { isObj, Table } from './sets.js';
import type { LVal } from './values.js';

/** What compiling one statement gives: its steps, and whether it is a limit or quota. */
export interface Compiled {
  readonly steps: Step[];
  readonly limited?: boolean;
  /**
   * A verdict map keyed by a random number (kube-proxy's `numgen random mod N vmap`): the
   * steps of each way it can go, one rule each, so that a walk follows every endpoint.
   */
  readonly ways?: Step[][];
}

/** The rule's table: its named sets and maps, and its named objects (quotas). */
export interface TableScope extends SetSource {
  /** The data of a named map's elements. */
  mapData(name: string): unknown[];
  /** Whether the named limit or quota object counts `over` (undefined: no such object). */
  inverted(kind: string, name: string): boolean | undefined;
}

/** iptables targets that only log, count or change what the walk does not read. */
const XT_PASS = new Set([
  'LOG',
  'NFLOG',
  'ULOG',
  'AUDIT',
  'TRACE',
  'TCPMSS',
  'CHECKSUM',
  'CLASSIFY',
  'DSCP',
  'TOS',
  'TTL',
  'HL',
  'NOTRACK',
  'CT',
  'SET',
  'IDLETIMER',
  'LED',
  'SECMARK',
  'CONNSECMARK',
]);
const XT_NAT = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP']);
const XT_MARKS = new Set(['MARK', 'CONNMARK']);
/** Statements with no effect on what the walk decides. */
const NO_OPS = new Set([
  'last',
  'reset',
  'log',
  'ct helper',
  'notrack',
  'set',
  'map',
  'flow',
  'dup',
  'tproxy',
  'secmark',
  'ct timeout',
  'ct expectation',
  'tcp option',
]);

const VERDICTS: Record<string, Verdict> = {
  accept: { kind: 'accept' },
  drop: { kind: 'drop' },
  continue: { kind: 'continue' },
  return: { kind: 'return' },
  reject: { kind: 'reject' },
};

const constVerdict = (text: string, v: Verdict | Undecided): Step => ({
  kind: 'verdict',
  text,
  verdict: () => v,
});
const constMatch = (text: string, t: boolean | 'unknown'): Step => ({
  kind: 'match',
  text,
  test: () => t,
});

/** A verdict object of the JSON (`{"accept": null}`, `{"jump": {"target": "x"}}`). */
export function verdictOf(e: unknown): Verdict | undefined {
  if (!isObj(e)) return undefined;
  const k = Object.keys(e)[0] ?? '';
  const fixed = VERDICTS[k];
  if (fixed !== undefined && Object.keys(e).length === 1) return fixed;
  const v = e[k];
  if ((k === 'jump' || k === 'goto') && isObj(v) && typeof v.target === 'string') {
    return { kind: k, target: v.target };
  }
  return undefined;
}

/** A rule's verdict statement (`accept`, `jump KUBE-SVC-…`); its text rendered when first read. */
class JsonVerdict {
  readonly kind = 'verdict' as const;
  readonly #json: Record<string, unknown>;
  readonly #verdict: Verdict;
  #text: string | undefined;

  constructor(json: Record<string, unknown>, verdict: Verdict) {
    this.#json = json;
    this.#verdict = verdict;
  }

  get text(): string {
    this.#text ??= renderStatement(this.#json);
    return this.#text;
  }

  verdict(): Verdict {
    return this.#verdict;
  }
}

/** A JSON object's first key, without the array Object.keys makes (compiling reads thousands). */
function firstKey(o: Record<string, unknown>): string | undefined {
  for (const k in o) return k;
  return undefined;
}

export function compileStatement(s: unknown, scope: TableScope): Compiled {
  // The commonest statements render no text here: a match or verdict renders its own when read.
  if (isObj(s)) {
    const first = firstKey(s);
    if (first === 'match' && isObj(s.match)) return { steps: [compileMatch(s.match, scope)] };
    if (first === 'counter') return { steps: mapSteps([s.counter], scope) };
    const verdict = verdictOf(s);
    if (verdict !== undefined) return { steps: [new JsonVerdict(s, verdict)] };
  }
  const text = renderStatement(s);
  if (typeof s === 'string') {
    // nft 1.0.6 lists a chain binding (`jump { … }`) as its text, not as JSON.
    return { steps: [constVerdict(text, { unknown: text })] };
  }
  if (!isObj(s)) return { steps: [constMatch(text, 'unknown')] };
  const kind = firstKey(s) ?? '';
  const body = s[kind];
  const b = isObj(body) ? body : {};
  switch (kind) {
    case 'match':
      return { steps: [compileMatch(b, scope)] };
    case 'reject':
      return { steps: [constVerdict(text, { kind: 'reject' })] };
    case 'limit':
    case 'quota': {
      // Assumed never exceeded: `limit rate over` / `quota over` never match, the others always.
      // A named one says `over` in its object; one picked by a map is not known.
      if (isObj(b.map)) {
        // Picked by a map: a miss ends the rule; a hit counts `over` as its objects say.
        const invs = mapData(b.map.data, scope).map((name) => scope.inverted(kind, String(name)));
        const same = invs.length > 0 && invs.every((i) => i !== undefined && i === invs[0]);
        const last = constMatch(text, same ? !invs[0] : 'unknown');
        return { steps: [...mapSteps([body], scope), last], limited: true };
      }
      const inv = typeof body === 'string' ? scope.inverted(kind, body) : b.inv === true;
      return { steps: [constMatch(text, inv === undefined ? 'unknown' : !inv)], limited: true };
    }
    case 'meter': {
      const inner = isObj(b.stmt) ? b.stmt : {};
      if (isObj(inner.limit))
        return { steps: [constMatch(text, inner.limit.inv !== true)], limited: true };
      return { steps: [] };
    }
    case 'vmap': {
      const ways = randomWays(b);
      return ways === undefined ? { steps: [vmap(text, b, scope)] } : { steps: [], ways };
    }
    case 'mangle':
      return { steps: mangle(text, b, scope) };
    case 'dnat':
    case 'snat':
    case 'masquerade':
    case 'redirect':
      // nat ends the nat chain; a map that has no element for the packet ends the rule first.
      return {
        steps: [...mapSteps([b.addr, b.port], scope), constVerdict(text, { kind: 'accept' })],
      };
    case 'queue':
    case 'synproxy':
    case 'fwd':
      // A synproxy picked by a map applies only to the packets the map holds.
      return { steps: [...mapSteps([body], scope), constVerdict(text, { unknown: text })] };
    case 'xt':
      return xt(text, String(b.type), String(b.name));
    case 'counter':
      // A named counter picked by a map (`counter name ip saddr map {…}`): a miss ends the rule.
      return { steps: mapSteps([body], scope) };
    default:
      if (NO_OPS.has(kind)) return { steps: mapSteps([body], scope) };
      return { steps: [constMatch(text, 'unknown')] };
  }
}

function xt(text: string, type: string, name: string): Compiled {
  if (type === 'match') {
    // A comment is no condition; the other matches nft cannot print, the walk cannot read.
    return { steps: name === 'comment' ? [] : [constMatch(text, 'unknown')] };
  }
  if (type === 'target') {
    if (name === 'REJECT') return { steps: [constVerdict(text, { kind: 'reject' })] };
    if (XT_NAT.has(name)) return { steps: [constVerdict(text, { kind: 'accept' })] };
    if (XT_PASS.has(name)) return { steps: [] };
    if (XT_MARKS.has(name)) {
      const which = name === 'MARK' ? 'meta' : 'ct';
      return { steps: [{ kind: 'effect', text, apply: (_p, m) => setMark(m, which, undefined) }] };
    }
  }
  return { steps: [constVerdict(text, { unknown: text })] };
}

function setMark(m: Marks, which: 'meta' | 'ct', v: number | undefined): void {
  m[which] = v;
}

/** The table a map's data names or holds, keyed by the map key's fields. */
function mapTable(
  key: unknown,
  data: unknown,
  scope: TableScope,
): { fields: Field[]; table: Table<unknown> | undefined } {
  const fields = isObj(key) && Array.isArray(key.concat) ? key.concat.map(field) : [field(key)];
  const kinds = fields.map((f) => f.kind);
  if (fields.some((f) => !f.known)) return { fields, table: undefined };
  if (typeof data === 'string' && data.startsWith('@'))
    return { fields, table: scope.table(data.slice(1), kinds) };
  if (!isObj(data) || !Array.isArray(data.set)) return { fields, table: undefined };
  return { fields, table: new Table(kinds, pairs(data.set)) };
}

function read(fields: readonly Field[], p: Packet, m: Marks): LVal[] {
  return fields.map((f) => f.get(p, m));
}

function vmap(text: string, b: Record<string, unknown>, scope: TableScope): Step {
  const { fields, table } = mapTable(b.key, b.data, scope);
  const key = renderExpr(b.key);
  const unsure: Undecided = { unknown: `${key} vmap` };
  if (table === undefined) return constVerdict(text, { unknown: text });
  // Each element's verdict read once: kube-proxy's maps are looked up for nearly every packet.
  const verdicts = new Map<unknown, Verdict | Undecided>();
  return {
    kind: 'verdict',
    text,
    verdict: (p, m) => {
      const r = table.lookup(read(fields, p, m));
      if (r.kind === 'hit') {
        let v = verdicts.get(r.data);
        if (v === undefined) {
          v = verdictOf(r.data) ?? { unknown: text };
          verdicts.set(r.data, v);
        }
        return v;
      }
      if (r.kind === 'unknown') return unsure;
      return undefined;
    },
  };
}

/** The values a `numgen` / `jhash` / `symhash` key takes (`mod N offset O`: O … O+N-1). */
function randomRange(key: unknown): { from: number; to: number } | undefined {
  if (!isObj(key)) return undefined;
  for (const k of ['numgen', 'jhash', 'symhash']) {
    const g = key[k];
    if (isObj(g) && typeof g.mod === 'number' && g.mod > 0) {
      const from = typeof g.offset === 'number' ? g.offset : 0;
      return { from, to: from + g.mod - 1 };
    }
  }
  return undefined;
}

/**
 * Each element of a verdict map on a random key, as an undecidable match and its verdict; the
 * last one certain when the elements cover every value the key takes (up to 64 elements).
 */
function randomWays(b: Record<string, unknown>): Step[][] | undefined {
  const range = randomRange(b.key);
  const data = b.data;
  if (range === undefined || !isObj(data) || !Array.isArray(data.set)) return undefined;
  const elems = pairs(data.set);
  if (elems.length === 0 || elems.length > 64) return undefined;
  const keys = new Set(elems.map((e) => e.key));
  let covers = true;
  for (let n = range.from; n <= range.to && covers; n++) covers = keys.has(n);
  const key = renderExpr(b.key);
  return elems.map((e, i) => {
    const v = verdictOf(e.data);
    const text = `${key} ${renderExpr(e.key)}`;
    const last = covers && i === elems.length - 1;
    const verdict = v === undefined ? { unknown: renderExpr(e.data) } : v;
    return [constMatch(text, last ? true : 'unknown'), constVerdict(renderExpr(e.data), verdict)];
  });
}

/** `meta mark set …` / `ct mark set …`; other header rewrites change nothing the walk reads. */
function mangle(text: string, b: Record<string, unknown>, scope: TableScope): Step[] {
  const key = b.key;
  const which =
    isObj(key) && isObj(key.meta) && key.meta.key === 'mark'
      ? 'meta'
      : isObj(key) && isObj(key.ct) && key.ct.key === 'mark'
        ? 'ct'
        : undefined;
  const value = b.value;
  const steps = mapSteps([value], scope);
  if (which === undefined) return steps;
  let compute: (p: Packet, m: Marks) => number | undefined;
  if (typeof value === 'number') {
    compute = () => value >>> 0;
  } else if (isObj(value) && isObj(value.map)) {
    const { fields, table } = mapTable(value.map.key, value.map.data, scope);
    compute = (p, m) => {
      const r = table?.lookup(read(fields, p, m));
      return r?.kind === 'hit' && typeof r.data === 'number' ? r.data >>> 0 : undefined;
    };
  } else {
    const f = field(value);
    compute = (p, m) => {
      const v = f.get(p, m);
      return v.t === 'v' && typeof v.v === 'number' ? v.v >>> 0 : undefined;
    };
  }
  steps.push({ kind: 'effect', text, apply: (p, m) => setMark(m, which, compute(p, m)) });
  return steps;
}

/** For each map expression among `exprs`: a match that the packet's key is in the map (a miss ends the rule). */
function mapSteps(exprs: readonly unknown[], scope: TableScope): Step[] {
  const out: Step[] = [];
  for (const e of exprs) {
    if (!isObj(e) || !isObj(e.map)) continue;
    const { fields, table } = mapTable(e.map.key, e.map.data, scope);
    const text = renderExpr(e);
    if (coversRandom(e.map.key, e.map.data)) {
      // Whichever value the random key takes, the map has it: the rule goes on.
      continue;
    }
    if (table === undefined) {
      out.push(constMatch(text, 'unknown'));
      continue;
    }
    out.push({
      kind: 'match',
      text,
      test: (p, m) => decide(table.lookup(read(fields, p, m)), false),
    });
  }
  return out;
}

/** A map's elements (`[key, data]` pairs) as a table's entries. */
export function pairs(elems: readonly unknown[]): { key: unknown; data: unknown }[] {
  const out: { key: unknown; data: unknown }[] = [];
  for (const e of elems) {
    if (Array.isArray(e) && e.length === 2) out.push({ key: e[0], data: e[1] });
  }
  return out;
}

/** Whether an anonymous map on a random key has an element for every value the key takes. */
function coversRandom(key: unknown, data: unknown): boolean {
  const range = randomRange(key);
  if (range === undefined || !isObj(data) || !Array.isArray(data.set)) return false;
  const keys = new Set(pairs(data.set).map((e) => e.key));
  for (let n = range.from; n <= range.to; n++) if (!keys.has(n)) return false;
  return true;
}

/** The data of a map's elements, anonymous or named. */
function mapData(data: unknown, scope: TableScope): unknown[] {
  if (isObj(data) && Array.isArray(data.set)) return pairs(data.set).map((e) => e.data);
  if (typeof data === 'string' && data.startsWith('@')) return scope.mapData(data.slice(1));
  return [];
}
