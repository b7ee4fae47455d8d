// ct-analyze check: nft's JSON matches (op, left, right: values, prefixes, ranges, sets, flags) decided on what a packet shows.
import { type Field, field } from './fields.js';
import type { IndexField, Marks, Packet, Step, Tri } from './model.js';
import { renderMatch } from './render.js';
import { type Interval, isObj, type Lookup, Table } from './sets.js';
import { FLAG_KINDS, type LVal, parseAtom, type Scalar, type ValueKind } from './values.js';

const U32 = 0xffffffff;

type StepIndex = { readonly field: IndexField; readonly keys: readonly string[] };

/** Named sets and maps of the rule's table, as tables keyed by a field's kinds. */
export interface SetSource {
  table(name: string, kinds: readonly ValueKind[]): Table<unknown> | undefined;
}

type Test = (p: Packet, marks: Marks) => Tri;
const NOT_KNOWN: Test = () => 'unknown';

/**
 * A compiled match. Its text is for reports, which name few matches: rendered when first read
 * (compiling a kube-proxy ruleset rendered some 14,000 otherwise).
 */
class JsonMatch {
  readonly kind = 'match' as const;
  readonly #json: Record<string, unknown>;
  #text: string | undefined;
  readonly test: Test;
  readonly index: StepIndex | undefined;

  constructor(json: Record<string, unknown>, test: Test, index?: StepIndex) {
    this.#json = json;
    this.test = test;
    this.index = index;
  }

  get text(): string {
    this.#text ??= renderMatch(this.#json);
    return this.#text;
  }
}

/** An `{"op", "left", "right"}` match as a Step deciding it for a packet. */
export function compileMatch(m: Record<string, unknown>, sets: SetSource): Step {
  const op = String(m.op ?? '==');
  const left = m.left;
  const fields = isObj(left) && Array.isArray(left.concat) ? left.concat.map(field) : [field(left)];
  if (fields.some((f) => !f.known)) return new JsonMatch(m, NOT_KNOWN);
  const kinds = fields.map((f) => f.kind);
  const one = fields.length === 1 ? (fields[0] as Field) : undefined;
  const right = m.right;

  // On a bit field, nft's implicit op (`in`) tests any of the bits; `!=` with a flag list, none.
  const bitTest = (op === 'in' && !isObj(right)) || (op === '!=' && Array.isArray(right));
  if (one !== undefined && FLAG_KINDS.has(one.kind) && bitTest) {
    const mask = parseAtom(one.kind, right);
    if (typeof mask !== 'number') return new JsonMatch(m, NOT_KNOWN);
    const neg = op === '!=';
    return new JsonMatch(m, (p, marks) => {
      const v = one.get(p, marks);
      if (v.t === 'absent') return false;
      const any = anyBit(v, mask);
      return neg ? not(any) : any;
    });
  }
  if (one !== undefined && (op === '<' || op === '>' || op === '<=' || op === '>=')) {
    const b = parseAtom(one.kind, right);
    if (b === undefined || typeof b === 'string') return new JsonMatch(m, NOT_KNOWN);
    const iv = bound(op, b);
    return new JsonMatch(m, (p, marks) => inInterval(one.get(p, marks), iv));
  }
  if (one !== undefined && typeof right === 'boolean') {
    // `exists` / `missing`: a lookup that found an interface, or none.
    const want = op === '!=' ? !right : right;
    return new JsonMatch(m, (p, marks) => {
      const v = one.get(p, marks);
      if (v.t === 'absent') return false;
      if (v.t !== 'v') return 'unknown';
      return (v.v !== '' && v.v !== 0) === want;
    });
  }
  const neg = op === '!=';
  if (one !== undefined && isPlainAtom(one.kind, right)) {
    // One plain value (`ip daddr 10.96.0.1`, `tcp dport 80`), as most matches hold: compared
    // as the table's search would (cmp). The table, for a packet showing a range, bits or
    // nothing sure, is built when first needed (a kube-proxy ruleset built thousands unused).
    const only = parseAtom(one.kind, right);
    if (only === undefined) return new JsonMatch(m, NOT_KNOWN);
    let table: Table<unknown> | undefined;
    const test = (p: Packet, marks: Marks): Tri => {
      const v = one.get(p, marks);
      if (v.t === 'v') return !(v.v < only) && !(v.v > only) ? !neg : neg;
      table ??= new Table<unknown>(kinds, [{ key: right, data: true }]);
      return decide(table.lookup1(v), neg);
    };
    const field = one.index;
    const key = neg || field === undefined ? undefined : indexKey(only);
    return new JsonMatch(
      m,
      test,
      key === undefined || field === undefined ? undefined : { field, keys: [key] },
    );
  }
  const table = rightTable(right, kinds, sets);
  if (table === undefined) return new JsonMatch(m, NOT_KNOWN);
  const only = one === undefined ? undefined : singleValue(table);
  const test =
    one === undefined
      ? (p: Packet, marks: Marks): Tri =>
          decide(table.lookup(fields.map((f) => f.get(p, marks))), neg)
      : only !== undefined
        ? (p: Packet, marks: Marks): Tri => {
            // `ip protocol tcp`, `fib daddr type local`: most matches hold one value; an exact
            // value is compared as the table's search would (cmp), anything else searched.
            const v = one.get(p, marks);
            if (v.t === 'v') return !(v.v < only) && !(v.v > only) ? !neg : neg;
            return decide(table.lookup1(v), neg);
          }
        : (p: Packet, marks: Marks): Tri => decide(table.lookup1(one.get(p, marks)), neg);
  const index = neg || one?.index === undefined ? undefined : indexOf(one, table);
  return new JsonMatch(m, test, index);
}

