// ct-analyze check: sets, maps and verdict maps (anonymous or named, plain, prefix, range or concatenated keys) looked up with what a packet shows.
import { type LVal, parseAtom, type Scalar, type ValueKind } from './values.js';

/** An inclusive interval of one key component; lo === hi for one value. */
export interface Interval {
  readonly lo: Scalar;
  readonly hi: Scalar;
}

/**
 * What a lookup found: the data of the element every value of the key falls in (`true` for a
 * set), none, not decidable, or a header the packet lacks (every match on it is false).
 */
export type Lookup<D> =
  | { readonly kind: 'hit'; readonly data: D }
  | { readonly kind: 'miss' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'absent' };

const MISS = { kind: 'miss' } as const;
const NO_POINTS: Map<Scalar, unknown> = new Map();
const UNSURE = { kind: 'unknown' } as const;
const ABSENT_HIT = { kind: 'absent' } as const;

interface Entry<D> {
  readonly key: readonly Interval[];
  readonly data: D;
  /** The answer a lookup gives for this element, made once. */
  readonly hit: Lookup<D>;
}

/**
 * How rules change a named set while packets pass: `grows` (rules add elements: a miss is
 * not sure), `volatile` (elements also time out: nothing is sure).
 */
export type Dynamics = 'static' | 'grows' | 'volatile';

/** One parsed element key: its intervals, or undefined when an atom cannot be read. */
export function elementKey(kinds: readonly ValueKind[], elem: unknown): Interval[] | undefined {
  let e = elem;
  if (isObj(e) && isObj(e.elem)) e = e.elem.val;
  const parts = kinds.length > 1 && isObj(e) && Array.isArray(e.concat) ? e.concat : [e];
  if (parts.length !== kinds.length) return undefined;
  const out: Interval[] = [];
  for (let i = 0; i < parts.length; i++) {
    const iv = interval(kinds[i] as ValueKind, parts[i]);
    if (iv === undefined) return undefined;
    out.push(iv);
  }
  return out;
}

function interval(kind: ValueKind, part: unknown): Interval | undefined {
  if (isObj(part) && isObj(part.prefix)) {
    const lo = parseAtom(kind, part.prefix.addr);
    const len = part.prefix.len;
    if (typeof lo !== 'bigint' || typeof len !== 'number') return undefined;
    const v6 = lo >= 1n << 128n;
    const host = (1n << BigInt((v6 ? 128 : 32) - len)) - 1n;
    return { lo: lo & ~host, hi: lo | host };
  }
  if (isObj(part) && Array.isArray(part.range) && part.range.length === 2) {
    const lo = parseAtom(kind, part.range[0]);
    const hi = parseAtom(kind, part.range[1]);
    if (lo === undefined || hi === undefined || typeof lo !== typeof hi) return undefined;
    return { lo, hi };
  }
  if (kind === 'ifname' && typeof part === 'string' && /(^|[^\\])\*$/.test(part)) {
    // `eth*`: every name that starts with `eth`.
    const stem = part.slice(0, -1);
    return { lo: stem, hi: `${stem}\uffff` };
  }
  const v = parseAtom(kind, typeof part === 'string' ? part.replace(/\\\*$/, '*') : part);
  return v === undefined ? undefined : { lo: v, hi: v };
}

/** A set or map of `kinds.length`-component keys, looked up with what a packet shows. */
export class Table<D> {
  readonly dims: number;
  /** Elements whose key could not be read: a miss on the others is not sure. */
  readonly unread: number;
  private readonly entries: Entry<D>[];
  /** One component: entries sorted by lo, and whether any two overlap (then: scan). */
  private readonly overlap: boolean;
  /**
   * Several components: elements of single values, one Map level per component (no key
   * string is built per lookup: an address's decimal text alone costs more than the walk).
   */
  private readonly points: Map<Scalar, unknown>;
  private readonly spans: Entry<D>[];

