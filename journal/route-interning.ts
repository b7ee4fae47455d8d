// Host routes from a journal's checkpoints, kept once each: memory bounded by distinct routes, not checkpoints.
import type { HostRoute, RouteSet } from './format.js';
import { MAX_ROUTES } from './meta-codec.js';
import { Damage, field, isPlainObject } from './validate.js';

/**
 * Distinct routes one journal's checkpoints may bring: 16 sets of the most a set may hold
 * (MAX_ROUTES). Past it the journal is damaged or forged: a flapping route repeats the same
 * few routes, and any more would cost memory with no bound but the file's size.
 */
export const MAX_DISTINCT_ROUTES = 16 * MAX_ROUTES;

/** Distinct route lists remembered for reuse: a flapping table alternates between a few. */
const RECENT_LISTS = 4;

/**
 * One object per distinct route (every field), as AddressInterning does for addresses: a
 * journal may repeat a set of 4,096 routes in every checkpoint that changed one of them. A
 * route seen before is found from its undecoded fields (`known`), so the decoder makes nothing
 * for it; a list equal to one of the last few distinct ones is that list, so a table flapping
 * between two lists costs two arrays, not one per checkpoint (`ct-analyze` on a 193 MB journal
 * of 4,096 routes flapping peaked at 271 MB; 204 MB with shared lists alone, 156 MB with both).
 */
export class RouteInterning {
  /** Per device (one string, not one per route): each key (every other field) to the one object. */
  readonly #byDev = new Map<string | undefined, Map<string, HostRoute>>();
  #count = 0;
  readonly #recent: HostRoute[][] = [];

  set(s: RouteSet): RouteSet {
    const routes = s.routes.map((r) => this.#route(r));
    return { time: s.time, routes: this.#list(routes) };
  }

  /**
   * The route already interned with exactly the fields of `raw` (a route as msgpack unpacked
   * it), else undefined: then the decoder checks it. Only values a decoded route can hold
   * match, so nothing the decoder would refuse is taken here.
   */
  readonly known = (raw: unknown): HostRoute | undefined => {
    if (!isPlainObject(raw)) return undefined;
    const family = field(raw, 'family');
    const dst = field(raw, 'dst');
    const prefix = field(raw, 'prefix');
    const table = field(raw, 'table');
    const metric = field(raw, 'metric');
    const type = field(raw, 'type');
    const dev = field(raw, 'dev');
    const gateway = field(raw, 'gateway');
    const len = family === 4 ? 4 : family === 6 ? 16 : 0;
    if (
      len === 0 ||
      !(dst instanceof Uint8Array) ||
      dst.length !== len ||
      !(gateway === undefined || (gateway instanceof Uint8Array && gateway.length === len)) ||
      !(dev === undefined || typeof dev === 'string') ||
      typeof type !== 'string' ||
      !u32(prefix) ||
      prefix > len * 8 ||
      !u32(table) ||
      !u32(metric)
    ) {
      return undefined;
    }
    return this.#byDev
      .get(dev)
      ?.get(keyOf(len === 4 ? 4 : 6, dst, prefix, table, metric, type, gateway));
  };

  #list(routes: HostRoute[]): HostRoute[] {
    for (const seen of this.#recent) {
      if (seen.length === routes.length && seen.every((r, i) => r === routes[i])) return seen;
    }
    this.#recent.unshift(routes);
    if (this.#recent.length > RECENT_LISTS) this.#recent.pop();
    return routes;
  }

  #route(r: HostRoute): HostRoute {
    let byKey = this.#byDev.get(r.dev);
    if (byKey === undefined) {
      byKey = new Map();
      this.#byDev.set(r.dev, byKey);
    }
    const key = keyOf(r.family, r.dst, r.prefix, r.table, r.metric, r.type, r.gateway);
    const same = byKey.get(key);
    if (same !== undefined) return same;
    if (this.#count >= MAX_DISTINCT_ROUTES) {
      throw new Damage(
        `checkpoint routes bring the host's distinct routes past ${MAX_DISTINCT_ROUTES}, more than any host has`,
      );
    }
    this.#count++;
    byKey.set(key, r);
    return r;
  }
}

function u32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/**
 * Every field but the device, as UTF-16 code units: numbers in 16-bit halves, the bytes one a
 * unit after their length (the gateway's 0xffff when absent), the type last. No array, hex
 * string or Buffer per route: a checkpoint brings 4,096.
 */
function keyOf(
  family: number,
  dst: Uint8Array,
  prefix: number,
  table: number,
  metric: number,
  type: string,
  gateway: Uint8Array | undefined,
): string {
  return (
    String.fromCharCode(
      family,
      prefix,
      table >>> 16,
      table & 0xffff,
      metric >>> 16,
      metric & 0xffff,
      dst.length,
      ...dst,
      gateway === undefined ? 0xffff : gateway.length,
    ) +
    (gateway === undefined ? '' : String.fromCharCode(...gateway)) +
    type
  );
}