/** The table a right-hand side stands for: a named set, an anonymous set or one element. */
export function rightTable(
  right: unknown,
  kinds: readonly ValueKind[],
  sets: SetSource,
): Table<unknown> | undefined {
  if (typeof right === 'string' && right.startsWith('@')) return sets.table(right.slice(1), kinds);
  if (typeof right === 'boolean') return undefined;
  const elems = isObj(right) && Array.isArray(right.set) ? right.set : [right];
  const table = new Table<unknown>(
    kinds,
    elems.map((key) => ({ key, data: true })),
  );
  return table.unread === table.size ? undefined : table;
}

/** The one value of a static one-component table of one plain element, if it is that. */
function singleValue(table: Table<unknown>): Scalar | undefined {
  if (table.dynamics !== 'static' || table.size !== 1) return undefined;
  const keys = table.plainKeys();
  return keys?.length === 1 ? keys[0] : undefined;
}

export function decide(r: Lookup<unknown>, neg: boolean): Tri {
  switch (r.kind) {
    case 'absent':
      return false;
    case 'unknown':
      return 'unknown';
    case 'hit':
      return !neg;
    case 'miss':
      return neg;
  }
}

function not(t: Tri): Tri {
  return t === 'unknown' ? t : !t;
}

function anyBit(v: LVal, mask: number): Tri {
  if (v.t === 'v') return typeof v.v === 'number' ? (v.v & mask) >>> 0 !== 0 : 'unknown';
  if (v.t === 'bits') {
    if ((v.v & v.known & mask) !== 0) return true;
    return (v.known & mask) >>> 0 === mask >>> 0 ? false : 'unknown';
  }
  return 'unknown';
}

function bound(op: string, b: number | bigint): Interval {
  if (typeof b === 'bigint') {
    const [lo, hi] = [-1n, 1n << 130n];
    if (op === '<') return { lo, hi: b - 1n };
    if (op === '<=') return { lo, hi: b };
    return op === '>' ? { lo: b + 1n, hi } : { lo: b, hi };
  }
  if (op === '<') return { lo: -Infinity, hi: b - 1 };
  if (op === '<=') return { lo: -Infinity, hi: b };
  return op === '>' ? { lo: b + 1, hi: Infinity } : { lo: b, hi: Infinity };
}

function inInterval(v: LVal, iv: Interval): Tri {
  switch (v.t) {
    case 'absent':
      return false;
    case 'v':
      return typeof v.v === typeof iv.lo && v.v >= iv.lo && v.v <= iv.hi;
    case 'range': {
      const { lo, hi } = iv;
      if (typeof lo !== 'number' || typeof hi !== 'number') return 'unknown';
      if (v.from >= lo && v.to <= hi) return true;
      return v.to < lo || v.from > hi ? false : 'unknown';
    }
    case 'bits': {
      const { lo, hi } = iv;
      if (typeof lo !== 'number' || typeof hi !== 'number') return 'unknown';
      return v.known === U32 ? v.v >= lo && v.v <= hi : 'unknown';
    }
    default:
      return 'unknown';
  }
}

/** Index keys (see packetKey) when a match is exactly "field is one of these values". */
function indexOf(f: Field, table: Table<unknown>): StepIndex | undefined {
  if (table.dynamics !== 'static' || f.index === undefined) return undefined;
  const keys = table.plainKeys();
  if (keys === undefined) return undefined;
  const out: string[] = [];
  for (const k of keys) {
    const key = indexKey(k);
    if (key === undefined) return undefined;
    out.push(key);
  }
  return { field: f.index, keys: out };
}

/** One value as an index key (see packetKey); undefined for a name. */
function indexKey(k: Scalar): string | undefined {
  if (typeof k === 'bigint') {
    const v6 = k >= 1n << 128n;
    return (v6 ? k - (1n << 128n) : k).toString(16).padStart(v6 ? 32 : 8, '0');
  }
  return typeof k === 'number' ? String(k) : undefined;
}

/**
 * Whether a right-hand side is one value read as parseAtom reads it, as a table's element
 * would be: a number, or a name or address that is no set, wildcard or escape.
 */
function isPlainAtom(kind: ValueKind, right: unknown): boolean {
  if (typeof right === 'number') return true;
  return (
    typeof right === 'string' &&
    kind !== 'ifname' &&
    !right.startsWith('@') &&
    !right.includes('*') &&
    !right.includes('\\')
  );
}