  constructor(
    kinds: readonly ValueKind[],
    elems: readonly { readonly key: unknown; readonly data: D }[],
    readonly dynamics: Dynamics = 'static',
  ) {
    this.dims = kinds.length;
    const entries: Entry<D>[] = [];
    let unread = 0;
    for (const e of elems) {
      const key = elementKey(kinds, e.key);
      if (key === undefined) unread++;
      else entries.push({ key, data: e.data, hit: { kind: 'hit', data: e.data } });
    }
    this.unread = unread;
    entries.sort((a, b) => cmp((a.key[0] as Interval).lo, (b.key[0] as Interval).lo));
    this.entries = entries;
    let overlap = false;
    let top: Scalar | undefined;
    for (const e of entries) {
      const iv = e.key[0] as Interval;
      if (top !== undefined && cmp(iv.lo, top) <= 0) overlap = true;
      if (top === undefined || cmp(iv.hi, top) > 0) top = iv.hi;
    }
    this.overlap = overlap;
    // Most tables are a rule's one value: they share empty ones (compiling makes thousands).
    this.points = this.dims > 1 ? new Map() : NO_POINTS;
    this.spans = [];
    if (this.dims > 1) {
      for (const e of entries) {
        if (e.key.every((iv) => iv.lo === iv.hi)) {
          let level = this.points;
          for (let i = 0; i < this.dims - 1; i++) {
            const lo = pointKey((e.key[i] as Interval).lo);
            let next = level.get(lo) as Map<Scalar, unknown> | undefined;
            if (next === undefined) {
              next = new Map();
              level.set(lo, next);
            }
            level = next;
          }
          const last = pointKey((e.key[this.dims - 1] as Interval).lo);
          if (!level.has(last)) level.set(last, e.hit);
        } else {
          this.spans.push(e);
        }
      }
    }
  }

  get size(): number {
    return this.entries.length + this.unread;
  }

  /** Every element's single values (undefined when some element is a prefix or range). */
  plainKeys(): Scalar[] | undefined {
    if (this.dims !== 1 || this.unread > 0) return undefined;
    const out: Scalar[] = [];
    for (const e of this.entries) {
      const iv = e.key[0] as Interval;
      if (iv.lo !== iv.hi) return undefined;
      out.push(iv.lo);
    }
    return out;
  }

  /** lookup() of a one-component key, without building arrays (the walk's hot path). */
  lookup1(v: LVal): Lookup<D> {
    if (v.t === 'absent') return ABSENT_HIT;
    return this.settle(v.t === 'v' && this.dims === 1 ? this.exact1(v.v) : this.find([v]));
  }

  lookup(vals: readonly LVal[]): Lookup<D> {
    return this.settle(this.find(vals));
  }

  /** What rules that change the set while packets pass leave of an answer. */
  private settle(r: Lookup<D>): Lookup<D> {
    if (r.kind === 'absent' || r.kind === 'unknown') return r;
    if (r.kind === 'miss') return this.unread > 0 || this.dynamics !== 'static' ? UNSURE : MISS;
    return this.dynamics === 'volatile' ? UNSURE : r;
  }

  private find(vals: readonly LVal[]): Lookup<D> {
    let allExact = true;
    // Index loops on the lookup path: for-of allocated an iterator per lookup in profiles.
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i] as LVal;
      if (v.t === 'absent') return ABSENT_HIT;
      if (v.t !== 'v') allExact = false;
    }
    if (allExact) {
      if (this.dims === 1) return this.exact1((vals[0] as { v: Scalar }).v);
      let at: unknown = this.points;
      for (let i = 0; i < vals.length && at !== undefined; i++) {
        at = (at as Map<Scalar, unknown>).get(pointKey((vals[i] as { v: Scalar }).v));
      }
      if (at !== undefined) return at as Lookup<D>;
      if (this.spans.length === 0) return MISS;
      const xs = vals.map((v) => (v as { v: Scalar }).v);
      for (const e of this.spans) {
        if (e.key.every((iv, i) => inside(xs[i] as Scalar, iv)))
          return { kind: 'hit', data: e.data };
      }
      return MISS;
    }
    const v0 = vals[0] as LVal;
    if (this.dims === 1 && v0.t === 'range') return this.cover(v0.from, v0.to);
    // Some component is a range, partly known or unknown: an element that holds every value
    // decides; none that can hold any is a miss; anything else is not sure.
    let unsure = false;
    for (const e of this.entries) {
      let all: boolean | 'unknown' = true;
      for (let i = 0; i < vals.length && all !== false; i++) {
        const c = component(vals[i] as LVal, e.key[i] as Interval);
        if (c === false) all = false;
        else if (c === 'unknown') all = 'unknown';
      }
      if (all === true) return e.hit;
      if (all === 'unknown') unsure = true;
    }
    return unsure ? UNSURE : MISS;
  }

  private exact1(x: Scalar): Lookup<D> {
    const es = this.entries;
    if (this.overlap) {
      for (let i = 0; i < es.length; i++) {
        const e = es[i] as Entry<D>;
        if (inside(x, e.key[0] as Interval)) return e.hit;
      }
      return MISS;
    }
    let lo = 0;
    let hi = es.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const iv = (es[mid] as Entry<D>).key[0] as Interval;
      if (cmp(x, iv.lo) < 0) hi = mid - 1;
      else if (cmp(x, iv.hi) > 0) lo = mid + 1;
      else return (es[mid] as Entry<D>).hit;
    }
    return MISS;
  }

  /** A port range: a hit when elements of one data cover all of it, a miss when none touch it. */
  private cover(from: number, to: number): Lookup<D> {
    let next = from;
    let gap = false;
    let data: D | undefined;
    let touched = false;
    let mixed = false;
    for (const e of this.entries) {
      const iv = e.key[0] as Interval;
      if (typeof iv.lo !== 'number' || typeof iv.hi !== 'number') continue;
      if (iv.hi < from || iv.lo > to) continue;
      if (touched && !sameData(e.data, data as D)) mixed = true;
      touched = true;
      data = e.data;
      // Entries are sorted by lo, so a gap before this one is never filled later.
      if (iv.lo > next) gap = true;
      if (iv.hi >= next) next = iv.hi + 1;
    }
    if (!touched) return MISS;
    return !gap && next > to && !mixed ? { kind: 'hit', data: data as D } : UNSURE;
  }
}

/** Two elements' data alike (verdict maps hold a fresh `{"accept": null}` per element). */
function sameData(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Whether one component's value (of any LVal kind) falls in an interval. */
function component(v: LVal, iv: Interval): boolean | 'unknown' {
  switch (v.t) {
    case 'v':
      return inside(v.v, iv);
    case 'range': {
      if (typeof iv.lo !== 'number' || typeof iv.hi !== 'number') return false;
      if (v.from >= iv.lo && v.to <= iv.hi) return true;
      if (v.to < iv.lo || v.from > iv.hi) return false;
      return 'unknown';
    }
    case 'bits': {
      if (iv.lo !== iv.hi || typeof iv.lo !== 'number') return 'unknown';
      if (((v.v ^ iv.lo) & v.known) !== 0) return false;
      return v.known === 0xffffffff ? true : 'unknown';
    }
    case 'unknown':
      return 'unknown';
    case 'not':
      return iv.lo === v.v && iv.hi === v.v ? false : 'unknown';
    case 'absent':
      return false;
  }
}

/**
 * A point's key at one Map level: a number and a bigint (or name) of the same decimal text are
 * one key, as they were when keys were joined as text.
 */
function pointKey(x: Scalar): Scalar {
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return x >= MIN_SAFE && x <= MAX_SAFE ? Number(x) : x;
  const n = Number(x);
  return String(n) === x ? n : x;
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

export function inside(x: Scalar, iv: Interval): boolean {
  return typeof x === typeof iv.lo && cmp(x, iv.lo) >= 0 && cmp(x, iv.hi) <= 0;
}

export function cmp(a: Scalar, b: Scalar): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
